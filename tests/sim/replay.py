"""Drive the simulator with the actions a capture's ``#>`` lines show, and compare.

Channels are matched by *role*: a channel name with its 8-hex counter removed
(``Local/1001@sim-agents-#;1``) plus its ordinal among channels with that name, both in
the capture and in the simulator's stream.  Events are compared per role, because the
order between channels is not deterministic in Asterisk (tests/fixtures/ami/README.md
§6.13, §6.29).
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass, field

from cti.wire import AmiParser, Message, encode, iter_capture
from tests.captures import CAPTURES
from tests.sim.amiclient import TestClient

# The lab's acdf user's event filter, written out here on purpose: the tests compare the
# simulator against the captures on these events, so they must not follow the
# simulator's own ``ROUTER_EVENTS``.
ROUTER = frozenset(
    {
        "Newchannel",
        "Newstate",
        "Hangup",
        "DialBegin",
        "DialEnd",
        "BridgeEnter",
        "BridgeLeave",
        "UserEvent",
        "OriginateResponse",
    }
)
_COUNTER = re.compile(r"-[0-9a-f]{8};")


@dataclass
class Capture:
    name: str
    actions: list[list[tuple[str, str]]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # for each action: how many messages had been received before it was sent
    sent_after: list[int] = field(default_factory=list)


def load_capture(name: str) -> Capture:
    data = (CAPTURES / f"{name}.ami").read_bytes()
    cap = Capture(name)
    parser = AmiParser(expect_banner=True)
    current: list[tuple[str, str]] | None = None
    for kind, chunk in iter_capture(data):
        if kind == "note":
            line = chunk.decode().rstrip("\n")
            if line.startswith("#> "):
                key, _, value = line[3:].partition(": ")
                if key == "Action":
                    current = []
                    cap.actions.append(current)
                    cap.sent_after.append(len(cap.messages))
                assert current is not None
                current.append((key, value))
            continue
        for m in parser.feed(chunk):
            if m.kind != "banner":
                cap.messages.append(m)
    return cap


def is_router(m: Message) -> bool:
    return (
        m.kind == "event"
        and m.name in ROUTER
        and not (m.name == "UserEvent" and "Channel" not in m)
    )


def _bridge_ids(messages: list[Message]) -> list[str]:
    seen: list[str] = []
    for m in messages:
        if m.kind == "event" and m.name == "BridgeEnter" and m.get("BridgeUniqueid") not in seen:
            seen.append(m.get("BridgeUniqueid"))
    return seen


def role_key(name: str) -> str:
    return _COUNTER.sub("-#;", name)


class Roles:
    """Channel name -> role, by order of Newchannel per normalised name."""

    def __init__(self) -> None:
        self.role: dict[str, str] = {}
        self.by_role: dict[str, str] = {}
        self._count: dict[str, int] = defaultdict(int)

    def feed(self, m: Message) -> None:
        if m.kind == "event" and m.name == "Newchannel":
            name = m.get("Channel")
            if name not in self.role:
                key = role_key(name)
                r = f"{key}#{self._count[key]}"
                self._count[key] += 1
                self.role[name] = r
                self.by_role[r] = name

    def of(self, name: str) -> str:
        return self.role.get(name, name)


def event_sig(m: Message, roles: Roles) -> tuple[str, ...]:
    """What must match for one router event, channel names replaced by roles."""
    sig = [m.name]
    for key in (
        "ChannelStateDesc",
        "Context",
        "Exten",
        "Priority",
        "DialStatus",
        "UserEvent",
        "Cause",
        "AgentId",
        "DNIS",
        "Target",
        "Number",
        "BridgeNumChannels",
        "Response",
        "Reason",
    ):
        if key in m:
            sig.append(f"{key}={m.get(key)}")
    if m.name in ("DialBegin", "DialEnd"):
        sig.append("dest=" + roles.of(m.get("DestChannel")))
        sig.append(f"DestChannelStateDesc={m.get('DestChannelStateDesc')}")
        sig.append(f"DestExten={m.get('DestExten')}")
    return tuple(sig)


def per_role(messages: list[Message]) -> dict[str, list[tuple[str, ...]]]:
    roles = Roles()
    out: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for m in messages:
        roles.feed(m)
        if not is_router(m):
            continue
        if m.name == "OriginateResponse":
            owner = "originate"
        else:
            owner = roles.of(m.get("Channel") or m.get("DestChannel"))
        out[owner].append(event_sig(m, roles))
    return dict(out)


def shape_key(m: Message) -> str:
    if m.name == "UserEvent":
        return f"UserEvent:{m.get('UserEvent')}"
    return m.name


def header_names(m: Message) -> tuple[str, ...]:
    return tuple(k for k, _ in m.headers[1:])


def all_shapes() -> dict[str, set[tuple[str, ...]]]:
    shapes: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for path in sorted(CAPTURES.glob("*.ami")):
        for m in load_capture(path.stem).messages:
            if m.kind == "event":
                shapes[shape_key(m)].add(header_names(m))
    return dict(shapes)


@dataclass
class Replay:
    capture: Capture
    client: TestClient
    responses: list[tuple[list[tuple[str, str]], Message | None]]


async def replay(port: int, name: str, *, settle_timeout: float = 10.0) -> Replay:
    """Send the capture's actions to the simulator in order.  Before each action, wait
    until the simulator has sent as many router events as the capture had received
    before that action; channel names in action headers are mapped by role."""
    cap = load_capture(name)
    client = await TestClient.connect(port)
    cap_roles = Roles()
    for m in cap.messages:
        cap_roles.feed(m)
    responses: list[tuple[list[tuple[str, str]], Message | None]] = []
    try:
        for headers, sent_after in zip(cap.actions, cap.sent_after, strict=True):
            need = sum(1 for m in cap.messages[:sent_after] if is_router(m))

            def router_count() -> int:
                return sum(1 for m in client.messages if is_router(m))

            def enough(need: int = need) -> bool:
                return router_count() >= need

            await client.wait_for(enough, settle_timeout)
            sim_roles = Roles()
            for m in client.messages:
                sim_roles.feed(m)
            mapped: list[tuple[str, str]] = []
            bridges = dict(
                zip(_bridge_ids(cap.messages), _bridge_ids(client.messages), strict=False)
            )
            for k, v in headers:
                if k == "Channel" and v in cap_roles.role:
                    v = sim_roles.by_role[cap_roles.role[v]]
                elif k == "BridgeUniqueid":
                    v = bridges.get(v, v)
                mapped.append((k, v))
            aid = dict(mapped)["ActionID"]
            client.writer.write(encode(mapped))

            def answered(aid: str = aid) -> bool:
                return client.response(aid) is not None

            try:
                await client.wait_for(answered, settle_timeout)
            except ConnectionError:
                pass
            responses.append((mapped, client.response(aid)))
        await asyncio.wait_for(client.eof.wait(), settle_timeout)
    finally:
        await client.close()
    return Replay(cap, client, responses)
