"""The outcome journal: a row ``record_*`` accepted survives the process that accepted it.

A SIGKILL is played in-process: the flusher is cancelled and the journal's descriptors
closed without the clean ``close`` (no flush, no spill, nothing unlinked), which is what
the kernel leaves of a killed process.  A new writer's ``start`` must have written every
accepted row before it returns (the live runtime restores its calls right after).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio

from app.db import Database, open_database
from app.journal import Journal, claim_orphans
from app.outcomes import CallEventRow, OutcomeWriter
from tests.db.test_outcomes import outcome, rows

T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    settings = await fresh_database_settings()
    database = await open_database(settings, migrate=False)
    yield database
    await database.close()


async def kill(writer: OutcomeWriter) -> None:
    """What SIGKILL leaves: no flush, no spill, the journal files as written."""
    await writer._flusher.stop()
    journal = writer._journal
    assert journal is not None
    segment = journal._current
    assert segment is not None
    os.close(segment.fd)  # releases the lock, as the kernel does for a dead process


async def test_rows_accepted_before_a_kill_are_written_by_the_next_start(
    db: Database, tmp_path: Path
) -> None:
    # A flush interval no test waits out: every row is still in the backlog at the kill.
    first = OutcomeWriter(db.sessionmaker, spill_dir=tmp_path, flush_interval_s=3600.0)
    await first.start()
    for n in range(5):
        first.record_call(outcome(n))
        first.record_event(CallEventRow(f"pbx1/{n}.1", "answered", T0 + timedelta(seconds=n)))
    first.record_wrapup("pbx1/0.1", disposition_code="sale", notes=None, wrapup_ended_at=None)
    assert first.stats.pending == 11
    await kill(first)
    assert list(tmp_path.glob("journal-*.jsonl"))

    second = OutcomeWriter(db.sessionmaker, spill_dir=tmp_path)
    await second.start()  # replays before it returns
    try:
        assert len(await rows(db, "SELECT call_id FROM calls")) == 5
        assert len(await rows(db, "SELECT call_id FROM call_events WHERE kind='answered'")) == 5
        assert await rows(db, "SELECT disposition_code FROM calls WHERE call_id='pbx1/0.1'") == [
            ("sale",)
        ]
        assert not list(tmp_path.glob("journal-*")) or all(
            p.stat().st_size == 0 for p in tmp_path.glob("journal-*")
        )
        assert not list(tmp_path.glob("spill-*"))
    finally:
        await second.close()
    assert not list(tmp_path.iterdir()) or not list(tmp_path.glob("journal-*"))


async def test_committed_rows_leave_the_journal_and_a_clean_close_removes_it(
    db: Database, tmp_path: Path
) -> None:
    writer = OutcomeWriter(db.sessionmaker, spill_dir=tmp_path, flush_interval_s=0.01)
    await writer.start()
    writer.record_call(outcome(100))
    await writer.close()
    assert not list(tmp_path.glob("journal-*"))
    assert len(await rows(db, "SELECT call_id FROM calls WHERE call_id='pbx1/100.1'")) == 1


def test_a_segment_held_by_a_live_process_is_not_claimed(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_rows=2)
    for n in range(5):  # three segments, all still open (nothing released)
        journal.append(f'{{"n":{n}}}')
    assert claim_orphans(tmp_path) == []
    assert len(list(tmp_path.glob("journal-*"))) == 3
    journal.close()
