"""``python -m app`` stops the embedded PostgreSQL it started when it is stopped with
SIGTERM, and leaves alone one it attached to (another process's)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

pytest.importorskip("pgserver")

from pgserver.utils import PostmasterInfo

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(pgdata: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE__EMBEDDED_DIR": str(pgdata),
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_DEMO_TRAFFIC__CALLS_PER_SECOND": "0",
        "SWITCHBOARD_LOG_LEVEL": "warning",
    }
    for name in ("SWITCHBOARD_DATABASE__URL", "SWITCHBOARD_AMI__SERVERS", "SWITCHBOARD_DEMO"):
        env.pop(name, None)
    with log.open("wb") as out:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return proc, port


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("service not ready:\n" + log.read_text(errors="replace"))


def _postmaster(pgdata: Path) -> PostmasterInfo | None:
    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def _stop_left_over(pgdata: Path) -> None:
    """A server the test leaves behind (a failure, or the attached one) is stopped."""
    info = _postmaster(pgdata)
    if info is not None:
        process = psutil.Process(info.pid)
        process.terminate()
        process.wait(30)


def _gone(pgdata: Path, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _postmaster(pgdata) is None:
            return True
        time.sleep(0.2)
    return False


def test_sigterm_stops_the_embedded_postgres_it_started(tmp_path: Path) -> None:
    pgdata, log = tmp_path / "pg", tmp_path / "service.log"
    proc, port = _start(pgdata, log)
    try:
        _wait_ready(proc, port, log)
        assert _postmaster(pgdata) is not None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text(errors="replace")
        assert _gone(pgdata), "the embedded PostgreSQL outlived the service"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _stop_left_over(pgdata)


def test_sigterm_leaves_a_postgres_it_attached_to(tmp_path: Path) -> None:
    pgdata, log = tmp_path / "pg", tmp_path / "service.log"
    # A server already running in the data directory, started by someone else (here a
    # process that has gone, asking pgserver not to stop it).
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pgserver import get_server; get_server(sys.argv[1], cleanup_mode=None)",
            str(pgdata),
        ],
        check=True,
        timeout=120,
    )
    before = _postmaster(pgdata)
    assert before is not None
    proc, port = _start(pgdata, log)
    try:
        _wait_ready(proc, port, log)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text(errors="replace")
        after = _postmaster(pgdata)
        assert after is not None and after.pid == before.pid  # left running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _stop_left_over(pgdata)
