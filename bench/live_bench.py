"""Routing and screen-pop latency of the live runtime under Poisson load; prints one JSON.

``python -m bench.live_bench [--agents 2000] [--rate 60] [--duration 20] [--customers 20000]``

Everything real, in one process: embedded PostgreSQL (a fresh temporary data directory
unless ``SWITCHBOARD_DATABASE__URL`` is set), the seeded demo data, one
``AsteriskSimulator`` on loopback, the telephony link, the routing core, the CRM lookup
and the outcome writer.  Simulated phones answer after 0.5-1.5 s and talk for an
exponential time sized so about 60 % of the agents are busy.

Measured per call by the ``CallCenter``: routing latency = the link delivered the
caller's arrival -> the OfferCall's actions were written (includes the CRM lookup);
screen-pop latency = the CRM lookup alone.  Also: calls placed / ended by result, and the
outcome writer's lag.  The driver and the simulator share one event loop (and the 2
cores with PostgreSQL), so the figures are an upper bound for the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app import models
from app.db import open_database
from app.live.runtime import LiveOptions, live_runtime
from app.seed import customer_phone, seed
from app.settings import DatabaseSettings, DemoSettings, OutcomeSettings, Settings
from cti.simulator import AsteriskSimulator, DeviceProfile, SimUser
from cti.types import AmiServer


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sb-live-bench-"))
    settings = Settings(
        demo=True,
        database=DatabaseSettings(embedded_dir=tmp / "pg"),
        demo_traffic=DemoSettings(agents=args.agents, queues=4),
        outcomes=OutcomeSettings(spill_dir=tmp / "spill"),
    )
    async with open_database(settings.database) as db:
        await seed(db, customers=args.customers, agents=args.agents, queues=4, reset=True)
        async with db.sessionmaker() as s:
            dnis = list(await s.scalars(sa.select(models.QueueDnis.dnis)))
        busy_target = 0.6 * args.agents
        mean_talk = max(1.0, busy_target / args.rate - 10.0)  # minus the wrap-up
        sim = AsteriskSimulator(name="bench", users={"bench": SimUser("bench-secret")}, seed=1)
        await sim.start()
        for agent_id in range(1001, 1001 + args.agents):
            sim.set_device(
                f"PJSIP/{agent_id}",
                DeviceProfile(
                    ring_s=lambda r: r.uniform(0.5, 1.5),
                    talk_s=lambda r: min(r.expovariate(1 / mean_talk), 5 * mean_talk),
                ),
            )
        server = AmiServer("bench", "127.0.0.1", sim.port, "bench", "bench-secret")
        try:
            async with live_runtime(settings, db, LiveOptions(servers=[server])) as cc:
                for seat in list(cc.agents):
                    await cc.login(seat)
                    await cc.ready(seat)
                await asyncio.sleep(1.0)  # link resync done
                started = time.perf_counter()
                customers = args.customers

                def callers(r: random.Random) -> tuple[str, str]:
                    if r.random() < 0.9:
                        return customer_phone(r.randint(1, customers)), "Customer"
                    return f"199{r.randrange(10**8):08d}", "Unknown"

                await sim.run_traffic(
                    rate_per_s=args.rate,
                    duration_s=args.duration,
                    dnis=dnis,
                    callers=callers,
                    patience=lambda r: r.uniform(30, 120),
                )
                elapsed = time.perf_counter() - started
                stats = cc.latency_stats()
                outcomes = cc.outcomes.stats
                results = Counter(t.result or "in_progress" for t in sim.calls.values())
        finally:
            await sim.close()
    return {
        "bench": "live_latency",
        "agents": args.agents,
        "rate_per_s": args.rate,
        "duration_s": round(elapsed, 1),
        "calls_placed": sim.stats.placed,
        "sim_results": dict(results),
        "routing_latency": stats["routing"],
        "screen_pop_latency": stats["screen_pop"],
        "counters": stats["counters"],
        "outcome_lag_p50_s": outcomes.lag_p50_s,
        "outcome_lag_p99_s": outcomes.lag_p99_s,
        "outcome_rows_written": outcomes.rows_written,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=60.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="200 agents, 20 calls/s, 5 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.rate, args.duration = 200, 20.0, 5.0
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
