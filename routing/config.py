"""Static configuration of queues (service lines) and agents, as the routing core sees it.

Contract shared by ``routing``, ``cti`` and ``app``: fields may be added (with defaults),
never renamed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """Relax a waiting call's requirements once it has waited ``after_s`` seconds.

    ``min_level``: accept agents whose level in every required skill is at least this
    (instead of the queue's own minimum).  ``add_queues``: also accept agents that serve
    these queues.  ``overflow``: send the call to the queue's overflow target.
    """

    after_s: float
    min_level: int | None = None
    add_queues: tuple[str, ...] = ()
    overflow: bool = False


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue / service line.

    ``skills``: required skills as (skill, minimum level 1-5) pairs.  An agent serves the
    queue when the queue id is in ``AgentConfig.queues`` and it meets every required
    skill at the (possibly relaxed) level.
    ``overflow_target``: another queue id, or an external target ``"ext:<context>,<exten>"``
    the telephony layer understands; ``None`` means calls that hit max wait / max length /
    closed hours fail (are hung up).
    """

    queue_id: str
    skills: tuple[tuple[str, int], ...] = ()
    priority: int = 0
    weight: int = 1
    sl_target_s: float = 15.0
    sl_target_pct: float = 0.8
    ring_timeout_s: float = 15.0
    wrapup_s: float = 10.0
    max_wait_s: float | None = None
    max_len: int | None = None
    overflow_target: str | None = None
    escalation: tuple[EscalationStep, ...] = ()
    vip_boost: int = 10
    entitled_boost: int = 5
    is_open: bool = True


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """An agent seat: skills (skill, level 1-5) and the queues it is a member of."""

    agent_id: str
    skills: tuple[tuple[str, int], ...] = ()
    queues: tuple[str, ...] = ()
    team: str | None = None
    max_missed: int = 3
