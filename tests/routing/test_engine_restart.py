"""Restart of the service: ``AgentRestored`` and ``CallAdopted`` (pure, fast)."""

from __future__ import annotations

import pytest

from routing.commands import (
    AgentState,
    AgentStateChanged,
    CallEnded,
    CallQueued,
    CallResult,
    OfferCall,
    ReturnToHold,
    WrapUpEnded,
)
from routing.config import AgentConfig, EscalationStep, QueueConfig
from routing.engine import RoutingEngine
from routing.errors import (
    DuplicateCall,
    IllegalTransition,
    RoutingError,
    UnknownAgent,
    UnknownQueue,
)
from routing.events import (
    AgentHungUp,
    AgentLogin,
    AgentPause,
    AgentRestored,
    CallAdopted,
    CallHungUp,
    Event,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
)
from routing.views import CallState
from tests.routing.helpers import arrive, engine, make_ready, of, one

SALES = QueueConfig("sales", ring_timeout_s=15.0, wrapup_s=10.0)


def agent(aid: str) -> AgentConfig:
    return AgentConfig(aid, queues=("sales",))


def snapshot(eng: RoutingEngine, call_ids: tuple[str, ...] = ("c1", "c2", "old")) -> object:
    return (
        tuple(eng.agents()),
        tuple(eng.waiting_calls()),
        tuple(eng.call(c) for c in call_ids),
        tuple(eng.queue_stats(q) for q in eng.queue_ids()),
        eng.next_deadline(),
    )


# --- AgentRestored ---------------------------------------------------------------------


def test_restored_ready_agent_keeps_its_place_in_the_line() -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a2", 50.0)])
    # a1 was idle since 10 s before the restart: it goes before a2 (idle since 50 s).
    cmds = eng.handle(AgentRestored("a1", "PJSIP/a1", "ready", since=10.0, idle_since=10.0), 100.0)
    change = one(cmds, AgentStateChanged)
    assert (change.state, change.previous) == (AgentState.READY, AgentState.LOGGED_OUT)
    view = eng.agent("a1")
    assert view is not None
    assert (view.state, view.device, view.since, view.idle_since) == (
        AgentState.READY,
        "PJSIP/a1",
        10.0,
        10.0,
    )
    offer = one(arrive(eng, "c1", "sales", 101.0), OfferCall)
    assert offer.agent_id == "a1"


def test_restored_ready_agent_takes_a_waiting_call_at_once() -> None:
    eng = engine([SALES], [agent("a1")])
    arrive(eng, "c1", "sales", 1.0)
    cmds = eng.handle(AgentRestored("a1", "PJSIP/a1", "ready", since=0.5), 2.0)
    assert one(cmds, OfferCall).call_id == "c1"


def test_restored_paused_agent_keeps_reason_and_since() -> None:
    eng = engine([SALES], [agent("a1")])
    eng.handle(AgentRestored("a1", "PJSIP/a1", "paused", reason="lunch", since=5.0), 100.0)
    view = eng.agent("a1")
    assert view is not None
    assert (view.state, view.reason, view.since) == (AgentState.PAUSED, "lunch", 5.0)
    assert not of(arrive(eng, "c1", "sales", 101.0), OfferCall)


def test_restored_wrap_up_ends_at_its_deadline() -> None:
    eng = engine([SALES], [agent("a1")])
    eng.handle(
        AgentRestored("a1", "PJSIP/a1", "wrap_up", since=95.0, call_id="old", until=105.0), 100.0
    )
    view = eng.agent("a1")
    assert view is not None
    assert (view.state, view.call_id, view.until) == (AgentState.WRAP_UP, "old", 105.0)
    assert eng.next_deadline() == 105.0
    cmds = eng.handle_timer(105.0)
    assert one(cmds, WrapUpEnded).call_id == "old"
    assert eng.agent("a1").state is AgentState.READY  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (AgentRestored("nobody", "PJSIP/9", "ready"), UnknownAgent),
        (AgentRestored("a1", "PJSIP/a1", "ready"), IllegalTransition),  # already logged in
        (AgentRestored("a2", "", "ready"), IllegalTransition),
        (AgentRestored("a2", "PJSIP/a2", "on_call"), IllegalTransition),
        (AgentRestored("a2", "PJSIP/a2", "bogus"), IllegalTransition),
        (AgentRestored("a2", "PJSIP/a2", "wrap_up"), IllegalTransition),  # no call id
    ],
)
def test_illegal_restore_raises_and_changes_nothing(
    event: Event, error: type[RoutingError]
) -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a1", 1.0)])
    before = snapshot(eng)
    with pytest.raises(error):
        eng.handle(event, 10.0)
    assert snapshot(eng) == before


# --- CallAdopted -------------------------------------------------------------------------


def test_adopted_waiting_call_keeps_its_arrival_and_is_routed() -> None:
    eng = engine([SALES], [agent("a1")])
    cmds = eng.handle(CallAdopted("c1", "sales", arrived_at=40.0, caller="+1", vip=True), 100.0)
    queued = one(cmds, CallQueued)
    assert queued.reason == "adopted"
    view = eng.call("c1")
    assert view is not None
    assert (view.state, view.arrived_at, view.queued_at) == (CallState.WAITING, 40.0, 40.0)
    # An older adopted call goes before a newer arrival of the same priority.
    eng.handle(CallAdopted("c2", "sales", arrived_at=60.0), 100.0)
    arrive(eng, "c3", "sales", 100.0)
    cmds = make_ready(eng, "a1", 101.0)
    assert one(cmds, OfferCall).call_id == "c1"
    eng.handle(OfferAnswered("c1", "a1"), 102.0)
    ended = one(eng.handle(CallHungUp("c1"), 110.0), CallEnded).record
    assert (ended.result, ended.arrived_at, ended.answered_at) == (
        CallResult.ANSWERED,
        40.0,
        102.0,
    )
    assert ended.vip is True


def test_adopted_waiting_call_escalates_from_its_original_queue_time() -> None:
    q = QueueConfig("sales", max_wait_s=60.0)
    eng = engine([q], [agent("a1")])
    cmds = eng.handle(CallAdopted("c1", "sales", arrived_at=10.0, queued_at=10.0), 100.0)
    record = one(cmds, CallEnded).record  # waited 90 s > 60 s: max-wait, no overflow target
    assert (record.result, record.reason, record.arrived_at) == (
        CallResult.FAILED,
        "max-wait",
        10.0,
    )


def test_adoption_ignores_closed_hours_and_queue_length() -> None:
    q = QueueConfig("sales", is_open=False, max_len=0)
    eng = engine([q], [agent("a1")])
    eng.handle(CallAdopted("c1", "sales", arrived_at=10.0), 100.0)
    assert eng.call("c1") is not None
    assert eng.queue_stats("sales").waiting == 1


def test_adopted_connected_call_puts_agent_on_call_then_wrap_up_then_ready() -> None:
    eng = engine([SALES], [agent("a1")])
    cmds = eng.handle(
        CallAdopted(
            "c1",
            "sales",
            arrived_at=10.0,
            agent_id="a1",
            answered_at=20.0,
            device="PJSIP/a1",
            first_offered_at=15.0,
            agents_offered=("a9", "a1"),
            rona_count=1,
        ),
        100.0,
    )
    assert not of(cmds, OfferCall) and not of(cmds, ReturnToHold)
    change = one(cmds, AgentStateChanged)
    assert (change.state, change.call_id) == (AgentState.ON_CALL, "c1")
    a1 = eng.agent("a1")
    assert a1 is not None and (a1.state, a1.device, a1.call_id) == (
        AgentState.ON_CALL,
        "PJSIP/a1",
        "c1",
    )
    assert eng.queue_stats("sales").on_call == 1 and eng.queue_stats("sales").waiting == 0
    ended = one(eng.handle(CallHungUp("c1"), 130.0), CallEnded).record
    assert ended.result is CallResult.ANSWERED
    assert (ended.arrived_at, ended.first_offered_at, ended.answered_at) == (10.0, 15.0, 20.0)
    assert ended.agents_offered == ("a9", "a1") and ended.rona_count == 1
    assert ended.answered_by == "a1"
    assert eng.agent("a1").state is AgentState.WRAP_UP  # type: ignore[union-attr]
    eng.handle_timer(140.0)
    assert eng.agent("a1").state is AgentState.READY  # type: ignore[union-attr]


def test_adopted_connected_paused_agent_pauses_again_after_the_call() -> None:
    eng = engine([SALES], [agent("a1")])
    eng.handle(AgentLogin("a1", "PJSIP/a1"), 1.0)
    eng.handle(AgentPause("a1", "lunch"), 2.0)
    eng.handle(CallAdopted("c1", "sales", arrived_at=10.0, agent_id="a1", answered_at=20.0), 100.0)
    assert eng.agent("a1").pending == "pause:lunch"  # type: ignore[union-attr]
    eng.handle(AgentHungUp("c1", "a1"), 110.0)
    eng.handle_timer(120.0)
    view = eng.agent("a1")
    assert view is not None and (view.state, view.reason) == (AgentState.PAUSED, "lunch")


def test_adopted_ringing_call_keeps_the_offer_for_a_free_agent() -> None:
    eng = engine([SALES], [agent("a1")])
    cmds = eng.handle(
        CallAdopted("c1", "sales", arrived_at=10.0, agent_id="a1", device="PJSIP/a1"), 100.0
    )
    assert not of(cmds, OfferCall)  # it already rings on Asterisk
    assert one(cmds, AgentStateChanged).state is AgentState.RESERVED
    view = eng.call("c1")
    assert view is not None and (view.state, view.agent_id) == (CallState.OFFERED, "a1")
    assert eng.agent("a1").until == 100.0 + 15.0 + 2.0  # type: ignore[union-attr]
    eng.handle(OfferAnswered("c1", "a1"), 101.0)
    assert eng.agent("a1").state is AgentState.ON_CALL  # type: ignore[union-attr]


def test_adopted_ringing_offer_times_out_like_any_other() -> None:
    eng = engine([SALES], [agent("a1")])
    eng.handle(CallAdopted("c1", "sales", arrived_at=10.0, agent_id="a1", device="PJSIP/a1"), 100.0)
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 110.0)
    assert one(cmds, CallQueued).reason == "noanswer"
    view = eng.call("c1")
    assert view is not None and (view.rona_count, view.arrived_at) == (1, 10.0)


def test_adopted_ringing_call_of_a_paused_agent_returns_to_hold() -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")])
    eng.handle(AgentLogin("a1", "PJSIP/a1"), 1.0)  # paused ("login")
    make_ready(eng, "a2", 2.0)
    cmds = eng.handle(CallAdopted("c1", "sales", arrived_at=10.0, agent_id="a1"), 100.0)
    assert one(cmds, ReturnToHold).agent_id == "a1"
    offer = one(cmds, OfferCall)  # waiting again, and a2 is free
    assert offer.agent_id == "a2"
    a1 = eng.agent("a1")
    assert a1 is not None and (a1.state, a1.missed_in_row) == (AgentState.PAUSED, 0)
    view = eng.call("c1")
    assert view is not None and view.rona_count == 0


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (CallAdopted("c1", "sales", 1.0), DuplicateCall),
        (CallAdopted("c2", "nope", 1.0), UnknownQueue),
        (CallAdopted("c2", "sales", 1.0, agent_id="nobody", answered_at=2.0), UnknownAgent),
        # a1 is already on a call (c1), a2 holds an offer (old): both refuse another one.
        (CallAdopted("c2", "sales", 1.0, agent_id="a1", answered_at=2.0), IllegalTransition),
        (CallAdopted("c2", "sales", 1.0, agent_id="a2"), IllegalTransition),
        # logged out and no device to log in on
        (CallAdopted("c2", "sales", 1.0, agent_id="a3", answered_at=2.0), IllegalTransition),
        (CallAdopted("c2", "sales", 1.0, answered_at=2.0), IllegalTransition),  # no agent
    ],
)
def test_illegal_adoption_raises_and_changes_nothing(
    event: Event, error: type[RoutingError]
) -> None:
    eng = engine([SALES], [agent("a1"), agent("a2"), agent("a3")])
    eng.handle(CallAdopted("c1", "sales", 0.5, agent_id="a1", answered_at=0.8, device="P/1"), 1.0)
    eng.handle(CallAdopted("old", "sales", 0.5, agent_id="a2", device="P/2"), 1.0)
    before = snapshot(eng)
    with pytest.raises(error):
        eng.handle(event, 10.0)
    assert snapshot(eng) == before


def test_adopted_ringing_call_escalation_deferred_while_ringing() -> None:
    q = QueueConfig(
        "sales",
        escalation=(EscalationStep(after_s=30.0, overflow=True),),
        overflow_target="ext:x,1",
    )
    eng = engine([q], [agent("a1")])
    eng.handle(CallAdopted("c1", "sales", arrived_at=10.0, agent_id="a1", device="P/1"), 100.0)
    # Overdue overflow waits for the offer's result; a failed offer then overflows it.
    assert eng.call("c1") is not None
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 101.0)
    assert one(cmds, CallEnded).record.result is CallResult.OVERFLOWED


def test_adopted_ringing_offer_abandoned_frees_a_formerly_logged_out_agent() -> None:
    eng = engine([SALES], [agent("a1")])
    eng.handle(CallAdopted("c1", "sales", arrived_at=10.0, agent_id="a1", device="P/1"), 100.0)
    record = one(eng.handle(CallHungUp("c1"), 103.0), CallEnded).record
    assert record.result is CallResult.ABANDONED and record.agents_offered == ("a1",)
    view = eng.agent("a1")
    assert view is not None and view.state is AgentState.READY
    assert one(arrive(eng, "c2", "sales", 104.0), OfferCall).agent_id == "a1"
