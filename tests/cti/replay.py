"""Replay ``tests/fixtures/ami/*.ami`` through the parser and the codec, as the capture's
backend drove Asterisk: every ``#>`` Redirect into the connect context opens an offer
(``note_offer``), a Redirect into the hold context cancels it (``cancel_offer``)."""

from __future__ import annotations

from collections.abc import Iterator

from cti.codec import AmiCodec
from cti.types import Dialplan, IncomingCall
from cti.wire import AmiParser, Message, iter_capture
from tests.captures import CAPTURES


def capture_bytes(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def capture_names() -> list[str]:
    return sorted(p.name for p in CAPTURES.glob("*.ami"))


def stripped(data: bytes) -> bytes:
    """The received byte stream only (annotations dropped)."""
    return b"".join(chunk for kind, chunk in iter_capture(data) if kind == "recv")


def _actions(notes: list[bytes]) -> list[dict[str, str]]:
    actions: list[dict[str, str]] = []
    for raw in notes:
        line = raw.decode("utf-8").rstrip("\n")
        if not line.startswith("#> "):
            continue
        key, _, value = line[3:].partition(": ")
        if key == "Action":
            actions.append({})
        if actions:
            actions[-1][key] = value
    return actions


def steps(data: bytes) -> Iterator[tuple[str, object]]:
    """("msg", Message) for every received message, ("action", dict) for every sent one."""
    parser = AmiParser(expect_banner=True)
    pending_notes: list[bytes] = []
    for kind, chunk in iter_capture(data):
        if kind == "note":
            pending_notes.append(chunk)
            continue
        for action in _actions(pending_notes):
            yield ("action", action)
        pending_notes = []
        for msg in parser.feed(chunk):
            yield ("msg", msg)
    for action in _actions(pending_notes):
        yield ("action", action)


def drive(codec: AmiCodec, action: dict[str, str], channels: dict[str, str]) -> None:
    """Tell the codec what the capture's backend did (as ``TelephonyLink.execute`` would)."""
    dp: Dialplan = codec.dialplan
    if action.get("Action") != "Redirect":
        return
    call_id = channels.get(action.get("Channel", ""))
    if call_id is None:
        return  # not a call channel (e.g. the agent leg in redirect-agent-leg)
    if action.get("Context") == dp.connect_context:
        codec.note_offer(call_id, action["Exten"])
    elif action.get("Context") == dp.hold_context:
        codec.cancel_offer(call_id)


def replay(data: bytes, server: str = "pbx1", now: float = 0.0) -> list[object]:
    codec = AmiCodec(server)
    channels: dict[str, str] = {}
    out: list[object] = []
    for kind, item in steps(data):
        if kind == "action":
            assert isinstance(item, dict)
            drive(codec, item, channels)
            continue
        assert isinstance(item, Message)
        for event in codec.feed(item, now):
            if isinstance(event, IncomingCall):
                channels[event.channel] = event.call_id
            out.append(event)
    return out
