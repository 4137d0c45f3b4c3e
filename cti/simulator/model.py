"""Public value types of the AMI simulator: users, device profiles, traces, stats.

Invariants:
- ``SimUser`` mirrors one ``manager.conf`` user: ``read``/``write`` are sets of AMI
  classes (``{"all"}`` means every class); ``eventfilter`` is an include-only set of event
  names (the lab's ``acdf`` user) or ``None`` for no filter.
- A ``DeviceProfile`` describes one simulated phone.  Durations are either a constant
  (seconds) or a function of the simulator's seeded ``random.Random``, so a run is
  reproducible for a given seed and action sequence.
- ``CallTrace`` is written only by the simulator; ``result`` is set exactly once, when
  the last channel of the call is gone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

Dist = float | Callable[[random.Random], float]

# The event names a call router needs; the lab's ``acdf`` user includes only these.
ROUTER_EVENTS: frozenset[str] = frozenset(
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

ALL: frozenset[str] = frozenset({"all"})


def sample(dist: Dist, rng: random.Random) -> float:
    """Draw one value from a ``Dist`` (a constant or a function of ``rng``)."""
    return float(dist) if isinstance(dist, int | float) else float(dist(rng))


@dataclass(frozen=True, slots=True)
class SimUser:
    """One AMI login.  ``secret`` is never logged or repr'd."""

    secret: str
    read: frozenset[str] = ALL
    write: frozenset[str] = ALL
    eventfilter: frozenset[str] | None = None
    writetimeout_ms: int = 1000

    def __repr__(self) -> str:
        return (
            f"SimUser(read={sorted(self.read)}, write={sorted(self.write)}, "
            f"eventfilter={sorted(self.eventfilter) if self.eventfilter is not None else None}, "
            f"writetimeout_ms={self.writetimeout_ms})"
        )


def lab_users(secret: str = "acdsecret") -> dict[str, SimUser]:  # noqa: S107 (the lab secret)
    """The lab's ``manager.conf``: ``acd`` unfiltered, ``acdf`` with the router filter."""
    return {"acd": SimUser(secret), "acdf": SimUser(secret, eventfilter=ROUTER_EVENTS)}


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """How one simulated phone behaves when dialled.

    ``answer_prob``: chance the phone answers at all (otherwise it rings until the ring
    timeout: RONA).  ``busy``: answers every dial with BUSY.  ``unavailable``: not
    registered, Dial returns CHANUNAVAIL without creating a channel.
    ``agent_hangs_up_prob``: chance that the phone (not the caller) ends the call after
    ``talk_s``; otherwise the caller hangs up after ``talk_s``.
    """

    ring_s: Dist = 1.0
    answer_prob: float = 1.0
    busy: bool = False
    unavailable: bool = False
    talk_s: Dist = 3.0
    agent_hangs_up_prob: float = 1.0


# The lab's extensions.conf [sim-agents] globals: 1800 busy, 1900 never answers,
# 1002 talks 30 s, 1003 rings 2 s and talks 4 s; everyone else rings 1 s, talks 3 s.
LAB_PROFILES: dict[str, DeviceProfile] = {
    "1800": DeviceProfile(busy=True),
    "1900": DeviceProfile(answer_prob=0.0),
    "1002": DeviceProfile(talk_s=30.0),
    "1003": DeviceProfile(ring_s=2.0, talk_s=4.0),
}

# The lab's [sim-customers]: ring 2 s, answer, talk 3 s, the customer hangs up.
LAB_CUSTOMER = DeviceProfile(ring_s=2.0, talk_s=3.0, agent_hangs_up_prob=1.0)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """A snapshot of one live channel (for assertions)."""

    name: str
    uniqueid: str
    linkedid: str
    state: str
    context: str
    exten: str
    priority: int
    application: str
    bridge_id: str
    role: str  # caller | customer | agent | phone | callee | callee-phone


@dataclass(slots=True)
class CallTrace:
    """What happened to one call the simulator placed (or one Originate it ran)."""

    kind: str  # "inbound" or "originate"
    uniqueid: str
    linkedid: str
    dnis: str
    caller_num: str
    caller_name: str
    arrived: float  # epoch s
    holds: list[float] = field(default_factory=list)  # epoch s of each ACDHold written
    offered: list[str] = field(default_factory=list)  # devices dialled, in order
    dial_results: list[str] = field(default_factory=list)  # DialStatus per offer
    answered_by: str | None = None
    answered_at: float | None = None
    ended: float | None = None
    ended_by: str | None = None  # caller | agent | ami | restart | dialplan
    # answered | abandoned | overflowed | failed | lost (restart); None while in progress
    result: str | None = None


@dataclass(slots=True)
class SimStats:
    placed: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    failed: int = 0
    lost: int = 0
    in_progress: int = 0
    events_sent: int = 0  # messages written to sessions (an event to 2 sessions counts 2)
    events_emitted: int = 0  # distinct events generated
    actions_received: int = 0
    sessions: int = 0
    sessions_cut_slow: int = 0
    timer_lag_max_s: float = 0.0
    timer_handles_live: int = 0  # loop handles armed, not yet fired nor cancelled (<= 1)
