"""Reports benchmark: seed days of calls and agent state history with COPY, build the
15-minute rollups, reconcile them, and time month reports from the rollups.

``python -m bench.reports_bench [--days 1] [--calls-per-day 1800000] [--agents 20000]
[--queues 100] [--teams 200] [--quick]``

Starts an embedded PostgreSQL in a temporary directory (or uses
``SWITCHBOARD_DATABASE__URL``: rows are ADDED to that database) and prints ONE JSON
object on stdout.  The state log has, per answered call, on call / wrap-up / ready
rows for its agent, plus a log-in and a log-out per agent and day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.db import open_database
from app.kpi import SlFormula
from app.reports.models import DailyPause, DailyStats
from app.reports.reconcile import reconcile
from app.reports.rollup import RollupMaintainer
from app.reports.service import Group, Kind, ReportQuery, report
from app.settings import Settings

DAY0 = datetime(2026, 9, 1, tzinfo=UTC)
# Share of a day's calls per hour (a day-time contact center: 08:00-22:00 busy).
PROFILE = [0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 1, 3, 8, 10, 10, 9, 8, 9, 10, 10, 9, 8, 6, 4, 3, 2, 1, 0.5]


async def _copy(conn: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    for i in range(0, len(rows), 100_000):
        await conn.copy_records_to_table(table, records=rows[i : i + 100_000], columns=columns)


def _day_rows(
    day: int, n: int, agents: int, queues: int, rng: random.Random, first_id: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    start = DAY0 + timedelta(days=day)
    total = sum(PROFILE)
    calls: list[tuple[Any, ...]] = []
    states: list[tuple[Any, ...]] = []
    results = ["answered"] * 90 + ["abandoned"] * 4 + ["short_abandoned"] * 2
    results += ["overflowed"] * 2 + ["failed"] + ["abandoned_in_ivr"]
    k = first_id
    for hour, share in enumerate(PROFILE):
        for _ in range(int(n * share / total)):
            k += 1
            arrived = start + timedelta(hours=hour, seconds=rng.random() * 3600)
            result = rng.choice(results)
            wait = rng.expovariate(1 / 8.0)
            queue = rng.randint(1, queues)
            if result == "answered":
                agent = rng.randint(1001, 1000 + agents)
                answered = arrived + timedelta(seconds=wait)
                talk = rng.expovariate(1 / 180.0)
                ended = answered + timedelta(seconds=talk)
                wrapped = ended + timedelta(seconds=10)
                calls.append(
                    (
                        f"b/{k}",
                        "b",
                        str(k),
                        "1",
                        queue,
                        [agent],
                        agent,
                        arrived,
                        answered,
                        ended,
                        wrapped,
                        wait,
                        talk,
                        10.0,
                        result,
                        1 if rng.random() < 0.03 else 0,
                    )
                )
                states += [
                    (agent, answered, "on_call", "reserved", None, f"b/{k}"),
                    (agent, ended, "wrap_up", "on_call", None, f"b/{k}"),
                    (agent, wrapped, "ready", "wrap_up", None, None),
                ]
            else:
                ended = arrived + timedelta(seconds=wait)
                calls.append(
                    (
                        f"b/{k}",
                        "b",
                        str(k),
                        "1",
                        queue,
                        [],
                        None,
                        arrived,
                        None,
                        ended,
                        None,
                        wait,
                        None,
                        None,
                        result,
                        0,
                    )
                )
    for agent in range(1001, 1001 + agents):
        states.append(
            (
                agent,
                start + timedelta(hours=7, seconds=agent % 600),
                "paused",
                "logged_out",
                "login",
                None,
            )
        )
        states.append(
            (
                agent,
                start + timedelta(hours=22, seconds=agent % 600),
                "logged_out",
                "ready",
                "logout",
                None,
            )
        )
    return calls, states


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = Settings().database
    if settings.url is None:
        settings = settings.model_copy(update={"embedded_dir": workdir / "pg"})
    out: dict[str, Any] = {
        "days": args.days,
        "calls_per_day": args.calls_per_day,
        "agents": args.agents,
        "queues": args.queues,
        "teams": args.teams,
    }
    rng = random.Random(11)
    async with open_database(settings) as db:
        async with db.engine.connect() as sa_conn:
            raw = await sa_conn.get_raw_connection()
            conn: Any = raw.driver_connection
            await conn.execute(
                "INSERT INTO teams (id, name) OVERRIDING SYSTEM VALUE"
                " SELECT g, 'bench team ' || g FROM generate_series(1, $1) g ON CONFLICT DO NOTHING",
                args.teams,
            )
            await conn.execute(
                "INSERT INTO queues (id, name, sl_target_s) OVERRIDING SYSTEM VALUE"
                " SELECT g, 'bench queue ' || g, 10 + g % 3 * 5 FROM generate_series(1, $1) g"
                " ON CONFLICT DO NOTHING",
                args.queues,
            )
            await conn.execute(
                "INSERT INTO agents (id, name, device, team_id) OVERRIDING SYSTEM VALUE"
                " SELECT g, 'bench ' || g, 'PJSIP/' || g, 1 + g % $2"
                " FROM generate_series(1001, 1000 + $1) g ON CONFLICT DO NOTHING",
                args.agents,
                args.teams,
            )
            seed_s = copy_s = 0.0
            n_calls = n_states = 0
            for day in range(args.days):
                t0 = time.perf_counter()
                calls, states = _day_rows(
                    day, args.calls_per_day, args.agents, args.queues, rng, day * 10_000_000
                )
                t1 = time.perf_counter()
                await _copy(
                    conn,
                    "calls",
                    [
                        "call_id",
                        "server",
                        "uniqueid",
                        "caller",
                        "queue_id",
                        "agents_offered",
                        "answered_by",
                        "arrived_at",
                        "answered_at",
                        "ended_at",
                        "wrapup_ended_at",
                        "wait_s",
                        "talk_s",
                        "wrapup_s",
                        "result",
                        "rona_count",
                    ],
                    calls,
                )
                await _copy(
                    conn,
                    "agent_state_log",
                    ["agent_id", "at", "state", "previous", "reason", "call_id"],
                    states,
                )
                seed_s += t1 - t0
                copy_s += time.perf_counter() - t1
                n_calls += len(calls)
                n_states += len(states)
            await conn.execute("ANALYZE")
        out["seeded"] = {"calls": n_calls, "agent_state_log": n_states}
        out["generate_s"] = round(seed_s, 1)
        out["copy_s"] = round(copy_s, 1)
        out["copy_rows_per_s"] = round((n_calls + n_states) / copy_s) if copy_s else None

        end = DAY0 + timedelta(days=args.days)
        maintainer = RollupMaintainer(
            db.sessionmaker, clock=lambda: (end + timedelta(days=1)).timestamp()
        )
        durations: list[float] = []
        k = DAY0
        t0 = time.perf_counter()
        while k < end:
            t = time.perf_counter()
            await maintainer.rebuild(k, k + timedelta(minutes=15))
            durations.append(time.perf_counter() - t)
            k += timedelta(minutes=15)
        out["rollup_s"] = round(time.perf_counter() - t0, 1)
        durations.sort()
        out["rollup_interval_s"] = {
            "mean": round(statistics.fmean(durations), 3),
            "max": round(durations[-1], 3),
            "intervals": len(durations),
        }
        t0 = time.perf_counter()
        async with db.sessionmaker() as session:
            result = await reconcile(session, DAY0, end)
        out["reconcile"] = {
            "ok": result.ok,
            "s": round(time.perf_counter() - t0, 2),
            "answered": result.totals["answered"],
        }

        if args.replicate_days > args.days:
            # Month-scale rollups without seeding a month of calls: the daily rows of the
            # seeded days copied onto the following days (labelled in the output).
            t0 = time.perf_counter()
            async with db.engine.begin() as conn:
                for model in (DailyStats, DailyPause):
                    names = [c.name for c in model.__table__.columns]
                    shifted = ", ".join("day + k" if n == "day" else n for n in names)
                    await conn.execute(
                        sa.text(
                            f"INSERT INTO {model.__tablename__} ({', '.join(names)})"
                            f" SELECT {shifted} FROM {model.__tablename__},"
                            " generate_series(:n, :m - 1) k"
                        ),
                        {"n": args.days, "m": args.replicate_days},
                    )
                await conn.execute(sa.text("ANALYZE daily_stats"))
                await conn.execute(sa.text("ANALYZE daily_pause"))
            out["replicated_days"] = {
                "until_day": args.replicate_days,
                "s": round(time.perf_counter() - t0, 1),
                "note": "daily rollups of the seeded days copied onto later days",
            }
        month = (DAY0, DAY0 + timedelta(days=30))
        timings: dict[str, Any] = {}
        cases: tuple[tuple[str, Kind, tuple[int, ...]], ...] = (
            ("one_queue", "queue", (1,)),
            ("one_team", "team", (1,)),
            ("all_agents", "agent", ()),
            ("all_queues", "queue", ()),
        )
        groups: tuple[Group, ...] = ("day", "month")
        for name, kind, ids in cases:
            for group in groups:
                for daily in (True, False):  # from the daily rollups / from the intervals
                    query = ReportQuery(
                        kind=kind,
                        start=month[0],
                        end=month[1],
                        group=group,
                        timezone="UTC",
                        ids=ids,
                        daily_timezone="UTC" if daily else None,
                    )
                    runs = []
                    rows = 0
                    source = "days" if daily else "intervals"
                    try:
                        for _ in range(3):
                            t = time.perf_counter()
                            async with db.sessionmaker() as session:
                                found = await report(
                                    session, query, formula=SlFormula.EXCLUDE_SHORT_ABANDONS
                                )
                            rows = len(found)
                            runs.append(time.perf_counter() - t)
                    except ValueError as exc:  # the API's row limit: refused as a 422
                        timings[f"{name}_{group}_{source}"] = {"refused": str(exc)}
                        continue
                    timings[f"{name}_{group}_{source}"] = {
                        "median_s": round(sorted(runs)[1], 3),
                        "rows": rows,
                    }
        out["month_report"] = timings
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports_bench")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--calls-per-day", type=int, default=1_800_000)
    parser.add_argument("--agents", type=int, default=20_000)
    parser.add_argument("--queues", type=int, default=100)
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument(
        "--replicate-days",
        type=int,
        default=0,
        help="copy the seeded days' daily rollups up to this many days (month-scale reports)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.days, args.calls_per_day, args.agents = 1, 50_000, 2_000
    with tempfile.TemporaryDirectory(prefix="reports-bench-") as tmp:
        out = asyncio.run(run(args, Path(tmp)))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
