"""The outcome writer: batched, idempotent, and lossless when PostgreSQL goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from app.db import Database, open_database
from app.models import Call, CallEvent
from app.outcomes import CallEventRow, CallOutcome, OutcomeWriter, purge_expired
from app.settings import DatabaseSettings
from routing.commands import CallRecord, CallResult
from tests.db.pgproxy import PgProxy
from tests.polling import wait_for

T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    settings = await fresh_database_settings()
    database = await open_database(settings, migrate=False)
    yield database
    await database.close()


def outcome(n: int, **kw: Any) -> CallOutcome:
    arrived = T0 + timedelta(seconds=n)
    fields: dict[str, Any] = {
        "call_id": f"pbx1/{n}.1",
        "server": "pbx1",
        "uniqueid": f"{n}.1",
        "caller": "13800138000",
        "result": CallResult.ANSWERED,
        "arrived_at": arrived,
        "first_offered_at": arrived + timedelta(seconds=2),
        "answered_at": arrived + timedelta(seconds=5),
        "ended_at": arrived + timedelta(seconds=65),
        "queue_id": 1,
        "agents_offered": (1001,),
        "answered_by": 1001,
    }
    fields.update(kw)
    return CallOutcome(**fields)


async def rows(db: Database, query: str) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(sa.text(query))).all())


def writer(db: Database, spill_dir: Path, **kw: Any) -> OutcomeWriter:
    kw.setdefault("flush_interval_s", 0.02)
    return OutcomeWriter(db.sessionmaker, spill_dir=spill_dir, **kw)


async def test_calls_events_and_durations_are_written(db: Database, tmp_path: Path) -> None:
    w = writer(db, tmp_path, batch_size=7)
    await w.start()
    for n in range(20):
        w.record_call(outcome(n))
        w.record_event(CallEventRow(f"pbx1/{n}.1", "queued", T0 + timedelta(seconds=n)))
    await w.close()
    stored = await rows(db, "SELECT call_id, wait_s, ring_s, talk_s, result FROM calls ORDER BY id")
    assert len(stored) == 20
    assert stored[0] == ("pbx1/0.1", 5.0, 3.0, 60.0, "answered")
    assert (await rows(db, "SELECT count(*) FROM call_events"))[0][0] == 20
    assert w.stats.rows_written == 40 and w.stats.pending == 0
    assert w.stats.lag_p50_s is not None and w.stats.lag_p99_s is not None


async def test_from_record_maps_the_routing_record() -> None:
    rec = CallRecord(
        call_id="pbx2/1700000000.7",
        queue_id="3",
        caller="13900000000",
        result=CallResult.ABANDONED,
        arrived_at=1_700_000_000.0,
        ended_at=1_700_000_012.5,
        agents_offered=("1002", "1003"),
        rona_count=1,
    )
    row = CallOutcome.from_record(rec, linkedid="1700000000.7", dnis="4008001001").to_row()
    assert row["server"] == "pbx2" and row["uniqueid"] == "1700000000.7"
    assert row["queue_id"] == 3 and row["agents_offered"] == [1002, 1003]
    assert row["wait_s"] == 12.5 and row["talk_s"] is None and row["result"] == "abandoned"


async def test_bad_rows_are_refused_at_enqueue(db: Database, tmp_path: Path) -> None:
    w = writer(db, tmp_path)
    with pytest.raises(ValueError, match="timezone-aware"):
        w.record_call(outcome(1, arrived_at=datetime(2026, 1, 1)))
    with pytest.raises(ValueError, match="call_id"):
        w.record_event(CallEventRow("", "queued", T0))
    with pytest.raises(ValueError):
        w.record_call(outcome(1, result="lost"))
    assert w.stats.pending == 0


async def test_wrapup_before_during_and_after_the_call_row(db: Database, tmp_path: Path) -> None:
    w = writer(db, tmp_path, batch_size=50)
    await w.start()
    # (a) wrap-up long before the call row: parked, then merged.
    w.record_wrapup("pbx1/1.1", disposition_code="RESOLVED", notes="early", wrapup_ended_at=None)
    await _settle(w)
    assert w.stats.parked_wrapups == 1
    w.record_call(outcome(1))
    # (b) wrap-up in the same batch as its call row.
    w.record_call(outcome(2))
    w.record_wrapup(
        "pbx1/2.1", disposition_code="SALE", notes=None, wrapup_ended_at=T0 + timedelta(seconds=80)
    )
    await _settle(w)
    assert w.stats.parked_wrapups == 0
    # (c) wrap-up after the row is stored, then the call row replayed: nothing is undone.
    w.record_call(outcome(3))
    await _settle(w)
    w.record_wrapup(
        "pbx1/3.1",
        disposition_code="CALLBACK",
        notes="n3",
        wrapup_ended_at=T0 + timedelta(seconds=78),
    )
    await _settle(w)
    w.record_call(outcome(3))
    w.record_call(outcome(3))  # twice in one batch
    await w.close()
    stored = await rows(
        db, "SELECT call_id, disposition_code, notes, wrapup_s FROM calls ORDER BY call_id"
    )
    assert stored == [
        ("pbx1/1.1", "RESOLVED", "early", None),
        ("pbx1/2.1", "SALE", None, 80.0 - 67.0),
        ("pbx1/3.1", "CALLBACK", "n3", 78.0 - 68.0),
    ]


async def _settle(w: OutcomeWriter) -> None:
    """Until every recorded row is committed: a batch leaves ``pending`` only after its
    commit (and the wrap-up parking it changed), so nothing is still in flight then."""
    await wait_for(lambda: w.stats.pending == 0, what="every recorded row committed")


async def test_no_outcome_lost_when_the_database_drops_mid_run(
    db: Database, tmp_path: Path
) -> None:
    """Cut the connection to PostgreSQL twice while writing; every row lands exactly once."""
    proxy = PgProxy(db.engine.url)
    await proxy.start()
    via_proxy = DatabaseSettings(url=SecretStr(proxy.url.render_as_string(hide_password=False)))
    proxied = await open_database(via_proxy, migrate=False)
    w = OutcomeWriter(
        proxied.sessionmaker,
        spill_dir=tmp_path,
        batch_size=100,
        flush_interval_s=0.01,
        max_pending=300,  # small, so the outage also exercises spill + replay
        spill_file_rows=250,
        backoff_initial_s=0.02,
        backoff_max_s=0.2,
    )
    await w.start()
    total = 3000
    try:
        for n in range(total):
            w.record_call(outcome(n))
            w.record_event(CallEventRow(f"pbx1/{n}.1", "ended", T0 + timedelta(seconds=n)))
            if n % 50 == 0:
                await asyncio.sleep(0.005)
            if n in (700, 1900):
                proxy.cut()  # the database "goes away" mid-batch
            if n in (1300, 2500):
                proxy.restore()
        await w.close()
    finally:
        await proxied.close()
        await proxy.close()

    stats = w.stats
    assert stats.retries > 0, stats
    assert stats.spilled > 0 and stats.replayed > 0, stats
    calls = await rows(db, "SELECT count(*), count(DISTINCT call_id) FROM calls")
    events = await rows(db, "SELECT count(*) FROM call_events")
    assert calls[0] == (total, total)
    assert events[0][0] == total
    expected = {f"pbx1/{n}.1" for n in range(total)}
    assert {r[0] for r in await rows(db, "SELECT call_id FROM calls")} == expected
    assert list(tmp_path.iterdir()) == []  # every spill file was replayed and removed


async def test_close_with_database_down_spills_and_next_start_replays(
    db: Database, tmp_path: Path
) -> None:
    proxy = PgProxy(db.engine.url)
    await proxy.start()
    url = proxy.url.render_as_string(hide_password=False)
    proxied = await open_database(DatabaseSettings(url=SecretStr(url)), migrate=False)
    w = writer(proxied, tmp_path, close_timeout_s=0.5, backoff_max_s=0.1)
    await w.start()
    proxy.cut()
    for n in range(50):
        w.record_call(outcome(n))
    w.record_wrapup("pbx1/7.1", disposition_code="X", notes=None, wrapup_ended_at=None)
    await w.close()
    await proxied.close()
    await proxy.close()
    assert w.stats.spilled == 51
    spilled = [json.loads(line) for f in tmp_path.iterdir() for line in f.read_text().splitlines()]
    assert len(spilled) == 51
    assert (await rows(db, "SELECT count(*) FROM calls"))[0][0] == 0

    w2 = writer(db, tmp_path)
    await w2.start()
    await w2.close()
    assert w2.stats.replayed == 51
    assert (await rows(db, "SELECT count(*) FROM calls"))[0][0] == 50
    assert await rows(db, "SELECT disposition_code FROM calls WHERE call_id='pbx1/7.1'") == [("X",)]
    assert list(tmp_path.iterdir()) == []


async def test_a_row_postgres_refuses_is_set_aside_not_retried_forever(
    db: Database, tmp_path: Path
) -> None:
    w = writer(db, tmp_path, batch_size=10)
    await w.start()
    for n in range(10):
        # NUL is valid Python text but not valid PostgreSQL text: a data error (22021).
        w.record_call(outcome(n, caller="138\x00" if n == 4 else "13800138000"))
    await w.close()
    assert w.stats.rejected == 1
    assert (await rows(db, "SELECT count(*) FROM calls"))[0][0] == 9
    [rejected] = list(tmp_path.glob("rejected-*.jsonl"))
    record = json.loads(rejected.read_text())
    assert record["r"]["call_id"] == "pbx1/4.1" and record["error"]


async def test_purge_removes_only_records_older_than_two_years(
    db: Database, tmp_path: Path
) -> None:
    w = writer(db, tmp_path)
    await w.start()
    now = T0
    for n, age_days in enumerate([800, 731, 729, 10]):
        at = now - timedelta(days=age_days)
        w.record_call(
            outcome(n, arrived_at=at, first_offered_at=None, answered_at=None, ended_at=at)
        )
        w.record_event(CallEventRow(f"pbx1/{n}.1", "ended", at))
    await w.close()
    report = await purge_expired(db.sessionmaker, now=now, chunk=1)
    assert (report.calls, report.call_events) == (2, 2)
    left = await rows(db, "SELECT call_id FROM calls ORDER BY call_id")
    assert left == [("pbx1/2.1",), ("pbx1/3.1",)]
    assert (await rows(db, "SELECT count(*) FROM call_events"))[0][0] == 2
    with pytest.raises(ValueError):
        await purge_expired(db.sessionmaker, now=datetime(2026, 1, 1))


def test_models_are_importable_for_typing() -> None:
    assert Call.__tablename__ == "calls" and CallEvent.__tablename__ == "call_events"
    assert make_url("postgresql+asyncpg://x@/y").database == "y"
