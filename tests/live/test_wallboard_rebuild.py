"""The wallboard after a restart: counters and chart rebuilt from the calls table equal
what the running wallboard had counted live (real PostgreSQL)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
import sqlalchemy as sa

from app import models
from app.db import Database, open_database
from app.live.boardhistory import rebuild
from app.live.wallboard import Wallboard
from routing.commands import (
    CallAnswered,
    CallEnded,
    CallQueued,
    CallRecord,
    CallResult,
    Command,
    WrapUpEnded,
)

T0 = 1_800_000_000.0  # a minute boundary
NOW = T0 + 3 * 3600


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    database = await open_database(await fresh_database_settings(), migrate=False)
    yield database
    await database.close()


def _ts(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def scenario(n: int, seed: int) -> tuple[list[dict[str, Any]], list[tuple[float, Command]]]:
    """``n`` finished calls over the three hours before NOW: their rows and live events."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    events: list[tuple[float, Command]] = []
    for i in range(n):
        call, queue = f"pbx1/{i}", rnd.choice(["1", "2"])
        arrived = T0 + rnd.randrange(0, 3 * 3600 - 400)
        kind = rnd.choice(["answered"] * 5 + ["abandoned", "short", "overflowed", "failed"])
        row: dict[str, Any] = {
            "call_id": call,
            "server": "pbx1",
            "uniqueid": str(i),
            "caller": "1",
            "queue_id": int(queue),
            "arrived_at": _ts(arrived),
        }
        events.append((arrived, CallQueued(call, queue, arrived)))
        if kind == "answered":
            answered = arrived + rnd.randrange(0, 40)
            ended = answered + rnd.randrange(1, 200)
            wrapped = ended + rnd.randrange(0, 30)
            rec = CallRecord(
                call_id=call,
                queue_id=queue,
                caller="1",
                result=CallResult.ANSWERED,
                arrived_at=arrived,
                ended_at=ended,
                answered_at=answered,
                answered_by="1001",
            )
            events += [
                (answered, CallAnswered(call, "1001", queue, answered)),
                (ended, CallEnded(rec)),
                (wrapped, WrapUpEnded("1001", call, wrapped)),
            ]
            row |= {
                "result": "answered",
                "answered_at": _ts(answered),
                "ended_at": _ts(ended),
                "wrapup_ended_at": _ts(wrapped),
                "answered_by": 1001,
            }
        else:
            after = rnd.randrange(0, 4) if kind == "short" else rnd.randrange(3, 90)
            result = {
                "abandoned": CallResult.ABANDONED,
                "short": CallResult.SHORT_ABANDONED,
                "overflowed": CallResult.OVERFLOWED,
                "failed": CallResult.FAILED,
            }[kind]
            rec = CallRecord(
                call_id=call,
                queue_id=queue,
                caller="1",
                result=result,
                arrived_at=arrived,
                ended_at=arrived + after,
            )
            events.append((arrived + after, CallEnded(rec)))
            row |= {"result": result.value, "ended_at": _ts(arrived + after)}
        rows.append(row)
    events.sort(key=lambda e: e[0])
    return rows, events


async def test_counters_and_chart_rebuilt_from_the_database_equal_the_live_ones(
    db: Database,
) -> None:
    rows, events = scenario(600, seed=7)
    async with db.sessionmaker() as s, s.begin():
        s.add(models.Queue(id=1, name="fast", sl_target_s=1.0))
        s.add(models.Queue(id=2, name="slow", sl_target_s=20.0))
        await s.flush()
        await s.execute(sa.insert(models.Call), rows)
        # A call that left in the greeting never reached a queue's figures.
        await s.execute(
            sa.insert(models.Call),
            [rows[0] | {"call_id": "pbx1/ivr", "uniqueid": "ivr", "result": "abandoned_in_ivr"}],
        )

    def board() -> Wallboard:
        wb = Wallboard(now=T0)
        wb.set_queue("1", sl_target_s=1.0)
        wb.set_queue("2", sl_target_s=20.0)
        return wb

    live = board()
    for at, cmd in events:
        live.apply(cmd, at)
    restarted = board()
    assert await rebuild(restarted, db.sessionmaker, now=NOW) > 0

    expected, got = live.state(NOW), restarted.state(NOW)
    assert got["overall"]["windows"]["today"]["offered"] > 0
    for scope in ("1", "2"):
        assert got["queues"][scope]["windows"] == expected["queues"][scope]["windows"]
    assert got["overall"]["windows"] == expected["overall"]["windows"]
    assert [p["sl"] for p in restarted.history(NOW)] == [p["sl"] for p in live.history(NOW)]
    # Callers waiting at the end of each minute never exceed the live peak of that minute.
    for a, b in zip(restarted.history(NOW), live.history(NOW), strict=True):
        assert a["w"] is not None
        assert b["w"] is None or a["w"] <= b["w"]
