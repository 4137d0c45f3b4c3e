"""The codec against every recorded Asterisk 22 stream, plus hand-made edge cases.

A § number is a section of the recordings' notes, tests/fixtures/ami/README.md.
"""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cti.ami import NOISE_EVENTS, FilteringParser
from cti.codec import AmiCodec, ChannelInfo, CodecError, UnknownCall, encode_originate
from cti.types import CallerArriving, CodecItem, IncomingCall
from cti.wire import AmiParser, Message, encode
from routing.commands import HangupCall, OfferCall, OverflowCall, ReturnToHold
from routing.events import (
    AgentHungUp,
    CallFailed,
    CallHungUp,
    CallTransferred,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
)
from tests.cti.replay import capture_bytes, capture_names, drive, replay, steps, stripped

S = "pbx1"


def cid(uid: str) -> str:
    return f"{S}/{uid}"


def routing_only(events: list[object]) -> list[object]:
    return [e for e in events if not isinstance(e, IncomingCall)]


# Exact routing events per capture (IncomingCall checked separately).
EXPECTED: dict[str, list[object]] = {
    "answered.ami": [
        OfferAnswered(cid("1795306277.1"), "1001"),
        AgentHungUp(cid("1795306277.1"), "1001"),
        CallHungUp(cid("1795306277.1")),
    ],
    "answered-filtered.ami": [
        OfferAnswered(cid("1795306396.71"), "1001"),
        AgentHungUp(cid("1795306396.71"), "1001"),
        CallHungUp(cid("1795306396.71")),
    ],
    # The customer hangs up first: no AgentHungUp, no ACDDialResult (§6.25).
    "caller-hangup.ami": [
        OfferAnswered(cid("1795306285.5"), "1002"),
        CallHungUp(cid("1795306285.5")),
    ],
    "rona.ami": [
        OfferFailed(cid("1795306294.9"), "1900", OfferFailure.NOANSWER),
        OfferAnswered(cid("1795306294.9"), "1001"),
        AgentHungUp(cid("1795306294.9"), "1001"),
        CallHungUp(cid("1795306294.9")),
    ],
    "abandon.ami": [CallHungUp(cid("1795306305.15"))],
    # DialEnd CANCEL says nothing; the caller's Hangup ends the call.
    "abandon-ringing.ami": [CallHungUp(cid("1795306310.17"))],
    "busy.ami": [
        OfferFailed(cid("1795306316.21"), "1800", OfferFailure.BUSY),
        OfferAnswered(cid("1795306316.21"), "1001"),
        AgentHungUp(cid("1795306316.21"), "1001"),
        CallHungUp(cid("1795306316.21")),
    ],
    # Our own re-route: the old Dial's CANCEL is attributed by DestUniqueid and ignored.
    "reroute-while-ringing.ami": [
        OfferAnswered(cid("1795306324.27"), "1001"),
        AgentHungUp(cid("1795306324.27"), "1001"),
        CallHungUp(cid("1795306324.27")),
    ],
    "transfer-blind.ami": [
        OfferAnswered(cid("1795306344.41"), "1002"),
        CallTransferred(cid("1795306344.41"), "acd-transfer,2001"),
    ],
    "transfer-redirect.ami": [
        OfferAnswered(cid("1795306355.47"), "1002"),
        CallTransferred(cid("1795306355.47"), "acd-transfer,2001"),
    ],
    # The agent leg left the bridge (redirected away) while the caller stayed.
    "redirect-agent-leg.ami": [
        OfferAnswered(cid("1795306366.53"), "1002"),
        AgentHungUp(cid("1795306366.53"), "1002"),
        CallHungUp(cid("1795306366.53")),
    ],
    "queries-during-call.ami": [
        OfferAnswered(cid("1795306387.63"), "1002"),
        CallHungUp(cid("1795306387.63")),
    ],
    # An outbound callback is not an ACD call; the rest carry no call at all.
    "callback.ami": [],
    "queries-idle.ami": [],
    "errors.ami": [],
    "login.ami": [],
    "login-failed.ami": [],
    "login-failed-user.ami": [],
    "login-failed-observer.ami": [],
    # Recorded by a session that sent no actions: no offer, so only arrival and end.
    "answered-filtered-unfiltered-view.ami": [CallHungUp(cid("1795306396.71"))],
}


def test_every_capture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == capture_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_replay_yields_exact_routing_events(name: str) -> None:
    events = replay(capture_bytes(name))
    assert routing_only(events) == EXPECTED[name]
    arrivals = [e for e in events if isinstance(e, IncomingCall)]
    # Exactly one arrival per ACD call, even with repeated ACDHold after RONA/busy.
    assert len(arrivals) == (1 if EXPECTED[name] else 0)
    for call in arrivals:
        assert call.server == S
        assert call.call_id == f"{S}/{call.uniqueid}"
        assert call.channel.endswith(";2")  # the caller channel, not the customer ;1 leg
        assert call.caller_num == "13800138000"
        assert call.caller_name == "Customer"
        assert call.dnis == "5000"
        assert call.linkedid != call.uniqueid  # Linkedid = the customer ;1 leg (§6.16)


def test_filtered_and_unfiltered_sessions_give_the_same_events() -> None:
    """The same call, seen by an eventfilter'ed and an unfiltered session (§5)."""
    results = []
    for name in ("answered-filtered.ami", "answered-filtered-unfiltered-view.ami"):
        codec = AmiCodec(S)
        out: list[object] = []
        for kind, item in steps(capture_bytes(name)):
            if kind != "msg":
                continue
            assert isinstance(item, Message)
            for event in codec.feed(item, 0.0):
                out.append(event)
                if isinstance(event, IncomingCall):
                    codec.note_offer(event.call_id, "1001")  # what the backend did
        results.append(out)
    assert results[0] == results[1]
    assert [type(e).__name__ for e in results[0]] == [
        "IncomingCall",
        "OfferAnswered",
        "AgentHungUp",
        "CallHungUp",
    ]


def _messages(data: bytes, chunks: list[int], parser: AmiParser) -> list[Message]:
    out: list[Message] = []
    pos = 0
    i = 0
    while pos < len(data):
        size = chunks[i % len(chunks)]
        out.extend(parser.feed(data[pos : pos + size]))
        pos += size
        i += 1
    return out


def _utf8_variant(data: bytes) -> bytes:
    # Chinese and accented caller names: multi-byte characters a TCP read may split.
    return data.replace(b"CallerIDName: Customer", "CallerIDName: 张伟 Jérôme".encode())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20))
def test_random_chunking_changes_nothing(chunks: list[int]) -> None:
    data = _utf8_variant(stripped(capture_bytes("rona.ami")))
    whole = AmiParser(expect_banner=True).feed(data)
    assert [m.headers for m in _messages(data, chunks, AmiParser(expect_banner=True))] == [
        m.headers for m in whole
    ]
    filtering = FilteringParser(expect_banner=True, skip_events=NOISE_EVENTS)
    kept = _messages(data, chunks, filtering)
    assert [m.headers for m in kept] == [m.headers for m in whole if m.name not in NOISE_EVENTS]
    assert filtering.skipped == sum(1 for m in whole if m.name in NOISE_EVENTS)


def test_one_byte_reads_keep_chinese_caller_names() -> None:
    data = _utf8_variant(stripped(capture_bytes("answered.ami")))
    parser = FilteringParser(expect_banner=True, skip_events=NOISE_EVENTS)
    codec = AmiCodec(S)
    events = []
    for i in range(len(data)):
        for msg in parser.feed(data[i : i + 1]):
            events.extend(codec.feed(msg, 0.0))
    arrivals = [e for e in events if isinstance(e, IncomingCall)]
    assert [a.caller_name for a in arrivals] == ["张伟 Jérôme"]


def test_bad_input_is_skipped_and_the_rest_carries_on() -> None:
    data = stripped(capture_bytes("rona.ami"))
    body = data[data.index(b"\r\n") + 2 :]
    blocks = [b + b"\r\n\r\n" for b in body.split(b"\r\n\r\n") if b]
    hold_uid = "1795306294.9"
    junk = [
        b"\x00\xff\xfe garbage without a colon\r\n\r\n",
        b"Event: UserEvent\r\nUserEvent: ACDHold\r\nDNIS: 5000\r\n\r\n",  # no Uniqueid
        b"Event: DialEnd\r\nDialStatus: ANSWER\r\n\r\n",  # no DestUniqueid
        b"Event: BridgeLeave\r\nUniqueid: "
        + hold_uid.encode()
        + b"\r\nBridgeNumChannels: x\r\n\r\n",
        b"Event: TotallyUnknownEvent\r\nFoo: bar\r\n\r\n",
        b"Event: Hangup\r\n\r\n",  # no Uniqueid at all
        b"Event:\r\n\r\n",
        b"Response: Success\r\nActionID: nobody\r\n\r\n",
        b"\xe5\xbc\r\n\r\n",  # a truncated UTF-8 sequence on its own
    ]
    rng = random.Random(7)
    noisy: list[bytes] = []
    for block in blocks:
        noisy.append(block)
        if rng.random() < 0.3:
            noisy.append(rng.choice(junk))
    stream = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(noisy)
    codec = AmiCodec(S)
    parser = AmiParser(expect_banner=True)
    channels: dict[str, str] = {}
    events: list[object] = []
    # Drive the two offers as the capture's backend did.
    offers = iter(["1900", "1001"])
    for msg in parser.feed(stream):
        for event in codec.feed(msg, 0.0):
            events.append(event)
        if msg.get("UserEvent") == "ACDHold" and msg.get("Uniqueid") == hold_uid:
            channels.setdefault(msg.get("Channel"), cid(hold_uid))
            nxt = next(offers, None)
            if nxt is not None:
                codec.note_offer(cid(hold_uid), nxt)
    assert routing_only(events) == EXPECTED["rona.ami"]
    assert codec.handler_errors == 0  # bad input is skipped by the handlers, not a failure
    # A stream cut in the middle of a message: what came before still counts.
    truncated = stream[: stream.index(b"UserEvent: ACDDialResult") + 10]
    codec2 = AmiCodec(S)
    out = []
    for msg in AmiParser(expect_banner=True).feed(truncated):
        out.extend(codec2.feed(msg, 0.0))
    assert [type(e).__name__ for e in out] == ["IncomingCall"]


class HangupBugCodec(AmiCodec):
    """A codec whose Hangup handler has a bug."""

    def _on_hangup(self, msg: Message, now: float) -> list[CodecItem]:
        raise RuntimeError("codec bug")


def test_a_raising_handler_is_logged_at_error_counted_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    codec = HangupBugCodec(S)
    with caplog.at_level(logging.DEBUG, logger="cti.codec"):
        assert feed_all(codec, [ev("Hangup", "t.1")]) == []
    (record,) = [r for r in caplog.records if r.name == "cti.codec"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and str(record.exc_info[1]) == "codec bug"
    assert "Hangup" in record.getMessage()
    assert codec.handler_errors == 1
    # Later events of the same connection are still decoded.
    assert [type(e).__name__ for e in feed_all(codec, [hold("t.2")])] == ["IncomingCall"]


# --- cross-channel reordering -------------------------------------------------------------


def _channels_of(msg: Message) -> set[str]:
    keys = ("Uniqueid", "DestUniqueid", "TransfererUniqueid", "TransfereeUniqueid")
    return {msg.get(k) for k in keys if msg.get(k)}


def _reordered(items: list[tuple[str, object, set[str]]], rng: random.Random) -> list[int]:
    """A random order of ``items`` that keeps each channel's own order (§6.29)."""
    queues: dict[str, list[int]] = {}
    for idx, (_, _, chans) in enumerate(items):
        for chan in chans:
            queues.setdefault(chan, []).append(idx)
    heads = dict.fromkeys(queues, 0)
    done: set[int] = set()
    order: list[int] = []
    while len(order) < len(items):
        ready = [
            idx
            for idx, (_, _, chans) in enumerate(items)
            if idx not in done and all(queues[c][heads[c]] == idx for c in chans)
        ]
        idx = rng.choice(ready)
        done.add(idx)
        order.append(idx)
        for chan in items[idx][2]:
            heads[chan] += 1
    return order


ROUTER_EVENTS = {
    "UserEvent",
    "DialBegin",
    "DialEnd",
    "BridgeEnter",
    "BridgeLeave",
    "Hangup",
    "BlindTransfer",
}


@pytest.mark.parametrize(
    "name",
    [
        "answered.ami",
        "caller-hangup.ami",
        "rona.ami",
        "busy.ami",
        "reroute-while-ringing.ami",
        "abandon-ringing.ami",
        "transfer-blind.ami",
        "transfer-redirect.ami",
        "redirect-agent-leg.ami",
    ],
)
def test_cross_channel_reordering_gives_the_same_events(name: str) -> None:
    data = capture_bytes(name)
    items: list[tuple[str, object, set[str]]] = []
    caller_channel: dict[str, str] = {}
    for kind, item in steps(data):
        if kind == "msg":
            assert isinstance(item, Message)
            if item.kind != "event" or item.name not in ROUTER_EVENTS:
                continue
            if item.get("UserEvent") == "ACDHold":
                caller_channel[item.get("Channel")] = item.get("Uniqueid")
            chans = _channels_of(item)
            if chans:
                items.append(("msg", item, chans))
        else:
            assert isinstance(item, dict)
            uid = caller_channel.get(item.get("Channel", ""))
            if item.get("Action") == "Redirect" and uid:
                items.append(("action", item, {uid}))  # in order with the caller's events
    expected = EXPECTED[name]
    rng = random.Random(name)
    for _ in range(40):
        codec = AmiCodec(S)
        channels: dict[str, str] = {}
        out: list[object] = []
        for idx in _reordered(items, rng):
            kind, item, _ = items[idx]
            if kind == "action":
                assert isinstance(item, dict)
                drive(codec, item, channels)
                continue
            assert isinstance(item, Message)
            for event in codec.feed(item, 0.0):
                if isinstance(event, IncomingCall):
                    channels[event.channel] = event.call_id
                out.append(event)
        assert routing_only(out) == expected


# --- a production-shaped call: one trunk channel, one PJSIP agent channel -----------------


def ev(name: str, uid: str = "", **headers: str) -> Message:
    pairs = [("Event", name), ("Privilege", "call,all")]
    if uid:
        pairs += [("Uniqueid", uid), ("Linkedid", "t.1")]
    pairs += list(headers.items())
    return AmiParser().feed(encode(pairs))[0]


def hold(uid: str = "t.1", channel: str = "PJSIP/trunk-0000002a") -> Message:
    return ev(
        "UserEvent",
        uid,
        Channel=channel,
        CallerIDNum="13900001111",
        CallerIDName="李娜",
        Context="acd-hold",
        Exten="s",
        UserEvent="ACDHold",
        DNIS="4008001234",
    )


def dial(name: str, dest: str, agent: str, status: str = "") -> Message:
    extra = {"DialStatus": status} if status else {}
    return ev(
        name,
        "t.1",
        Channel="PJSIP/trunk-0000002a",
        Context="acd-connect",
        Exten=agent,
        DestChannel=f"PJSIP/{agent}-0000002b",
        DestUniqueid=dest,
        **extra,
    )


def bridge(name: str, uid: str, remaining: str, context: str = "acd-connect") -> Message:
    return ev(
        name, uid, Context=context, Exten="1001", BridgeUniqueid="b-1", BridgeNumChannels=remaining
    )


def feed_all(codec: AmiCodec, msgs: list[Message]) -> list[object]:
    out: list[object] = []
    for msg in msgs:
        out.extend(codec.feed(msg, 12.5))
    return out


def test_trunk_call_answered_agent_hangs_up() -> None:
    codec = AmiCodec(S)
    (arrival,) = feed_all(codec, [hold()])
    assert arrival == IncomingCall(
        call_id="pbx1/t.1",
        server=S,
        uniqueid="t.1",
        linkedid="t.1",
        channel="PJSIP/trunk-0000002a",
        caller_num="13900001111",
        caller_name="李娜",
        dnis="4008001234",
        at=12.5,
    )
    actions = codec.encode(OfferCall("pbx1/t.1", "1001", "PJSIP/1001", 14.2, "sales"))
    assert actions == [
        [
            ("Action", "Setvar"),
            ("Channel", "PJSIP/trunk-0000002a"),
            ("Variable", "ACD_AGENT_DEVICE"),
            ("Value", "PJSIP/1001"),
        ],
        [
            ("Action", "Setvar"),
            ("Channel", "PJSIP/trunk-0000002a"),
            ("Variable", "ACD_RING_TIMEOUT"),
            ("Value", "15"),
        ],
        [
            ("Action", "Setvar"),
            ("Channel", "PJSIP/trunk-0000002a"),
            ("Variable", "ACD_OFFER_ID"),
            ("Value", actions[2][3][1]),  # unique per offer (tests/cti/test_offer_ids.py)
        ],
        [
            ("Action", "Redirect"),
            ("Channel", "PJSIP/trunk-0000002a"),
            ("Context", "acd-connect"),
            ("Exten", "1001"),
            ("Priority", "1"),
        ],
    ]
    out = feed_all(
        codec,
        [
            dial("DialBegin", "t.2", "1001"),
            dial("DialEnd", "t.2", "1001", "ANSWER"),
            bridge("BridgeEnter", "t.2", "1"),
            bridge("BridgeEnter", "t.1", "2"),
            bridge("BridgeLeave", "t.2", "1"),  # the agent leaves first
            ev("Hangup", "t.2", Cause="16"),
            bridge("BridgeLeave", "t.1", "0"),
            ev("Hangup", "t.1", Cause="16"),
            ev("Hangup", "t.2", Cause="16"),  # a late duplicate
            dial("DialEnd", "t.2", "1001", "ANSWER"),  # late, for a call that is gone
        ],
    )
    assert out == [
        OfferAnswered("pbx1/t.1", "1001"),
        AgentHungUp("pbx1/t.1", "1001"),
        CallHungUp("pbx1/t.1"),
    ]
    assert len(codec) == 0


def test_unavailable_device_reported_by_dial_result_without_dialbegin() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    codec.note_offer("pbx1/t.1", "1001")
    out = feed_all(
        codec,
        [
            ev(
                "UserEvent",
                "t.1",
                Context="acd-connect",
                UserEvent="ACDDialResult",
                AgentId="1001",
                DialStatus="CHANUNAVAIL",
            ),
            hold(),  # back in hold: the same call, not a new one
        ],
    )
    assert out == [OfferFailed("pbx1/t.1", "1001", OfferFailure.CHANUNAVAIL)]


def test_dial_that_ends_without_a_result_fails_the_offer_on_return_to_hold() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    codec.note_offer("pbx1/t.1", "1001")
    # Someone else's Redirect cancels the Dial and the caller lands in hold again.
    out = feed_all(
        codec, [dial("DialBegin", "t.2", "1001"), dial("DialEnd", "t.2", "1001", "CANCEL"), hold()]
    )
    assert out == [OfferFailed("pbx1/t.1", "1001", OfferFailure.FAILED)]
    # A repeated hold while our next offer's Redirect is in flight says nothing.
    codec.note_offer("pbx1/t.1", "1002")
    assert feed_all(codec, [hold()]) == []


def test_return_to_hold_cancels_the_offer_and_its_late_events() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    codec.encode(OfferCall("pbx1/t.1", "1001", "PJSIP/1001", 15, "q"))
    feed_all(codec, [dial("DialBegin", "t.2", "1001")])
    assert codec.encode(ReturnToHold("pbx1/t.1", "1001")) == [
        [
            ("Action", "Redirect"),
            ("Channel", "PJSIP/trunk-0000002a"),
            ("Context", "acd-hold"),
            ("Exten", "s"),
            ("Priority", "1"),
        ]
    ]
    assert codec.offered_agent("pbx1/t.1") is None
    assert feed_all(codec, [dial("DialEnd", "t.2", "1001", "ANSWER"), hold()]) == []


def test_encode_overflow_hangup_and_errors() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    assert codec.encode(HangupCall("pbx1/t.1", cause=21)) == [
        [("Action", "Hangup"), ("Channel", "PJSIP/trunk-0000002a"), ("Cause", "21")]
    ]
    assert codec.encode(OverflowCall("pbx1/t.1", "ext:acd-overflow,900")) == [
        [
            ("Action", "Redirect"),
            ("Channel", "PJSIP/trunk-0000002a"),
            ("Context", "acd-overflow"),
            ("Exten", "900"),
            ("Priority", "1"),
        ]
    ]
    # Overflowed: out of ACD control, its Hangup says nothing more.
    assert feed_all(codec, [ev("Hangup", "t.1")]) == []
    with pytest.raises(UnknownCall):
        codec.encode(HangupCall("pbx1/t.1"))
    with pytest.raises(UnknownCall):
        codec.encode(HangupCall("pbx2/t.1"))
    feed_all(codec, [hold("t.9")])
    with pytest.raises(CodecError):
        codec.encode(OverflowCall("pbx1/t.9", "queue-b"))
    with pytest.raises(CodecError):
        codec.encode(OfferCall("pbx1/t.9", "10\r\n01", "PJSIP/1001", 15, "q"))
    with pytest.raises(CodecError):
        codec.encode(object())
    assert codec.offered_agent("pbx1/t.9") is None  # nothing half-recorded


def test_encode_originate_is_always_async() -> None:
    action = encode_originate(
        channel="PJSIP/1002",
        context="callback-out",
        exten="13800138000",
        variables={"ACD_CALLBACK_ID": "cb-0001"},
        channel_id="cb-0001-agent",
        caller_id="Callback <4008001234>",
        timeout_s=30,
    )
    assert ("Async", "true") in action
    assert ("ChannelId", "cb-0001-agent") in action
    assert ("Timeout", "30000") in action
    assert ("Variable", "ACD_CALLBACK_ID=cb-0001") in action
    with pytest.raises(CodecError):
        encode_originate(
            channel="x", context="c", exten="1", variables={"A=B": "1"}, channel_id="i"
        )
    with pytest.raises(CodecError):
        encode_originate(channel="x", context="c", exten="1", variables={}, channel_id="")


# --- resync ---------------------------------------------------------------------------------


def chan(
    uid: str, context: str, exten: str = "s", bridge_id: str = "", name: str = ""
) -> ChannelInfo:
    return ChannelInfo(uid, uid, name or f"PJSIP/x-{uid}", context, exten, "139", "Li", bridge_id)


def test_reconcile_after_reconnect() -> None:
    codec = AmiCodec(S)
    for uid in ("a", "b", "c", "d"):
        feed_all(codec, [hold(uid, f"PJSIP/x-{uid}")])
    codec.note_offer("pbx1/b", "1001")  # answered while we were away
    codec.note_offer("pbx1/c", "1002")
    feed_all(codec, [dial("DialBegin", "c2", "1002")])
    codec.note_offer("pbx1/c", "1002")
    codec.begin_resync()
    feed_all(codec, [hold("e", "PJSIP/x-e")])  # arrives during the resync
    plan = codec.reconcile(
        [
            chan("b", "acd-connect", "1001", "br-1"),
            chan("b2", "", "", "br-1"),
            chan("c", "acd-connect", "1002"),  # still ringing
            chan("d", "acd-hold"),
            chan("n", "acd-hold"),  # nobody knew it
            chan("z", "acd-hold"),  # hangs up before it is adopted
        ],
        restarted=False,
    )
    feed_all(codec, [ev("Hangup", "z")])
    assert plan.events == [CallHungUp("pbx1/a"), OfferAnswered("pbx1/b", "1001")]
    assert [o.uniqueid for o in plan.orphans] == ["n", "z"]
    assert plan.retries == []
    adopted = codec.adopt(plan.orphans[0], "4008", 3.0)
    assert adopted is not None and adopted.call_id == "pbx1/n" and adopted.dnis == "4008"
    assert codec.adopt(plan.orphans[1], "4008", 3.0) is None
    codec.end_resync()
    assert sorted(codec.call_ids()) == ["pbx1/b", "pbx1/c", "pbx1/d", "pbx1/e", "pbx1/n"]
    # The answered call now ends normally.
    assert feed_all(codec, [bridge("BridgeLeave", "b2", "1")]) == [AgentHungUp("pbx1/b", "1001")]


def test_reconcile_after_restart_fails_every_known_call() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold("a", "PJSIP/x-a"), hold("b", "PJSIP/x-b")])
    codec.begin_resync()
    plan = codec.reconcile([chan("q", "acd-hold")], restarted=True)
    codec.end_resync()
    assert plan.events == [
        CallFailed("pbx1/a", "asterisk restarted"),
        CallFailed("pbx1/b", "asterisk restarted"),
    ]
    assert [o.uniqueid for o in plan.orphans] == ["q"]


def test_reconcile_redoes_lost_actions() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold("a", "PJSIP/x-a"), hold("b", "PJSIP/x-b"), hold("c", "PJSIP/x-c")])
    codec.encode(HangupCall("pbx1/a"))
    codec.encode(OverflowCall("pbx1/b", "ext:voicemail,500"))
    codec.begin_resync()
    plan = codec.reconcile(
        [chan("a", "acd-hold"), chan("b", "acd-hold"), chan("c", "acd-connect", "1001", "br")],
        restarted=False,
    )
    assert plan.events == []
    assert plan.retries == [
        [("Action", "Hangup"), ("Channel", "PJSIP/x-a"), ("Cause", "16")],
        [
            ("Action", "Redirect"),
            ("Channel", "PJSIP/x-b"),
            ("Context", "voicemail"),
            ("Exten", "500"),
            ("Priority", "1"),
        ],
        [
            ("Action", "Redirect"),
            ("Channel", "PJSIP/x-c"),
            ("Context", "acd-hold"),
            ("Exten", "s"),
            ("Priority", "1"),
        ],
    ]


def test_rename_follows_the_channel() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    feed_all(
        codec,
        [ev("Rename", "t.1", Channel="PJSIP/trunk-0000002a", Newname="PJSIP/trunk-0000002a<MASQ>")],
    )
    assert codec.channel_of("pbx1/t.1") == "PJSIP/trunk-0000002a<MASQ>"


def test_server_name_with_slash_is_refused() -> None:
    with pytest.raises(ValueError, match="server name"):
        AmiCodec("a/b")


@pytest.mark.parametrize("name", capture_names())
def test_filtering_parser_equals_the_wire_parser_on_every_capture(name: str) -> None:
    data = _utf8_variant(stripped(capture_bytes(name)))
    data += b"Event: Odd\r\nKey:no-space\r\nPadded :  value\r\n\r\nEvent: Lf\nA: b\n\n"
    reference = AmiParser(expect_banner=True).feed(data)
    parser = FilteringParser(expect_banner=True)
    fast = parser.feed(data[:40]) + parser.feed(data[40:])
    assert [m.headers for m in fast] == [m.headers for m in reference]
    assert [m.as_dict() for m in fast] == [m.as_dict() for m in reference]
    assert all(m.get("Event") == r.get("Event") for m, r in zip(fast, reference, strict=True))


def test_acd_arrive_announces_the_caller_before_hold_once() -> None:
    codec = AmiCodec(S)
    arrive = ev(
        "UserEvent",
        "t.1",
        Channel="PJSIP/trunk-0000002a",
        CallerIDNum="+86 139-0000-1111",
        CallerIDName="李娜",
        Context="acd-inbound",
        Exten="4008001234",
        UserEvent="ACDArrive",
        DNIS="4008001234",
    )
    assert feed_all(codec, [arrive]) == [
        CallerArriving(
            call_id="pbx1/t.1",
            server=S,
            uniqueid="t.1",
            caller_num="+86 139-0000-1111",
            dnis="4008001234",
            at=12.5,
        )
    ]
    assert len(codec) == 0  # a hint only: not a call until it reaches hold
    (arrival,) = feed_all(codec, [hold()])
    assert isinstance(arrival, IncomingCall) and arrival.call_id == "pbx1/t.1"
    # The same channel through the inbound context again (a transfer back): no new hint.
    assert feed_all(codec, [arrive]) == []
    # Without a Uniqueid there is nothing to key the prefetch on.
    assert feed_all(codec, [ev("UserEvent", UserEvent="ACDArrive", DNIS="5000")]) == []
