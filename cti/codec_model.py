"""The codec's data: channel snapshots, resync results and per-call state (``cti.codec``)."""

from __future__ import annotations

from dataclasses import dataclass

from cti.types import CodecItem
from cti.wire import Message

Action = list[tuple[str, str]]


class CodecError(ValueError):
    """A command the codec cannot turn into AMI actions."""


class UnknownCall(CodecError):
    """The command names a call this codec does not (or no longer) know."""


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One live channel from a ``CoreShowChannels`` list (resync)."""

    uniqueid: str
    linkedid: str
    channel: str
    context: str
    exten: str
    caller_num: str
    caller_name: str
    bridge_id: str
    application: str = ""

    @classmethod
    def from_message(cls, msg: Message) -> ChannelInfo:
        return cls(
            uniqueid=msg.get("Uniqueid"),
            linkedid=msg.get("Linkedid"),
            channel=msg.get("Channel"),
            context=msg.get("Context"),
            exten=msg.get("Exten"),
            caller_num=msg.get("CallerIDNum"),
            caller_name=msg.get("CallerIDName"),
            bridge_id=msg.get("BridgeId") or msg.get("BridgeID"),
            application=msg.get("Application"),
        )


@dataclass(frozen=True, slots=True)
class Resync:
    """What ``reconcile`` found: routing events, waiting channels to adopt, actions to redo."""

    events: list[CodecItem]
    orphans: list[ChannelInfo]
    retries: list[Action]


class _Offer:
    __slots__ = ("agent_id", "answered", "dialled", "leg", "legs", "offer_id", "uncertain")

    def __init__(self, agent_id: str, offer_id: str = "") -> None:
        self.agent_id = agent_id
        # Echoed by the dialplan in ACDDialResult (OfferId); "" when unknown (an offer
        # found by a resync, or noted without one): then only the agent id is compared.
        self.offer_id = offer_id
        self.legs: list[str] = []  # DestUniqueids still ringing for this offer
        self.dialled = False  # a DialBegin was seen for this offer
        self.answered = False
        self.leg = ""  # the agent leg that answered
        # The connection dropped after the offer's actions were written: Asterisk may or
        # may not have carried them out.  The resync settles it (see _reconcile_offer).
        self.uncertain = False


class _Call:
    __slots__ = (
        "agent_gone",
        "call_id",
        "channel",
        "hangup_requested",
        "left",
        "linkedid",
        "offer",
        "overflow_to",
        "uniqueid",
    )

    def __init__(self, call_id: str, uniqueid: str, linkedid: str, channel: str) -> None:
        self.call_id = call_id
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.channel = channel
        self.offer: _Offer | None = None
        self.left = False  # left ACD control (transfer / overflow): say nothing more
        self.agent_gone = False  # the connected agent's departure was decided (said or moot)
        self.hangup_requested = False
        self.overflow_to: tuple[str, str] | None = None


def _int(value: str) -> int:
    """A non-negative header integer, or -1 when absent or malformed."""
    # ASCII digits only: str.isdigit() is also true of "²" and other digits int() refuses.
    return int(value) if value.isascii() and value.isdigit() else -1


def _clean_caller(value: str) -> str:
    # Asterisk writes "<unknown>" for an absent caller id.
    return "" if value == "<unknown>" else value
