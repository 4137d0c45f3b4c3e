"""Types shared between ``cti`` and ``app`` (contract: add fields with defaults, never rename)."""

from __future__ import annotations

from dataclasses import dataclass

from routing.events import (
    AgentHungUp,
    CallFailed,
    CallHungUp,
    CallTransferred,
    OfferAnswered,
    OfferFailed,
)


@dataclass(frozen=True, slots=True)
class AmiServer:
    """One Asterisk server's AMI endpoint.  ``secret`` is never logged or repr'd."""

    name: str
    host: str
    port: int = 5038
    username: str = "switchboard"
    secret: str = ""
    tls: bool = False

    def __repr__(self) -> str:
        return f"AmiServer(name={self.name!r}, host={self.host!r}, port={self.port}, username={self.username!r}, tls={self.tls})"


@dataclass(frozen=True, slots=True)
class Dialplan:
    """Names of the dialplan pieces in ``deploy/asterisk/extensions.conf``."""

    hold_context: str = "acd-hold"
    hold_exten: str = "s"
    connect_context: str = "acd-connect"  # exten = agent_id
    callback_context: str = "callback-out"
    device_var: str = "ACD_AGENT_DEVICE"
    ring_timeout_var: str = "ACD_RING_TIMEOUT"
    # Set per offer with the other Setvars; [acd-connect] copies it before Dial and echoes
    # the copy in ACDDialResult (OfferId), so a late result of an earlier offer is known.
    offer_var: str = "ACD_OFFER_ID"
    hold_user_event: str = "ACDHold"
    # Fired first thing in the inbound context (before Answer and any greeting or IVR):
    # the caller's number is known, so the screen pop is prefetched while the caller
    # listens.  Optional: a dialplan without it still works (the lookup then starts at
    # ACDHold and routing waits for it).
    arrive_user_event: str = "ACDArrive"
    dial_result_user_event: str = "ACDDialResult"


@dataclass(frozen=True, slots=True)
class CallerArriving:
    """A caller entered the inbound dialplan (``UserEvent: ACDArrive``) and is not in
    hold yet (a greeting, an IVR).  Not a routing event: a hint to start the screen-pop
    lookup early.  ``call_id`` is the one its ``IncomingCall`` will carry when the same
    channel reaches hold."""

    call_id: str
    server: str
    uniqueid: str
    caller_num: str
    dnis: str
    at: float


@dataclass(frozen=True, slots=True)
class CallerLeftEarly:
    """A caller announced by ``ACDArrive`` hung up before reaching hold (during the
    greeting or an IVR).  Not a routing event (the routing core never knew the call):
    the app records it as offered and abandoned before the queue, one row per call.
    ``arrived_at`` is when ``ACDArrive`` was seen, ``at`` when the Hangup was."""

    call_id: str
    server: str
    uniqueid: str
    linkedid: str
    caller_num: str
    dnis: str
    arrived_at: float
    at: float


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A caller reached the holding context for the first time (not yet classified),
    or a resync found a caller nobody knew (``adopted``: waiting, ringing or connected).

    The app classifies it (DNIS -> queue, CRM lookup -> VIP / entitlement) and feeds
    ``routing.events.CallArrived`` with the same ``call_id``.
    """

    call_id: str  # "<server>/<uniqueid>" of the caller channel
    server: str
    uniqueid: str
    linkedid: str
    channel: str
    caller_num: str
    caller_name: str
    dnis: str
    at: float
    # Set for a call found by a resync (``AmiCodec.adopt``) rather than by its arrival:
    # ``agent_id`` is the agent it rings (or talks with, when ``answered``) on Asterisk.
    agent_id: str = ""
    answered: bool = False
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    connected: bool
    since: float | None = None  # epoch s of the last state change
    uptime_s: float | None = None  # Asterisk uptime from FullyBooted/CoreStatus
    restarts: int = 0
    reconnects: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """The outcome of ``TelephonyLink.originate`` (Asterisk's ``OriginateResponse``).

    ``success`` means the originated channel answered and entered the dialplan
    (``Reason: 4``); ``reason`` is Asterisk's numeric reason (0 failure / no such
    extension, 1 hung up, 3 ring timeout, 4 answered, 5 busy, 8 congestion) or
    ``"disconnected"`` if the AMI session dropped before the result arrived.
    """

    server: str
    channel_id: str
    success: bool
    reason: str
    at: float


CallEvent = AgentHungUp | CallFailed | CallHungUp | CallTransferred | OfferAnswered | OfferFailed
"""The routing events (``routing.events``) the telephony side reports about calls."""

CodecItem = IncomingCall | CallerArriving | CallerLeftEarly | CallEvent
"""What ``AmiCodec`` derives from AMI events."""

LinkItem = CodecItem | ServerStatus | OriginateResult
"""Everything ``TelephonyLink`` hands its sink, in order."""
