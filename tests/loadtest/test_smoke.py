"""Smoke version of the end-to-end load test: the same harness code path as
``python -m bench.loadtest`` — simulator and service in their own processes, agents
logged in over REST, websockets open, Poisson callers, outcome rows polled — but small
and a few seconds long.

It asserts correctness only (never times): every call the simulator placed has exactly
one row in ``calls``, with the simulator's result and the agent that answered, no row
belongs to a call that was never placed, and the harness measured something for every
path (routing decisions, offers on the agent sockets, outcome rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.loadtest import Options, run
from tests.conftest import FreshDatabase

pytestmark = pytest.mark.slow


async def test_smoke_load_run_loses_no_call(
    fresh_database_settings: FreshDatabase, tmp_path: Path
) -> None:
    db_settings = await fresh_database_settings()
    assert db_settings.url is not None
    opts = Options(
        rate=3.0,
        duration=8.0,
        agents=200,
        queues=5,
        servers=1,
        customers=2_000,
        ws_agents=20,
        wallboards=1,
        talk_mean=2.0,
        ring_min=0.2,
        ring_max=0.8,
        patience_mean=60.0,
        impatient_share=0.15,  # some callers hang up while waiting or ringing
        no_answer_share=0.05,  # some phones never answer: RONA, then another agent
        busy_share=0.05,
        greeting=0.5,  # ACDArrive, then hold: the screen pop is prefetched
        progress_every=2.0,
        drain_timeout=90.0,
        out=tmp_path / "out",
        database_url=db_settings.url.get_secret_value(),
        service_log_level="INFO",
    )
    report = await run(opts)

    outcomes = report["outcomes"]
    assert outcomes["placed"] >= 10, outcomes  # Poisson(24): far more than 10 in practice
    assert outcomes["lost"] == 0, outcomes["lost_examples"]
    assert outcomes["duplicates"] == 0
    assert outcomes["result_mismatches"] == 0, outcomes["mismatch_examples"]
    assert outcomes["rows_without_placed_call"] == 0, outcomes["extra_examples"]
    assert outcomes["rows"] == outcomes["placed"]
    assert report["login"]["ready"] == 200 and not report["login"]["failed"]

    (phase,) = report["phases"]
    assert phase["routing_latency_ms"]["count"] > 0
    # The service's per-offer Redirect write times were joined with the simulator's.
    assert phase["routing_to_redirect_written_ms"]["count"] > 0
    counters = phase["service_side_latency"]["counters"]
    assert counters["prefetch_started"] >= counters["incoming"] > 0
    assert phase["outcome_lag_s"]["count"] > 0
    assert phase["erlang_c"] is not None and phase["observed"]["offered"] > 0
    assert report["websockets"]["agents_connected"] == 20
    assert report["websockets"]["wallboards_connected"] == 1

    # The report is on disk too, with its plot.
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["outcomes"]["lost"] == 0
    assert (tmp_path / "out" / "report.png").stat().st_size > 0
