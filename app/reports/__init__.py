"""Reports: interval rollups (``rollup``, ``compute``), reconciliation, report queries.

Exports the reports router; the composition root mounts it and starts the rollups."""

from app.reports.routes import router

__all__ = ["router"]
