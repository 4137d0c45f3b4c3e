"""Codec: callers found by a resync after a restart of the service (hold and connect)."""

from __future__ import annotations

from cti.codec import AmiCodec, ChannelInfo
from cti.wire import Message
from routing.commands import ReturnToHold
from routing.events import AgentHungUp, CallHungUp, OfferAnswered
from tests.cti.test_codec import S, ev, feed_all


def chan(
    uid: str,
    context: str,
    exten: str = "s",
    *,
    bridge_id: str = "",
    app: str = "Wait",
    linkedid: str = "",
) -> ChannelInfo:
    return ChannelInfo(
        uid, linkedid or uid, f"PJSIP/x-{uid}", context, exten, "139", "Li", bridge_id, app
    )


def world() -> list[ChannelInfo]:
    """One caller waiting, one ringing agent 1002, one talking with agent 1001."""
    return [
        chan("w", "acd-hold"),
        chan("r", "acd-connect", "1002", app="Dial"),
        chan("r1", "sim-agents", "1002", app="AppDial", linkedid="r"),
        chan("b", "acd-connect", "1001", bridge_id="br-1", app="Dial"),
        chan("b1", "sim-agents", "", bridge_id="br-1", app="AppDial", linkedid="b"),
        chan("x", "acd-inbound", "5000"),  # not under ACD control yet: its ACDHold will come
    ]


def dial_end(caller: str, leg: str, agent: str, status: str) -> Message:
    return ev(
        "DialEnd",
        caller,
        Channel=f"PJSIP/x-{caller}",
        Context="acd-connect",
        Exten=agent,
        DestUniqueid=leg,
        DialStatus=status,
    )


def test_fresh_codec_adopts_waiting_ringing_and_connected_callers() -> None:
    codec = AmiCodec(S)
    codec.begin_resync()
    plan = codec.reconcile(world(), restarted=False)
    assert plan.events == [] and plan.retries == []
    assert [o.uniqueid for o in plan.orphans] == ["b", "r", "w"]  # agent legs are not callers
    adopted = {o.uniqueid: codec.adopt(o, "5000", 50.0) for o in plan.orphans}
    codec.end_resync()
    b, r, w = adopted["b"], adopted["r"], adopted["w"]
    assert b is not None and (b.agent_id, b.answered, b.adopted) == ("1001", True, True)
    assert r is not None and (r.agent_id, r.answered) == ("1002", False)
    assert w is not None and (w.agent_id, w.answered, w.dnis) == ("", False, "5000")
    assert b.call_id == "pbx1/b" and b.channel == "PJSIP/x-b"
    # Later events of the adopted calls are attributed like any other call's.
    assert feed_all(codec, [dial_end("r", "r1", "1002", "ANSWER")]) == [
        OfferAnswered("pbx1/r", "1002")
    ]
    assert feed_all(codec, [ev("Hangup", "b1")]) == [AgentHungUp("pbx1/b", "1001")]
    assert feed_all(codec, [ev("Hangup", "b")]) == [CallHungUp("pbx1/b")]
    assert sorted(codec.call_ids()) == ["pbx1/r", "pbx1/w"]


def test_events_while_the_dnis_is_read_update_the_adoption_instead_of_leaking() -> None:
    codec = AmiCodec(S)
    codec.begin_resync()
    plan = codec.reconcile(world(), restarted=False)
    during = feed_all(
        codec,
        [
            dial_end("r", "r1", "1002", "ANSWER"),  # the ringing agent answers
            ev("Hangup", "w"),  # the waiting caller gives up
        ],
    )
    assert during == []  # nothing is news before the adoption
    adopted = {o.uniqueid: codec.adopt(o, "5000", 50.0) for o in plan.orphans}
    codec.end_resync()
    r = adopted["r"]
    assert r is not None and (r.agent_id, r.answered) == ("1002", True)
    assert adopted["w"] is None
    assert sorted(codec.call_ids()) == ["pbx1/b", "pbx1/r"]


def test_ringing_orphan_that_misses_while_adopted_becomes_waiting() -> None:
    codec = AmiCodec(S)
    codec.begin_resync()
    plan = codec.reconcile(world(), restarted=False)
    result = ev("UserEvent", "r", UserEvent="ACDDialResult", AgentId="1002", DialStatus="NOANSWER")
    assert feed_all(codec, [result]) == []
    r = codec.adopt(next(o for o in plan.orphans if o.uniqueid == "r"), "5000", 50.0)
    assert r is not None and (r.agent_id, r.answered) == ("", False)
    codec.end_resync()


def test_orphans_not_adopted_are_forgotten() -> None:
    codec = AmiCodec(S)
    codec.begin_resync()
    plan = codec.reconcile(world(), restarted=False)
    codec.drop_orphan("w")  # Getvar failed
    codec.end_resync()  # the others were never adopted (resync aborted)
    assert codec.call_ids() == []
    assert feed_all(codec, [ev("Hangup", "b1"), ev("Hangup", "b")]) == []
    assert len(plan.orphans) == 3


def test_adopted_ringing_call_can_be_returned_to_hold() -> None:
    codec = AmiCodec(S)
    codec.begin_resync()
    plan = codec.reconcile(world(), restarted=False)
    for o in plan.orphans:
        codec.adopt(o, "5000", 50.0)
    codec.end_resync()
    actions = codec.encode(ReturnToHold("pbx1/r", "1002"))
    assert ("Context", "acd-hold") in actions[0]
    assert codec.offered_agent("pbx1/r") is None
    # The cancelled Dial's result is then stale.
    assert feed_all(codec, [dial_end("r", "r1", "1002", "NOANSWER")]) == []
