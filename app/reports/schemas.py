"""Reports as the API shows them (rows: ``app.reports.service`` defines the figures)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class Report(BaseModel):
    kind: str
    start: datetime
    end: datetime
    group: str
    timezone: str
    sl_formula: str
    rows: list[dict[str, Any]]
