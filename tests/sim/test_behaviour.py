"""Simulator behaviour beyond the captures: PJSIP style, traces, faults, slow readers.

A § number is a section of the recordings' notes, tests/fixtures/ami/README.md.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from cti.simulator import AsteriskSimulator, DeviceProfile, SimUser
from tests.sim.amiclient import TestClient


async def _route(
    c: TestClient, channel: str, device: str, agent: str, ring_timeout: str = "15"
) -> None:
    await c.action(
        "Setvar", [("Channel", channel), ("Variable", "ACD_AGENT_DEVICE"), ("Value", device)]
    )
    await c.action(
        "Setvar", [("Channel", channel), ("Variable", "ACD_RING_TIMEOUT"), ("Value", ring_timeout)]
    )
    r = await c.action(
        "Redirect",
        [("Channel", channel), ("Context", "acd-connect"), ("Exten", agent), ("Priority", "1")],
    )
    assert r.get("Message") == "Redirect successful"


async def test_pjsip_answered_call_and_trace(pjsip_sim: AsteriskSimulator) -> None:
    sim = pjsip_sim
    c = await TestClient.connect(sim.port)
    await c.login("acdf")
    uid = sim.place_call(dnis="5000", caller_num="13800138000", caller_name="Jérôme 张")
    hold = await c.wait_event(lambda m: m.get("UserEvent") == "ACDHold")
    assert hold.get("Uniqueid") == uid and hold.get("Linkedid") == uid
    assert hold.get("Channel").startswith("PJSIP/trunk-")
    assert hold.get("CallerIDName") == "Jérôme 张"  # UTF-8 intact through the wire
    await _route(c, hold.get("Channel"), "PJSIP/1001", "1001")
    result = await c.wait_event(lambda m: m.get("UserEvent") == "ACDDialResult")
    assert result.get("DialStatus") == "ANSWER" and result.get("AgentId") == "1001"
    await c.wait_for(lambda: sum(1 for m in c.events("Hangup")) == 2)
    agent_new = [m for m in c.events("Newchannel") if m.get("Channel").startswith("PJSIP/1001-")]
    assert len(agent_new) == 1 and agent_new[0].get("Linkedid") == uid
    # fewer events than Local: trunk + one agent channel, no Local pairs or OriginateResponse
    assert not c.events("OriginateResponse")
    tr = sim.calls[uid]
    assert (
        tr.result == "answered" and tr.answered_by == "PJSIP/1001" and tr.offered == ["PJSIP/1001"]
    )
    assert tr.ended_by == "agent"
    assert sim.stats.answered == 1 and sim.stats.in_progress == 0 and not sim.channels()
    await c.close()


async def test_patience_abandon_unavailable_and_overflow(pjsip_sim: AsteriskSimulator) -> None:
    sim = pjsip_sim
    sim.set_device("PJSIP/1500", DeviceProfile(unavailable=True))
    c = await TestClient.connect(sim.port)
    await c.login()
    a = sim.place_call(dnis="5000", caller_num="1", patience_s=1.0)  # 20 ms scaled
    b = sim.place_call(dnis="5001", caller_num="2")
    hold_b = await c.wait_event(
        lambda m: m.get("UserEvent") == "ACDHold" and m.get("Uniqueid") == b
    )
    await _route(c, hold_b.get("Channel"), "PJSIP/1500", "1500")
    res = await c.wait_event(
        lambda m: m.get("UserEvent") == "ACDDialResult" and m.get("Uniqueid") == b
    )
    assert res.get("DialStatus") == "CHANUNAVAIL"
    await c.wait_for(lambda: len([m for m in c.events("UserEvent") if m.get("Uniqueid") == b]) == 3)
    r = await c.action(
        "Redirect",
        [("Channel", hold_b.get("Channel")), ("Context", "acd-overflow"), ("Exten", "s")],
    )
    assert r.get("Message") == "Redirect successful"
    await c.wait_for(lambda: sim.calls[a].result is not None and sim.calls[b].result is not None)
    assert sim.calls[a].result == "abandoned"
    assert sim.calls[b].result == "overflowed"
    await c.close()


async def test_rona_then_reroute_ringing_and_ami_hangup(pjsip_sim: AsteriskSimulator) -> None:
    sim = pjsip_sim
    sim.set_device("1900", DeviceProfile(answer_prob=0.0))
    sim.set_device("1001", DeviceProfile(ring_s=100.0))
    c = await TestClient.connect(sim.port)
    await c.login()
    uid = sim.place_call(dnis="5000", caller_num="1")
    hold = await c.wait_event(lambda m: m.get("UserEvent") == "ACDHold")
    chan = hold.get("Channel")
    await _route(c, chan, "PJSIP/1900", "1900", ring_timeout="1")
    res = await c.wait_event(lambda m: m.get("UserEvent") == "ACDDialResult")
    assert res.get("DialStatus") == "NOANSWER"
    await c.wait_for(lambda: len(c.events("UserEvent")) == 3)  # hold, result, hold again
    await _route(c, chan, "PJSIP/1001", "1001", ring_timeout="30")
    await c.wait_for(
        lambda: any(
            m.get("ChannelStateDesc") == "Ringing" and "1001" in m.get("Channel")
            for m in c.events("Newstate")
        )
    )
    await _route(c, chan, "PJSIP/1900", "1900", ring_timeout="30")  # re-route while ringing
    cancel = await c.wait_event(lambda m: m.name == "DialEnd" and m.get("DialStatus") == "CANCEL")
    assert cancel.get("Exten") == "1900"  # §6.19: the caller snapshot is already at the new place
    r = await c.action("Hangup", [("Channel", chan), ("Cause", "16")])
    assert r.get("Message") == "Channel Hungup"
    await c.wait_for(lambda: sim.calls[uid].result is not None)
    assert sim.calls[uid].dial_results == ["NOANSWER", "CANCEL", "CANCEL"]
    assert sim.calls[uid].result == "failed" and sim.calls[uid].ended_by == "ami"
    assert not sim.channels()
    await c.close()


async def test_originate_callback_pjsip_and_failure(pjsip_sim: AsteriskSimulator) -> None:
    sim = pjsip_sim
    sim.set_device("1002", DeviceProfile(talk_s=30.0))  # outlasts the customer's 2 s + 3 s
    c = await TestClient.connect(sim.port)
    await c.login()
    aid = c.send(
        "Originate",
        [
            ("Channel", "PJSIP/1002"),
            ("Context", "callback-out"),
            ("Exten", "13800138000"),
            ("Priority", "1"),
            ("ChannelId", "cb-1"),
            ("Variable", "ACD_CALLBACK_ID=cb-1"),
            ("Async", "true"),
        ],
    )
    await c.wait_for(lambda: c.response(aid) is not None)
    ok = await c.wait_event(lambda m: m.name == "OriginateResponse" and m.get("ActionID") == aid)
    assert (
        ok.get("Response") == "Success" and ok.get("Reason") == "4" and ok.get("Uniqueid") == "cb-1"
    )
    res = await c.wait_event(lambda m: m.get("UserEvent") == "ACDCallbackResult")
    assert res.get("DialStatus") == "ANSWER" and res.get("Linkedid") == "cb-1"
    bad = c.send(
        "Originate",
        [("Channel", "SIP/nowhere"), ("Application", "Wait"), ("Data", "1"), ("Async", "true")],
    )
    fail = await c.wait_event(lambda m: m.name == "OriginateResponse" and m.get("ActionID") == bad)
    assert (
        fail.get("Response") == "Failure"
        and fail.get("Reason") == "0"
        and fail.get("Uniqueid") == "<unknown>"
    )
    await c.close()


async def test_drop_connections_resets_sessions(pjsip_sim: AsteriskSimulator) -> None:
    c = await TestClient.connect(pjsip_sim.port)
    await c.login()
    pjsip_sim.drop_connections()
    await asyncio.wait_for(c.eof.wait(), 2)
    c2 = await TestClient.connect(pjsip_sim.port)  # still listening
    r = await c2.login()
    assert r.get("Message") == "Authentication accepted"
    await c.close()
    await c2.close()


async def test_restart_drops_channels_and_uptime_goes_down() -> None:
    clock = [1000.0]
    sim = AsteriskSimulator(time_scale=0.02, monotonic=lambda: clock[0])
    await sim.start()
    try:
        clock[0] += 100  # it has been up for 100 s
        c = await TestClient.connect(sim.port)
        await c.login()
        booted = await c.wait_event(lambda m: m.name == "FullyBooted")
        assert int(booted.get("Uptime")) >= 100
        uid = sim.place_call(dnis="5000", caller_num="1")
        assert sim.channels()
        await sim.restart()
        await asyncio.wait_for(c.eof.wait(), 2)
        assert not sim.channels()
        assert sim.calls[uid].result == "lost" and sim.stats.in_progress == 0
        c2 = await TestClient.connect(sim.port)
        await c2.login()
        booted2 = await c2.wait_event(lambda m: m.name == "FullyBooted")
        assert int(booted2.get("Uptime")) < int(booted.get("Uptime"))
        await c.close()
        await c2.close()
    finally:
        await sim.close()


async def test_response_delay_keeps_order(pjsip_sim: AsteriskSimulator) -> None:
    c = await TestClient.connect(pjsip_sim.port)
    await c.login()
    pjsip_sim.set_response_delay(0.2)
    t0 = time.monotonic()
    a = c.send("Ping")
    b = c.send("Ping")
    await c.wait_for(lambda: c.response(b) is not None)
    assert time.monotonic() - t0 >= 0.4  # two actions, handled one after the other
    order = [m.get("ActionID") for m in c.messages if m.kind == "response"]
    assert order.index(a) < order.index(b)
    pjsip_sim.set_response_delay(0)
    await c.close()


async def test_slow_reader_is_cut_off() -> None:
    users = {"fast": SimUser("s"), "slow": SimUser("s", writetimeout_ms=100)}
    sim = AsteriskSimulator(users=users)
    await sim.start()
    try:
        fast = await TestClient.connect(sim.port)
        await fast.login("fast", "s")
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        writer.write(b"Action: Login\r\nUsername: slow\r\nSecret: s\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"Authentication accepted\r\n\r\n")
        # The slow client now stops reading; flood events until its session is cut.
        big = "x" * 8000
        for _ in range(200):
            for _ in range(50):
                fast.send("UserEvent", [("UserEvent", "Flood"), ("Data", big)])
            await asyncio.sleep(0.02)
            if sim.stats.sessions_cut_slow:
                break
        assert sim.stats.sessions_cut_slow == 1
        for _ in range(100):
            if sim.stats.sessions == 1:
                break
            await asyncio.sleep(0.01)
        assert sim.stats.sessions == 1  # only the fast session is left
        writer.close()
        await fast.close()
    finally:
        await sim.close()


async def test_login_failure_delay_and_permission(pjsip_sim: AsteriskSimulator) -> None:
    c = await TestClient.connect(pjsip_sim.port)
    r = await c.action("Status")
    assert r.get("Message") == "Permission denied"
    t0 = time.monotonic()
    r = await c.action("Login", [("Username", "acd"), ("Secret", "wrong")])
    assert r.get("Message") == "Authentication failed"
    assert time.monotonic() - t0 >= 0.05
    await asyncio.wait_for(c.eof.wait(), 2)
    await c.close()


async def test_run_traffic_poisson_no_lost_calls() -> None:
    sim = AsteriskSimulator(time_scale=0.01, seed=7)
    await sim.start()
    try:
        c = await TestClient.connect(sim.port)
        await c.login("acdf")
        routed: set[str] = set()

        def pump() -> None:
            for m in c.events("UserEvent"):
                ch = m.get("Channel")
                if m.get("UserEvent") == "ACDHold" and ch not in routed:
                    routed.add(ch)
                    for h in (("ACD_AGENT_DEVICE", "PJSIP/1001"), ("ACD_RING_TIMEOUT", "15")):
                        c.send("Setvar", [("Channel", ch), ("Variable", h[0]), ("Value", h[1])])
                    c.send(
                        "Redirect", [("Channel", ch), ("Context", "acd-connect"), ("Exten", "1001")]
                    )

        task = asyncio.create_task(
            sim.run_traffic(
                rate_per_s=200,
                duration_s=0.5,
                dnis=["5000"],
                callers=lambda r: ("1", "C"),
                patience=lambda r: 30.0,
            )
        )
        while not task.done():
            pump()
            await asyncio.sleep(0.005)
        await task

        def pumped_and_drained() -> bool:
            pump()
            return sim.stats.in_progress == 0

        await c.wait_for(pumped_and_drained, 10)
        placed = sim.stats.placed
        assert 50 <= placed <= 200
        assert sim.stats.answered + sim.stats.abandoned == placed
        assert all(t.result in ("answered", "abandoned") for t in sim.calls.values())
        await c.close()
    finally:
        await sim.close()


async def test_arrive_event_and_greeting_before_hold() -> None:
    # deploy/asterisk's inbound context: UserEvent(ACDArrive) before Answer, a greeting,
    # then acd-hold; the caller's patience runs from arrival, through the greeting.
    sim = AsteriskSimulator(channel_style="pjsip", arrive_event=True, greeting_s=0.3)
    await sim.start()
    try:
        c = await TestClient.connect(sim.port)
        await c.login("acdf")  # the router's include-only event filter lets both through
        t0 = time.monotonic()
        uid = sim.place_call(dnis="5000", caller_num="13800138000")
        arrive = await c.wait_event(lambda m: m.get("UserEvent") == "ACDArrive")
        assert arrive.get("Uniqueid") == uid and arrive.get("DNIS") == "5000"
        assert arrive.get("Context") == "acd-inbound"
        assert arrive.get("CallerIDNum") == "13800138000"
        assert not [m for m in c.events("UserEvent") if m.get("UserEvent") == "ACDHold"]
        hold = await c.wait_event(lambda m: m.get("UserEvent") == "ACDHold")
        assert time.monotonic() - t0 >= 0.28  # not before the greeting ended
        assert hold.get("Uniqueid") == uid and hold.get("DNIS") == "5000"
        tr = sim.calls[uid]
        assert len(tr.holds) == 1 and tr.holds[0] - tr.arrived >= 0.28
        # A caller who gives up during the greeting never reaches hold.
        gone = sim.place_call(dnis="5000", caller_num="13800138001", patience_s=0.1)
        await c.wait_for(lambda: sim.calls[gone].result is not None)
        assert sim.calls[gone].result == "abandoned" and sim.calls[gone].holds == []
        # A later caller's greeting ends after the one that gave up would have: the
        # simulator runs its timers in deadline order and writes events in order, so once
        # this caller's ACDHold is read, any ACDHold of the other one was read before it.
        later = sim.place_call(dnis="5000", caller_num="13800138002")
        await c.wait_event(lambda m: m.get("UserEvent") == "ACDHold" and m.get("Uniqueid") == later)
        holds = [m for m in c.events("UserEvent") if m.get("UserEvent") == "ACDHold"]
        assert [m.get("Uniqueid") for m in holds] == [uid, later]
        await c.close()
    finally:
        await sim.close()
    with pytest.raises(ValueError):
        AsteriskSimulator(greeting_s=-1.0)


async def test_one_loop_timer_drives_every_simulated_timer() -> None:
    # All simulated timers share ONE loop handle.  Timers scheduled by a timer callback
    # (ring -> answer -> talk -> hang up) must not leave extra live handles behind.
    # The greeting's end is a timer whose callback schedules the hold timer.
    sim = AsteriskSimulator(channel_style="pjsip", time_scale=0.01, greeting_s=1.0)
    await sim.start()
    try:
        c = await TestClient.connect(sim.port)
        await c.login("acdf")
        for i in range(40):
            sim.place_call(dnis="5000", caller_num=str(1000 + i), patience_s=30.0 + i)
        await c.wait_for(
            lambda: len([m for m in c.events("UserEvent") if m.get("UserEvent") == "ACDHold"]) == 40
        )
        # Each greeting's end ran in a timer callback and scheduled that caller's hold
        # timer: still one loop handle (the count is kept as handles are armed, fired and
        # cancelled, so it is exact the moment the events were written).
        assert sim.stats.timer_handles_live == 1
        # The callers give up one by one: more callbacks that schedule timers.
        await c.wait_for(lambda: sim.stats.in_progress == 0)
        assert sim.stats.timer_handles_live <= 1
        await c.close()
    finally:
        await sim.close()
