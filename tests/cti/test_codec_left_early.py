"""A caller who hangs up between ``ACDArrive`` and ``ACDHold`` (greeting / IVR) is
reported once as ``CallerLeftEarly``; one who reaches hold is a call as before."""

from __future__ import annotations

import pytest

from cti import codec as codec_module
from cti.codec import AmiCodec
from cti.types import CallerArriving, CallerLeftEarly, IncomingCall
from cti.wire import Message
from routing.events import CallHungUp
from tests.cti.test_codec import S, ev, hold


def arrive(uid: str = "t.1") -> Message:
    return ev(
        "UserEvent",
        uid,
        Channel="PJSIP/trunk-0000002a",
        CallerIDNum="13900001111",
        Context="acd-inbound",
        Exten="4008001234",
        UserEvent="ACDArrive",
        DNIS="4008001234",
    )


def test_hangup_in_the_greeting_is_reported_once() -> None:
    codec = AmiCodec(S)
    (hint,) = codec.feed(arrive(), 10.0)
    assert isinstance(hint, CallerArriving)
    assert codec.feed(ev("Hangup", "t.1", Cause="16"), 13.0) == [
        CallerLeftEarly(
            call_id="pbx1/t.1",
            server=S,
            uniqueid="t.1",
            linkedid="t.1",
            caller_num="13900001111",
            dnis="4008001234",
            arrived_at=10.0,
            at=13.0,
        )
    ]
    assert codec.feed(ev("Hangup", "t.1", Cause="16"), 13.1) == []
    assert len(codec) == 0


def test_a_caller_who_reaches_hold_is_a_call_and_ends_once() -> None:
    codec = AmiCodec(S)
    codec.feed(arrive(), 10.0)
    (arrival,) = codec.feed(hold(), 13.0)
    assert isinstance(arrival, IncomingCall)
    assert codec.feed(ev("Hangup", "t.1", Cause="16"), 20.0) == [CallHungUp("pbx1/t.1")]


def test_arriving_channels_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec_module, "MAX_ARRIVING", 2)
    codec = AmiCodec(S)
    for uid in ("t.1", "t.2", "t.3"):
        codec.feed(arrive(uid), 10.0)
    assert codec.feed(ev("Hangup", "t.1", Cause="16"), 11.0) == []  # forgotten
    (left,) = codec.feed(ev("Hangup", "t.3", Cause="16"), 11.0)
    assert isinstance(left, CallerLeftEarly) and left.uniqueid == "t.3"
