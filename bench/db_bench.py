"""Persistence benchmark: seed time, screen-pop lookup latency, outcome-writer throughput.

``python -m bench.db_bench [--customers 1000000] [--lookups 4000] [--outcomes 50000]``
Starts an embedded PostgreSQL in a temporary directory (or uses
``SWITCHBOARD_DATABASE__URL`` if set: the seed RESETS that database) and prints ONE JSON
object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.crm import lookup_caller
from app.db import open_database
from app.outcomes import CallEventRow, CallOutcome, OutcomeWriter
from app.seed import customer_phone, has_second_phone, seed, unknown_phone
from app.settings import Settings
from app.stats import quantile
from routing.commands import CallResult


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = Settings().database
    if settings.url is None:
        settings = settings.model_copy(update={"embedded_dir": workdir / "pg"})
    today = date(2026, 6, 15)
    out: dict[str, Any] = {"customers": args.customers}
    async with open_database(settings) as db:
        report = await seed(
            db, customers=args.customers, agents=200, queues=20, reset=True, today=today
        )
        out["seed_s"] = round(report.seconds, 2)
        out["seed_rows"] = {
            "phones": report.phones,
            "products": report.products,
            "interactions": report.interactions,
            "cases": report.cases,
        }
        out["seed_timings_s"] = {k: round(v, 2) for k, v in report.timings.items()}

        rng = random.Random(7)
        existing: list[float] = []
        missing: list[float] = []
        async with db.sessionmaker() as session:
            for _ in range(200):  # warm the connection and the buffer cache a little
                await lookup_caller(
                    session, customer_phone(rng.randint(1, args.customers)), today=today
                )
            for i in range(args.lookups):
                cid = rng.randint(1, args.customers)
                hit = i % 2 == 0
                phone = (
                    customer_phone(cid, 1 if has_second_phone(cid) and i % 4 == 0 else 0)
                    if hit
                    else unknown_phone(rng.randrange(100_000_000))
                )
                t0 = time.perf_counter()
                pop = await lookup_caller(session, phone, today=today)
                elapsed_ms = (time.perf_counter() - t0) * 1000
                assert (pop is not None) == hit, phone
                (existing if hit else missing).append(elapsed_ms)
        existing.sort()
        missing.sort()
        out["lookup_existing_ms"] = {
            "p50": round(quantile(existing, 0.5), 3),
            "p99": round(quantile(existing, 0.99), 3),
            "mean": round(statistics.fmean(existing), 3),
            "n": len(existing),
        }
        out["lookup_missing_ms"] = {
            "p50": round(quantile(missing, 0.5), 3),
            "p99": round(quantile(missing, 0.99), 3),
            "n": len(missing),
        }

        writer = OutcomeWriter(
            db.sessionmaker, spill_dir=workdir / "spill", batch_size=500, close_timeout_s=600
        )
        await writer.start()
        t0 = time.perf_counter()
        base = datetime(2026, 6, 15, 8, tzinfo=UTC)
        for n in range(args.outcomes):
            arrived = base + timedelta(milliseconds=n * 13)
            writer.record_call(
                CallOutcome(
                    call_id=f"bench/{n}",
                    server="bench",
                    uniqueid=str(n),
                    caller=customer_phone(1 + n % args.customers),
                    result=CallResult.ANSWERED,
                    arrived_at=arrived,
                    first_offered_at=arrived + timedelta(seconds=1),
                    answered_at=arrived + timedelta(seconds=4),
                    ended_at=arrived + timedelta(seconds=120),
                    queue_id=1 + n % 20,
                    agents_offered=(1001 + n % 200,),
                    answered_by=1001 + n % 200,
                )
            )
            writer.record_event(CallEventRow(f"bench/{n}", "answered", arrived))
            if n % 1000 == 999:
                await asyncio.sleep(0)  # let the flusher run, as the service loop would
        await writer.close()
        elapsed = time.perf_counter() - t0
        stats = writer.stats
        out["outcome_writer"] = {
            "rows": stats.rows_written,
            "rows_per_s": round(stats.rows_written / elapsed),
            "lag_p50_ms": round((stats.lag_p50_s or 0) * 1000, 1),
            "lag_p99_ms": round((stats.lag_p99_s or 0) * 1000, 1),
            "retries": stats.retries,
            "spilled": stats.spilled,
        }
    if settings.url is None:  # stop the embedded server before its directory goes away
        from pgserver.postgres_server import get_server

        await asyncio.to_thread(get_server(workdir / "pg").cleanup)
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    out["cpus"] = os.cpu_count()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=4000)
    parser.add_argument("--outcomes", type=int, default=50_000)
    parser.add_argument(
        "--quick", action="store_true", help="a small run (50,000 customers) to check it works"
    )
    args = parser.parse_args()
    if args.quick:
        args.customers, args.lookups, args.outcomes = 50_000, 1000, 10_000
    with tempfile.TemporaryDirectory(prefix="sb-dbbench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
