"""Calls on a real Asterisk 22: outcome rows, agent states and the AMI events behind them.

Each test builds its own queue and agents (``center``), places callers with
``Originate Local/<DNIS>@lab-trunk`` and checks three views of the same calls: the
outcome rows (REST ``/calls``), the agents' live states (REST) and what Asterisk itself
reported on the lab's unfiltered AMI session.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest

from tests.asterisk.lab import SWITCHBOARD_USER, require_asterisk

require_asterisk()

from tests.asterisk.conftest import Center  # noqa: E402
from tests.polling import wait_for  # noqa: E402


def dial_ends(center: Center, call_id: str, device: str) -> list[str]:
    """DialStatus of every Dial() of ``device`` from this caller, as Asterisk reported it."""
    uid = center.uid(call_id)
    return [
        e.get("DialStatus")
        for e in center.ami.of("DialEnd", lambda e: e.get("Uniqueid") == uid)
        if e.get("DestChannel").startswith(f"{device}-")  # Local/<exten>@<context>-<n>;1
    ]


def no_spurious_dial_result(center: Center) -> None:
    """The hangup extension of [acd-connect] never reports a dial result (AgentId: h)."""
    assert not center.ami.user_events("ACDDialResult", AgentId="h")


async def settled(center: Center, agent_id: str, *states: str) -> dict[str, Any]:
    async def in_state() -> dict[str, Any] | None:
        view = await center.state(agent_id)
        return view if view["state"] in states else None

    found: dict[str, Any] = await wait_for(in_state, what=f"agent {agent_id} in {states}")
    return found


async def test_answered_caller_hangs_up_first(center: Center) -> None:
    await center.queue()
    agent = await center.agent("TALK-30")
    call = await center.call(stay_s=3)

    row = await center.row(call)
    assert row["result"] == "answered"
    assert row["answered_by"] == int(agent)
    assert row["agents_offered"] == [int(agent)]
    assert row["rona_count"] == 0
    assert row["talk_s"] is not None and 1.0 < row["talk_s"] < 10
    assert row["dnis"] == center.dnis
    assert row["caller"] == "13900000000"
    assert dial_ends(center, call, center.devices[agent]) == ["ANSWER"]
    assert len(center.ami.user_events("ACDHold", Uniqueid=center.uid(call))) == 1
    # The agent's phone is free again and the agent goes back to ready (no wrap-up).
    await settled(center, agent, "ready")
    assert [r["call_id"] for r in await center.rows()] == [call]
    no_spurious_dial_result(center)


async def test_answered_agent_hangs_up_first(center: Center) -> None:
    await center.queue()
    agent = await center.agent("TALK-2")
    call = await center.call(stay_s=60)

    row = await center.row(call)
    assert row["result"] == "answered"
    assert row["answered_by"] == int(agent)
    assert row["talk_s"] is not None and 1.0 < row["talk_s"] < 10
    # The caller left acd-connect when the agent hung up (Dial option g, then Hangup).
    hangups = center.events_of(call, "Hangup")
    assert len(hangups) == 1
    assert dial_ends(center, call, center.devices[agent]) == ["ANSWER"]
    await settled(center, agent, "ready")
    assert len(await center.rows()) == 1
    no_spurious_dial_result(center)


async def test_rona_then_second_agent(center: Center) -> None:
    await center.queue(ring_timeout_s=2.0)
    # The only ready agent never answers; one miss pauses it (max_missed=1).
    silent = await center.agent("MUTE", max_missed=1)
    call = await center.call(stay_s=4)
    await wait_for(
        lambda: dial_ends(center, call, center.devices[silent]),
        what="the silent agent's Dial to end",
    )
    view = await settled(center, silent, "paused")
    assert view["missed_in_row"] == 1
    second = await center.agent("TALK-30")

    row = await center.row(call)
    assert row["result"] == "answered"
    assert row["answered_by"] == int(second)
    assert row["agents_offered"] == [int(silent), int(second)]
    assert row["rona_count"] == 1
    assert dial_ends(center, call, center.devices[silent]) == ["NOANSWER"]
    assert dial_ends(center, call, center.devices[second]) == ["ANSWER"]
    # The caller went back to acd-hold once, and the dialplan reported the miss.
    assert len(center.ami.user_events("ACDHold", Uniqueid=center.uid(call))) == 2
    results = center.ami.user_events("ACDDialResult", Uniqueid=center.uid(call))
    assert [e.get("DialStatus") for e in results if e.get("AgentId") == silent] == ["NOANSWER"]


async def test_busy_agent_then_second_agent(center: Center) -> None:
    await center.queue(ring_timeout_s=5.0)
    busy = await center.agent("BUSY", max_missed=1)
    call = await center.call(stay_s=4)
    await wait_for(
        lambda: dial_ends(center, call, center.devices[busy]),
        what="the busy agent's Dial to end",
    )
    await settled(center, busy, "paused")
    second = await center.agent("TALK-30")

    row = await center.row(call)
    assert row["result"] == "answered"
    assert row["answered_by"] == int(second)
    assert row["agents_offered"][0] == int(busy)
    assert dial_ends(center, call, center.devices[busy]) == ["BUSY"]
    results = center.ami.user_events("ACDDialResult", Uniqueid=center.uid(call))
    assert [e.get("DialStatus") for e in results if e.get("AgentId") == busy] == ["BUSY"]


async def test_abandon_while_waiting(center: Center) -> None:
    await center.queue()
    paused = await center.agent("TALK-30", ready=False)  # logged in, never ready
    call = await center.call(stay_s=2)

    row = await center.row(call)
    assert row["result"] == "short_abandoned"  # gave up within 5 s
    assert row["answered_by"] is None
    assert row["agents_offered"] == []
    assert row["wait_s"] is not None and 1.0 < row["wait_s"] < 5.0
    assert center.ami.user_events("ACDHold", Uniqueid=center.uid(call))
    assert not center.ami.of("DialBegin", lambda e: e.get("Uniqueid") == center.uid(call))
    assert (await center.state(paused))["state"] == "paused"


async def test_abandon_while_ringing(center: Center) -> None:
    await center.queue(ring_timeout_s=30.0)
    silent = await center.agent("MUTE")
    call = await center.call(stay_s=3)  # gives up while the agent's phone rings

    row = await center.row(call)
    assert row["result"] == "short_abandoned"
    assert row["answered_by"] is None
    assert row["agents_offered"] == [int(silent)]
    assert row["rona_count"] == 0
    # Dial() saw the caller go: CANCEL, and no ACDDialResult (the dialplan stopped).
    assert dial_ends(center, call, center.devices[silent]) == ["CANCEL"]
    assert not center.ami.user_events("ACDDialResult", Uniqueid=center.uid(call))
    view = await settled(center, silent, "ready")
    assert view["missed_in_row"] == 0


async def test_auto_pause_after_max_missed_real_misses(center: Center) -> None:
    await center.queue(ring_timeout_s=2.0)
    silent = await center.agent("MUTE", max_missed=2)
    call = await center.call(stay_s=8)

    view = await settled(center, silent, "paused")
    # Each miss the agent is charged with is a NOANSWER Asterisk reported for its phone.
    misses = dial_ends(center, call, center.devices[silent])
    assert view["missed_in_row"] == 2
    assert misses == ["NOANSWER", "NOANSWER"], misses
    row = await center.row(call)  # the caller gives up, nobody else is in the queue
    assert row["rona_count"] == 2
    assert row["agents_offered"] == [int(silent), int(silent)]  # one entry per offer


async def test_overflow_to_ext_target_after_max_wait(center: Center) -> None:
    await center.queue(max_wait_s=2.0, overflow_target="ext:lab-overflow,555")
    await center.agent("TALK-30", ready=False)  # in the queue, never ready
    call = await center.call(stay_s=6)

    await wait_for(
        lambda: center.ami.user_events("LabOverflow", Uniqueid=center.uid(call)),
        what="the caller redirected to lab-overflow",
    )
    row = await center.row(call)
    assert row["result"] == "overflowed"
    assert row["overflow_target"] == "ext:lab-overflow,555"
    assert row["answered_by"] is None
    assert row["wait_s"] is not None and 1.5 < row["wait_s"] < 5.0


async def test_caller_hangs_up_during_greeting(center: Center) -> None:
    if not center.ami_greeting:
        pytest.skip("no greeting recording on this PBX (ASTERISK_GREETING)")
    await center.queue()
    agent = await center.agent("TALK-30")
    call = await center.call(stay_s=1, greeting=True)  # the greeting lasts 3 s

    uid = center.uid(call)
    await wait_for(lambda: center.events_of(call, "Hangup"), what="the caller's hangup")
    assert center.ami.user_events("ACDArrive", Uniqueid=uid)
    assert not center.ami.user_events("ACDHold", Uniqueid=uid)
    assert (await center.state(agent))["state"] == "ready"
    row = await center.row(call, timeout=10)
    assert row["answered_by"] is None
    assert row["result"] == "abandoned_in_ivr"  # its own row: offered, left in the IVR
    assert row["agents_offered"] == []
    assert len([r for r in await center.rows() if r["call_id"] == call]) == 1


async def test_burst_one_row_per_call_no_agent_double_booked(center: Center) -> None:
    calls_n, rate, agents_n = 100, 20.0, 50
    await center.queue(ring_timeout_s=5.0)
    agents = [await center.agent("TALK-2") for _ in range(agents_n)]
    calls: list[str] = []
    for _ in range(calls_n):
        calls.append(await center.call(stay_s=60))
        await asyncio.sleep(1 / rate)

    async def all_rows() -> list[dict[str, Any]] | None:
        rows = await center.rows()
        done = [r for r in rows if r["ended_at"]]
        return rows if len(done) >= calls_n else None

    rows = await wait_for(all_rows, timeout=120, interval=0.5, what="a row per call")
    count = Counter(r["call_id"] for r in rows)
    assert sorted(count) == sorted(calls)
    assert set(count.values()) == {1}
    assert Counter(r["result"] for r in rows) == {"answered": calls_n}
    assert {r["answered_by"] for r in rows} <= {int(a) for a in agents}
    # No agent on two calls at once: per agent, talk intervals do not overlap.
    by_agent: dict[int, list[tuple[str, str]]] = {}
    for r in rows:
        by_agent.setdefault(r["answered_by"], []).append((r["answered_at"], r["ended_at"]))
    for answered_by, spans in by_agent.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"agent {answered_by} double-booked: {spans}"
    # Asterisk's view: at most one agent leg per device up at any time.
    up: Counter[str] = Counter()
    for e in center.ami.events:
        channel = e.get("Channel")
        if not channel.startswith("Local/TALK-2-") or not channel.endswith(";2"):
            continue
        device = channel.split("@", 1)[0]
        if e.name == "Newchannel":
            up[device] += 1
            assert up[device] == 1, f"{device} rang twice at once"
        elif e.name == "Hangup":
            up[device] -= 1
    for agent in agents:
        await settled(center, agent, "ready")


async def test_closed_hours_overflow(center: Center) -> None:
    # No open interval on any weekday: always closed.
    await center.queue(
        hours={"timezone": "UTC", "weekly": {}}, overflow_target="ext:lab-overflow,556"
    )
    agent = await center.agent("TALK-30")
    call = await center.call(stay_s=3)

    await wait_for(
        lambda: center.ami.user_events("LabOverflow", Uniqueid=center.uid(call)),
        what="the caller redirected to lab-overflow",
    )
    row = await center.row(call)
    assert row["result"] == "overflowed"
    assert row["reason"] == "closed"
    assert row["overflow_target"] == "ext:lab-overflow,556"
    assert row["agents_offered"] == []
    assert not center.ami.of("DialBegin", lambda e: e.get("Uniqueid") == center.uid(call))
    assert (await center.state(agent))["state"] == "ready"


def switchboard_logins(center: Center) -> int:
    return len(center.ami.of("SuccessfulAuth", lambda e: e.get("AccountID") == SWITCHBOARD_USER))


async def test_ami_session_cut_with_a_caller_waiting(center: Center) -> None:
    await center.queue()
    agent = await center.agent("TALK-30", ready=False)
    call = await center.call(stay_s=10)
    await wait_for(
        lambda: center.ami.user_events("ACDHold", Uniqueid=center.uid(call)),
        what="the caller on hold",
    )
    logins = switchboard_logins(center)
    listing = await center.ami.command("manager show connected")
    fds = [
        line.split()[4]
        for line in listing.get_all("Output")
        if line.split()[:1] == [SWITCHBOARD_USER]
    ]
    assert len(fds) == 1, listing.get_all("Output")
    kicked = await center.ami.command(f"manager kick session {fds[0]}")
    assert kicked.name == "Success", kicked.as_dict()

    # The service logs in again, resyncs from CoreShowChannels and adopts the caller.
    await wait_for(lambda: switchboard_logins(center) > logins, what="the service's new login")
    await center.ready(agent)
    row = await center.row(call)
    assert row["result"] == "answered"
    assert row["answered_by"] == int(agent)
    assert [r["call_id"] for r in await center.rows()] == [call]
