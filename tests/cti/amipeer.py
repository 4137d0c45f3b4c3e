"""A small loopback AMI peer for the connection/link tests (not the simulator).

It speaks real AMI framing over real TCP: banner, Login (checks the secret, answers a
wrong one with ``Authentication failed`` and closes, like Asterisk), FullyBooted with a
settable Uptime, Ping, CoreShowChannels (from ``channels``), Getvar, Setvar, Redirect,
Hangup, Originate.  Tests steer it: ``mute`` action names are never answered,
``errors`` maps an action name to an error message, ``hold_until`` delays answers until
some action arrives (pipelining check), ``push`` sends raw event bytes, ``drop`` closes
every session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cti.wire import AmiParser, Message, encode


@dataclass
class PeerChannel:
    uniqueid: str
    channel: str
    context: str
    exten: str
    linkedid: str = ""
    bridge_id: str = ""
    caller_num: str = "13800138000"
    caller_name: str = "Customer"
    dnis: str = "5000"

    def headers(self, action_id: str) -> list[tuple[str, str]]:
        return [
            ("Event", "CoreShowChannel"),
            ("ActionID", action_id),
            ("Channel", self.channel),
            ("ChannelState", "6"),
            ("ChannelStateDesc", "Up"),
            ("CallerIDNum", self.caller_num),
            ("CallerIDName", self.caller_name),
            ("Context", self.context),
            ("Exten", self.exten),
            ("Priority", "1"),
            ("Uniqueid", self.uniqueid),
            ("Linkedid", self.linkedid or self.uniqueid),
            ("Application", "Wait"),
            ("BridgeId", self.bridge_id),
        ]


@dataclass
class AmiPeer:
    secret: str = "s3cret-peer"
    uptime: int = 100
    channels: list[PeerChannel] = field(default_factory=list)
    mute: set[str] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    hold_until: str | None = None  # answer nothing until this action name arrives
    received: list[Message] = field(default_factory=list)
    logins: int = 0
    login_attempts: int = 0
    connections: int = 0
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def actions(self, name: str) -> list[Message]:
        return [m for m in self.received if m.name == name]

    async def push(
        self,
        data: bytes,
        *,
        split_at: int | None = None,
        between: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Send raw bytes to every session, optionally as two TCP writes.

        With ``split_at`` the second write waits for ``between()``, which must return once
        the other side has read the first part: the two parts then reach it as two reads,
        however slow the machine (a pause would let them merge into one read).
        """
        for writer in list(self._writers):
            if split_at is None:
                writer.write(data)
                await writer.drain()
            else:
                if between is None:
                    raise ValueError("split_at needs between(): when the first part was read")
                writer.write(data[:split_at])
                await writer.drain()
                await between()
                writer.write(data[split_at:])
                await writer.drain()

    async def push_event(self, headers: list[tuple[str, str]]) -> None:
        await self.push(encode(headers))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        parser = AmiParser()
        logged_in = False
        held: list[Message] = []
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for msg in parser.feed(data):
                    self.received.append(msg)
                    if msg.name == "Login":
                        self.login_attempts += 1
                        if msg.get("Secret") != self.secret:
                            await asyncio.sleep(0.05)  # Asterisk waits ~1 s
                            self._respond(
                                writer, msg, "Error", [("Message", "Authentication failed")]
                            )
                            await writer.drain()
                            writer.close()
                            return
                        logged_in = True
                        self.logins += 1
                        self._respond(
                            writer, msg, "Success", [("Message", "Authentication accepted")]
                        )
                        writer.write(
                            encode(
                                [
                                    ("Event", "FullyBooted"),
                                    ("Privilege", "system,all"),
                                    ("Uptime", str(self.uptime)),
                                    ("LastReload", str(self.uptime)),
                                    ("Status", "Fully Booted"),
                                ]
                            )
                        )
                        continue
                    if not logged_in:
                        self._respond(writer, msg, "Error", [("Message", "Permission denied")])
                        continue
                    if self.hold_until is not None:
                        held.append(msg)
                        if msg.name != self.hold_until:
                            continue
                        batch, held = held, []
                        for m in batch:
                            self._answer(writer, m)
                        continue
                    self._answer(writer, msg)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            with contextlib.suppress(ValueError):
                self._writers.remove(writer)
            writer.close()

    def _respond(
        self,
        writer: asyncio.StreamWriter,
        msg: Message,
        status: str,
        extra: list[tuple[str, str]],
    ) -> None:
        writer.write(encode([("Response", status), ("ActionID", msg.get("ActionID")), *extra]))

    def _answer(self, writer: asyncio.StreamWriter, msg: Message) -> None:
        name = msg.name
        if name in self.mute:
            return
        if name in self.errors:
            self._respond(writer, msg, "Error", [("Message", self.errors[name])])
            return
        aid = msg.get("ActionID")
        if name == "Ping":
            self._respond(writer, msg, "Success", [("Ping", "Pong"), ("Timestamp", "1.0")])
        elif name == "CoreShowChannels":
            self._respond(
                writer,
                msg,
                "Success",
                [("EventList", "start"), ("Message", "Channels will follow")],
            )
            for chan in self.channels:
                writer.write(encode(chan.headers(aid)))
            writer.write(
                encode(
                    [
                        ("Event", "CoreShowChannelsComplete"),
                        ("ActionID", aid),
                        ("EventList", "Complete"),
                        ("ListItems", str(len(self.channels))),
                    ]
                )
            )
        elif name == "Getvar":
            found = next((c for c in self.channels if c.channel == msg.get("Channel")), None)
            if found is None:
                self._respond(writer, msg, "Error", [("Message", "No such channel")])
            else:
                self._respond(
                    writer,
                    msg,
                    "Success",
                    [("Variable", msg.get("Variable")), ("Value", found.dnis)],
                )
        elif name == "Setvar":
            self._respond(writer, msg, "Success", [("Message", "Variable Set")])
        elif name == "Redirect":
            self._respond(writer, msg, "Success", [("Message", "Redirect successful")])
        elif name == "Hangup":
            self._respond(writer, msg, "Success", [("Message", "Channel Hungup")])
        elif name == "Originate":
            self._respond(writer, msg, "Success", [("Message", "Originate successfully queued")])
        elif name == "Logoff":
            self._respond(writer, msg, "Goodbye", [("Message", "Thanks for all the fish.")])
        else:
            self._respond(writer, msg, "Error", [("Message", f"Invalid/unknown command: {name}")])


def hold_event(
    uid: str, channel: str, *, dnis: str = "5000", name: str = "Customer"
) -> list[tuple[str, str]]:
    return [
        ("Event", "UserEvent"),
        ("Privilege", "user,all"),
        ("Channel", channel),
        ("CallerIDNum", "13800138000"),
        ("CallerIDName", name),
        ("Context", "acd-hold"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Uniqueid", uid),
        ("Linkedid", uid),
        ("UserEvent", "ACDHold"),
        ("DNIS", dnis),
    ]
