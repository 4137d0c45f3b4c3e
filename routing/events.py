"""Events the routing core consumes: ``RoutingEngine.handle(event, now)``.

Contract shared by ``routing``, ``cti`` and ``app``: events may be added and fields may
be added with defaults, never renamed or removed.  All ids are opaque strings:
``call_id`` is ``"<server>/<uniqueid>"`` of the caller channel (built by ``cti``),
``agent_id`` is the agent's id (also the Asterisk extension dialled in the connect
context), ``queue_id`` the queue's id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from routing.config import AgentConfig, QueueConfig


class OfferFailure(enum.StrEnum):
    """Why an offer ended without the agent answering (Asterisk DIALSTATUS words)."""

    NOANSWER = "noanswer"  # ring timeout (RONA)
    BUSY = "busy"
    CONGESTION = "congestion"
    CHANUNAVAIL = "chanunavail"
    FAILED = "failed"  # the dial failed without a status we know (Asterisk's word)
    # The action that makes the offer failed (Redirect refused, action timeout, server
    # disconnected): a system failure reported by the telephony link, never the agent's
    # miss.  The routing core backs the call off instead (see ``RoutingEngine``).
    LINK = "link"


# --- configuration -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigureQueue:
    queue: QueueConfig


@dataclass(frozen=True, slots=True)
class RemoveQueue:
    queue_id: str


@dataclass(frozen=True, slots=True)
class ConfigureAgent:
    agent: AgentConfig


@dataclass(frozen=True, slots=True)
class RemoveAgent:
    agent_id: str


@dataclass(frozen=True, slots=True)
class SetQueueOpen:
    """Open hours are computed by the app (it has the clock and calendars)."""

    queue_id: str
    is_open: bool


# --- agents ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentLogin:
    """Agent logs in on a device (an Asterisk dial string); starts paused ("login")."""

    agent_id: str
    device: str


@dataclass(frozen=True, slots=True)
class AgentReady:
    """Paused -> ready, or wrap-up ended early by the agent."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentPause:
    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AgentLogout:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentDisconnected:
    """The agent's desktop/device vanished: treated like a logout."""

    agent_id: str


# --- calls -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallArrived:
    """A caller is waiting in the holding context, classified by the app."""

    call_id: str
    queue_id: str
    caller: str = ""
    vip: bool = False
    entitled: bool = False
    priority_boost: int = 0
    # Arrives while its Asterisk server is unreachable: queued, never offered until
    # ``CallsResumed`` names it (see ``CallsSuspended``).
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class CallsSuspended:
    """These calls cannot be routed now (their Asterisk server is unreachable).

    A fact, per call O(log n); unknown, connected or already suspended calls are skipped.
    A suspended call keeps its place (arrival time, priority) but is never offered; an
    offer already ringing stays until it ends, and ends without a miss for the agent.
    """

    call_ids: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CallsResumed:
    """These calls are routable again (their server is back and reconciled).

    Unknown or not suspended calls are skipped; the resumed waiting calls are routed in
    routing order (highest priority, then longest waiting).
    """

    call_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OfferAnswered:
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferFailed:
    call_id: str
    agent_id: str
    reason: OfferFailure


@dataclass(frozen=True, slots=True)
class CallHungUp:
    """The caller's channel is gone (abandon while waiting/ringing, or end of a call)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class AgentHungUp:
    """The agent's leg of a connected call hung up (the caller may still be up)."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """A connected call left ACD control (blind/redirect transfer); the agent is freed."""

    call_id: str
    target: str = ""


@dataclass(frozen=True, slots=True)
class CallFailed:
    """The call cannot go on (channel vanished on resync, server lost, action refused)."""

    call_id: str
    reason: str


# --- restart of the service (state brought back, calls found on Asterisk) -----------------


@dataclass(frozen=True, slots=True)
class AgentRestored:
    """A logged-in agent session brought back after a restart of the service.

    Only for an agent the engine has as LOGGED_OUT.  ``state`` is ``"ready"``,
    ``"paused"`` or ``"wrap_up"`` (an agent that held a call is brought back by
    ``CallAdopted`` instead, once Asterisk shows the call).  ``since`` / ``idle_since``
    keep the agent's place: a READY agent keeps its longest-idle order.  For WRAP_UP,
    ``call_id`` is the call being wrapped up and ``until`` when the wrap-up ends (``None``
    or past: at the next timer).
    """

    agent_id: str
    device: str
    state: str
    reason: str | None = None
    since: float | None = None
    idle_since: float | None = None
    call_id: str | None = None
    until: float | None = None
    missed_in_row: int = 0


@dataclass(frozen=True, slots=True)
class CallAdopted:
    """A call found on Asterisk (resync after a restart) taken under ACD control again.

    Keeps the call's history: ``arrived_at`` (routing order, wait time), ``queued_at``
    (escalation clock; default ``arrived_at``), offers and misses so far.  Where it is:
    - ``agent_id is None``: waiting in hold;
    - ``agent_id`` and ``answered_at is None``: ringing that agent (the offer is kept if
      the agent can take it, else the call is returned to hold);
    - ``agent_id`` and ``answered_at``: connected to that agent (the agent is ON_CALL).
    ``device``: the agent's device, used to log in an agent the engine has as LOGGED_OUT
    (Asterisk shows it on the call); without it a logged-out agent is refused.
    """

    call_id: str
    queue_id: str
    arrived_at: float
    caller: str = ""
    vip: bool = False
    entitled: bool = False
    priority_boost: int = 0
    agent_id: str | None = None
    answered_at: float | None = None
    device: str | None = None
    queued_at: float | None = None
    first_offered_at: float | None = None
    agents_offered: tuple[str, ...] = ()
    rona_count: int = 0
    # Found while its server is not yet reported reconciled: adopted suspended (see
    # ``CallArrived.suspended``).
    suspended: bool = False


Event = (
    ConfigureQueue
    | RemoveQueue
    | ConfigureAgent
    | RemoveAgent
    | SetQueueOpen
    | AgentLogin
    | AgentReady
    | AgentPause
    | AgentLogout
    | AgentDisconnected
    | CallArrived
    | CallsSuspended
    | CallsResumed
    | OfferAnswered
    | OfferFailed
    | CallHungUp
    | AgentHungUp
    | CallTransferred
    | CallFailed
    | AgentRestored
    | CallAdopted
)
