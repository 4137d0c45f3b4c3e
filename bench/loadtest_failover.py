"""Failover under traffic: several service processes, the active one killed mid-run.

``make loadtest ARGS="--failover"`` (or ``python -m bench.loadtest --failover …``) seeds
the database, starts the AMI simulator(s) in their own processes with an action log,
starts ``--members`` service processes (``python -m app``) on the same database and
simulators, logs the agents in through the leader, runs Poisson traffic and, ``--kill-at``
seconds into it, sends the leader ``--kill-signal`` (KILL, STOP, TERM; a STOPped leader
gets SIGCONT ``--stop-for`` seconds later; CUT: the first leader reaches the database
through a loopback proxy, which is cut then, and restored once another process leads).  It reports:

- ``takeover_s``: the signal -> the first ``Redirect`` written by the new leader (the
  simulator's clock, the same host), and ``new_leader_first_action_s`` (its login);
- ``gap``: calls that waited in hold while nobody routed (held before the new leader's
  first Redirect, not yet routed at the signal), and their longest wait;
- ``old_leader_actions_after_new_first``: actions of the old leader the simulator
  received after the new leader's first one (must be 0: never two routers at once);
- ``reoffered_while_connected``: calls ringing or talking at the signal that got another
  Redirect before they returned to hold (adopted calls must not be offered again);
- ``outcomes``: every placed call has exactly one ``calls`` row with the simulator's
  result and agent (``lost_observed`` / ``duplicates`` / ``result_mismatches_observed``
  must be 0); counted apart: ``ended_in_gap`` (calls that came and went while nobody
  led: no process ever saw them) and ``ended_unobserved`` (answered and ended while
  nobody led, recorded from the last saved state as ended-while-down; docs/ha.md);
- ``stuck_agents``: agents the leader still shows reserved or on a call after the drain.

The same ``Cluster`` drives the two-process tests (tests/ha/test_failover.py) at a
small scale; numbers go to the report, the tests assert only correctness.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.loadtest import (
    REPO,
    Options,
    Service,
    Sim,
    check_outcomes,
    get_token,
    login_agents,
    parse_args,
    prepare_database,
    start_sims,
)
from bench.loadtest_pg import PgHandle, external, start_embedded
from bench.loadtest_procs import Child, ProcessSet, free_port, python_argv, wait_for_port

log = logging.getLogger(__name__)

SIGNALS = {"KILL": signal.SIGKILL, "STOP": signal.SIGSTOP, "TERM": signal.SIGTERM}
CUT = "CUT"  # not a signal: the first leader's database connections cut (loopback proxy)


@dataclass(slots=True)
class FailoverOptions:
    base: Options
    members: int = 2
    kill_at: float = 20.0  # seconds into the traffic
    kill_signal: str = "KILL"
    stop_for: float = 8.0  # SIGSTOP: seconds until SIGCONT
    kills: int = 1  # the leader of the moment is signalled this many times, kill_at apart
    ha_env: dict[str, str] = field(default_factory=dict)  # SWITCHBOARD_HA__* overrides
    # Start a fresh process after each signal (the same host, database and spill
    # directory): a crash and restart rather than a takeover by a standby.
    restart: bool = False


@dataclass(slots=True)
class Member:
    name: str
    child: Child
    base_url: str

    @property
    def pid(self) -> int:
        return self.child.pid

    def service(self, admin_password: str) -> Service:
        """As ``bench.loadtest`` sees a service (its token and agent-login helpers)."""
        return Service(self.child, self.base_url, admin_password)


class Cluster:
    """Service processes sharing one database and the simulators; who leads, signals."""

    def __init__(self, procs: ProcessSet, opts: Options, pg: PgHandle, sims: list[Sim]) -> None:
        self.procs = procs
        self.opts = opts
        self.pg = pg
        self.sims = sims
        self.members: list[Member] = []
        self.admin_password = secrets.token_urlsafe(18)
        self.jwt_secret = secrets.token_urlsafe(48)  # shared: a token works on every member
        self.ha_env: dict[str, str] = {}
        self.proxy: Any = None  # the first member reaches the database through it (CUT)

    def env(self, port: int, database_url: str | None = None) -> dict[str, str]:
        servers = [
            {
                "name": s.name,
                "host": "127.0.0.1",
                "port": s.port,
                "username": s.username,
                "secret": s.secret,
            }
            for s in self.sims
        ]
        return {
            "SWITCHBOARD_HOST": "127.0.0.1",
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_LOG_LEVEL": self.opts.service_log_level,
            "SWITCHBOARD_DEMO": "false",
            "SWITCHBOARD_DATABASE__URL": database_url or self.pg.url,
            "SWITCHBOARD_AMI__SERVERS": json.dumps(servers),
            "SWITCHBOARD_AUTH__JWT_SECRET": self.jwt_secret,
            "SWITCHBOARD_AUTH__ADMIN_PASSWORD": self.admin_password,
            "SWITCHBOARD_OUTCOMES__SPILL_DIR": str((self.opts.out / "spill").resolve()),
            "PYTHONPATH": str(REPO),
            **self.opts.service_env,
            **self.ha_env,
        }

    async def start_member(self) -> Member:
        name = f"service-{chr(ord('a') + len(self.members))}"
        port = free_port()
        url = None
        if self.proxy is not None and not self.members:
            url = self.proxy.url.render_as_string(hide_password=False)
        child = await self.procs.spawn(name, python_argv("app"), env=self.env(port, url), cwd=REPO)
        await wait_for_port("127.0.0.1", port, 180.0, child)
        member = Member(name, child, f"http://127.0.0.1:{port}")
        self.members.append(member)
        return member

    async def ready(self, client: Any, member: Member) -> tuple[int, dict[str, Any]]:
        """``/ready`` of one member: (status, body); (0, {}) when it does not answer."""
        if not member.child.running:
            return 0, {}
        try:
            resp = await client.get(f"{member.base_url}/ready", timeout=2.0)
        except Exception:  # noqa: BLE001 — a stopped or starting process: "not ready"
            return 0, {}
        try:
            body = dict(resp.json())
        except ValueError:
            body = {}
        return resp.status_code, body

    async def leaders(self, client: Any) -> list[Member]:
        """Members whose ``/ready`` answers 200 now."""
        states = await asyncio.gather(*(self.ready(client, m) for m in self.members))
        return [m for m, (status, _) in zip(self.members, states, strict=True) if status == 200]

    async def wait_leader(
        self, client: Any, *, other_than: Member | None = None, timeout_s: float = 120.0
    ) -> Member:
        """The one member that is ready (never two), other than ``other_than``."""
        deadline = time.monotonic() + timeout_s
        while True:
            ready = [m for m in await self.leaders(client) if m is not other_than]
            if len(ready) == 1:
                return ready[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no single leader after {timeout_s}s: {ready}")
            await asyncio.sleep(0.2)

    def signal(self, member: Member, sig: int) -> None:
        os.kill(member.pid, sig)


def pid_of(action_id: str) -> int | None:
    """The service process that sent an action: ActionIDs are ``sb<pid>-<n>-<seq>``."""
    head = action_id.split("-", 1)[0]
    return int(head[2:]) if head.startswith("sb") and head[2:].isdigit() else None


@dataclass(slots=True)
class SimLog:
    """What the simulators reported, accumulated over polls (per call: ``<sim>/<uid>``)."""

    actions: list[tuple[float, str, int | None, str]] = field(default_factory=list)
    holds: dict[str, list[float]] = field(default_factory=dict)
    redirects: dict[str, list[float]] = field(default_factory=dict)
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_progress: int = 0
    waiting: int = 0
    waiting_series: list[tuple[float, int]] = field(default_factory=list)

    async def poll(self, sims: list[Sim]) -> None:
        in_progress = waiting = 0
        for sim in sims:
            reply = await sim.client.call("poll")
            prefix = sim.name + "/"
            for uid, at in reply.get("holds", ()):
                self.holds.setdefault(prefix + uid, []).append(at)
            for uid, at, _hold, _exten in reply.get("redirects", ()):
                self.redirects.setdefault(prefix + uid, []).append(at)
            for trace in reply.get("ended", ()):
                self.ended[prefix + trace["uniqueid"]] = trace
            stats = reply.get("stats", {})
            in_progress += int(stats.get("in_progress", 0))
            waiting += int(reply.get("waiting", 0))
            got = await sim.client.call("actions")
            self.actions.extend(
                (float(t), str(name), pid_of(str(aid or "")), str(channel or ""))
                for t, name, aid, channel in got["actions"]
            )
        self.in_progress, self.waiting = in_progress, waiting
        self.waiting_series.append((time.time(), waiting))


def analyse(sl: SimLog, *, signalled_at: float, old_pid: int, new_pid: int) -> dict[str, Any]:
    """Takeover time, the calls that waited in the gap, double routing, re-offers."""
    actions = sorted(sl.actions)
    new_actions = [a for a in actions if a[2] == new_pid and a[0] >= signalled_at]
    new_first = new_actions[0][0] if new_actions else None
    new_redirects = [a[0] for a in new_actions if a[1] == "Redirect"]
    first_redirect = new_redirects[0] if new_redirects else None
    old_after = (
        [a for a in actions if a[2] == old_pid and a[0] >= new_first]
        if new_first is not None
        else []
    )
    gap_end = first_redirect if first_redirect is not None else float("inf")
    waits: list[float] = []
    reoffered: list[str] = []
    for call_id, holds in sl.holds.items():
        redirects = sl.redirects.get(call_id, [])
        ended = sl.ended.get(call_id, {}).get("ended")
        for hold_at in holds:
            if hold_at >= gap_end:
                continue
            after = [r for r in redirects if r >= hold_at]
            routed_at = after[0] if after else None
            out_at = min(x for x in (routed_at, ended, time.time()) if x is not None)
            if out_at > signalled_at:  # still waiting when the leader went away
                waits.append(out_at - hold_at)
    # A call ringing or talking at the signal (its last event before it was a Redirect)
    # must not be offered again before it is back in hold.
    for call_id, redirects in sl.redirects.items():
        before = [r for r in redirects if r < signalled_at]
        if not before:
            continue
        last_offer = before[-1]
        holds = sl.holds.get(call_id, [])
        if any(last_offer < h < signalled_at for h in holds):
            continue  # back in hold before the signal: a waiting call, not a connected one
        ended = sl.ended.get(call_id, {}).get("ended")
        if ended is not None and ended < signalled_at:
            continue
        next_hold = min((h for h in holds if h > signalled_at), default=float("inf"))
        if any(signalled_at <= r < next_hold for r in redirects):
            reoffered.append(call_id)
    return {
        "takeover_s": round(first_redirect - signalled_at, 3) if first_redirect else None,
        "new_leader_first_action_s": round(new_first - signalled_at, 3) if new_first else None,
        "old_leader_actions_after_new_first": len(old_after),
        "old_leader_actions_after_examples": old_after[:5],
        "old_leader_last_action_s": (
            round(max(a[0] for a in actions if a[2] == old_pid) - signalled_at, 3)
            if any(a[2] == old_pid for a in actions)
            else None
        ),
        "gap": {
            "calls_waiting": len(waits),
            "longest_wait_s": round(max(waits), 3) if waits else 0.0,
        },
        "reoffered_while_connected": len(reoffered),
        "reoffered_examples": reoffered[:5],
    }


def plot_failover(
    path: Path, sl: SimLog, members: list[Member], failovers: list[tuple[float, Member, Member]]
) -> None:
    """Calls waiting in hold and Redirects per second by member, the failovers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = sl.waiting_series[0][0] if sl.waiting_series else time.time()
    fig, (ax_wait, ax_red) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    ax_wait.plot([t - t0 for t, _ in sl.waiting_series], [w for _, w in sl.waiting_series])
    ax_wait.set_ylabel("calls waiting in hold")
    for member in members:
        per_s: dict[int, int] = {}
        for at, name, pid, _channel in sl.actions:
            if pid == member.pid and name == "Redirect":
                per_s[int(at - t0)] = per_s.get(int(at - t0), 0) + 1
        xs = sorted(per_s)
        ax_red.plot(
            xs, [per_s[x] for x in xs], ".-", lw=0.8, label=f"{member.name} (pid {member.pid})"
        )
    ax_red.set_ylabel("Redirects / s (simulator log)")
    ax_red.set_xlabel("seconds since the traffic started")
    ax_red.legend(loc="upper right", fontsize=8)
    for at, old, new in failovers:
        for ax in (ax_wait, ax_red):
            ax.axvline(at - t0, color="red", ls="--", lw=1)
        ax_wait.annotate(
            f"{old.name} down -> {new.name}", (at - t0, 0), rotation=90, fontsize=8, color="red"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


async def stuck_agents(client: Any, leader: Member, token: str) -> list[dict[str, Any]]:
    """Agents the leader shows reserved or on a call once every call has ended."""
    resp = await client.get(
        f"{leader.base_url}/api/v1/live/agents",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
    )
    resp.raise_for_status()
    return [a for a in resp.json() if a.get("state") in ("reserved", "on_call")]


async def split_unobserved(
    pg: PgHandle,
    outcomes: dict[str, Any],
    holder: Any,
    traces: dict[str, dict[str, Any]],
    gaps: list[tuple[float, float]],
) -> None:
    """What no process could observe, counted apart from real losses and mismatches.

    - ``ended_in_gap``: calls without a row that arrived and ended while nobody led
      (between a signal and the new leader's first action): they never reached a
      process (Asterisk reports events to nobody then).
    - ``ended_unobserved``: mismatches whose row says ended-while-down
      (``app.live.restore``): the last saved state was ringing, and the call was
      answered and ended before the new leader's resync, leaving no trace in AMI.
    ``lost_observed`` and ``result_mismatches_observed`` are the rest: they must be 0.
    """
    import asyncpg

    from bench.loadtest_pg import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        rows = await conn.fetch(
            "SELECT call_id FROM calls WHERE call_id = ANY($1::text[]) "
            "AND reason = 'ended-while-down'",
            sorted(holder.mismatch_ids),
        )
    finally:
        await conn.close()
    unobserved = {r["call_id"] for r in rows}
    outcomes["ended_unobserved"] = len(unobserved)
    outcomes["result_mismatches_observed"] = len(holder.mismatch_ids - unobserved)
    in_gap = {
        call_id
        for call_id in holder.lost_ids
        if any(
            start <= float(traces[call_id].get("arrived") or 0.0)
            and float(traces[call_id].get("ended") or float("inf")) <= end
            for start, end in gaps
        )
    }
    outcomes["ended_in_gap"] = len(in_gap)
    outcomes["lost_observed"] = len(holder.lost_ids - in_gap)


# The service has a call in hand this long after the simulator wrote its ACDHold: read,
# classified (CRM look-up, at most ``lookup_timeout_s`` = 0.3 s) and queued.
IN_HAND_S = 0.5


async def crash_check(
    pg: PgHandle, traces: dict[str, dict[str, Any]], signals: list[float]
) -> dict[str, Any]:
    """Counted against the simulator's traces, for the calls a signalled process had in
    hand (first ACDHold written ``IN_HAND_S`` before a signal):

    - ``without_row`` / ``duplicate_rows``: each of them has exactly one ``calls`` row;
    - ``answered_recorded_failed``: answered before the signal (the process saw it
      bridged) but recorded as anything but answered;
    - ``ended_while_down``: rows the restart wrote from saved state, for information.
    """
    import asyncpg

    from bench.loadtest_pg import asyncpg_dsn

    conn = await asyncpg.connect(asyncpg_dsn(pg.url))
    try:
        rows = await conn.fetch("SELECT call_id, result::text AS result, reason FROM calls")
    finally:
        await conn.close()
    by_id: dict[str, list[Any]] = {}
    for r in rows:
        by_id.setdefault(r["call_id"], []).append(r)
    in_hand: list[str] = []
    without_row: list[str] = []
    duplicates: list[str] = []
    answered_failed: list[dict[str, Any]] = []
    for call_id, t in traces.items():
        queued = t.get("queued")
        if queued is None or not any(queued + IN_HAND_S <= at for at in signals):
            continue
        in_hand.append(call_id)
        found = by_id.get(call_id, [])
        if not found:
            without_row.append(call_id)
            continue
        if len(found) > 1:
            duplicates.append(call_id)
        answered_at = t.get("answered_at")
        bridged_before = answered_at is not None and any(answered_at < at for at in signals)
        if bridged_before and found[0]["result"] != "answered":
            answered_failed.append(
                {"call_id": call_id, "db": found[0]["result"], "reason": found[0]["reason"]}
            )
    return {
        "in_hand": len(in_hand),
        "without_row": len(without_row),
        "without_row_traces": [traces[k] for k in without_row[:10]],
        "duplicate_rows": len(duplicates),
        "answered_recorded_failed": len(answered_failed),
        "answered_recorded_failed_examples": answered_failed[:10],
        "ended_while_down": sum(1 for r in rows if r["reason"] == "ended-while-down"),
    }


async def drain(sl: SimLog, sims: list[Sim], timeout_s: float) -> bool:
    """Poll until no call is in progress in any simulator (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        await sl.poll(sims)
        if sl.in_progress == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)


async def run_failover(fo: FailoverOptions) -> dict[str, Any]:
    """One failover run (see the module docstring); returns the report."""
    import httpx

    opts = fo.base
    opts.action_log = True
    opts.out.mkdir(parents=True, exist_ok=True)
    procs = ProcessSet(opts.out)
    pg: PgHandle | None = None
    sims: list[Sim] = []
    cluster: Cluster | None = None
    sl = SimLog()
    failovers: list[tuple[float, Member, Member]] = []
    report: dict[str, Any] = {
        "options": {
            "rate": opts.rate,
            "duration": opts.duration,
            "agents": opts.agents,
            "queues": opts.queues,
            "servers": opts.servers,
            "members": fo.members,
            "kill_at": fo.kill_at,
            "kill_signal": fo.kill_signal,
            "stop_for": fo.stop_for,
            "kills": fo.kills,
            "ha_env": fo.ha_env,
        }
    }
    try:
        pg = (
            external(opts.database_url)
            if opts.database_url
            else await asyncio.to_thread(start_embedded)
        )
        info = await prepare_database(opts, pg)
        sims = await start_sims(procs, opts, info)
        for sim in sims:
            await sim.client.call(
                "callers",
                dnis=info.dnis,
                phones=info.phones,
                shares={
                    "vip": opts.vip_share,
                    "entitled": opts.entitled_share,
                    "unknown": opts.unknown_share,
                },
                patience_mean=opts.patience_mean,
                impatient_share=opts.impatient_share,
                greeting=opts.greeting,
            )
        cluster = Cluster(procs, opts, pg, sims)
        cluster.ha_env = dict(fo.ha_env)
        if fo.kill_signal == CUT:
            from sqlalchemy.engine import make_url

            from tests.db.pgproxy import PgProxy

            cluster.proxy = PgProxy(make_url(pg.url))
            await cluster.proxy.start()
        for _ in range(fo.members):
            await cluster.start_member()
        async with httpx.AsyncClient(timeout=60.0) as client:
            leader = await cluster.wait_leader(client)
            report["first_leader"] = leader.name
            service = leader.service(cluster.admin_password)
            token = await get_token(client, service)
            report["login"] = await login_agents(
                service, token, info.agents, opts.login_concurrency
            )
            talk = {} if opts.talk_mean is None else {"talk_mean": opts.talk_mean}
            for sim in sims:
                await sim.client.call(
                    "traffic", rate=opts.rate / len(sims), duration=opts.duration, **talk
                )
            traffic_started = time.monotonic()
            sig = SIGNALS.get(fo.kill_signal)

            async def poll_forever() -> None:
                # Also while the harness waits for a new leader: the gap is on the picture.
                while True:
                    await sl.poll(sims)
                    await asyncio.sleep(0.5)

            poller = asyncio.create_task(poll_forever(), name="failover-poller")
            for kill in range(1, fo.kills + 1):
                await asyncio.sleep(
                    max(0.0, traffic_started + fo.kill_at * kill - time.monotonic())
                )
                signalled_at = time.time()
                if sig is None:
                    cluster.proxy.cut()  # the leader keeps AMI, loses PostgreSQL
                else:
                    cluster.signal(leader, sig)
                print(f"[failover] {fo.kill_signal} {leader.name}", file=sys.stderr, flush=True)
                if fo.restart:
                    await cluster.start_member()
                new_leader = await cluster.wait_leader(client, other_than=leader)
                failovers.append((signalled_at, leader, new_leader))
                if sig == signal.SIGSTOP:
                    await asyncio.sleep(max(0.0, signalled_at + fo.stop_for - time.time()))
                    cluster.signal(leader, signal.SIGCONT)
                leader = new_leader
            report["new_leader"] = leader.name
            if cluster.proxy is not None:
                cluster.proxy.restore()  # the cut-off process comes back as a standby
            await asyncio.sleep(max(0.0, traffic_started + opts.duration - time.monotonic()))
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            for sim in sims:
                await sim.client.call("stop_traffic")
            report["drained"] = await drain(sl, sims, opts.drain_timeout)
            await asyncio.sleep(2.0)  # outcome rows of the last calls (flushed every 0.2 s)
            report["failovers"] = [
                {
                    "from": old.name,
                    "to": new.name,
                    **analyse(sl, signalled_at=at, old_pid=old.pid, new_pid=new.pid),
                }
                for at, old, new in failovers
            ]
            report["failover"] = report["failovers"][0]
            states = await asyncio.gather(*(cluster.ready(client, m) for m in cluster.members))
            report["members_at_end"] = {
                m.name: {"status": status, "error_id": body.get("error_id")}
                for m, (status, body) in zip(cluster.members, states, strict=True)
            }
            report["leaders_at_end"] = [m.name for m in await cluster.leaders(client)]
            report["stuck_agents"] = len(await stuck_agents(client, leader, token))
            traces: dict[str, dict[str, Any]] = {}
            for sim in sims:
                dump = await sim.client.call("dump", timeout_s=300)
                for t in dump["calls"]:
                    traces[f"{sim.name}/{t['uniqueid']}"] = t
            holder = SimpleNamespace(lost_ids=set(), mismatch_ids=set())
            report["outcomes"] = await check_outcomes(pg, holder, traces)  # type: ignore[arg-type]
            gaps = [
                (at, at + (f["new_leader_first_action_s"] or 0.0))
                for (at, _old, _new), f in zip(failovers, report["failovers"], strict=True)
            ]
            await split_unobserved(pg, report["outcomes"], holder, traces, gaps)
            report["crash"] = await crash_check(pg, traces, [at for at, _o, _n in failovers])
            report["cluster"] = (
                await client.get(
                    f"{leader.base_url}/api/v1/cluster",
                    headers={"Authorization": f"Bearer {token}"},
                )
            ).json()
    finally:
        for sim in sims:
            with contextlib.suppress(Exception):
                await sim.client.close()
        await procs.close()
        if cluster is not None and cluster.proxy is not None:
            await cluster.proxy.close()
        if pg is not None:
            await asyncio.to_thread(pg.close)
    if cluster is not None and "failovers" in report:
        with contextlib.suppress(Exception):  # the picture is a bonus, never the verdict
            plot_failover(opts.out / "failover.png", sl, cluster.members, failovers)
            report["plot"] = str(opts.out / "failover.png")
    out = opts.out / "failover-report.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    return report


def parse_failover_args(argv: Sequence[str]) -> FailoverOptions:
    p = argparse.ArgumentParser(prog="python -m bench.loadtest --failover", add_help=False)
    p.add_argument("--failover", action="store_true")
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--kill-at", type=float, default=20.0)
    p.add_argument(
        "--kill-signal",
        choices=[*sorted(SIGNALS), CUT],
        default="KILL",
        help="CUT: the leader loses PostgreSQL (a loopback proxy) but keeps AMI",
    )
    p.add_argument("--stop-for", type=float, default=8.0)
    p.add_argument("--kills", type=int, default=1, help="signal the leader this many times")
    p.add_argument(
        "--restart", action="store_true", help="start a new process after each signal (a crash)"
    )
    known, rest = p.parse_known_args(argv)
    base = parse_args(rest)
    if base.duration <= known.kill_at * known.kills:
        base.duration = known.kill_at * known.kills + 30.0
    return FailoverOptions(
        base=base,
        members=known.members,
        kill_at=known.kill_at,
        kill_signal=known.kill_signal,
        stop_for=known.stop_for,
        kills=known.kills,
        restart=known.restart,
    )


def main(argv: Sequence[str]) -> int:
    fo = parse_failover_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def guarded() -> dict[str, Any]:
        # SIGINT / SIGTERM cancel the run: its finally stops every child and the database.
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        return await run_failover(fo)

    try:
        report = asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("[failover] interrupted; processes cleaned up", file=sys.stderr)
        return 130
    print(json.dumps(report, default=str))
    outcomes = report.get("outcomes", {})
    bad = (
        outcomes.get("lost_observed", 1)
        or outcomes.get("duplicates", 0)
        or outcomes.get("result_mismatches_observed", 0)
        or any(
            f.get("old_leader_actions_after_new_first", 1) for f in report.get("failovers", [{}])
        )
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
