"""High availability: one active router among the service processes of one database.

``app.ha.leader.Leadership`` holds (or waits for) the lease in PostgreSQL and starts /
stops what only the leader may run (``LeaderGate``); ``app.ha.routes`` serves
``GET /api/v1/cluster``.  Theory of operation: docs/ha.md.

Nothing is imported here at import time (``migrations/env.py`` imports ``app.ha.models``
for the metadata, which must not pull in the routes).
"""
