"""PostgreSQL for the load test: an embedded pgserver in a temp dir, or an external URL.

Invariants:
- The embedded server is started in a fresh temporary directory and stopped + deleted
  by ``close()`` (also registered with ``atexit`` by pgserver itself), so a load test
  never reuses or leaks a data directory.
- The URL handed to the service is an asyncpg URL over the server's unix socket; the
  harness never prints a URL that carries a password (``redacted_url``).
- pgserver calls are blocking (initdb, pg_ctl): callers run ``start_embedded`` in a
  thread when inside an event loop.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

DB_NAME = "switchboard"


@dataclass(slots=True)
class PgHandle:
    """A running PostgreSQL the harness uses; ``url`` is a SQLAlchemy asyncpg URL."""

    url: str
    embedded: bool
    pid: int | None = None
    _server: object | None = field(default=None, repr=False)
    _dir: Path | None = field(default=None, repr=False)

    def close(self) -> None:
        """Stop and delete an embedded server; nothing to do for an external one."""
        server, self._server = self._server, None
        if server is not None:
            try:
                server.cleanup()  # type: ignore[attr-defined]
            except Exception:  # already stopped (atexit, Ctrl-C) — the dir still goes
                log.warning("embedded PostgreSQL cleanup failed", exc_info=True)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def redacted_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and the report)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def start_embedded(base_dir: Path | None = None) -> PgHandle:
    """Start pgserver in a new temp dir, create the ``switchboard`` database, return its URL."""
    from pgserver.postgres_server import get_server  # heavy: only when the server is wanted

    root = Path(tempfile.mkdtemp(prefix="sb-loadtest-pg-", dir=base_dir))
    # pgserver runs postgres as the user "pgserver" when we are root: it must reach the dir.
    root.chmod(0o755)
    pgdata = root / "pgdata"
    server = get_server(pgdata, cleanup_mode="delete")
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME};")
        info = server.get_postmaster_info()
        socket_dir = info.socket_dir
        pid = info.pid
    except BaseException:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
        raise
    url = f"postgresql+asyncpg://postgres@/{DB_NAME}?host={socket_dir}"
    log.info("embedded PostgreSQL pid %s, socket dir %s", pid, socket_dir)
    return PgHandle(url=url, embedded=True, pid=pid, _server=server, _dir=root)


def external(url: str) -> PgHandle:
    return PgHandle(url=url, embedded=False)


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants ``postgresql://``, SQLAlchemy ``postgresql+asyncpg://``."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def postgres_pids(pg: PgHandle) -> list[int]:
    """The postmaster and its children (for CPU accounting); empty for an external server."""
    if pg.pid is None:
        return []
    try:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(pg.pid)], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return [pg.pid]
    return [pg.pid, *(int(x) for x in out.split())]
