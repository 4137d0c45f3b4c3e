"""Read-only snapshots the engine hands to the app (REST, wallboard).

They are frozen copies: holding one never pins or mutates engine state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from routing.commands import AgentState


class CallState(enum.StrEnum):
    WAITING = "waiting"  # in the queue, no agent ringing
    OFFERED = "offered"  # ringing one agent (the caller still hears hold music)
    CONNECTED = "connected"  # answered; ends at CallHungUp / CallTransferred / CallFailed


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    state: AgentState
    reason: str | None
    since: float | None  # when the current state began (None: never logged in)
    device: str | None
    call_id: str | None  # offered / connected call, or the call being wrapped up
    queues: tuple[str, ...]
    skills: tuple[tuple[str, int], ...]
    missed_in_row: int
    idle_since: float | None  # routing order among ready agents (see engine docstring)
    pending: str | None = None  # "pause:<reason>" / "logout" applied after the call
    team: str | None = None
    until: float | None = None  # RESERVED / WRAP_UP: when the reservation / wrap-up ends


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    queue_id: str
    caller: str
    state: CallState
    arrived_at: float
    priority: int  # effective priority (queue + boosts)
    agent_id: str | None
    rona_count: int
    vip: bool = False
    entitled: bool = False
    queued_at: float = 0.0  # entry into the current queue (escalation clock)
    first_offered_at: float | None = None
    answered_at: float | None = None
    agents_offered: tuple[str, ...] = ()
    suspended: bool = False  # its server is unreachable: never offered until resumed
    retry_at: float | None = None  # backing off after failed offers: not routed before


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Per-queue counters, maintained incrementally (reading them is O(1)).

    ``waiting`` counts unanswered calls in the queue including the ones ringing an agent
    (``ringing``); ``oldest_arrived_at`` is the earliest arrival among them.  Agent counts
    are over the queue's members (``AgentConfig.queues``), whatever their skills.
    """

    queue_id: str
    is_open: bool
    waiting: int
    ringing: int
    oldest_arrived_at: float | None
    members: int
    logged_in: int
    ready: int
    reserved: int
    on_call: int
    wrap_up: int
    paused: int
