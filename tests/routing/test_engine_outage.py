"""Table tests: an unreachable Asterisk server must not spin the router or punish agents.

Suspend / resume (``CallsSuspended`` / ``CallsResumed``), ``OfferFailure.LINK`` (a system
failure, never a miss) and the per-call backoff of offers that keep failing (pure, fast).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from routing.commands import (
    AgentState,
    CallEnded,
    CallQueued,
    CallResult,
    HangupCall,
    OfferCall,
    OverflowCall,
    ReturnToHold,
)
from routing.config import AgentConfig, EscalationStep, QueueConfig
from routing.engine import RoutingEngine
from routing.events import (
    AgentPause,
    CallAdopted,
    CallHungUp,
    CallsResumed,
    CallsSuspended,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
)
from tests.routing.helpers import arrive, engine, make_ready, of, one

SALES = QueueConfig("sales", skills=(("sales", 3),), ring_timeout_s=15.0, wrapup_s=10.0)


def agent(aid: str, **kw: object) -> AgentConfig:
    return AgentConfig(aid, skills=(("sales", 3),), queues=("sales",), **kw)  # type: ignore[arg-type]


def offered_to(cmds: Sequence[object]) -> str | None:
    offers = [c for c in cmds if isinstance(c, OfferCall)]
    assert len(offers) <= 1, offers
    return offers[0].agent_id if offers else None


def view(eng: RoutingEngine, aid: str) -> tuple[AgentState, int, float | None]:
    a = eng.agent(aid)
    assert a is not None
    return a.state, a.missed_in_row, a.idle_since


# --- suspend / resume ----------------------------------------------------------------------


def test_suspended_waiting_call_is_never_offered_until_resumed() -> None:
    eng = engine([SALES], [agent("a1")])
    arrive(eng, "c1", "sales", 1.0)
    assert eng.handle(CallsSuspended(("c1", "ghost"), "server down"), 2.0) == []
    assert eng.call("c1").suspended  # type: ignore[union-attr]
    # A READY agent does not take a suspended call (it is out of the waiting heaps).
    assert offered_to(make_ready(eng, "a1", 3.0)) is None
    assert view(eng, "a1")[0] == AgentState.READY
    cmds = eng.handle(CallsResumed(("c1", "ghost")), 4.0)
    assert offered_to(cmds) == "a1"
    c = eng.call("c1")
    assert c is not None and not c.suspended and c.arrived_at == 1.0 and c.queued_at == 1.0
    # Idempotent facts: resuming again or suspending a connected call change nothing.
    assert eng.handle(CallsResumed(("c1",)), 5.0) == []
    eng.handle(OfferAnswered("c1", "a1"), 5.0)
    assert eng.handle(CallsSuspended(("c1",)), 6.0) == []
    assert not eng.call("c1").suspended  # type: ignore[union-attr]


def test_call_arriving_suspended_waits_and_keeps_its_place() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    cmds = arrive(eng, "c1", "sales", 1.0, suspended=True)
    assert offered_to(cmds) is None
    assert one(cmds, CallQueued).reason == "arrived"
    assert offered_to(arrive(eng, "c2", "sales", 2.0)) == "a1"  # the routable one goes on
    stats = eng.queue_stats("sales")
    assert stats.waiting == 2 and stats.oldest_arrived_at == 1.0


def test_resume_routes_in_routing_order() -> None:
    eng = engine([SALES], [agent("a1")])
    arrive(eng, "old", "sales", 1.0, suspended=True)
    arrive(eng, "vip", "sales", 2.0, suspended=True, vip=True)
    arrive(eng, "new", "sales", 3.0, suspended=True)
    make_ready(eng, "a1", 4.0)
    # Resumed in any order: the VIP (highest priority) gets the only agent.
    assert offered_to(eng.handle(CallsResumed(("new", "old", "vip")), 5.0)) == "a1"
    assert eng.call("vip").state == "offered"  # type: ignore[union-attr]
    assert [c.call_id for c in eng.waiting_calls() if c.state == "waiting"] == ["old", "new"]


@pytest.mark.parametrize(
    "reason",
    [OfferFailure.FAILED, OfferFailure.NOANSWER, OfferFailure.CHANUNAVAIL, OfferFailure.LINK],
)
def test_offer_ending_while_suspended_is_not_a_miss_and_not_reoffered(
    reason: OfferFailure,
) -> None:
    eng = engine(
        [SALES],
        [agent("a1", max_missed=1), agent("a2", max_missed=1)],
        ready=[("a1", 1.0), ("a2", 2.0)],
    )
    assert offered_to(arrive(eng, "c1", "sales", 10.0)) == "a1"
    eng.handle(CallsSuspended(("c1",)), 11.0)
    cmds = eng.handle(OfferFailed("c1", "a1", reason), 12.0)
    assert offered_to(cmds) is None  # a2 is READY, but the call's server is down
    assert view(eng, "a1") == (AgentState.READY, 0, 1.0)  # no miss, keeps its place
    c = eng.call("c1")
    assert c is not None and c.state == "waiting" and c.suspended and c.rona_count == 0
    assert offered_to(eng.handle(CallsResumed(("c1",)), 20.0)) == "a1"


def test_reservation_timeout_while_suspended_is_not_a_miss() -> None:
    eng = engine([SALES], [agent("a1", max_missed=1)], ready=[("a1", 1.0)])
    arrive(eng, "c1", "sales", 10.0)
    eng.handle(CallsSuspended(("c1",)), 11.0)
    cmds = eng.handle_timer(10.0 + 15.0 + 2.0)  # ring timeout + grace
    assert one(cmds, ReturnToHold) == ReturnToHold("c1", "a1")
    assert offered_to(cmds) is None
    assert view(eng, "a1") == (AgentState.READY, 0, 1.0)
    assert eng.call("c1").rona_count == 0  # type: ignore[union-attr]


def test_offer_answered_while_suspended_connects() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 1.0)])
    arrive(eng, "c1", "sales", 10.0)
    eng.handle(CallsSuspended(("c1",)), 11.0)
    eng.handle(OfferAnswered("c1", "a1"), 12.0)  # reported by the resync
    assert view(eng, "a1")[0] == AgentState.ON_CALL
    assert eng.handle(CallsResumed(("c1",)), 13.0) == []  # connected: nothing to route


def test_withdrawn_offer_of_a_suspended_call_is_not_reoffered() -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a1", 1.0), ("a2", 2.0)])
    arrive(eng, "c1", "sales", 10.0)
    eng.handle(CallsSuspended(("c1",)), 11.0)
    cmds = eng.handle(AgentPause("a1", "break"), 12.0)
    assert one(cmds, ReturnToHold) == ReturnToHold("c1", "a1")
    assert offered_to(cmds) is None
    assert offered_to(eng.handle(CallsResumed(("c1",)), 13.0)) == "a2"


def test_hangup_of_a_suspended_call_ends_it_once() -> None:
    eng = engine([SALES], [agent("a1")])
    arrive(eng, "c1", "sales", 1.0, suspended=True)
    cmds = eng.handle(CallHungUp("c1"), 10.0)
    assert one(cmds, CallEnded).record.result == CallResult.ABANDONED
    assert eng.handle(CallsResumed(("c1",)), 11.0) == []
    assert eng.next_deadline() is None


# --- escalation and max wait while suspended ----------------------------------------------


def test_relaxation_applies_while_suspended_overflow_waits_for_resume() -> None:
    q = QueueConfig(
        "sales",
        skills=(("sales", 3),),
        max_wait_s=60.0,
        overflow_target="ext:overflow,100",
        escalation=(EscalationStep(30.0, min_level=2),),
    )
    low = AgentConfig("low", skills=(("sales", 2),), queues=("sales",))
    eng = engine([q], [low], ready=[("low", 0.0)])
    arrive(eng, "c1", "sales", 0.0, suspended=True)
    assert eng.handle_timer(30.0) == []  # relaxed to level 2, but not routable
    cmds = eng.handle_timer(61.0)  # max wait: the overflow needs the server, deferred
    assert not of(cmds, OverflowCall) and not of(cmds, CallEnded)
    assert eng.call("c1").state == "waiting"  # type: ignore[union-attr]
    cmds = eng.handle(CallsResumed(("c1",)), 90.0)
    assert one(cmds, OverflowCall) == OverflowCall("c1", "ext:overflow,100")
    assert one(cmds, CallEnded).record.result == CallResult.OVERFLOWED
    assert offered_to(cmds) is None


def test_relaxed_suspended_call_goes_to_the_relaxed_agent_on_resume() -> None:
    q = QueueConfig(
        "sales", skills=(("sales", 3),), escalation=(EscalationStep(30.0, min_level=2),)
    )
    low = AgentConfig("low", skills=(("sales", 2),), queues=("sales",))
    eng = engine([q], [low], ready=[("low", 0.0)])
    arrive(eng, "c1", "sales", 0.0, suspended=True)
    eng.handle_timer(31.0)
    assert offered_to(eng.handle(CallsResumed(("c1",)), 40.0)) == "low"


def test_max_wait_without_target_hangs_up_on_resume() -> None:
    q = QueueConfig("sales", skills=(("sales", 3),), max_wait_s=10.0)
    eng = engine([q], [agent("a1")])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(CallsSuspended(("c1",)), 1.0)
    assert eng.handle_timer(20.0) == []
    cmds = eng.handle(CallsResumed(("c1",)), 30.0)
    assert one(cmds, HangupCall) == HangupCall("c1")
    rec = one(cmds, CallEnded).record
    assert rec.result == CallResult.FAILED and rec.reason == "max-wait"


# --- LINK: a system failure, not a miss -------------------------------------------------------


def test_link_failure_is_not_a_miss_first_one_retried_at_once() -> None:
    eng = engine(
        [SALES],
        [agent("a1", max_missed=1), agent("a2", max_missed=1)],
        ready=[("a1", 1.0), ("a2", 2.0)],
    )
    arrive(eng, "c1", "sales", 10.0)
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.1)
    # Not a1's fault: READY, same place in line, no miss; the call is retried at once and
    # a1 is still the longest idle.
    assert offered_to(cmds) == "a1"
    assert view(eng, "a1") == (AgentState.RESERVED, 0, 1.0)
    assert eng.call("c1").rona_count == 0  # type: ignore[union-attr]


def test_dial_status_failed_is_a_miss() -> None:
    eng = engine(
        [SALES], [agent("a1", max_missed=1), agent("a2")], ready=[("a1", 1.0), ("a2", 2.0)]
    )
    arrive(eng, "c1", "sales", 10.0)
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.FAILED), 11.0)
    assert view(eng, "a1")[:2] == (AgentState.PAUSED, 1)
    assert offered_to(cmds) == "a2"  # first failure: re-routed at once


# --- backoff of a call whose offers keep failing ------------------------------------------------


def test_repeated_link_failures_back_off_exponentially() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 1.0)], retry_base_s=0.5, retry_max_s=4.0)
    arrive(eng, "c1", "sales", 10.0)
    now = 10.0
    assert offered_to(eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), now)) == "a1"
    expected_delays = [0.5, 1.0, 2.0, 4.0, 4.0]
    for delay in expected_delays:
        cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), now)
        assert offered_to(cmds) is None  # held: not re-offered at once
        c = eng.call("c1")
        assert c is not None and c.state == "waiting" and c.retry_at == now + delay
        assert view(eng, "a1")[0] == AgentState.READY  # the agent is free meanwhile
        assert eng.next_deadline() == now + delay
        assert offered_to(eng.handle_timer(now + delay - 0.01)) is None
        now += delay
        assert offered_to(eng.handle_timer(now)) == "a1"
    assert view(eng, "a1") == (AgentState.RESERVED, 0, 1.0)


def test_failing_call_among_many_ready_agents_costs_few_offers() -> None:
    """The load-test bug: every failed offer went straight to the next ready agent."""
    agents = [agent(f"a{i:03}") for i in range(500)]
    eng = engine([SALES], agents, ready=[(a.agent_id, float(i)) for i, a in enumerate(agents)])
    now = 1000.0
    cmds = arrive(eng, "c1", "sales", now)
    offers = 0
    end = now + 120.0
    while now < end:
        for offer in of(cmds, OfferCall):
            offers += 1
            cmds = eng.handle(OfferFailed("c1", offer.agent_id, OfferFailure.LINK), now)
            break
        else:
            deadline = eng.next_deadline()
            assert deadline is not None and deadline > now
            now = deadline
            cmds = eng.handle_timer(now)
    # 0.5, 1, 2, 4, 8, 16, 30, 30, 30 ... s between attempts: about a dozen in two minutes.
    assert offers <= 14
    assert all(a.missed_in_row == 0 for a in eng.agents())
    assert sum(a.state == AgentState.READY for a in eng.agents()) >= 499


def test_other_outcome_resets_the_backoff() -> None:
    eng = engine([SALES], [agent("a1", max_missed=9)], ready=[("a1", 1.0)])
    arrive(eng, "c1", "sales", 10.0)
    eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.0)  # retried at once
    eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.0)  # held 0.5 s
    eng.handle_timer(10.5)
    # The phone rang this time (RONA): the channel works, the failure count starts over.
    assert offered_to(eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 11.0)) == "a1"
    assert offered_to(eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 11.0)) == "a1"


def test_resume_clears_the_backoff() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 1.0)], retry_base_s=10.0)
    arrive(eng, "c1", "sales", 10.0)
    eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.0)
    eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.0)
    assert eng.call("c1").retry_at == 20.0  # type: ignore[union-attr]
    eng.handle(CallsSuspended(("c1",)), 11.0)
    assert offered_to(eng.handle(CallsResumed(("c1",)), 12.0)) == "a1"
    assert eng.next_deadline() == 12.0 + 15.0 + 2.0  # only the reservation is armed


def test_backoff_timer_goes_with_the_call() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 1.0)])
    arrive(eng, "c1", "sales", 10.0)
    eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.0)
    eng.handle(OfferFailed("c1", "a1", OfferFailure.LINK), 10.0)
    assert eng.next_deadline() == 10.5
    eng.handle(CallHungUp("c1"), 10.2)
    assert eng.next_deadline() is None


def test_adopted_call_can_start_suspended() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 1.0)])
    cmds = eng.handle(CallAdopted("c1", "sales", arrived_at=5.0, suspended=True), 10.0)
    assert offered_to(cmds) is None
    assert eng.call("c1").suspended  # type: ignore[union-attr]
    assert offered_to(eng.handle(CallsResumed(("c1",)), 11.0)) == "a1"


def test_retry_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        RoutingEngine(retry_base_s=0.0)
    with pytest.raises(ValueError):
        RoutingEngine(retry_base_s=5.0, retry_max_s=1.0)
