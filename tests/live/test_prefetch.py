"""Screen-pop prefetch: the CRM lookup starts at ``UserEvent: ACDArrive`` (top of the
inbound dialplan) and runs while the caller hears the greeting, so routing at ``ACDHold``
does not wait for the database.  Real simulator over TCP, real PostgreSQL lookups."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from cti.simulator import AsteriskSimulator, DeviceProfile
from tests.live.conftest import PLAIN_PHONE, VIP_PHONE, Recorder, Service, inbox_barrier
from tests.live.test_calls import call_id_of, outcome, ready_agent
from tests.polling import wait_for


@contextlib.contextmanager
def greeting(sim: AsteriskSimulator, seconds: float) -> Iterator[None]:
    """The simulator runs deploy/asterisk's inbound context: ACDArrive, greeting, hold."""
    sim.arrive_event, sim.greeting_s = True, seconds
    try:
        yield
    finally:
        sim.arrive_event, sim.greeting_s = False, 0.0


def delta(cc: Any, before: dict[str, int], name: str) -> int:
    return int(cc.counters[name] - before[name])


async def test_pop_prefetched_during_greeting_is_ready_at_hold(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    cc = service.callcenter
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.3, talk_s=0.5, agent_hangs_up_prob=1.0))
    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    before = dict(cc.counters)
    try:
        await ready_agent(service, a)
        with greeting(sim, 0.5):
            uid = sim.place_call(dnis="5002", caller_num=VIP_PHONE)
            call_id = call_id_of(service, 0, uid)
            # The lookup ran during the greeting: done before the caller reached hold.
            await wait_for(lambda: delta(cc, before, "prefetch_started") == 1, what="prefetch")
            assert call_id not in cc.state.calls and call_id in cc.state.prefetched
            offer = await ws.wait("offer", timeout=10)
        # Found ready at ACDHold: classified (VIP, entitled) and offered without waiting.
        assert delta(cc, before, "prefetch_ready") == 1
        assert delta(cc, before, "prefetch_waited") == 0
        assert call_id not in cc.state.prefetched and call_id not in cc.state.pending
        assert offer["call"]["call_id"] == call_id
        assert offer["call"]["vip"] is True and offer["call"]["entitled"] is True
        assert offer["pop"]["customer"]["name"] == "张伟"
        row = await outcome(service, call_id, result="answered")
        assert row.vip is True and row.entitled is True
        # Waiting counts from the queue: the row's arrival is ACDHold, after the greeting.
        assert sim.calls[uid].holds
        assert abs(row.arrived_at.timestamp() - sim.calls[uid].holds[0]) < 0.2
        assert row.arrived_at.timestamp() - sim.calls[uid].arrived >= 0.45
    finally:
        await ws.close()


async def test_lookup_slower_than_the_greeting_is_waited_for(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    cc = service.callcenter
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.3, talk_s=0.5, agent_hangs_up_prob=1.0))
    released = asyncio.Event()

    async def slow_lookup(phone: str, now: float) -> Any:
        await released.wait()  # the CRM is slow today: the caller reaches hold first
        assert real_lookup is not None
        return await real_lookup(phone, now)

    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    before = dict(cc.counters)
    real_lookup = cc.use_lookup(slow_lookup)
    try:
        await ready_agent(service, a)
        with greeting(sim, 0.1):
            uid = sim.place_call(dnis="5002", caller_num=VIP_PHONE)
            call_id = call_id_of(service, 0, uid)
            await wait_for(lambda: call_id in cc.state.pending, what="call in hold, lookup running")
        assert delta(cc, before, "prefetch_waited") == 1
        # Everything the driver had to do with the held call is done once a barrier put
        # on its inbox after the hold has run: it is still waiting for its pop, and the
        # ready agent was not reserved for it (not offered unclassified: VIP priority
        # needs the pop).  The look-up's own time limit (2 s here) has not passed.
        await inbox_barrier(cc)
        assert call_id in cc.state.pending
        assert cc.agent_view(a)["state"] == "ready"
        assert not ws.of("offer")
        released.set()
        offer = await ws.wait("offer", timeout=10)
        assert offer["call"]["call_id"] == call_id and offer["call"]["vip"] is True
        assert offer["pop"]["customer"]["name"] == "张伟"
        assert delta(cc, before, "prefetch_ready") == 0
        await outcome(service, call_id, result="answered", vip=True)
    finally:
        cc.use_lookup(real_lookup)
        released.set()
        await ws.close()


async def test_caller_gone_during_greeting_gets_its_own_row_and_its_prefetch_goes(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    sim = service.sims[1]
    cc = service.callcenter
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.2, talk_s=0.5, agent_hangs_up_prob=1.0))
    before = dict(cc.counters)
    await ready_agent(service, a)
    with greeting(sim, 1.0):
        gone = sim.place_call(dnis="5000", caller_num=PLAIN_PHONE, patience_s=0.2)
        gone_id = call_id_of(service, 1, gone)
        await wait_for(lambda: sim.calls[gone].result == "abandoned", what="hung up")
        # ACDArrive without ACDHold: recorded as an abandon in the greeting / IVR.
        row = await outcome(service, gone_id, result="abandoned_in_ivr")
        assert gone_id not in cc.state.prefetched and gone_id not in cc.state.calls
        uid = sim.place_call(dnis="5000", caller_num=VIP_PHONE)
        answered = await outcome(service, call_id_of(service, 1, uid), result="answered")
    assert not sim.calls[gone].holds
    assert row.answered_by is None and row.agents_offered == []
    assert row.caller == PLAIN_PHONE and row.dnis == "5000"
    assert row.queue_id is not None
    assert row.ended_at is not None and row.ended_at >= row.arrived_at
    assert answered.answered_by == int(a)
    assert delta(cc, before, "left_before_hold") == 1
    assert delta(cc, before, "prefetch_dropped") == 1
    assert delta(cc, before, "prefetch_started") == 2


async def test_the_service_leaves_the_collector_alone(service: Service) -> None:
    # The collector's tuning is the process entry point's (app.__main__.tune_gc), not the
    # library's: a running service in a test process changes nothing.
    import gc

    from app.__main__ import GC_THRESHOLDS

    assert gc.get_threshold() != GC_THRESHOLDS
    assert gc.get_freeze_count() == 0
    assert service.callcenter.agents  # (started: its state is loaded)


async def test_hangup_in_the_same_burst_as_the_arrival_still_ends_the_call(
    service: Service,
) -> None:
    # Under a backlog the consumer handles a caller's arrival and hangup in one burst: the
    # lookup task is cancelled before its first step.  The call must still end, once.
    from cti.types import CallerArriving, IncomingCall
    from routing.events import CallHungUp

    cc = service.callcenter
    ids = []
    for n, prefetch in enumerate((False, True)):
        call_id = f"pbx1/burst.{n}"
        ids.append(call_id)
        now = time.time()
        if prefetch:
            cc.sink(CallerArriving(call_id, "pbx1", f"burst.{n}", VIP_PHONE, "5002", now))
        cc.sink(
            IncomingCall(
                call_id=call_id,
                server="pbx1",
                uniqueid=f"burst.{n}",
                linkedid=f"burst.{n}",
                channel=f"PJSIP/trunk-burst{n}",
                caller_num=VIP_PHONE,
                caller_name="",
                dnis="5002",
                at=now,
            )
        )
        cc.sink(CallHungUp(call_id))  # same burst: nothing awaited in between
    for call_id in ids:
        row = await outcome(service, call_id, timeout=10)
        assert row.result in ("short_abandoned", "abandoned")
        assert call_id not in cc.state.pending and call_id not in cc.state.calls
        assert call_id not in cc.state.prefetched


async def test_consumer_lets_the_loop_run_during_a_backlog(service: Service) -> None:
    # A backlog of events must not keep the loop from reading sockets until Asterisk's
    # writetimeout cuts the AMI session: the consumer yields every few dozen items.
    cc = service.callcenter
    ticks = 0
    seen: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        for _ in range(1000):
            cc.inject_callable(lambda: seen.append(ticks))
        await wait_for(lambda: len(seen) == 1000, what="backlog processed")
    finally:
        task.cancel()
    assert len(set(seen)) >= 10  # the ticker ran many times while the backlog drained
