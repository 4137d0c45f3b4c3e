"""Commands the routing core emits from ``handle(event, now)`` / ``handle_timer(now)``.

Two kinds: telephony actions the driver must carry out through ``cti`` (``OfferCall``,
``ReturnToHold``, ``OverflowCall``, ``HangupCall``) and notifications the app persists
and publishes (state changes, call lifecycle, the final ``CallEnded`` record).

Contract shared by ``routing``, ``cti`` and ``app``: commands may be added and fields
may be added with defaults, never renamed or removed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    RESERVED = "reserved"  # an offer is ringing on the agent's device
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class CallResult(enum.StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"
    SHORT_ABANDONED = "short_abandoned"  # caller gave up within 5 s
    OVERFLOWED = "overflowed"
    FAILED = "failed"
    # Left during the greeting / IVR, before reaching the queue (recorded by the app from
    # the telephony side; the routing core never sees such a call).
    ABANDONED_IN_IVR = "abandoned_in_ivr"


# --- telephony actions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferCall:
    """Ring ``device`` for ``call_id``; the dialplan gives up after ``ring_timeout_s``."""

    call_id: str
    agent_id: str
    device: str
    ring_timeout_s: float
    queue_id: str


@dataclass(frozen=True, slots=True)
class ReturnToHold:
    """Stop ringing the agent and put the caller back in the holding context."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OverflowCall:
    """Send the caller to an external overflow target (``"ext:<context>,<exten>"``)."""

    call_id: str
    target: str


@dataclass(frozen=True, slots=True)
class HangupCall:
    call_id: str
    cause: int = 16


# --- notifications -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: str
    state: AgentState
    at: float
    reason: str | None = None
    call_id: str | None = None
    previous: AgentState | None = None


@dataclass(frozen=True, slots=True)
class CallQueued:
    """The call waits for an agent (on arrival and again after a failed offer)."""

    call_id: str
    queue_id: str
    at: float
    priority: int = 0
    # Why it (re-)entered the queue: "arrived", "overflow:<from queue>", the failed dial
    # status ("noanswer", "busy", ...), "reservation-timeout" or "withdrawn".
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallOffered:
    call_id: str
    agent_id: str
    queue_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    agent_id: str
    queue_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Everything the routing core knows about a finished call (times in epoch s)."""

    call_id: str
    queue_id: str
    caller: str
    result: CallResult
    arrived_at: float
    ended_at: float
    first_offered_at: float | None = None
    answered_at: float | None = None
    answered_by: str | None = None
    agents_offered: tuple[str, ...] = ()
    rona_count: int = 0
    overflow_target: str | None = None
    vip: bool = False
    entitled: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallEnded:
    """Emitted exactly once per arrived call."""

    record: CallRecord


@dataclass(frozen=True, slots=True)
class WrapUpEnded:
    agent_id: str
    call_id: str | None
    at: float


Command = (
    OfferCall
    | ReturnToHold
    | OverflowCall
    | HangupCall
    | AgentStateChanged
    | CallQueued
    | CallOffered
    | CallAnswered
    | CallEnded
    | WrapUpEnded
)
