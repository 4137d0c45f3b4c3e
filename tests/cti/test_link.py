"""AmiConnection / TelephonyLink over real loopback TCP against ``AmiPeer``.

Each panoramisk 1.4 defect of docs/ami-notes.md is reproduced (where it can be shown on
the stock class) and shown handled.  A test that asserts that something did *not* happen
first makes sure it had its chance: a Ping answered on the same TCP stream (the peer
handles actions in order), ``TelephonyLink.settled()`` (every command check and grace
period has run) or the loop clock past ``AmiConnection.reconnect_at`` (timers run in
deadline order); never a fixed pause.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import TypedDict, Unpack

import pytest
import pytest_asyncio
from panoramisk.ami_protocol import AMIProtocol

from cti.ami import AmiActionTimeout, AmiConnection, AmiNotConnected, State, backoff_delay
from cti.types import AmiServer, IncomingCall, OriginateResult, ServerStatus
from cti.wire import AmiParser, Message, encode
from routing.commands import OfferCall
from routing.events import CallFailed, CallHungUp, OfferAnswered, OfferFailed, OfferFailure
from tests.cti.amipeer import AmiPeer, PeerChannel, hold_event
from tests.cti.replay import capture_bytes, stripped
from tests.polling import wait_for

from cti.link import TelephonyLink  # isort: skip

SECRET = "s3cret-peer"


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[AmiPeer]:
    p = AmiPeer(secret=SECRET)
    await p.start()
    yield p
    await p.stop()


class Sink:
    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, event: object) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[object]:
        return [e for e in self.events if isinstance(e, kind)]

    def statuses(self) -> list[ServerStatus]:
        return [e for e in self.events if isinstance(e, ServerStatus)]


class LinkTimings(TypedDict, total=False):
    """The link's timing options a test may shorten or lengthen."""

    action_timeout_s: float
    ping_interval_s: float
    reconnect_max_s: float
    gone_grace_s: float


def make_link(
    peer: AmiPeer,
    sink: Callable[[object], None],
    *,
    secret: str = SECRET,
    **kw: Unpack[LinkTimings],
) -> TelephonyLink:
    server = AmiServer(
        name="pbx1", host="127.0.0.1", port=peer.port, username="switchboard", secret=secret
    )
    opts: LinkTimings = {
        "action_timeout_s": 0.5,
        "ping_interval_s": 5.0,
        "reconnect_max_s": 0.2,
        "gone_grace_s": 0.1,
    }
    opts.update(kw)
    return TelephonyLink([server], sink, clock=lambda: 100.0, **opts)


async def ready_link(peer: AmiPeer, sink: Sink, **kw: Unpack[LinkTimings]) -> TelephonyLink:
    link = make_link(peer, sink, **kw)
    await link.start()
    await wait_for(lambda: any(s.connected for s in sink.statuses()))
    return link


async def arrive(peer: AmiPeer, sink: Sink, uid: str, channel: str | None = None) -> str:
    await peer.push_event(hold_event(uid, channel or f"PJSIP/trunk-{uid}"))
    await wait_for(
        lambda: any(isinstance(e, IncomingCall) and e.uniqueid == uid for e in sink.events)
    )
    return f"pbx1/{uid}"


# --- defect 1: UTF-8 split across reads ----------------------------------------------------


def test_defect1_reproduced_on_stock_panoramisk() -> None:
    data = encode(hold_event("u1", "PJSIP/t-1", name="张伟"))
    cut = data.index("张".encode()) + 1  # inside the first character
    got: list[object] = []

    class Factory:
        save_stream = None

        def dispatch(self, message: object) -> None:
            got.append(message)

    proto = AMIProtocol()
    proto.connection_made(None)
    proto.factory = Factory()
    proto.encoding = "utf8"
    proto.data_received(data[:cut])
    proto.data_received(data[cut:])
    assert len(got) == 1
    assert got[0]["CallerIDName"] != "张伟"  # type: ignore[index]  # the defect


async def test_defect1_handled_utf8_split_across_tcp_reads(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        data = encode(hold_event("u1", "PJSIP/t-1", name="张伟"))
        cut = data.index("张".encode()) + 1  # inside the first character
        conn = link.connection("pbx1")
        first_part_read = conn.bytes_received + cut

        async def first_part_arrived() -> None:
            await wait_for(lambda: conn.bytes_received >= first_part_read)

        await peer.push(data, split_at=cut, between=first_part_arrived)
        await wait_for(lambda: bool(sink.of(IncomingCall)))
        (call,) = sink.of(IncomingCall)
        assert isinstance(call, IncomingCall) and call.caller_name == "张伟"
    finally:
        await link.close()


# --- defect 2: a raising callback -----------------------------------------------------------


async def test_defect2_raising_callback_does_not_kill_the_connection(peer: AmiPeer) -> None:
    seen: list[str] = []

    def on_event(msg: Message) -> None:
        seen.append(msg.get("Uniqueid"))
        if msg.get("Uniqueid") == "boom":
            raise RuntimeError("callback bug")

    conn = AmiConnection(
        AmiServer("pbx1", "127.0.0.1", peer.port, secret=SECRET),
        on_event=on_event,
        action_timeout_s=0.5,
    )
    await conn.start()
    try:
        await wait_for(lambda: conn.ready)
        await peer.push(
            encode(hold_event("boom", "PJSIP/t-1")) + encode(hold_event("after", "PJSIP/t-2"))
        )
        await wait_for(lambda: "after" in seen)
        resp = await conn.action([("Action", "Ping")])
        assert resp.response.get("Ping") == "Pong"
        assert peer.connections == 1 and conn.reconnects == 0
    finally:
        await conn.close()


async def test_raising_sink_does_not_stop_the_link(peer: AmiPeer) -> None:
    got: list[object] = []

    def sink(event: object) -> None:
        got.append(event)
        if isinstance(event, IncomingCall) and event.uniqueid == "boom":
            raise RuntimeError("sink bug")

    link = make_link(peer, sink)
    await link.start()
    try:
        await wait_for(lambda: any(isinstance(e, ServerStatus) and e.connected for e in got))
        await peer.push(
            encode(hold_event("boom", "PJSIP/t-1")) + encode(hold_event("after", "PJSIP/t-2"))
        )
        await wait_for(
            lambda: any(isinstance(e, IncomingCall) and e.uniqueid == "after" for e in got)
        )
        assert peer.connections == 1
    finally:
        await link.close()


# --- defect 3: action timeouts ------------------------------------------------------------


async def test_defect3_action_timeout_becomes_offer_failed(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink, action_timeout_s=0.2)
    try:
        call_id = await arrive(peer, sink, "u1")
        peer.mute.add("Redirect")
        link.execute(OfferCall(call_id, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: bool(sink.of(OfferFailed)))
        assert sink.of(OfferFailed) == [OfferFailed(call_id, "1001", OfferFailure.LINK)]
        conn = link.connection("pbx1")
        assert conn.pending_actions == 0  # the stale entry was dropped
        # A late answer to the timed-out Redirect is ignored, not mis-delivered.
        (redirect,) = peer.actions("Redirect")
        await peer.push(encode([("Response", "Success"), ("ActionID", redirect.get("ActionID"))]))
        resp = await conn.action([("Action", "Ping")])
        assert resp.ok
        assert link.codec("pbx1").offered_agent(call_id) is None
    finally:
        await link.close()


async def test_action_timeout_raises_on_the_connection(peer: AmiPeer) -> None:
    peer.mute.add("Getvar")
    conn = AmiConnection(
        AmiServer("pbx1", "127.0.0.1", peer.port, secret=SECRET), on_event=lambda m: None
    )
    await conn.start()
    try:
        await wait_for(lambda: conn.ready)
        with pytest.raises(AmiActionTimeout):
            await conn.action([("Action", "Getvar"), ("Variable", "X")], timeout_s=0.1)
        assert conn.pending_actions == 0
    finally:
        await conn.close()


# --- defect 4: half-open connection -----------------------------------------------------------


async def test_defect4_watchdog_aborts_a_half_open_connection(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink, ping_interval_s=0.1, action_timeout_s=0.2)
    try:
        peer.mute.add("Ping")  # the socket stays open, nothing answers
        await wait_for(lambda: peer.logins >= 2)
        peer.mute.discard("Ping")
        await wait_for(lambda: sum(1 for s in sink.statuses() if s.connected) >= 2)
        down = [s for s in sink.statuses() if not s.connected]
        assert down and "ping timed out" in (down[0].last_error or "")
        assert link.status()[0].reconnects >= 1
    finally:
        await link.close()


# --- defect 5: close() must stop reconnecting ----------------------------------------------


async def test_defect5_close_stops_reconnecting(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink, reconnect_max_s=0.3)
    conn = link.connection("pbx1")
    peer.secret = "rotated"  # every attempt now fails, so the link keeps retrying
    peer.drop()
    await wait_for(lambda: peer.login_attempts >= 2 and conn.reconnect_at is not None)
    due = conn.reconnect_at  # a reconnect is scheduled: close() must stop it
    assert due is not None
    attempts = conn.attempts
    await link.close()
    assert conn.reconnect_at is None
    # Run the loop past the moment the reconnect was due: a timer that survived close()
    # has fired by then (timers run in deadline order) and started an attempt at once.
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, due - loop.time()) + 0.01)
    assert loop.time() > due
    assert conn.attempts == attempts
    assert conn.state is State.CLOSED
    assert link.status()[0].connected is False


async def test_close_while_connected_does_not_reconnect(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    conn = link.connection("pbx1")
    await link.close()
    # close() has seen the connection go (the loss is what would schedule a reconnect),
    # and left no reconnect due and no attempt started.
    assert not conn.logged_in and conn.state is State.CLOSED
    assert conn.reconnect_at is None
    assert conn.attempts == 1 and peer.connections == 1


# --- defect 6: wrong secret -------------------------------------------------------------------


async def test_defect6_wrong_secret_reported_with_backoff(
    peer: AmiPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = Sink()
    wrong = "wrong-secret-xyz"
    link = make_link(peer, sink, secret=wrong, reconnect_max_s=0.2)
    await link.start()
    try:
        await wait_for(lambda: peer.login_attempts >= 3)
        down = [s for s in sink.statuses() if not s.connected and s.last_error]
        assert down and "login refused for user 'switchboard'" in (down[-1].last_error or "")
        assert "Authentication failed" in (down[-1].last_error or "")
        conn = link.connection("pbx1")
        assert conn.failures >= 2  # consecutive failures drive the backoff below
        assert not any(s.connected for s in sink.statuses())
    finally:
        await link.close()
    text = caplog.text + repr(link) + repr(link.connection("pbx1")) + repr(sink.events)
    assert wrong not in text
    assert SECRET not in text


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert [backoff_delay(n, 0.5, 30.0) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


# --- defect 7: Originate always async ---------------------------------------------------------


async def test_defect7_originate_is_async_and_reports_its_result(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        await link.originate(
            "pbx1",
            channel="PJSIP/1002",
            context="callback-out",
            exten="13800138000",
            variables={"ACD_CALLBACK_ID": "cb-1"},
            channel_id="cb-1-agent",
        )
        (orig,) = peer.actions("Originate")
        assert orig.get("Async") == "true"
        assert orig.get("ChannelId") == "cb-1-agent"
        assert orig.get_all("Variable") == ["ACD_CALLBACK_ID=cb-1"]
        await peer.push_event(
            [
                ("Event", "OriginateResponse"),
                ("Privilege", "call,all"),
                ("ActionID", orig.get("ActionID")),
                ("Response", "Success"),
                ("Channel", "PJSIP/1002-00000001"),
                ("Uniqueid", "cb-1-agent"),
                ("Reason", "4"),
            ]
        )
        await wait_for(lambda: bool(sink.of(OriginateResult)))
        assert sink.of(OriginateResult) == [OriginateResult("pbx1", "cb-1-agent", True, "4", 100.0)]
    finally:
        await link.close()


# --- defect 8: events that carry a pending ActionID ---------------------------------------


async def test_defect8_event_with_pending_actionid_goes_to_the_event_callback(
    peer: AmiPeer,
) -> None:
    seen: list[Message] = []
    conn = AmiConnection(
        AmiServer("pbx1", "127.0.0.1", peer.port, secret=SECRET), on_event=seen.append
    )
    await conn.start()
    try:
        await wait_for(lambda: conn.ready)
        peer.mute.add("UserEvent")
        pending = conn.send_action([("Action", "UserEvent"), ("UserEvent", "ACDTest")])
        await wait_for(lambda: bool(peer.actions("UserEvent")))
        aid = pending.action_id
        await peer.push_event([("Event", "UserEvent"), ("UserEvent", "ACDTest"), ("ActionID", aid)])
        await wait_for(lambda: any(m.get("ActionID") == aid for m in seen))
        assert not pending.future.done()
        await peer.push(encode([("Response", "Success"), ("ActionID", aid)]))
        resp = await conn.wait(pending)
        assert resp.ok and resp.items == []
    finally:
        await conn.close()


# --- defect 9: header normalisation --------------------------------------------------------


def test_defect9_repeated_headers_are_kept_and_get_returns_a_string() -> None:
    data = stripped(capture_bytes("queries-during-call.ami"))
    msgs = AmiParser(expect_banner=True).feed(data)
    status = next(m for m in msgs if m.name == "Status" and "Variable" in m)
    assert status.get("Variable") == "ACD_DNIS=5000"
    assert status.get_all("Variable") == [
        "ACD_DNIS=5000",
        "ACD_AGENT_DEVICE=Local/1002@sim-agents",
        "ACD_RING_TIMEOUT=15",
    ]
    assert status.get("NoSuchHeader") == ""


# --- defect 10: no CallManager, no panoramisk.testing ---------------------------------------


def test_defect10_no_callmanager_nor_panoramisk_testing() -> None:
    root = pathlib.Path(__file__).resolve().parents[2] / "cti"
    for path in [*root.glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        code = "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith(("#", "``", "-"))
        )
        assert "CallManager(" not in code, path
        assert "import panoramisk.testing" not in code and "from panoramisk.testing" not in code, (
            path
        )


# --- defect 11: fail fast while disconnected ---------------------------------------------


async def test_defect11_commands_fail_fast_while_disconnected(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        call_id = await arrive(peer, sink, "u1")
        peer.channels = [PeerChannel("u1", "PJSIP/trunk-u1", "acd-hold", "s")]
        peer.secret = "rotated"
        peer.drop()
        await wait_for(lambda: not link.status()[0].connected)
        link.execute(OfferCall(call_id, "1001", "PJSIP/1001", 15, "q"))
        # Reported synchronously, before any reconnect.
        assert sink.of(OfferFailed) == [OfferFailed(call_id, "1001", OfferFailure.LINK)]
        conn = link.connection("pbx1")
        with pytest.raises(AmiNotConnected):
            await conn.action([("Action", "Ping")])
        peer.secret = SECRET
        await wait_for(lambda: link.status()[0].connected)
        # A Ping answered on the new session: anything re-sent at login (panoramisk's
        # queue is flushed after FullyBooted) was written before it, and so has arrived.
        await conn.action([("Action", "Ping")])
        assert peer.actions("Redirect") == []  # nothing was queued and re-sent later
        assert sink.of(CallHungUp) == [] and sink.of(CallFailed) == []  # the call lives on
    finally:
        await link.close()


# --- the link: pipelining, errors, resync ---------------------------------------------------


async def test_offer_actions_are_pipelined(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink, action_timeout_s=0.3)
    try:
        call_id = await arrive(peer, sink, "u1")
        peer.hold_until = "Redirect"  # no answer before all four actions arrived
        link.execute(OfferCall(call_id, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: len(peer.actions("Redirect")) == 1)
        await link.settled()  # the offer's check has run: all four answered in time
        assert sink.of(OfferFailed) == []
        names = [m.name for m in peer.received if m.name in ("Setvar", "Redirect")]
        assert names == ["Setvar", "Setvar", "Setvar", "Redirect"]
        setvars = peer.actions("Setvar")
        assert [(m.get("Variable"), m.get("Value")) for m in setvars[:2]] == [
            ("ACD_AGENT_DEVICE", "PJSIP/1001"),
            ("ACD_RING_TIMEOUT", "15"),
        ]
        assert setvars[2].get("Variable") == "ACD_OFFER_ID" and setvars[2].get("Value")
        assert peer.actions("Redirect")[0].get("Channel") == "PJSIP/trunk-u1"
    finally:
        await link.close()


async def test_channel_gone_fails_the_offer_then_the_call(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        call_id = await arrive(peer, sink, "u1")
        peer.errors["Setvar"] = "No such channel"
        peer.errors["Redirect"] = "Channel does not exist: PJSIP/trunk-u1"
        link.execute(OfferCall(call_id, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: bool(sink.of(CallFailed)))
        assert sink.of(OfferFailed) == [OfferFailed(call_id, "1001", OfferFailure.LINK)]
        assert sink.of(CallFailed) == [CallFailed(call_id, "channel gone")]
    finally:
        await link.close()


async def test_channel_gone_then_hangup_event_reads_as_hangup(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink, gone_grace_s=0.5)
    try:
        call_id = await arrive(peer, sink, "u1")
        peer.errors["Redirect"] = "Channel does not exist: PJSIP/trunk-u1"
        link.execute(OfferCall(call_id, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: bool(sink.of(OfferFailed)))
        await peer.push_event([("Event", "Hangup"), ("Uniqueid", "u1"), ("Cause", "16")])
        await wait_for(lambda: bool(sink.of(CallHungUp)))
        await link.settled()  # the grace period is over and its check has run
        assert sink.of(CallHungUp) == [CallHungUp(call_id)]
        assert sink.of(CallFailed) == []  # ended exactly once
    finally:
        await link.close()


async def test_resync_after_reconnect(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        gone = await arrive(peer, sink, "a")
        answered = await arrive(peer, sink, "b")
        link.execute(OfferCall(answered, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: len(peer.actions("Redirect")) == 1)
        peer.channels = [
            PeerChannel("b", "PJSIP/trunk-b", "acd-connect", "1001", bridge_id="br-1"),
            PeerChannel("b-agent", "PJSIP/1001-0001", "agents", "", bridge_id="br-1"),
            PeerChannel("n", "PJSIP/trunk-n", "acd-hold", "s", dnis="4008001234"),
        ]
        peer.uptime += 60
        peer.drop()
        await wait_for(lambda: sum(1 for s in sink.statuses() if s.connected) == 2)
        assert sink.of(CallHungUp) == [CallHungUp(gone)]
        assert sink.of(OfferAnswered) == [OfferAnswered(answered, "1001")]
        adopted = [
            e for e in sink.of(IncomingCall) if isinstance(e, IncomingCall) and e.uniqueid == "n"
        ]
        assert len(adopted) == 1 and adopted[0].dnis == "4008001234"
        status = link.status()[0]
        assert status.connected and status.reconnects == 1 and status.restarts == 0
        # Ready is reported only after the resync events.
        idx_ready = max(
            i for i, e in enumerate(sink.events) if isinstance(e, ServerStatus) and e.connected
        )
        idx_adopt = sink.events.index(adopted[0])
        assert idx_adopt < idx_ready
    finally:
        await link.close()


@pytest.mark.parametrize("carried_out", [True, False])
async def test_offer_in_flight_when_the_connection_drops_is_settled_by_the_resync(
    peer: AmiPeer, carried_out: bool
) -> None:
    """The Redirect was written, then the connection dropped before its answer.

    Whether it ran is unknown until the resync: failing the offer at once would free an
    agent who may already talk with the caller (and later read the call as abandoned).
    """
    sink = Sink()
    link = await ready_link(peer, sink, action_timeout_s=5.0)
    try:
        call_id = await arrive(peer, sink, "c")
        peer.mute.add("Redirect")  # written, never answered
        link.execute(OfferCall(call_id, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: len(peer.actions("Redirect")) == 1)
        if carried_out:  # the agent took the call while we were away
            peer.channels = [
                PeerChannel("c", "PJSIP/trunk-c", "acd-connect", "1001", bridge_id="br-9"),
                PeerChannel("c-agent", "PJSIP/1001-0009", "agents", "", bridge_id="br-9"),
            ]
        else:  # the Redirect never ran: the caller still waits in hold
            peer.channels = [PeerChannel("c", "PJSIP/trunk-c", "acd-hold", "s")]
        peer.drop()
        peer.mute.discard("Redirect")
        await wait_for(lambda: sum(1 for s in sink.statuses() if s.connected) == 2)
        if carried_out:
            assert sink.of(OfferAnswered) == [OfferAnswered(call_id, "1001")]
            assert sink.of(OfferFailed) == []
        else:
            assert sink.of(OfferFailed) == [OfferFailed(call_id, "1001", OfferFailure.LINK)]
            assert sink.of(OfferAnswered) == []
        assert sink.of(CallHungUp) == []
    finally:
        await link.close()


async def test_resync_after_asterisk_restart(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        call_id = await arrive(peer, sink, "a")
        peer.channels = []
        peer.uptime = 1  # went down: the process restarted
        peer.drop()
        await wait_for(lambda: sum(1 for s in sink.statuses() if s.connected) == 2)
        assert sink.of(CallFailed) == [CallFailed(call_id, "asterisk restarted")]
        assert link.status()[0].restarts == 1
    finally:
        await link.close()


async def test_unknown_call_and_unknown_server_fail_cleanly(peer: AmiPeer) -> None:
    sink = Sink()
    link = await ready_link(peer, sink)
    try:
        link.execute(OfferCall("pbx1/nope", "1001", "PJSIP/1001", 15, "q"))
        link.execute(OfferCall("pbx9/nope", "1002", "PJSIP/1002", 15, "q"))
        assert sink.of(CallFailed) == [
            CallFailed("pbx1/nope", "unknown call"),
            CallFailed("pbx9/nope", "unknown server"),
        ]
        assert sink.of(OfferFailed) == [OfferFailed("pbx9/nope", "1002", OfferFailure.LINK)]
        assert peer.actions("Redirect") == []
    finally:
        await link.close()
