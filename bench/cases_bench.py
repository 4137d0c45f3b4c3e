"""Case escalation scheduler at scale: N clocks (default 100,000) due in the same minute.

Starts an embedded PostgreSQL in a temporary directory (or uses
``SWITCHBOARD_DATABASE__URL``: rows are ADDED to that database), COPYs N open cases
whose clocks run out within one minute, then runs the scheduler until none is due and
prints ONE JSON object: the time to fire them all, the rate, and the event loop's lag
(p50/p99/max of a 10 ms ticker, what would delay routing in the same process) while it
runs, next to the same ticker on an idle loop (side by side).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.cases import sla
from app.cases.scheduler import EscalationScheduler
from app.db import open_database
from app.settings import Settings

MINUTE = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a Thursday, within working hours


async def _lag(stop: asyncio.Event, samples: list[float], tick: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(tick)
        samples.append((loop.time() - t - tick) * 1000)


def _pct(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = Settings().database
    if settings.url is None:
        settings = settings.model_copy(update={"embedded_dir": workdir / "pg"})
    out: dict[str, Any] = {"clocks": args.clocks, "batch": args.batch}
    async with open_database(settings) as db:
        async with db.engine.begin() as conn:
            cid = (
                await conn.execute(
                    sa.text("INSERT INTO customers (name) VALUES ('bench') RETURNING id")
                )
            ).scalar_one()
            raw: Any = (await conn.get_raw_connection()).driver_connection
            rows = [
                (
                    cid,
                    MINUTE - timedelta(hours=1),
                    "open",
                    "complaint",
                    "normal",
                    "bench",
                    MINUTE + timedelta(seconds=60 * i / args.clocks),
                    MINUTE + timedelta(seconds=60 * i / args.clocks),
                )
                for i in range(args.clocks)
            ]
            t = time.perf_counter()
            await raw.copy_records_to_table(
                "cases",
                records=rows,
                columns=[
                    "customer_id",
                    "opened_at",
                    "status",
                    "kind",
                    "severity",
                    "subject",
                    "due_at",
                    "next_escalation_at",
                ],
            )
            out["seed_s"] = round(time.perf_counter() - t, 2)
        async with db.engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE cases"))
        policy = sla.SlaPolicy(hours=sla.WorkingHours(tz=ZoneInfo("UTC")))
        idle: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_lag(stop, idle))
        await asyncio.sleep(args.idle_s)
        stop.set()
        await ticker
        busy: list[float] = []
        stop = asyncio.Event()
        ticker = asyncio.create_task(_lag(stop, busy))
        scheduler = EscalationScheduler(
            db.sessionmaker,
            policy,
            batch=args.batch,
            clock=lambda: MINUTE + timedelta(minutes=1),
        )
        t = time.perf_counter()
        fired = await scheduler.run_once()
        elapsed = time.perf_counter() - t
        stop.set()
        await ticker
        async with db.engine.connect() as conn:
            events = (
                await conn.execute(
                    sa.text("SELECT count(*) FROM case_events WHERE kind = 'escalated'")
                )
            ).scalar_one()
        out.update(
            fired=fired,
            escalation_events=events,
            fire_all_s=round(elapsed, 2),
            per_second=round(fired / elapsed) if elapsed else None,
            loop_lag_idle=_pct(idle),
            loop_lag_while_firing=_pct(busy),
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_bench")
    parser.add_argument("--clocks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cases-bench-") as tmp:
        out = asyncio.run(run(args, Path(tmp)))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
