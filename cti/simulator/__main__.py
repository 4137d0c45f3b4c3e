"""``python -m cti.simulator``: run a fake Asterisk AMI server, optionally with traffic.

Example::

    python -m cti.simulator --port 5038 --user switchboard:secret --rate 2 --agents 1001-1040

Options:
  --host/--port       where to listen (port 0 = any free port; printed on start)
  --user NAME:SECRET  an AMI user (repeatable); append ``:filtered`` for the router
                      eventfilter.  Without --user the lab users acd/acdf (acdsecret) exist.
  --style             pjsip (default; one channel per party) or local (the lab's ;1/;2 pairs)
  --agents A-B        simulated phones PJSIP/<ext> / Local/<ext>@sim-agents for A..B; other
                      devices are then unavailable (CHANUNAVAIL).  Without it any device
                      answers with the default profile.
  --ring/--talk S     mean ring and talk seconds (exponential talk, uniform ring 0.5x-1.5x)
  --answer-prob P     chance a phone answers at all (otherwise RONA)
  --rate R            Poisson arrivals per second (0 = no traffic; callers come via Originate)
  --duration S        stop the traffic after S seconds (default: run until Ctrl-C)
  --dnis A,B          dialled numbers to spread calls over (default 5000)
  --patience S        mean caller patience (exponential); default: callers never give up
  --seed N            random seed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from cti.simulator.engine import AsteriskSimulator
from cti.simulator.model import ROUTER_EVENTS, DeviceProfile, SimUser


def _range(spec: str) -> list[str]:
    out: list[str] = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        if b:
            width = len(a)
            out.extend(str(n).zfill(width) for n in range(int(a), int(b) + 1))
        elif a:
            out.append(a)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cti.simulator", description="Fake Asterisk 22 AMI server"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5038)
    p.add_argument("--user", action="append", default=[], help="NAME:SECRET[:filtered]")
    p.add_argument("--style", choices=("pjsip", "local"), default="pjsip")
    p.add_argument("--agents", default="", help="extension ranges, e.g. 1001-1040,2001")
    p.add_argument("--ring", type=float, default=2.0)
    p.add_argument("--talk", type=float, default=60.0)
    p.add_argument("--answer-prob", type=float, default=0.95)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--dnis", default="5000")
    p.add_argument("--patience", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="sim1")
    p.add_argument(
        "--greeting",
        type=float,
        default=0.0,
        help="s of greeting before hold, with UserEvent ACDArrive first (deploy/asterisk)",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_simulator(args: argparse.Namespace) -> AsteriskSimulator:
    users: dict[str, SimUser] | None = None
    if args.user:
        users = {}
        for spec in args.user:
            name, sep, rest = spec.partition(":")
            secret, _, flag = rest.partition(":")
            if not sep or not name:
                raise SystemExit(f"--user wants NAME:SECRET, got {spec!r}")
            users[name] = SimUser(secret, eventfilter=ROUTER_EVENTS if flag == "filtered" else None)
    agents = _range(args.agents)
    sim = AsteriskSimulator(
        name=args.name,
        host=args.host,
        port=args.port,
        users=users,
        channel_style=args.style,
        seed=args.seed,
        unknown_devices="unavailable" if agents else "default",
        arrive_event=args.greeting > 0,
        greeting_s=args.greeting,
    )
    ring, talk = args.ring, args.talk
    profile = DeviceProfile(
        ring_s=lambda r: r.uniform(0.5 * ring, 1.5 * ring),
        talk_s=lambda r: r.expovariate(1.0 / talk) if talk > 0 else 0.0,
        answer_prob=args.answer_prob,
    )
    sim.default_profile = profile
    for ext in agents:
        sim.set_device(ext, profile)
    return sim


async def amain(args: argparse.Namespace) -> None:
    sim = build_simulator(args)
    await sim.start()
    print(
        f"AMI simulator {sim.name} listening on {sim.host}:{sim.port} ({sim.channel_style})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    traffic = None
    if args.rate > 0:
        mean_patience = args.patience
        traffic = sim.start_traffic(
            rate_per_s=args.rate,
            duration_s=args.duration,
            dnis=[d for d in args.dnis.split(",") if d],
            callers=lambda r: (f"138{r.randrange(10**8):08d}", "Customer"),
            patience=(lambda r: r.expovariate(1.0 / mean_patience)) if mean_patience else None,
        )
    try:
        await stop.wait()
    finally:
        if traffic is not None:
            traffic.cancel()
        print(f"stats: {sim.stats}", flush=True)
        await sim.close()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
