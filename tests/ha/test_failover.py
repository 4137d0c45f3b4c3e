"""Failover with real processes: two or three ``python -m app`` on one database (the
session's embedded PostgreSQL), the AMI simulator in its own process (calls stay alive
while a service dies), Poisson traffic, the leader signalled mid-run
(``bench.loadtest_failover``, the harness of ``make loadtest ARGS=--failover``).

Small and slow on purpose (few agents, 1 call/s): the assertions are about correctness
only; the takeover time is measured by the load test, never asserted as wall clock here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.loadtest import Options
from bench.loadtest_failover import FailoverOptions, run_failover
from tests.conftest import FreshDatabase

pytestmark = pytest.mark.slow


async def failover(
    fresh_database_settings: FreshDatabase, out: Path, **kwargs: Any
) -> dict[str, Any]:
    db_settings = await fresh_database_settings()
    assert db_settings.url is not None
    kill_at = float(kwargs.pop("kill_at", 5.0))
    kills = int(kwargs.get("kills", 1))
    base = Options(
        rate=1.0,
        duration=kill_at * kills + 10.0,
        agents=24,
        queues=2,
        servers=1,
        customers=300,
        ws_agents=0,
        wallboards=0,
        talk_mean=3.0,  # calls are connected when the leader goes away
        ring_min=0.3,
        ring_max=1.0,
        patience_mean=120.0,
        impatient_share=0.0,
        no_answer_share=0.0,
        busy_share=0.0,
        greeting=0.3,
        drain_timeout=120.0,
        out=out,
        database_url=db_settings.url.get_secret_value(),
        service_log_level="INFO",
    )
    return await run_failover(FailoverOptions(base=base, kill_at=kill_at, **kwargs))


def assert_nothing_lost(report: dict[str, Any]) -> None:
    outcomes = report["outcomes"]
    assert report["drained"], report
    assert outcomes["placed"] >= 5, outcomes
    # A call that came and went while nobody led never reached a process: counted apart.
    assert outcomes["lost_observed"] == 0, outcomes["lost_traces"]
    assert outcomes["duplicates"] == 0, outcomes
    # A call answered and ended while nobody led is recorded from the last saved state
    # (ended-while-down): Asterisk keeps no trace of it (docs/ha.md).  Any other mismatch
    # is a bug.
    assert outcomes["result_mismatches_observed"] == 0, outcomes["mismatch_examples"]
    assert outcomes["rows_without_placed_call"] == 0, outcomes["extra_examples"]
    assert report["stuck_agents"] == 0
    for step in report["failovers"]:
        assert step["takeover_s"] is not None, step  # the new leader routed
        assert step["old_leader_actions_after_new_first"] == 0, step
        assert step["reoffered_while_connected"] == 0, step


def takeover_reasons(report: dict[str, Any]) -> list[str]:
    return [t["reason"] for t in reversed(report["cluster"]["takeovers"])]


async def test_sigstop_longer_than_the_lease_then_sigcont(
    fresh_database_settings: FreshDatabase, tmp_path: Path
) -> None:
    report = await failover(
        fresh_database_settings, tmp_path / "out", kill_signal="STOP", stop_for=6.0
    )
    assert_nothing_lost(report)
    # The resumed process found the lease gone and stands by; it sent nothing after the
    # new leader's first action (checked on the simulator's action log above).
    assert report["leaders_at_end"] == [report["new_leader"]]
    old = report["failover"]["from"]
    assert report["members_at_end"][old] == {"status": 503, "error_id": "standby"}


async def test_sigterm_releases_the_lease(
    fresh_database_settings: FreshDatabase, tmp_path: Path
) -> None:
    report = await failover(fresh_database_settings, tmp_path / "out", kill_signal="TERM")
    assert_nothing_lost(report)
    # Taken because it was released, not because it expired: no lease time waited out.
    assert takeover_reasons(report)[-1] == "released"


async def test_sigkill_under_traffic_three_processes_leader_killed_twice(
    fresh_database_settings: FreshDatabase, tmp_path: Path
) -> None:
    report = await failover(
        fresh_database_settings, tmp_path / "out", members=3, kills=2, kill_signal="KILL"
    )
    # Each SIGKILL: the standby routes again (takeover_s), exactly one row per call,
    # ringing / connected calls adopted not re-offered, no agent stuck (assert_nothing_lost).
    assert_nothing_lost(report)
    assert len({report["first_leader"], *(f["to"] for f in report["failovers"])}) == 3
    assert takeover_reasons(report)[-2:] == ["expired", "expired"]
    assert report["leaders_at_end"] == [report["new_leader"]]
    members = report["cluster"]["members"]
    assert sum(m["leader"] for m in members) == 1


async def test_the_leader_cut_off_from_the_database_fences_itself(
    fresh_database_settings: FreshDatabase, tmp_path: Path
) -> None:
    # The leader keeps its AMI sessions but loses PostgreSQL (a loopback proxy is cut):
    # it must stop acting before the standby, which still reaches the database, takes
    # over; once the database is back it stands by.
    report = await failover(fresh_database_settings, tmp_path / "out", kill_signal="CUT")
    assert_nothing_lost(report)
    assert report["leaders_at_end"] == [report["new_leader"]]
    old = report["failover"]["from"]
    assert report["members_at_end"][old] == {"status": 503, "error_id": "standby"}
