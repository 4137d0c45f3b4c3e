"""Hypothesis state machine: random event streams keep the engine's invariants.

Checked after every step, against brute-force references computed from the configs and
the engine's public views (never from its internal indexes):
- an agent holds at most one offer or call; a call rings at most one agent;
- no routable WAITING call (not suspended, not backing off) while a READY agent that may
  take it exists (escalation included); a suspended call is never offered;
- a LINK failure and any offer end while the call is suspended never count as a miss;
- every arrived call gets exactly one CallEnded; ended calls are gone from the views;
- no agent stays RESERVED past ring timeout + grace once handle_timer(now) ran;
- no call stays WAITING in a queue past its max wait (a ringing one waits for the result,
  a suspended one for its resume);
- queue statistics equal brute-force counts; AgentStateChanged notifications replay to
  the agents' current states;
- a request that raises leaves every view unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from routing.commands import AgentState, AgentStateChanged, CallEnded, CallOffered, Command
from routing.config import AgentConfig, EscalationStep, QueueConfig
from routing.engine import RoutingEngine
from routing.errors import RoutingError
from routing.events import (
    AgentDisconnected,
    AgentHungUp,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentReady,
    CallArrived,
    CallFailed,
    CallHungUp,
    CallsResumed,
    CallsSuspended,
    CallTransferred,
    ConfigureAgent,
    ConfigureQueue,
    Event,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
    SetQueueOpen,
)
from routing.views import AgentView, CallView

GRACE = 2.0
QUEUES = {
    q.queue_id: q
    for q in (
        QueueConfig(
            "q1",
            skills=(("a", 3),),
            ring_timeout_s=3.0,
            wrapup_s=2.0,
            max_wait_s=30.0,
            overflow_target="q2",
            escalation=(EscalationStep(4.0, min_level=2), EscalationStep(8.0, add_queues=("q2",))),
        ),
        QueueConfig(
            "q2",
            skills=(("b", 2),),
            priority=1,
            ring_timeout_s=2.0,
            wrapup_s=0.0,
            max_len=3,
            overflow_target="q3",
            escalation=(EscalationStep(6.0, min_level=1, add_queues=("q3",)),),
        ),
        QueueConfig(
            "q3",
            ring_timeout_s=4.0,
            wrapup_s=1.0,
            max_wait_s=15.0,
            overflow_target="ext:overflow,100",
            escalation=(EscalationStep(5.0, min_level=1),),
        ),
        QueueConfig(
            "q4",  # opened / closed by a rule; gives up (hangs up) after 10 s
            skills=(("a", 1), ("b", 1)),
            ring_timeout_s=3.0,
            wrapup_s=3.0,
            max_wait_s=10.0,
            escalation=(EscalationStep(4.0, overflow=True),),  # no target: a no-op
        ),
    )
}
AGENT_IDS = ["a1", "a2", "a3", "a4", "a5"]

skills_st = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 5)),
    min_size=1,
    max_size=2,
    unique_by=lambda t: t[0],
)
queues_st = st.lists(st.sampled_from(sorted(QUEUES)), min_size=1, max_size=3, unique=True)


def _meets(agent: AgentView, reqs: tuple[tuple[str, int], ...], relaxed: int) -> bool:
    skills = dict(agent.skills)
    return all(skills.get(s, 0) >= min(lvl, relaxed) for s, lvl in reqs)


def may_take(agent: AgentView, call: CallView, now: float, queues: dict[str, QueueConfig]) -> bool:
    """Brute-force eligibility from the configs (see the engine's docstring)."""
    q = queues[call.queue_id]
    waited = now - call.queued_at
    relaxed = 99
    widen: set[str] = set()
    for step in q.escalation:
        if step.after_s <= waited:
            if step.min_level is not None:
                relaxed = min(relaxed, step.min_level)
            widen.update(step.add_queues)
    if call.queue_id in agent.queues and _meets(agent, q.skills, relaxed):
        return True
    return any(
        w in agent.queues
        and w in queues
        and w != call.queue_id
        and _meets(agent, queues[w].skills, 99)
        for w in widen
    )


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.eng = RoutingEngine(reservation_grace_s=GRACE)
        self.now = 1000.0
        self.next_call = 0
        self.arrived: set[str] = set()
        self.ended: set[str] = set()
        self.states: dict[str, AgentState] = {}
        self.configs: dict[str, AgentConfig] = {}
        self.queues: dict[str, QueueConfig] = dict(QUEUES)
        self.suspended: set[str] = set()  # what the machine told the engine (reference)

    # --- plumbing ---------------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        e = self.eng
        return (
            tuple(e.agents()),
            tuple(e.waiting_calls()),
            tuple(e.queue_stats(q) for q in e.queue_ids()),
            e.next_deadline(),
        )

    def apply(self, cmds: list[Command]) -> None:
        for c in cmds:
            if isinstance(c, CallEnded):
                cid = c.record.call_id
                assert cid in self.arrived, f"CallEnded for a call that never arrived: {cid}"
                assert cid not in self.ended, f"second CallEnded for {cid}"
                self.ended.add(cid)
                assert c.record.ended_at == self.now
            elif isinstance(c, CallOffered):
                assert c.call_id not in self.suspended, f"suspended call offered: {c}"
            elif isinstance(c, AgentStateChanged):
                assert c.previous == self.states[c.agent_id], c
                self.states[c.agent_id] = c.state

    def send(self, event: Event) -> bool:
        before = self.snapshot()
        try:
            cmds = self.eng.handle(event, self.now)
        except RoutingError:
            assert self.snapshot() == before, f"{event} raised but changed state"
            return False
        self.apply(cmds)
        return True

    def call_ids(self) -> list[str]:
        return [*sorted(self.arrived), "ghost"]

    # --- rules -------------------------------------------------------------------------

    @initialize(
        agents=st.lists(st.tuples(skills_st, queues_st, st.integers(1, 3)), min_size=5, max_size=5)
    )
    def configure(self, agents: list[tuple[list[tuple[str, int]], list[str], int]]) -> None:
        for q in self.queues.values():
            self.apply(self.eng.handle(ConfigureQueue(q), self.now))
        for aid, (skills, queues, max_missed) in zip(AGENT_IDS, agents, strict=True):
            cfg = AgentConfig(
                aid, skills=tuple(skills), queues=tuple(queues), max_missed=max_missed
            )
            self.configs[aid] = cfg
            self.states[aid] = AgentState.LOGGED_OUT
            self.apply(self.eng.handle(ConfigureAgent(cfg), self.now))

    @rule(dt=st.sampled_from([0, 1, 1, 2, 3, 5, 9]))
    def advance(self, dt: int) -> None:
        self.now += dt
        self.apply(self.eng.handle_timer(self.now))

    @rule(aid=st.sampled_from(AGENT_IDS), device=st.sampled_from(["PJSIP/1", "PJSIP/2"]))
    def login(self, aid: str, device: str) -> None:
        self.send(AgentLogin(aid, device))

    @rule(aid=st.sampled_from(AGENT_IDS))
    def ready(self, aid: str) -> None:
        self.send(AgentReady(aid))

    @rule(aid=st.sampled_from(AGENT_IDS), reason=st.sampled_from(["break", "lunch"]))
    def pause(self, aid: str, reason: str) -> None:
        self.send(AgentPause(aid, reason))

    @rule(aid=st.sampled_from(AGENT_IDS), disconnect=st.booleans())
    def logout(self, aid: str, disconnect: bool) -> None:
        self.send(AgentDisconnected(aid) if disconnect else AgentLogout(aid))

    @rule(
        queue=st.sampled_from(sorted(QUEUES)),
        vip=st.booleans(),
        entitled=st.booleans(),
        boost=st.integers(0, 3),
        duplicate=st.integers(0, 9),
    )
    def arrive(self, queue: str, vip: bool, entitled: bool, boost: int, duplicate: int) -> None:
        if duplicate == 0 and self.arrived:
            cid = sorted(self.arrived)[-1]  # DuplicateCall (or a reused id after it ended)
            if cid in self.ended:
                return
        else:
            self.next_call += 1
            cid = f"c{self.next_call}"
        self.arrived.add(cid)
        down = duplicate == 1  # its server is unreachable at arrival
        sent = self.send(
            CallArrived(
                cid, queue, vip=vip, entitled=entitled, priority_boost=boost, suspended=down
            )
        )
        if sent and down and self.eng.call(cid) is not None:
            self.suspended.add(cid)

    @rule(data=st.data())
    def suspend(self, data: st.DataObject) -> None:
        live = [c.call_id for c in self.eng.waiting_calls()]
        ids = data.draw(st.lists(st.sampled_from([*live, "ghost"]), max_size=4))
        self.send(CallsSuspended(tuple(ids), "server down"))
        self.suspended.update(cid for cid in ids if cid in live)

    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        ids = data.draw(st.lists(st.sampled_from([*sorted(self.suspended), "ghost"]), max_size=4))
        self.suspended.difference_update(ids)
        self.send(CallsResumed(tuple(ids)))

    def pick_call(self, data: st.DataObject, state: str | None) -> str:
        """Mostly a live call in ``state`` (so the fact is fresh), sometimes any id."""
        live = [c.call_id for c in self.eng.waiting_calls() if state is None or c.state == state]
        if state == "connected" or state is None:
            live += [
                cid
                for cid in sorted(self.arrived)
                if (v := self.eng.call(cid)) and v.state == "connected"
            ]
        if live and data.draw(st.integers(0, 4)) != 0:
            return data.draw(st.sampled_from(live))
        return data.draw(st.sampled_from(self.call_ids()))

    @rule(aid=st.sampled_from(AGENT_IDS))
    def go_ready(self, aid: str) -> None:
        view = self.eng.agent(aid)
        if view is not None and view.state == AgentState.LOGGED_OUT:
            self.send(AgentLogin(aid, "PJSIP/1"))
        self.send(AgentReady(aid))

    @rule(aid=st.sampled_from(AGENT_IDS))
    def go_ready_again(self, aid: str) -> None:  # readiness is the common case: weight it
        self.go_ready(aid)

    @rule(data=st.data(), right_agent=st.integers(0, 4))
    def answer_again(self, data: st.DataObject, right_agent: int) -> None:
        self.answer(data, right_agent)

    @rule(data=st.data(), right_agent=st.integers(0, 4))
    def answer(self, data: st.DataObject, right_agent: int) -> None:
        cid = self.pick_call(data, "offered")
        view = self.eng.call(cid)
        if view is not None and view.agent_id and right_agent:
            aid = view.agent_id
        else:
            aid = data.draw(st.sampled_from(AGENT_IDS))
        self.send(OfferAnswered(cid, aid))

    @rule(data=st.data(), reason=st.sampled_from(list(OfferFailure)))
    def fail_offer(self, data: st.DataObject, reason: OfferFailure) -> None:
        cid = self.pick_call(data, "offered")
        view = self.eng.call(cid)
        aid = (
            view.agent_id
            if view is not None and view.agent_id
            else data.draw(st.sampled_from(AGENT_IDS))
        )
        before = self.eng.agent(aid)
        call = self.eng.call(cid)
        self.send(OfferFailed(cid, aid, reason))
        after = self.eng.agent(aid)
        fresh = call is not None and call.state == "offered" and call.agent_id == aid
        if fresh and call is not None and (reason is OfferFailure.LINK or call.suspended):
            assert before is not None and after is not None
            assert after.missed_in_row == before.missed_in_row, "a system failure was a miss"
            assert after.idle_since == before.idle_since, "the agent lost its place"

    @rule(data=st.data(), kind=st.sampled_from(["caller", "agent", "agent", "transfer", "failed"]))
    def hang_up(self, data: st.DataObject, kind: str) -> None:
        cid = self.pick_call(data, "connected" if kind == "agent" else None)
        if kind == "caller":
            self.send(CallHungUp(cid))
        elif kind == "transfer":
            self.send(CallTransferred(cid, "2000"))
        elif kind == "failed":
            self.send(CallFailed(cid, "lost"))
        else:
            view = self.eng.call(cid)
            aid = view.agent_id if view is not None and view.agent_id else "a1"
            self.send(AgentHungUp(cid, aid))

    @rule(
        qid=st.sampled_from(["q1", "q2"]),
        level=st.integers(1, 5),
        priority=st.integers(0, 2),
        max_len=st.integers(0, 3),
    )
    def reconfigure_queue(self, qid: str, level: int, priority: int, max_len: int) -> None:
        base = QUEUES[qid]
        cfg = replace(
            base,
            skills=tuple((s, level) for s, _ in base.skills),
            priority=priority,
            max_len=max_len if base.max_len is not None else None,
        )
        if self.send(ConfigureQueue(cfg)):
            self.queues[qid] = cfg

    @rule(is_open=st.booleans())
    def open_or_close(self, is_open: bool) -> None:
        self.send(SetQueueOpen("q4", is_open))

    @rule(aid=st.sampled_from(AGENT_IDS), skills=skills_st, queues=queues_st)
    def reconfigure_agent(self, aid: str, skills: list[tuple[str, int]], queues: list[str]) -> None:
        cfg = AgentConfig(
            aid, skills=tuple(skills), queues=tuple(queues), max_missed=self.configs[aid].max_missed
        )
        self.configs[aid] = cfg
        self.send(ConfigureAgent(cfg))

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def one_call_per_agent_and_one_agent_per_call(self) -> None:
        holders: dict[str, str] = {}
        for a in self.eng.agents():
            if a.state in (AgentState.RESERVED, AgentState.ON_CALL):
                assert a.call_id is not None, a
                assert a.call_id not in holders, (
                    f"{a.call_id} held by {holders.get(a.call_id)} and {a.agent_id}"
                )
                holders[a.call_id] = a.agent_id
        for c in self.eng.waiting_calls():
            if c.state == "offered":
                assert holders.get(c.call_id) == c.agent_id, c
                agent = self.eng.agent(c.agent_id or "")
                assert agent is not None and agent.state == AgentState.RESERVED
            else:
                assert c.agent_id is None and c.call_id not in holders

    @invariant()
    def suspension_matches_the_reference(self) -> None:
        self.suspended &= {c.call_id for c in self.eng.waiting_calls()}  # ended / answered
        for c in self.eng.waiting_calls():
            assert c.suspended == (c.call_id in self.suspended), c
            if c.retry_at is not None:
                assert c.state == "waiting" and c.retry_at > self.now, c

    @invariant()
    def no_call_waits_while_an_eligible_agent_is_ready(self) -> None:
        ready = [a for a in self.eng.agents() if a.state == AgentState.READY]
        for c in self.eng.waiting_calls():
            if c.state == "waiting" and not c.suspended and c.retry_at is None:
                for a in ready:
                    assert not may_take(a, c, self.now, self.queues), (
                        f"{c} waits while {a} is ready"
                    )

    @invariant()
    def no_call_waits_past_max_wait(self) -> None:
        for c in self.eng.waiting_calls():
            limit = self.queues[c.queue_id].max_wait_s
            if c.state == "waiting" and not c.suspended and limit is not None:
                assert self.now - c.queued_at < limit, c

    @invariant()
    def every_call_ends_exactly_once(self) -> None:
        for cid in self.arrived:
            live = self.eng.call(cid) is not None
            assert live != (cid in self.ended), cid

    @invariant()
    def no_overdue_reservation(self) -> None:
        for a in self.eng.agents():
            if a.state == AgentState.RESERVED:
                view = self.eng.call(a.call_id or "")
                assert view is not None and a.since is not None
                assert a.since + self.queues[view.queue_id].ring_timeout_s + GRACE > self.now
        deadline = self.eng.next_deadline()
        assert deadline is None or deadline > self.now

    @invariant()
    def stats_and_notifications_agree_with_views(self) -> None:
        agents = list(self.eng.agents())
        assert {a.agent_id: a.state for a in agents} == self.states
        calls = self.eng.waiting_calls()
        for qid in self.eng.queue_ids():
            s = self.eng.queue_stats(qid)
            mine = [c for c in calls if c.queue_id == qid]
            assert s.waiting == len(mine)
            assert s.ringing == sum(c.state == "offered" for c in mine)
            assert s.oldest_arrived_at == (min(c.arrived_at for c in mine) if mine else None)
            members = [a for a in agents if qid in a.queues]
            assert s.members == len(members)
            assert s.logged_in == sum(a.state != AgentState.LOGGED_OUT for a in members)
            for field, state in (
                ("ready", AgentState.READY),
                ("reserved", AgentState.RESERVED),
                ("on_call", AgentState.ON_CALL),
                ("wrap_up", AgentState.WRAP_UP),
                ("paused", AgentState.PAUSED),
            ):
                assert getattr(s, field) == sum(a.state == state for a in members), (qid, field)

    @invariant()
    def waiting_calls_are_in_routing_order(self) -> None:
        for qid in self.eng.queue_ids():
            calls = self.eng.waiting_calls(qid)
            keys = [(-c.priority, c.arrived_at, c.call_id) for c in calls]
            assert keys == sorted(keys)


EngineMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineInvariants = EngineMachine.TestCase
