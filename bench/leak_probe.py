"""Object growth per call in the live runtime: is anything kept per call for ever?

``python -m bench.leak_probe [--agents 400] [--rate 40] [--warmup 20] [--measure 60]``

Everything real, in one process (like ``bench.live_bench``): embedded PostgreSQL, the
seeded demo data, one ``AsteriskSimulator`` (with ACDArrive and a greeting), the link,
the routing core, the CRM prefetch, the outcome writer.  Short calls churn through every
agent during the warm-up; then the gc-tracked objects are counted by type, traffic runs
again, every call is left to end, and they are counted again.  Prints the types that
grew (the simulator's own ``CallTrace`` records grow by design: one per call placed)
and the sizes of the runtime's per-call structures, which must be back to zero.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
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


def _histogram() -> Counter[str]:
    gc.collect()
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sb-leak-probe-"))
    settings = Settings(
        demo=True,
        database=DatabaseSettings(embedded_dir=tmp / "pg"),
        demo_traffic=DemoSettings(agents=args.agents, queues=4),
        outcomes=OutcomeSettings(spill_dir=tmp / "spill"),
    )
    async with open_database(settings.database) as db:
        await seed(db, customers=5000, agents=args.agents, queues=4, reset=True)
        async with db.sessionmaker() as s:
            dnis = list(await s.scalars(sa.select(models.QueueDnis.dnis)))
        sim = AsteriskSimulator(
            name="probe",
            users={"probe": SimUser("probe-secret")},
            seed=1,
            arrive_event=True,
            greeting_s=0.5,
        )
        await sim.start()
        for agent_id in range(1001, 1001 + args.agents):
            sim.set_device(
                f"PJSIP/{agent_id}",
                DeviceProfile(
                    ring_s=lambda r: r.uniform(0.2, 0.5),
                    talk_s=lambda r: r.uniform(0.5, 2.0),
                    agent_hangs_up_prob=0.5,
                ),
            )
        server = AmiServer("probe", "127.0.0.1", sim.port, "probe", "probe-secret")
        try:
            async with live_runtime(settings, db, LiveOptions(servers=[server])) as cc:
                for seat in list(cc.agents):
                    await cc.login(seat)
                    await cc.ready(seat)
                await asyncio.sleep(1.0)

                def callers(r: random.Random) -> tuple[str, str]:
                    return customer_phone(r.randint(1, 5000)), "Customer"

                async def traffic(seconds: float) -> None:
                    await sim.run_traffic(
                        rate_per_s=args.rate,
                        duration_s=seconds,
                        dnis=dnis,
                        callers=callers,
                        patience=lambda r: r.uniform(30, 120),
                    )
                    await asyncio.sleep(args.settle)  # talk, then wrap-up, end

                await traffic(args.warmup)
                before, placed_before = _histogram(), sim.stats.placed
                await traffic(args.measure)
                after, placed_after = _histogram(), sim.stats.placed
                grew = {k: after[k] - before.get(k, 0) for k in after}
                structures = {
                    "calls": len(cc.state.calls),
                    "pending_lookups": len(cc.state.pending),
                    "prefetched": len(cc.state.prefetched),
                    "action_chains": len(cc.actions.chains),
                    "engine_calls": len(cc.engine._calls),
                    "engine_timer_heap": len(cc.engine._timers),
                    "engine_timers_live": cc.engine._timers_live,
                    "wallboard_calls": len(cc.wallboard._calls),
                    "wallboard_wrapping": len(cc.wallboard._wrapping),
                }
        finally:
            await sim.close()
    return {
        "bench": "leak_probe",
        "agents": args.agents,
        "calls_measured": placed_after - placed_before,
        "runtime_structures_after": structures,
        "grown_types": dict(sorted(grew.items(), key=lambda kv: -kv[1])[:15]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--agents", type=int, default=400)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--measure", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=15.0, help="s for calls to end")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
