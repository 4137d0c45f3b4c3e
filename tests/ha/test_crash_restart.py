"""SIGKILL of the only service process under traffic, then a restart: nothing it had in
hand is lost or recorded worse than it knew.

Real processes (``bench.loadtest_failover`` with ``restart``): the AMI simulator in its
own process keeps the calls alive while the service is dead; one ``python -m app`` is
killed mid-traffic and a fresh one started on the same database and spill directory.
Counted against the simulator's traces (``crash_check``): every call the service had in
hand has exactly one ``calls`` row, and none it saw bridged is recorded as anything but
answered, including the calls that ended while it was down (their outcome or answer was
only in the killed process's memory before the outcome journal, ``app/journal.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.loadtest import Options
from bench.loadtest_failover import FailoverOptions, run_failover
from tests.conftest import FreshDatabase

pytestmark = pytest.mark.slow


async def test_sigkill_and_restart_under_traffic(
    fresh_database_settings: FreshDatabase, tmp_path: Path
) -> None:
    db_settings = await fresh_database_settings()
    assert db_settings.url is not None
    kill_at = 8.0
    base = Options(
        rate=4.0,
        duration=kill_at + 8.0,
        agents=30,
        queues=2,
        servers=1,
        customers=300,
        ws_agents=0,
        wallboards=0,
        talk_mean=1.5,  # many calls answered before the kill end while the service is down
        ring_min=0.2,
        ring_max=0.6,
        patience_mean=120.0,
        impatient_share=0.0,
        no_answer_share=0.0,
        busy_share=0.0,
        greeting=0.3,
        drain_timeout=120.0,
        out=tmp_path / "out",
        database_url=db_settings.url.get_secret_value(),
        service_log_level="INFO",
        # A longer batch than the default 0.2 s: the killed process holds more acknowledged
        # rows in memory (calls ended, answers), so the old behaviour loses some every run.
        service_env={"SWITCHBOARD_OUTCOMES__FLUSH_INTERVAL_S": "2.0"},
    )
    report = await run_failover(
        FailoverOptions(base=base, members=1, kill_at=kill_at, kill_signal="KILL", restart=True)
    )
    crash = report["crash"]
    assert report["drained"], report
    assert crash["in_hand"] >= 10, crash
    assert crash["without_row"] == 0, crash["without_row_traces"]
    assert crash["duplicate_rows"] == 0, crash
    assert crash["answered_recorded_failed"] == 0, crash["answered_recorded_failed_examples"]
    outcomes = report["outcomes"]
    assert outcomes["duplicates"] == 0, outcomes
    assert outcomes["rows_without_placed_call"] == 0, outcomes["extra_examples"]
    assert report["stuck_agents"] == 0
