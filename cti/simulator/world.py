"""The simulated world: channels, bridges, dials and calls, with their AMI header blocks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from cti.simulator.model import (
    CallTrace,
    DeviceProfile,
)

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 21: "Call Rejected"}
AMI_VERSION = "11.0.0"
ASTERISK_VERSION = "22.5.2"
UNKNOWN = "<unknown>"


class _Timer:
    __slots__ = ("args", "fn", "when")

    def __init__(self, when: float, fn: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
        self.when = when
        self.fn = fn
        self.args = args


class Chan:
    """One live channel.  ``block()`` caches the standard header block until ``touch()``."""

    __slots__ = (
        "_blk",
        "_dblk",
        "alive",
        "app",
        "appdata",
        "bridge",
        "call",
        "cid_name",
        "cid_num",
        "co_name",
        "co_num",
        "context",
        "created",
        "exten",
        "linkedid",
        "name",
        "peer",
        "priority",
        "role",
        "state",
        "uniqueid",
        "vars",
    )

    def __init__(
        self,
        name: str,
        uniqueid: str,
        linkedid: str,
        state: int,
        context: str,
        exten: str,
        role: str,
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.state = state
        self.cid_num = self.cid_name = self.co_num = self.co_name = UNKNOWN
        self.context = context
        self.exten = exten
        self.priority = 1
        self.app = ""
        self.appdata = ""
        self.created = time.monotonic()
        self.vars: dict[str, str] = {}
        self.bridge: Bridge | None = None
        self.call: Call | None = None
        self.role = role
        self.peer: Chan | None = None
        self.alive = True
        self._blk: str | None = None
        self._dblk: str | None = None

    def touch(self) -> None:
        self._blk = self._dblk = None

    def at(self, context: str, exten: str, priority: int, app: str, appdata: str) -> None:
        self.context, self.exten, self.priority, self.app, self.appdata = (
            context,
            exten,
            priority,
            app,
            appdata,
        )
        self._blk = self._dblk = None

    def pblock(self, p: str) -> str:
        return (
            f"{p}Channel: {self.name}\r\n{p}ChannelState: {self.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC.get(self.state, 'Unknown')}\r\n"
            f"{p}CallerIDNum: {self.cid_num}\r\n{p}CallerIDName: {self.cid_name}\r\n"
            f"{p}ConnectedLineNum: {self.co_num}\r\n{p}ConnectedLineName: {self.co_name}\r\n"
            f"{p}Language: en\r\n{p}AccountCode: \r\n{p}Context: {self.context}\r\n"
            f"{p}Exten: {self.exten}\r\n{p}Priority: {self.priority}\r\n"
            f"{p}Uniqueid: {self.uniqueid}\r\n{p}Linkedid: {self.linkedid}\r\n"
        )

    def block(self) -> str:
        blk = self._blk
        if blk is None:
            blk = self._blk = self.pblock("")
        return blk

    def dblock(self) -> str:
        blk = self._dblk
        if blk is None:
            blk = self._dblk = self.pblock("Dest")
        return blk

    def items(self) -> list[tuple[str, str]]:
        return [
            ("Channel", self.name),
            ("ChannelState", str(self.state)),
            ("ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            ("CallerIDNum", self.cid_num),
            ("CallerIDName", self.cid_name),
            ("ConnectedLineNum", self.co_num),
            ("ConnectedLineName", self.co_name),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", self.context),
            ("Exten", self.exten),
            ("Priority", str(self.priority)),
            ("Uniqueid", self.uniqueid),
            ("Linkedid", self.linkedid),
        ]


class Bridge:
    __slots__ = ("chans", "id")

    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.chans: list[Chan] = []

    def block(self) -> str:
        return (
            f"BridgeUniqueid: {self.id}\r\nBridgeType: basic\r\nBridgeTechnology: simple_bridge\r\n"
            f"BridgeCreator: <unknown>\r\nBridgeName: <unknown>\r\n"
            f"BridgeNumChannels: {len(self.chans)}\r\nBridgeVideoSourceMode: none\r\n"
        )

    def items(self) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", self.id),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(self.chans))),
            ("BridgeVideoSourceMode", "none"),
        ]


class Dial:
    """One Dial() run by ``owner``: its callee legs, timers and phase."""

    __slots__ = (
        "agent",
        "answer_timer",
        "call",
        "device",
        "exten",
        "kind",
        "offer_id",
        "owner",
        "phase",
        "phone",
        "profile",
        "ring_timer",
        "talk_timer",
    )

    def __init__(self, call: Call, owner: Chan, kind: str, exten: str, device: str) -> None:
        self.call = call
        self.owner = owner
        self.kind = kind  # connect | transfer | callback | originate
        self.exten = exten
        self.device = device
        # [acd-connect] copies ACD_OFFER_ID before Dial and echoes the copy (not the
        # variable, which the next offer's Setvar may already have changed).
        self.offer_id = ""
        self.agent: Chan | None = None  # the leg bridged with the owner (PJSIP or Local ;1)
        self.phone: Chan | None = None  # Local ;2 running the phone simulation
        self.profile = DeviceProfile()
        self.phase = "ringing"  # ringing | bridged | done
        self.ring_timer: _Timer | None = None
        self.answer_timer: _Timer | None = None
        self.talk_timer: _Timer | None = None


class Call:
    """The channels of one call and where its dialplan is."""

    __slots__ = (
        "action_id",
        "caller",
        "customer",
        "customer_timer",
        "dial",
        "live",
        "originate",
        "overflowed",
        "phase",
        "trace",
        "wait_timer",
    )

    def __init__(self, trace: CallTrace) -> None:
        self.trace = trace
        self.caller: Chan | None = None  # the channel running the ACD dialplan
        self.customer: Chan | None = None  # Local ;1 peer of the caller (the far party)
        self.dial: Dial | None = None
        self.phase = "new"  # new | hold | dial | bridged | app | gone
        self.live = 0
        self.customer_timer: _Timer | None = None  # patience / originated phone's talk
        self.wait_timer: _Timer | None = None  # hold limit, overflow, Wait() app
        self.overflowed = False
        self.action_id = ""
        self.originate: dict[str, str] | None = None


def _parse_callerid(value: str) -> tuple[str, str]:
    """``Customer <13800138000>`` -> ("13800138000", "Customer")."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].partition("<")
        return num.strip() or UNKNOWN, name.strip().strip('"') or UNKNOWN
    return (value or UNKNOWN), UNKNOWN
