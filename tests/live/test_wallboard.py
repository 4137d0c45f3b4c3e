"""Wallboard counters: definitions, rolling windows, snapshot + deltas (pure, no I/O)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from app.kpi import SlFormula
from app.live.wallboard import OVERALL, Wallboard, apply_delta
from routing.commands import (
    AgentState,
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallRecord,
    CallResult,
    WrapUpEnded,
)

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


def answered(wb: Wallboard, call: str, queue: str, at: float, wait: float, talk: float) -> None:
    wb.apply(CallQueued(call, queue, at), at)
    wb.apply(CallAnswered(call, "1001", queue, at + wait), at + wait)
    rec = CallRecord(
        call_id=call,
        queue_id=queue,
        caller="1",
        result=CallResult.ANSWERED,
        arrived_at=at,
        ended_at=at + wait + talk,
        answered_at=at + wait,
        answered_by="1001",
    )
    wb.apply(CallEnded(rec), at + wait + talk)


def abandoned(wb: Wallboard, call: str, queue: str, at: float, after: float) -> None:
    wb.apply(CallQueued(call, queue, at), at)
    rec = CallRecord(
        call_id=call,
        queue_id=queue,
        caller="1",
        result=CallResult.ABANDONED,
        arrived_at=at,
        ended_at=at + after,
    )
    wb.apply(CallEnded(rec), at + after)


def test_service_level_asa_aht_abandon_rate() -> None:
    wb = Wallboard(now=T0)
    wb.set_queues(["q1", "q2"])
    answered(wb, "a", "q1", T0, wait=5, talk=30)  # within 15 s
    answered(wb, "b", "q1", T0 + 1, wait=25, talk=50)  # outside
    abandoned(wb, "c", "q1", T0 + 2, after=20)  # counts against SL
    abandoned(wb, "d", "q1", T0 + 3, after=2)  # short abandon: excluded
    wb.apply(WrapUpEnded("1001", "a", T0 + 45), T0 + 45)  # 30 talk + 10 wrap = 40
    state = wb.state(T0 + 59)
    today = state["queues"]["q1"]["windows"]["today"]
    assert today["offered"] == 4
    assert today["answered"] == 2
    assert today["answered_in_sl"] == 1
    assert today["abandoned"] == 1
    assert today["short_abandoned"] == 1
    assert today["service_level"] == round(1 / 3, 4)
    assert today["abandon_rate"] == round(1 / 3, 4)
    assert today["asa_s"] == 15.0
    assert today["aht_s"] == 40.0  # only the wrapped-up call is handled
    assert state["overall"]["windows"]["15m"] == today
    assert state["queues"]["q2"]["windows"]["today"]["offered"] == 0
    assert state["queues"]["q2"]["windows"]["today"]["service_level"] is None


def test_windows_roll_over_by_minute() -> None:
    wb = Wallboard(now=T0)
    answered(wb, "a", "q", T0, wait=1, talk=1)
    assert wb.state(T0 + 14 * 60)["overall"]["windows"]["15m"]["answered"] == 1
    assert wb.state(T0 + 15 * 60)["overall"]["windows"]["15m"]["answered"] == 0
    assert wb.state(T0 + 15 * 60)["overall"]["windows"]["60m"]["answered"] == 1
    answered(wb, "b", "q", T0 + 30 * 60, wait=1, talk=1)
    state = wb.state(T0 + 60 * 60)
    assert state["overall"]["windows"]["60m"]["answered"] == 1  # "a" left the hour
    assert state["overall"]["windows"]["15m"]["answered"] == 0
    # A long idle gap empties both windows without touching buckets that never existed.
    state = wb.state(T0 + 10 * 3600)
    assert state["overall"]["windows"]["60m"]["offered"] == 0


def test_waiting_and_longest_wait_from_arrival() -> None:
    wb = Wallboard(now=T0)
    wb.apply(CallQueued("a", "q", T0), T0)
    wb.apply(CallQueued("b", "q", T0 + 10), T0 + 10)
    wb.apply(CallQueued("a", "q", T0 + 20, reason="noanswer"), T0 + 20)  # re-queued after RONA
    state = wb.state(T0 + 30)
    assert state["queues"]["q"]["waiting"] == 2
    assert state["queues"]["q"]["longest_wait_s"] == 30
    assert state["queues"]["q"]["windows"]["today"]["offered"] == 2  # a re-queue is no new call


def test_agents_by_state_per_queue() -> None:
    wb = Wallboard(now=T0)
    wb.set_agent_queues("1001", ["q1", "q2"])
    wb.set_agent_queues("1002", ["q2"])
    wb.apply(AgentStateChanged("1001", AgentState.READY, T0), T0)
    wb.apply(AgentStateChanged("1002", AgentState.PAUSED, T0, reason="lunch"), T0)
    wb.apply(AgentStateChanged("1001", AgentState.ON_CALL, T0 + 1), T0 + 1)
    state = wb.state(T0 + 2)
    assert state["queues"]["q1"]["agents"]["on_call"] == 1
    assert state["queues"]["q1"]["agents"]["ready"] == 0
    assert state["queues"]["q2"]["agents"]["paused"] == 1
    assert state["overall"]["agents"]["on_call"] == 1
    wb.set_agent_queues("1001", ["q2"])  # moved between queues
    state = wb.state(T0 + 3)
    assert state["queues"]["q1"]["agents"]["on_call"] == 0
    assert state["queues"]["q2"]["agents"]["on_call"] == 1
    wb.apply(AgentStateChanged("1001", AgentState.LOGGED_OUT, T0 + 4), T0 + 4)
    assert wb.state(T0 + 5)["overall"]["agents"]["on_call"] == 0


def clock_at(now: float) -> Callable[[], float]:
    """A clock stopped at ``now`` (``publish_async`` reads the time per slice)."""
    return lambda: now


async def test_snapshot_plus_deltas_reproduce_state() -> None:
    wb = Wallboard(now=T0)
    wb.set_queues(["q"])
    client: dict[str, Any] = dict(copy.deepcopy(wb.snapshot(T0)))
    seq = client.pop("seq")
    client.pop("type")
    client.pop("history")  # the chart's points, not part of the state the deltas change
    t = T0
    for i in range(5):
        t += 1
        answered(wb, f"c{i}", "q", t, wait=i, talk=2)
        delta = await wb.publish_async(clock_at(t + 5))
        assert delta is not None
        assert delta["seq"] == seq + 1
        seq = delta["seq"]
        apply_delta(client, dict(delta))
        current = wb.state(t + 5)
        assert client == current
    # Nothing changed -> no delta and no sequence number used.
    assert await wb.publish_async(clock_at(t + 5)) is None
    assert wb.seq == seq


async def test_delta_contains_only_what_changed() -> None:
    wb = Wallboard(now=T0)
    wb.set_queues(["q1", "q2"])
    wb.snapshot(T0)
    wb.apply(CallQueued("a", "q1", T0), T0)
    delta = await wb.publish_async(clock_at(T0 + 1))
    assert delta is not None
    assert set(delta["queues"]) == {"q1"}
    assert delta["queues"]["q1"]["waiting"] == 1
    assert "agents" not in delta["queues"]["q1"]
    assert delta["overall"]["waiting"] == 1


def test_overall_scope_name_is_not_a_queue() -> None:
    wb = Wallboard(now=T0)
    wb.set_queues(["q"])
    assert OVERALL not in wb.state(T0)["queues"]


async def test_publish_in_slices_matches_one_pass_and_yields_to_the_loop() -> None:
    now = [T0]
    sliced, whole = Wallboard(now=T0), Wallboard(now=T0)
    queues = [str(q) for q in range(1, 41)]
    for wb in (sliced, whole):
        wb.set_queues(queues)
        for i, q in enumerate(queues):
            wb.set_agent_queues(f"a{i}", [q])
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        for step in range(3):
            for i, q in enumerate(queues[: 10 * (step + 1)]):
                for wb in (sliced, whole):
                    wb.apply(AgentStateChanged(f"a{i}", AgentState.READY, now[0] - step), now[0])
                    wb.apply(CallQueued(f"c{step}-{q}", q, now[0], 0, "arrived"), now[0])
            now[0] += 1
            ticks = 0
            delta = await sliced.publish_async(lambda: now[0], chunk=8)
            assert ticks >= 4  # 41 scopes / 8 per slice: the loop ran in between
            assert delta == await whole.publish_async(lambda: now[0], chunk=len(queues) + 1)
            assert sliced.seq == whole.seq
    finally:
        task.cancel()
    assert await sliced.publish_async(lambda: now[0]) is None  # nothing changed


def test_service_level_uses_each_queues_own_threshold() -> None:
    """A queue with a 1 s target: calls answered after 1.4-2.9 s are all outside it
    (the overall scope judges each call by its own queue's threshold)."""
    wb = Wallboard(now=T0)
    wb.set_queue("fast", sl_target_s=1.0)
    wb.set_queue("slow", sl_target_s=30.0)
    for i, wait in enumerate((1.4, 2.0, 2.9)):
        answered(wb, f"f{i}", "fast", T0 + i, wait=wait, talk=5)
    answered(wb, "s0", "slow", T0, wait=20, talk=5)
    answered(wb, "f3", "fast", T0 + 5, wait=0.5, talk=5)
    state = wb.state(T0 + 59)
    fast = state["queues"]["fast"]["windows"]["today"]
    assert (fast["answered"], fast["answered_in_sl"]) == (4, 1)
    assert fast["service_level"] == 0.25
    slow = state["queues"]["slow"]["windows"]["today"]
    assert (slow["answered"], slow["answered_in_sl"]) == (1, 1)
    overall = state["overall"]["windows"]["today"]
    assert (overall["answered"], overall["answered_in_sl"]) == (5, 2)


def test_service_level_formula_and_short_abandon_threshold_are_configurable() -> None:
    def board(**kw: Any) -> dict[str, Any]:
        wb = Wallboard(now=T0, **kw)
        answered(wb, "a", "q", T0, wait=5, talk=5)  # within 15 s
        answered(wb, "b", "q", T0, wait=20, talk=5)  # outside
        abandoned(wb, "c", "q", T0, after=3)  # short with 5 s, long with 2 s
        abandoned(wb, "d", "q", T0, after=30)
        return dict(wb.state(T0 + 59)["queues"]["q"]["windows"]["today"])

    default = board()  # answered-within / (offered - short abandons)
    assert (default["abandoned"], default["short_abandoned"]) == (1, 1)
    assert default["service_level"] == round(1 / 3, 4)
    offered = board(sl_formula=SlFormula.OFFERED)  # answered-within / offered
    assert offered["service_level"] == 0.25
    short2 = board(short_abandon_s=2.0)
    assert (short2["abandoned"], short2["short_abandoned"]) == (2, 0)
    assert short2["service_level"] == 0.25


def test_history_is_the_last_hour_per_minute_from_the_server() -> None:
    """The last-hour chart's points come with the snapshot: the 15-minute service level
    at the end of each minute and the most callers waiting in it."""
    wb = Wallboard(now=T0)
    answered(wb, "a", "q", T0 + 5, wait=5, talk=1)  # minute 0: within
    wb.apply(CallQueued("w1", "q", T0 + 130), T0 + 130)  # minute 2: two waiting
    wb.apply(CallQueued("w2", "q", T0 + 140), T0 + 140)
    abandoned(wb, "b", "q", T0 + 181, after=20)  # minute 3: one more waiting, then abandon
    history = wb.snapshot(T0 + 200)["history"]
    assert len(history) == 60
    assert history[-1]["t"] == T0 + 200
    assert [p["t"] for p in history[-4:-1]] == [T0 + 60, T0 + 120, T0 + 180]
    by_minute = history[-4:]
    assert [p["sl"] for p in by_minute] == [1.0, 1.0, 1.0, 0.5]
    assert [p["w"] for p in by_minute] == [1, None, 2, 3]
    assert history[0]["sl"] is None
    # An hour later the first minutes have left the chart.
    later = wb.history(T0 + 3600 + 150)
    assert len(later) == 60 and later[0]["sl"] == 0.5
