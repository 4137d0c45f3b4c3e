"""Table-driven tests for every routing rule of ``routing.engine`` (pure, fast)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from routing.commands import (
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallResult,
    HangupCall,
    OfferCall,
    OverflowCall,
    ReturnToHold,
    WrapUpEnded,
)
from routing.config import AgentConfig, EscalationStep, QueueConfig
from routing.engine import RoutingEngine
from routing.errors import (
    DuplicateCall,
    IllegalTransition,
    InvalidConfig,
    QueueInUse,
    RoutingError,
    UnknownAgent,
    UnknownQueue,
)
from routing.events import (
    AgentDisconnected,
    AgentHungUp,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentReady,
    CallFailed,
    CallHungUp,
    CallTransferred,
    ConfigureAgent,
    ConfigureQueue,
    Event,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
    RemoveAgent,
    RemoveQueue,
    SetQueueOpen,
)
from tests.routing.helpers import arrive, engine, make_ready, names, of, one

SALES = QueueConfig("sales", skills=(("sales", 3),), ring_timeout_s=15.0, wrapup_s=10.0)


def agent(
    aid: str, level: int = 3, queues: tuple[str, ...] = ("sales",), **kw: object
) -> AgentConfig:
    return AgentConfig(aid, skills=(("sales", level),), queues=queues, **kw)  # type: ignore[arg-type]


def offered_to(cmds: Sequence[object]) -> str | None:
    offers = [c for c in cmds if isinstance(c, OfferCall)]
    assert len(offers) <= 1
    return offers[0].agent_id if offers else None


# --- agent choice -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ready_at", "expected"),
    [
        ({"a1": 3.0, "a2": 1.0, "a3": 2.0}, "a2"),  # longest idle wins
        ({"a1": 1.0, "a2": 1.0, "a3": 1.0}, "a1"),  # tie: smallest agent_id
        ({"b": 5.0, "a": 5.0, "c": 4.0}, "c"),
        ({"z9": 0.5, "a1": 0.75}, "z9"),
    ],
)
def test_agent_choice_longest_idle_then_agent_id(ready_at: dict[str, float], expected: str) -> None:
    eng = engine([SALES], [agent(a) for a in ready_at], ready=ready_at.items())
    assert offered_to(arrive(eng, "c1", "sales", 10.0)) == expected


def test_idle_clock_restarts_after_wrapup_not_after_abandon_while_ringing() -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a1", 1.0), ("a2", 2.0)])
    assert offered_to(arrive(eng, "c1", "sales", 10.0)) == "a1"
    # The caller hangs up while a1 rings: not a1's fault, it keeps its place (idle 1.0).
    eng.handle(CallHungUp("c1"), 11.0)
    assert eng.agent("a1").idle_since == 1.0  # type: ignore[union-attr]
    assert offered_to(arrive(eng, "c2", "sales", 12.0)) == "a1"
    eng.handle(OfferAnswered("c2", "a1"), 13.0)
    eng.handle(CallHungUp("c2"), 20.0)
    eng.handle_timer(30.0)  # wrap-up ends: idle clock restarts at 30
    assert eng.agent("a1").idle_since == 30.0  # type: ignore[union-attr]
    assert offered_to(arrive(eng, "c3", "sales", 31.0)) == "a2"


def test_agent_skill_levels_and_membership_decide_eligibility() -> None:
    eng = engine(
        [SALES, QueueConfig("other")],
        [agent("low", level=2), agent("outsider", queues=("other",)), agent("ok", level=5)],
        ready=[("low", 0.0), ("outsider", 0.0), ("ok", 9.0)],
    )
    assert offered_to(arrive(eng, "c1", "sales", 10.0)) == "ok"
    assert offered_to(arrive(eng, "c2", "sales", 10.0)) is None


# --- call choice --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calls", "expected_order"),
    [
        # (call_id, arrive_at, kwargs)
        ([("n1", 1.0, {}), ("n2", 2.0, {})], ["n1", "n2"]),  # FIFO
        ([("n", 1.0, {}), ("v", 2.0, {"vip": True})], ["v", "n"]),  # VIP boost 10
        (
            [("n", 1.0, {}), ("e", 2.0, {"entitled": True}), ("v", 3.0, {"vip": True})],
            ["v", "e", "n"],
        ),
        ([("b", 2.0, {"priority_boost": 7}), ("e", 1.0, {"entitled": True})], ["b", "e"]),
        ([("x2", 1.0, {}), ("x1", 1.0, {})], ["x1", "x2"]),  # same arrival: call_id
    ],
)
def test_call_choice_priority_then_arrival_then_id(
    calls: list[tuple[str, float, dict[str, bool | int]]], expected_order: list[str]
) -> None:
    eng = engine([replace(SALES, wrapup_s=0.0)], [agent("a1")])
    for cid, at, kw in calls:
        arrive(eng, cid, "sales", at, **kw)
    assert [c.call_id for c in eng.waiting_calls("sales")] == expected_order
    got = []
    t = 10.0
    cmds = make_ready(eng, "a1", t)
    for _ in calls:
        offer = one(cmds, OfferCall)
        got.append(offer.call_id)
        eng.handle(OfferAnswered(offer.call_id, "a1"), t)
        t += 1
        cmds = eng.handle(CallHungUp(offer.call_id), t)
    assert got == expected_order


def test_call_choice_across_queues_uses_queue_priority() -> None:
    low = QueueConfig("low", priority=0)
    high = QueueConfig("high", priority=5)
    eng = engine([low, high], [AgentConfig("a1", queues=("low", "high"))])
    arrive(eng, "old-low", "low", 1.0)
    arrive(eng, "new-high", "high", 2.0)
    assert one(make_ready(eng, "a1", 3.0), OfferCall).call_id == "new-high"


# --- escalation ---------------------------------------------------------------------------

ESC = QueueConfig(
    "tech",
    skills=(("tech", 4),),
    escalation=(
        EscalationStep(after_s=30.0, min_level=2),
        EscalationStep(after_s=60.0, add_queues=("general",)),
    ),
)
GENERAL = QueueConfig("general")


@pytest.mark.parametrize(
    ("agent_cfg", "expected_offer_at"),
    [
        (AgentConfig("expert", skills=(("tech", 4),), queues=("tech",)), 0.0),
        (AgentConfig("junior", skills=(("tech", 2),), queues=("tech",)), 30.0),  # relaxed
        (AgentConfig("novice", skills=(("tech", 1),), queues=("tech",)), None),  # never
        (AgentConfig("generalist", queues=("general",)), 60.0),  # widened to general
        (AgentConfig("nonmember", skills=(("tech", 5),), queues=("general",)), 60.0),
    ],
)
def test_escalation_relax_and_widen(
    agent_cfg: AgentConfig, expected_offer_at: float | None
) -> None:
    eng = engine([ESC, GENERAL], [agent_cfg], ready=[(agent_cfg.agent_id, 0.0)])
    offered_at = 0.0 if offered_to(arrive(eng, "c1", "tech", 0.0)) else None
    while offered_at is None and (deadline := eng.next_deadline()) is not None:
        if offered_to(eng.handle_timer(deadline)):
            offered_at = deadline
    assert offered_at == expected_offer_at


def test_relaxed_call_is_found_when_a_junior_agent_frees_later() -> None:
    eng = engine([ESC, GENERAL], [AgentConfig("junior", skills=(("tech", 2),), queues=("tech",))])
    arrive(eng, "c1", "tech", 0.0)
    eng.handle_timer(30.0)
    assert one(make_ready(eng, "junior", 31.0), OfferCall).call_id == "c1"


@pytest.mark.parametrize(
    ("target", "result", "telephony"),
    [
        ("ext:overflow-ctx,100", CallResult.OVERFLOWED, OverflowCall),
        (None, None, None),  # escalation overflow without target: no-op, keeps waiting
    ],
)
def test_escalation_overflow_step(
    target: str | None, result: CallResult | None, telephony: type | None
) -> None:
    q = QueueConfig("q", overflow_target=target, escalation=(EscalationStep(20.0, overflow=True),))
    eng = engine([q], [])
    arrive(eng, "c1", "q", 0.0)
    cmds = eng.handle_timer(20.0)
    if result is None:
        assert cmds == [] and eng.call("c1") is not None
        return
    assert telephony is not None
    one(cmds, telephony)
    rec = one(cmds, CallEnded).record
    assert (rec.result, rec.overflow_target, rec.reason) == (result, target, "escalation")


def test_overflow_to_another_queue_keeps_arrival_time_and_routes_there() -> None:
    q = QueueConfig(
        "q", overflow_target="backup", escalation=(EscalationStep(20.0, overflow=True),)
    )
    backup = QueueConfig("backup", priority=1)
    eng = engine([q, backup], [AgentConfig("b1", queues=("backup",))])
    arrive(eng, "c1", "q", 5.0)
    arrive(eng, "c0", "backup", 10.0)
    cmds = eng.handle_timer(25.0)
    queued = one(cmds, CallQueued)
    assert (queued.queue_id, queued.reason) == ("backup", "overflow:q")
    view = eng.call("c1")
    assert view is not None and (view.queue_id, view.arrived_at, view.queued_at) == (
        "backup",
        5.0,
        25.0,
    )
    # c1 arrived before c0, so it goes first in its new queue.
    assert one(make_ready(eng, "b1", 26.0), OfferCall).call_id == "c1"


@pytest.mark.parametrize(
    ("target", "cmd", "result", "reason"),
    [
        (None, HangupCall, CallResult.FAILED, "max-wait"),
        ("ext:ctx,1", OverflowCall, CallResult.OVERFLOWED, "max-wait"),
        ("nowhere", HangupCall, CallResult.FAILED, "overflow-target-unknown"),
    ],
)
def test_max_wait(target: str | None, cmd: type, result: CallResult, reason: str) -> None:
    eng = engine([QueueConfig("q", max_wait_s=60.0, overflow_target=target)], [])
    arrive(eng, "c1", "q", 0.0)
    assert eng.next_deadline() == 60.0
    assert eng.handle_timer(59.0) == []
    cmds = eng.handle_timer(60.0)
    one(cmds, cmd)
    rec = one(cmds, CallEnded).record
    assert (rec.result, rec.reason) == (result, reason)
    assert eng.call("c1") is None and eng.queue_stats("q").waiting == 0


def test_max_wait_while_ringing_is_deferred_until_the_offer_fails() -> None:
    eng = engine(
        [QueueConfig("q", max_wait_s=10.0)], [AgentConfig("a1", queues=("q",))], ready=[("a1", 0.0)]
    )
    arrive(eng, "c1", "q", 5.0)
    assert eng.handle_timer(15.0) == []  # ringing: let it ring
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 16.0)
    one(cmds, HangupCall)
    assert one(cmds, CallEnded).record.reason == "max-wait"


def test_overflow_loop_fails_instead_of_bouncing_forever() -> None:
    a = QueueConfig("a", max_len=0, overflow_target="b")
    b = QueueConfig("b", max_len=0, overflow_target="a")
    eng = engine([a, b], [])
    cmds = arrive(eng, "c1", "a", 0.0)
    assert one(cmds, CallEnded).record.reason == "overflow-loop"


@pytest.mark.parametrize(
    ("target", "result"),
    [(None, CallResult.FAILED), ("ext:ctx,9", CallResult.OVERFLOWED)],
)
def test_max_len_queue_full(target: str | None, result: CallResult) -> None:
    eng = engine([QueueConfig("q", max_len=2, overflow_target=target)], [])
    assert not of(arrive(eng, "c1", "q", 0.0), CallEnded)
    assert not of(arrive(eng, "c2", "q", 1.0), CallEnded)
    rec = one(arrive(eng, "c3", "q", 2.0), CallEnded).record
    assert (rec.result, rec.reason) == (result, "queue-full")
    assert eng.queue_stats("q").waiting == 2


def test_closed_queue_rejects_new_calls_but_serves_waiting_ones() -> None:
    eng = engine([QueueConfig("q")], [AgentConfig("a1", queues=("q",))])
    arrive(eng, "early", "q", 0.0)
    eng.handle(SetQueueOpen("q", False), 1.0)
    cmds = arrive(eng, "late", "q", 2.0)
    one(cmds, HangupCall)
    assert one(cmds, CallEnded).record.reason == "closed"
    assert one(make_ready(eng, "a1", 3.0), OfferCall).call_id == "early"
    eng.handle(SetQueueOpen("q", True), 4.0)
    assert not of(arrive(eng, "later", "q", 5.0), CallEnded)


# --- offers: RONA, misses, reservation timeout -------------------------------------------


def test_rona_goes_to_another_agent_and_counts() -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a1", 0.0), ("a2", 1.0)])
    assert offered_to(arrive(eng, "c1", "sales", 5.0)) == "a1"
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 20.0)
    assert offered_to(cmds) == "a2"
    assert one(cmds, CallQueued).reason == "noanswer"
    a1 = eng.agent("a1")
    assert a1 is not None and (a1.state, a1.missed_in_row, a1.idle_since) == ("ready", 1, 20.0)
    assert eng.call("c1").rona_count == 1  # type: ignore[union-attr]
    eng.handle(OfferAnswered("c1", "a2"), 21.0)
    assert eng.agent("a2").missed_in_row == 0  # type: ignore[union-attr]
    rec = one(eng.handle(CallHungUp("c1"), 60.0), CallEnded).record
    assert rec.agents_offered == ("a1", "a2") and rec.rona_count == 1 and rec.answered_by == "a2"


def test_rona_reoffers_to_the_same_agent_when_it_is_the_only_one() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 5.0)
    assert offered_to(eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 20.0)) == "a1"


@pytest.mark.parametrize(
    ("failure", "pause_reason"),
    [
        (OfferFailure.NOANSWER, "no-answer"),
        (OfferFailure.BUSY, "busy"),
        (OfferFailure.CHANUNAVAIL, "chanunavail"),
        (OfferFailure.CONGESTION, "congestion"),
    ],
)
def test_max_missed_in_a_row_auto_pauses(failure: OfferFailure, pause_reason: str) -> None:
    eng = engine([SALES], [agent("a1", max_missed=3)], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 1.0)
    for i in range(2):
        cmds = eng.handle(OfferFailed("c1", "a1", failure), 2.0 + i)
        assert offered_to(cmds) == "a1"  # the only agent
        assert one(cmds, CallQueued).reason == str(failure)
    cmds = eng.handle(OfferFailed("c1", "a1", failure), 10.0)
    change = of(cmds, AgentStateChanged)[0]
    assert (change.state, change.reason, change.previous) == (
        AgentState.PAUSED,
        pause_reason,
        AgentState.RESERVED,
    )
    assert offered_to(cmds) is None
    view = eng.call("c1")
    assert view is not None and (view.state, view.rona_count) == ("waiting", 3)


def test_answer_resets_missed_in_row() -> None:
    eng = engine([SALES], [agent("a1", max_missed=2)], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 1.0)
    eng.handle(OfferFailed("c1", "a1", OfferFailure.BUSY), 2.0)
    eng.handle(OfferAnswered("c1", "a1"), 3.0)
    assert eng.agent("a1").missed_in_row == 0  # type: ignore[union-attr]


def test_reservation_deadline_returns_to_hold_and_counts_a_miss() -> None:
    eng = engine(
        [SALES],
        [agent("a1"), agent("a2")],
        ready=[("a1", 0.0), ("a2", 1.0)],
        reservation_grace_s=2.0,
    )
    arrive(eng, "c1", "sales", 10.0)
    assert eng.next_deadline() == 27.0  # ring 15 + grace 2
    assert eng.handle_timer(26.9) == []
    cmds = eng.handle_timer(27.0)
    assert names(cmds)[0] == "ReturnToHold"
    assert offered_to(cmds) == "a2"
    assert eng.agent("a1").missed_in_row == 1  # type: ignore[union-attr]
    # The dialplan's own late NOANSWER for the withdrawn offer is stale.
    assert eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 27.5) == []


# --- answer, hang-ups, wrap-up --------------------------------------------------------------


def test_answered_call_record_and_wrapup_timer() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    cmds = arrive(eng, "c1", "sales", 100.0, vip=True)
    assert names(cmds) == ["CallQueued", "OfferCall", "CallOffered", "AgentStateChanged"]
    offer = one(cmds, OfferCall)
    assert (offer.device, offer.ring_timeout_s, offer.queue_id) == ("PJSIP/a1", 15.0, "sales")
    cmds = eng.handle(OfferAnswered("c1", "a1"), 104.0)
    assert names(cmds) == ["CallAnswered", "AgentStateChanged"]
    cmds = eng.handle(AgentHungUp("c1", "a1"), 200.0)
    assert one(cmds, AgentStateChanged).state == AgentState.WRAP_UP
    rec = one(eng.handle(CallHungUp("c1"), 201.0), CallEnded).record
    assert rec.result == CallResult.ANSWERED
    assert (rec.arrived_at, rec.first_offered_at, rec.answered_at, rec.ended_at) == (
        100.0,
        100.0,
        104.0,
        201.0,
    )
    assert (rec.answered_by, rec.agents_offered, rec.vip, rec.caller) == (
        "a1",
        ("a1",),
        True,
        "+c1",
    )
    assert eng.next_deadline() == 210.0
    assert eng.handle_timer(209.0) == []
    cmds = eng.handle_timer(210.0)
    assert names(cmds) == ["WrapUpEnded", "AgentStateChanged"]
    assert one(cmds, WrapUpEnded).call_id == "c1"
    assert eng.agent("a1").state == AgentState.READY  # type: ignore[union-attr]


def test_caller_hangup_while_connected_moves_agent_to_wrapup_and_ready_ends_it_early() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    cmds = eng.handle(CallHungUp("c1"), 50.0)
    assert names(cmds) == ["CallEnded", "AgentStateChanged"]
    arrive(eng, "c2", "sales", 51.0)
    cmds = eng.handle(AgentReady("a1"), 52.0)
    assert names(cmds)[:2] == ["WrapUpEnded", "AgentStateChanged"]
    assert one(cmds, OfferCall).call_id == "c2"
    assert eng.handle_timer(60.0) == []  # the wrap-up timer was cancelled


def test_zero_wrapup_goes_straight_back_to_ready() -> None:
    eng = engine([replace(SALES, wrapup_s=0.0)], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    cmds = eng.handle(CallHungUp("c1"), 5.0)
    assert names(cmds) == ["CallEnded", "AgentStateChanged", "WrapUpEnded", "AgentStateChanged"]
    assert eng.agent("a1").state == AgentState.READY  # type: ignore[union-attr]


def test_transfer_ends_answered_and_agent_wraps_up() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    cmds = eng.handle(CallTransferred("c1", "2000"), 30.0)
    rec = one(cmds, CallEnded).record
    assert (rec.result, rec.reason) == (CallResult.ANSWERED, "transferred")
    assert one(cmds, AgentStateChanged).state == AgentState.WRAP_UP
    assert eng.handle(CallHungUp("c1"), 31.0) == []  # late hang-up of a finished call


@pytest.mark.parametrize(
    ("waited", "result"),
    [(4.9, CallResult.SHORT_ABANDONED), (5.0, CallResult.ABANDONED), (120.0, CallResult.ABANDONED)],
)
def test_abandon_while_waiting(waited: float, result: CallResult) -> None:
    eng = engine([SALES], [])
    arrive(eng, "c1", "sales", 1000.0)
    cmds = eng.handle(CallHungUp("c1"), 1000.0 + waited)
    assert names(cmds) == ["CallEnded"]
    assert one(cmds, CallEnded).record.result == result
    assert eng.queue_stats("sales").waiting == 0


@pytest.mark.parametrize(
    ("waited", "result"), [(2.0, CallResult.SHORT_ABANDONED), (9.0, CallResult.ABANDONED)]
)
def test_abandon_while_ringing_frees_agent_without_a_miss(
    waited: float, result: CallResult
) -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 10.0)
    cmds = eng.handle(CallHungUp("c1"), 10.0 + waited)
    assert one(cmds, CallEnded).record.result == result
    change = one(cmds, AgentStateChanged)
    assert (change.state, change.previous) == (AgentState.READY, AgentState.RESERVED)
    view = eng.agent("a1")
    assert view is not None and (view.missed_in_row, view.idle_since) == (0, 0.0)
    assert eng.next_deadline() is None  # reservation deadline cancelled


@pytest.mark.parametrize("connected", [False, True])
def test_call_failed_frees_agent_to_ready_without_wrapup(connected: bool) -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 1.0)
    if connected:
        eng.handle(OfferAnswered("c1", "a1"), 2.0)
    cmds = eng.handle(CallFailed("c1", "server-lost"), 3.0)
    rec = one(cmds, CallEnded).record
    assert (rec.result, rec.reason) == (CallResult.FAILED, "server-lost")
    assert one(cmds, AgentStateChanged).state == AgentState.READY
    assert not of(cmds, WrapUpEnded)
    assert eng.call("c1") is None


def test_call_failed_while_waiting() -> None:
    eng = engine([SALES], [])
    arrive(eng, "c1", "sales", 1.0)
    assert (
        one(eng.handle(CallFailed("c1", "gone"), 2.0), CallEnded).record.result == CallResult.FAILED
    )


# --- pause / logout around offers and calls ---------------------------------------------------


@pytest.mark.parametrize(
    ("event", "state"),
    [
        (AgentPause("a1", "break"), AgentState.PAUSED),
        (AgentLogout("a1"), AgentState.LOGGED_OUT),
        (AgentDisconnected("a1"), AgentState.LOGGED_OUT),
    ],
)
def test_leaving_while_reserved_withdraws_and_reroutes(event: Event, state: AgentState) -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a1", 0.0), ("a2", 1.0)])
    arrive(eng, "c1", "sales", 5.0)
    cmds = eng.handle(event, 6.0)
    assert names(cmds)[0] == "ReturnToHold"
    assert one(cmds, ReturnToHold) == ReturnToHold("c1", "a1")
    assert offered_to(cmds) == "a2"
    assert one(cmds, CallQueued).reason == "withdrawn"
    a1 = eng.agent("a1")
    assert a1 is not None and a1.state == state and a1.missed_in_row == 0
    assert eng.call("c1").rona_count == 0  # type: ignore[union-attr]


def test_pause_while_on_call_applies_after_wrapup() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    assert eng.handle(AgentPause("a1", "lunch"), 2.0) == []
    assert eng.agent("a1").pending == "pause:lunch"  # type: ignore[union-attr]
    arrive(eng, "c2", "sales", 3.0)
    eng.handle(CallHungUp("c1"), 10.0)
    assert eng.agent("a1").state == AgentState.WRAP_UP  # type: ignore[union-attr]
    cmds = eng.handle_timer(20.0)
    assert names(cmds) == ["WrapUpEnded", "AgentStateChanged"]
    change = one(cmds, AgentStateChanged)
    assert (change.state, change.reason) == (AgentState.PAUSED, "lunch")
    assert eng.call("c2").state == "waiting"  # type: ignore[union-attr]


def test_ready_while_on_call_cancels_pending_pause() -> None:
    eng = engine([replace(SALES, wrapup_s=0.0)], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    eng.handle(AgentPause("a1", "lunch"), 2.0)
    assert eng.handle(AgentReady("a1"), 3.0) == []
    eng.handle(CallHungUp("c1"), 4.0)
    assert eng.agent("a1").state == AgentState.READY  # type: ignore[union-attr]


@pytest.mark.parametrize("event", [AgentLogout("a1"), AgentDisconnected("a1")])
def test_logout_while_on_call_applies_when_the_call_ends(event: Event) -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    assert eng.handle(event, 2.0) == []
    assert eng.agent("a1").state == AgentState.ON_CALL  # type: ignore[union-attr]
    cmds = eng.handle(AgentHungUp("c1", "a1"), 30.0)
    assert one(cmds, AgentStateChanged).state == AgentState.LOGGED_OUT
    assert eng.next_deadline() is None


def test_pause_during_wrapup_ends_it() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    eng.handle(OfferAnswered("c1", "a1"), 1.0)
    eng.handle(CallHungUp("c1"), 2.0)
    cmds = eng.handle(AgentPause("a1", "coaching"), 3.0)
    assert names(cmds) == ["WrapUpEnded", "AgentStateChanged"]
    assert eng.handle_timer(100.0) == []


# --- illegal requests raise and change nothing; stale facts are ignored ----------------------


def _snapshot(eng: RoutingEngine) -> tuple[object, ...]:
    return (
        tuple(eng.agents()),
        tuple(eng.waiting_calls()),
        tuple(eng.queue_stats(q) for q in eng.queue_ids()),
        eng.next_deadline(),
    )


def _setup(eng: RoutingEngine, state: str) -> None:
    """Bring a1 into ``state`` (a2 stays ready as a bystander)."""
    if state == "logged_out":
        return
    eng.handle(AgentLogin("a1", "PJSIP/a1"), 1.0)
    if state == "paused":
        return
    eng.handle(AgentReady("a1"), 2.0)
    if state == "ready":
        return
    arrive(eng, "c1", "sales", 3.0)
    if state == "reserved":
        return
    eng.handle(OfferAnswered("c1", "a1"), 4.0)


@pytest.mark.parametrize(
    ("state", "event", "error"),
    [
        ("logged_out", AgentReady("a1"), IllegalTransition),
        ("logged_out", AgentPause("a1", "x"), IllegalTransition),
        ("logged_out", AgentLogout("a1"), IllegalTransition),
        ("paused", AgentLogin("a1", "PJSIP/other"), IllegalTransition),
        ("ready", AgentLogin("a1", "PJSIP/other"), IllegalTransition),
        ("reserved", AgentReady("a1"), IllegalTransition),
        ("on_call", AgentLogin("a1", "SIP/x"), IllegalTransition),
        ("on_call", RemoveAgent("a1"), IllegalTransition),
        ("ready", AgentReady("nobody"), UnknownAgent),
        ("ready", AgentLogin("nobody", "PJSIP/9"), UnknownAgent),
        ("ready", RemoveQueue("nope"), UnknownQueue),
        ("reserved", RemoveQueue("sales"), QueueInUse),
        ("ready", SetQueueOpen("nope", False), UnknownQueue),
        ("ready", ConfigureQueue(QueueConfig("bad", skills=(("x", 9),))), InvalidConfig),
        ("ready", ConfigureQueue(QueueConfig("bad", ring_timeout_s=0)), InvalidConfig),
        ("ready", ConfigureAgent(AgentConfig("bad", skills=(("x", 0),))), InvalidConfig),
    ],
)
def test_illegal_requests_raise_and_leave_state_unchanged(
    state: str, event: Event, error: type[RoutingError]
) -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a2", 50.0)])
    _setup(eng, state)
    before = _snapshot(eng)
    with pytest.raises(error) as info:
        eng.handle(event, 10.0)
    assert info.value.error_id == error.error_id
    assert _snapshot(eng) == before


def test_error_ids_are_stable() -> None:
    assert [
        e.error_id
        for e in (RoutingError, UnknownAgent, UnknownQueue, IllegalTransition, DuplicateCall)
    ] == [
        "routing-error",
        "unknown-agent",
        "unknown-queue",
        "illegal-transition",
        "duplicate-call",
    ]
    err = IllegalTransition("a1", "logged_out", "ready")
    assert (err.state, err.action) == ("logged_out", "ready")


def test_duplicate_and_unknown_queue_calls_raise() -> None:
    eng = engine([SALES], [])
    arrive(eng, "c1", "sales", 0.0)
    before = _snapshot(eng)
    with pytest.raises(DuplicateCall):
        arrive(eng, "c1", "sales", 1.0)
    with pytest.raises(UnknownQueue):
        arrive(eng, "c2", "nope", 1.0)
    assert _snapshot(eng) == before


@pytest.mark.parametrize(
    "event",
    [
        CallHungUp("ghost"),
        CallFailed("ghost", "x"),
        CallTransferred("ghost"),
        OfferAnswered("ghost", "a1"),
        OfferFailed("ghost", "a1", OfferFailure.NOANSWER),
        OfferFailed("c1", "a2", OfferFailure.NOANSWER),  # not the agent that rings
        OfferAnswered("c1", "a2"),
        AgentHungUp("c1", "a1"),  # not connected yet
        AgentDisconnected("ghost-agent"),
    ],
)
def test_stale_or_unknown_telephony_facts_are_ignored(event: Event) -> None:
    eng = engine([SALES], [agent("a1"), agent("a2")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 1.0)
    eng.handle(AgentLogin("a2", "PJSIP/a2"), 1.5)
    before = _snapshot(eng)
    assert eng.handle(event, 2.0) == []
    assert _snapshot(eng) == before


def test_idempotent_requests_are_no_ops() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    assert eng.handle(AgentReady("a1"), 1.0) == []
    assert eng.handle(AgentLogin("a1", "PJSIP/a1"), 1.0) == []


# --- configuration changes and statistics -----------------------------------------------------


def test_queue_stats_are_maintained() -> None:
    eng = engine(
        [SALES, QueueConfig("other")], [agent("a1"), agent("a2"), agent("a3"), agent("a4")]
    )
    make_ready(eng, "a1", 1.0)
    make_ready(eng, "a2", 2.0)
    eng.handle(AgentLogin("a3", "PJSIP/a3"), 3.0)
    arrive(eng, "c1", "sales", 10.0)  # -> a1 reserved
    eng.handle(OfferAnswered("c1", "a1"), 11.0)
    arrive(eng, "c2", "sales", 12.0)  # -> a2 reserved
    arrive(eng, "c3", "sales", 13.0)  # waits
    s = eng.queue_stats("sales")
    assert (s.waiting, s.ringing, s.oldest_arrived_at) == (2, 1, 12.0)
    assert (s.members, s.logged_in, s.ready, s.reserved, s.on_call, s.wrap_up, s.paused) == (
        4,
        3,
        0,
        1,
        1,
        0,
        1,
    )
    assert eng.queue_stats("other").members == 0
    assert eng.queue_ids() == ["other", "sales"]
    eng.handle(CallHungUp("c2"), 14.0)  # abandon while ringing: a2 takes c3
    s = eng.queue_stats("sales")
    assert (s.waiting, s.ringing, s.oldest_arrived_at, s.reserved) == (1, 1, 13.0, 1)


def test_reconfiguring_an_agent_reroutes_it() -> None:
    eng = engine([SALES, QueueConfig("vip")], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "v1", "vip", 1.0)
    cmds = eng.handle(ConfigureAgent(agent("a1", queues=("sales", "vip"))), 2.0)
    assert offered_to(cmds) == "a1"
    assert eng.queue_stats("vip").reserved == 1


def test_reconfiguring_a_queue_relaxes_requirements_for_waiting_calls() -> None:
    eng = engine([SALES], [agent("a1", level=1)], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 1.0)
    cmds = eng.handle(ConfigureQueue(replace(SALES, skills=(("sales", 1),))), 2.0)
    assert one(cmds, CallOffered).agent_id == "a1"


def test_agents_may_be_configured_before_their_queues() -> None:
    eng = RoutingEngine()
    eng.handle(ConfigureAgent(agent("a1")), 0.0)
    make_ready(eng, "a1", 0.0)
    eng.handle(ConfigureQueue(SALES), 1.0)
    assert eng.queue_stats("sales").ready == 1
    assert offered_to(arrive(eng, "c1", "sales", 2.0)) == "a1"


def test_remove_agent_and_queue() -> None:
    eng = engine([SALES, QueueConfig("empty")], [agent("a1")])
    eng.handle(RemoveAgent("a1"), 1.0)
    assert eng.agent("a1") is None and eng.queue_stats("sales").members == 0
    eng.handle(RemoveQueue("empty"), 1.0)
    assert eng.queue_ids() == ["sales"]


def test_views() -> None:
    eng = engine([SALES], [agent("a1", team="blue")], ready=[("a1", 7.0)])
    arrive(eng, "c1", "sales", 8.0, entitled=True)
    a = eng.agent("a1")
    assert a is not None
    assert (a.state, a.call_id, a.device, a.queues, a.skills, a.team, a.since) == (
        AgentState.RESERVED,
        "c1",
        "PJSIP/a1",
        ("sales",),
        (("sales", 3),),
        "blue",
        8.0,
    )
    c = eng.call("c1")
    assert c is not None and (c.state, c.agent_id, c.priority, c.entitled) == (
        "offered",
        "a1",
        5,
        True,
    )
    assert [v.agent_id for v in eng.agents()] == ["a1"]
    assert eng.agent("nobody") is None and eng.call("nothing") is None
    with pytest.raises(UnknownQueue):
        eng.queue_stats("nope")
    with pytest.raises(TypeError):
        eng.handle("not an event", 1.0)  # type: ignore[arg-type]


def test_answered_notification_order() -> None:
    eng = engine([SALES], [agent("a1")], ready=[("a1", 0.0)])
    arrive(eng, "c1", "sales", 0.0)
    ans = one(eng.handle(OfferAnswered("c1", "a1"), 1.0), CallAnswered)
    assert (ans.call_id, ans.agent_id, ans.queue_id, ans.at) == ("c1", "a1", "sales", 1.0)


def test_agent_that_missed_takes_another_waiting_call_when_the_first_goes_elsewhere() -> None:
    q1 = QueueConfig("q1")
    q2 = QueueConfig("q2")
    eng = engine(
        [q1, q2], [AgentConfig("a1", queues=("q1", "q2")), AgentConfig("a2", queues=("q1",))]
    )
    make_ready(eng, "a1", 0.0)
    assert offered_to(arrive(eng, "c1", "q1", 1.0)) == "a1"
    arrive(eng, "c2", "q2", 2.0)  # waits: a1 rings, a2 is not in q2
    make_ready(eng, "a2", 5.0)  # nothing for a2 yet
    cmds = eng.handle(OfferFailed("c1", "a1", OfferFailure.NOANSWER), 10.0)
    offers = {o.call_id: o.agent_id for o in of(cmds, OfferCall)}
    assert offers == {"c1": "a2", "c2": "a1"}
