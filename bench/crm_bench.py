"""CRM screen-pop benchmark at scale: 1,000,000 customers and 5,000,000 interactions.

``python -m bench.crm_bench [--customers 1000000] [--interactions 5000000] [--lookups 4000]``

Seeds the demo data set (``app.seed``: customers, numbers, products, cases and their own
interactions, by COPY), then COPYs further interactions until the table holds
``--interactions`` rows: handled calls with a call id, queue and result, a fifth of the
customers with several contacts in the last week (repeat callers).  Then it measures the
screen-pop look-up as the routing path runs it (``lookup_caller_asyncpg``: last contacts,
open cases and the repeat-caller mark in one statement) and through the ORM session.
``SWITCHBOARD_BENCH_CRM_SCALE`` (e.g. ``0.1``) scales both sizes down on a slow machine.
Starts an embedded PostgreSQL in a temporary directory (or uses
``SWITCHBOARD_DATABASE__URL``: the seed RESETS that database).  Prints ONE JSON object.
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
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.crm import lookup_caller, lookup_caller_asyncpg
from app.db import Database, open_database
from app.seed import customer_phone, seed, unknown_phone
from app.settings import Settings
from app.stats import quantile

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
_COLUMNS = (
    "id", "customer_id", "at", "channel", "agent_id", "summary", "call_id", "queue_id", "result",
)  # fmt: skip
_RESULTS = ("answered", "answered", "answered", "abandoned", "overflowed")
CHUNK = 250_000


def _extra_rows(
    first_id: int, count: int, customers: int, seed_value: int
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed_value)
    for n in range(count):
        cid = rng.randint(1, customers)
        if cid % 5 == 0:  # repeat callers: within the last week
            at = NOW - timedelta(seconds=rng.randrange(7 * 86_400))
        else:
            at = NOW - timedelta(seconds=rng.randrange(400 * 86_400))
        result = _RESULTS[n % len(_RESULTS)]
        yield (
            first_id + n,
            cid,
            at,
            "phone",
            None if result != "answered" else 1001 + n % 200,
            "call " + result,
            f"bench/{first_id + n}",
            1 + n % 20,
            result,
        )


def _chunk(first_id: int, count: int, customers: int, seed_value: int) -> list[tuple[Any, ...]]:
    return list(_extra_rows(first_id, count, customers, seed_value))


async def _add_interactions(db: Database, target: int, customers: int) -> dict[str, Any]:
    """COPY interactions until there are ``target``; indexes dropped and rebuilt once."""
    out: dict[str, Any] = {}
    async with db.engine.begin() as conn:
        have = int(await conn.scalar(sa.text("SELECT count(*) FROM interactions")) or 0)
        top = int(await conn.scalar(sa.text("SELECT coalesce(max(id), 0) FROM interactions")) or 0)
        extra = max(0, target - have)
        raw = await conn.get_raw_connection()
        apg: Any = raw.driver_connection
        await apg.execute("SET LOCAL synchronous_commit = off")
        await apg.execute("SET LOCAL maintenance_work_mem = '256MB'")
        defs = await apg.fetch(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS idx,"
            " c.conname, pg_get_constraintdef(c.oid) AS con FROM pg_index i"
            " LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p','u')"
            " WHERE i.indrelid = 'interactions'::regclass"
        )
        rebuild = []
        for d in defs:
            if d["conname"] is not None:
                await apg.execute(f'ALTER TABLE interactions DROP CONSTRAINT "{d["conname"]}"')
                rebuild.append(
                    f'ALTER TABLE interactions ADD CONSTRAINT "{d["conname"]}" {d["con"]}'
                )
            else:
                await apg.execute(f'DROP INDEX "{d["name"]}"')
                rebuild.append(d["idx"])
        mark = time.perf_counter()
        done = 0
        while done < extra:
            n = min(CHUNK, extra - done)
            rows = await asyncio.to_thread(_chunk, top + 1 + done, n, customers, done)
            await apg.copy_records_to_table("interactions", records=rows, columns=_COLUMNS)
            done += n
        out["copy_s"] = round(time.perf_counter() - mark, 2)
        mark = time.perf_counter()
        for ddl in rebuild:
            await apg.execute(ddl)
        await apg.execute(
            "SELECT setval(pg_get_serial_sequence('interactions', 'id'),"
            " (SELECT max(id) FROM interactions))"
        )
        out["index_s"] = round(time.perf_counter() - mark, 2)
        out["added"] = extra
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text("VACUUM ANALYZE interactions"))
        out["rows"] = int(await conn.scalar(sa.text("SELECT count(*) FROM interactions")) or 0)
    return out


def _ms(samples: list[float]) -> dict[str, Any]:
    samples.sort()
    return {
        "p50": round(quantile(samples, 0.5), 3),
        "p99": round(quantile(samples, 0.99), 3),
        "mean": round(statistics.fmean(samples), 3),
        "n": len(samples),
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = Settings().database
    if settings.url is None:
        settings = settings.model_copy(update={"embedded_dir": workdir / "pg"})
    out: dict[str, Any] = {"customers": args.customers, "interactions_target": args.interactions}
    async with open_database(settings) as db:
        report = await seed(
            db, customers=args.customers, agents=200, queues=20, reset=True, today=TODAY
        )
        out["seed_s"] = round(report.seconds, 2)
        out["cases"] = report.cases
        out["extra_interactions"] = await _add_interactions(db, args.interactions, args.customers)

        import asyncpg

        _, kwargs = db.engine.dialect.create_connect_args(db.engine.url)
        conn = await asyncpg.connect(**kwargs)
        rng = random.Random(11)
        fast: list[float] = []
        marks: list[int] = []
        try:
            # Warm the statement cache and the upper index pages, as a running service has.
            for _ in range(2000):
                await lookup_caller_asyncpg(
                    conn, customer_phone(rng.randint(1, args.customers)), today=TODAY, now=NOW
                )
            for i in range(args.lookups):
                phone = (
                    customer_phone(rng.randint(1, args.customers))
                    if i % 10
                    else unknown_phone(rng.randrange(100_000_000))
                )
                t0 = time.perf_counter()
                pop = await lookup_caller_asyncpg(conn, phone, today=TODAY, now=NOW)
                fast.append((time.perf_counter() - t0) * 1000)
                if pop is not None and pop.repeat is not None:
                    marks.append(pop.repeat.contacts_long)
        finally:
            await conn.close()
        out["screen_pop_asyncpg_ms"] = _ms(fast)
        out["repeat_callers_share"] = round(sum(1 for m in marks if m >= 2) / max(1, len(marks)), 3)
        session_ms: list[float] = []
        async with db.sessionmaker() as session:
            for _ in range(args.lookups // 4):
                t0 = time.perf_counter()
                await lookup_caller(
                    session, customer_phone(rng.randint(1, args.customers)), today=TODAY, now=NOW
                )
                session_ms.append((time.perf_counter() - t0) * 1000)
        out["screen_pop_session_ms"] = _ms(session_ms)
        out["target_p99_ms"] = 5.0
        out["meets_target"] = out["screen_pop_asyncpg_ms"]["p99"] <= 5.0
    if settings.url is None:
        from pgserver.postgres_server import get_server

        await asyncio.to_thread(get_server(workdir / "pg").cleanup)
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    out["cpus"] = os.cpu_count()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--lookups", type=int, default=4000)
    parser.add_argument("--quick", action="store_true", help="50,000 customers, 250,000 contacts")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.interactions, args.lookups = 50_000, 250_000, 1000
    scale = float(os.environ.get("SWITCHBOARD_BENCH_CRM_SCALE", "1"))
    if not 0 < scale <= 1:
        parser.error("SWITCHBOARD_BENCH_CRM_SCALE must be in (0, 1]")
    args.customers = max(1000, int(args.customers * scale))
    args.interactions = max(1000, int(args.interactions * scale))
    with tempfile.TemporaryDirectory(prefix="sb-crmbench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    result["scale"] = scale
    print(json.dumps(result))


if __name__ == "__main__":
    main()
