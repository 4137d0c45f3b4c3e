"""Wallboard counters: definitions, rolling windows, snapshot + deltas (pure, no I/O)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

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
