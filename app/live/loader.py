"""Read the routing configuration from PostgreSQL: queues, agents, DNIS map, hours.

Invariants:
- Pure translation of rows into ``routing.config`` values: routing ids are
  ``str(queues.id)`` / ``str(agents.id)``, skills are referred to by ``skills.name``.
- A queue's ``overflow_queue_id`` becomes ``QueueConfig.overflow_target`` (the queue id as
  a string); an external ``overflow_target`` (``"ext:<context>,<exten>"``) passes as is.
- Inactive agents and queues are absent from the result (the caller removes them).
- Opening hours (``queues.hours``, see ``app.models``) are evaluated in the queue's own
  time zone; no hours means always open; a malformed hours document means open (a
  configuration mistake must not silently close a service line) and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app import models
from routing.config import AgentConfig, EscalationStep, QueueConfig

logger = logging.getLogger(__name__)

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class AgentRow:
    config: AgentConfig
    name: str
    device: str
    team_id: int | None


@dataclass(frozen=True, slots=True)
class QueueRow:
    config: QueueConfig
    name: str
    hours: dict[str, Any] | None


def is_open(hours: dict[str, Any] | None, at: float) -> bool:
    """Whether a queue with these opening hours is open at epoch ``at``."""
    if not hours:
        return True
    try:
        tz = ZoneInfo(str(hours.get("timezone") or "UTC"))
        local = datetime.fromtimestamp(at, tz)
        weekly = hours.get("weekly") or {}
        intervals = weekly.get(_WEEKDAYS[local.weekday()], [])
        now_t = local.time()
        for start, end in intervals:
            t0, t1 = time.fromisoformat(start), time.fromisoformat(end)
            # "24:00" is not a valid time; "00:00" as an end means midnight.
            if t0 <= now_t and (now_t < t1 or t1 == time(0)):
                return True
    except (ValueError, TypeError, KeyError, ZoneInfoNotFoundError) as exc:
        logger.warning("malformed opening hours %r (%s): treating the queue as open", hours, exc)
        return True
    return False


def _escalation(raw: list[Any] | None) -> tuple[EscalationStep, ...]:
    steps: list[EscalationStep] = []
    for item in raw or []:
        if not isinstance(item, dict) or "after_s" not in item:
            continue
        steps.append(
            EscalationStep(
                after_s=float(item["after_s"]),
                min_level=int(item["min_level"]) if item.get("min_level") is not None else None,
                add_queues=tuple(str(q) for q in item.get("add_queues") or ()),
                overflow=bool(item.get("overflow", False)),
            )
        )
    steps.sort(key=lambda s: s.after_s)
    return tuple(steps)


async def load_queues(
    session: AsyncSession, at: float, queue_ids: Iterable[int] | None = None
) -> dict[str, QueueRow]:
    stmt = sa.select(models.Queue).where(models.Queue.active.is_(True))
    if queue_ids is not None:
        stmt = stmt.where(models.Queue.id.in_(list(queue_ids)))
    queues = (await session.scalars(stmt.order_by(models.Queue.id))).all()
    ids = [q.id for q in queues]
    skills: dict[int, list[tuple[str, int]]] = {}
    if ids:
        rows = await session.execute(
            sa.select(models.QueueSkill.queue_id, models.Skill.name, models.QueueSkill.min_level)
            .join(models.Skill, models.Skill.id == models.QueueSkill.skill_id)
            .where(models.QueueSkill.queue_id.in_(ids))
            .order_by(models.QueueSkill.queue_id, models.Skill.name)
        )
        for queue_id, name, level in rows:
            skills.setdefault(queue_id, []).append((name, int(level)))
    out: dict[str, QueueRow] = {}
    for q in queues:
        overflow = str(q.overflow_queue_id) if q.overflow_queue_id else q.overflow_target
        config = QueueConfig(
            queue_id=str(q.id),
            skills=tuple(skills.get(q.id, ())),
            priority=q.priority,
            weight=q.weight,
            sl_target_s=q.sl_target_s,
            sl_target_pct=q.sl_target_pct,
            ring_timeout_s=q.ring_timeout_s,
            wrapup_s=q.wrapup_s,
            max_wait_s=q.max_wait_s,
            max_len=q.max_len,
            overflow_target=overflow,
            escalation=_escalation(q.escalation),
            vip_boost=q.vip_boost,
            entitled_boost=q.entitled_boost,
            is_open=is_open(q.hours, at),
        )
        out[config.queue_id] = QueueRow(config=config, name=q.name, hours=q.hours)
    return out


async def load_agents(
    session: AsyncSession, agent_ids: Iterable[int] | None = None
) -> dict[str, AgentRow]:
    stmt = (
        sa.select(models.Agent, models.Team.name)
        .outerjoin(models.Team, models.Team.id == models.Agent.team_id)
        .where(models.Agent.active.is_(True))
    )
    if agent_ids is not None:
        stmt = stmt.where(models.Agent.id.in_(list(agent_ids)))
    agents = (await session.execute(stmt.order_by(models.Agent.id))).all()
    ids = [a.id for a, _ in agents]
    skills: dict[int, list[tuple[str, int]]] = {}
    queues: dict[int, list[str]] = {}
    if ids:
        rows = await session.execute(
            sa.select(models.AgentSkill.agent_id, models.Skill.name, models.AgentSkill.level)
            .join(models.Skill, models.Skill.id == models.AgentSkill.skill_id)
            .where(models.AgentSkill.agent_id.in_(ids))
            .order_by(models.AgentSkill.agent_id, models.Skill.name)
        )
        for agent_id, name, level in rows:
            skills.setdefault(agent_id, []).append((name, int(level)))
        # Membership only in active queues: the routing core refuses unknown queue ids.
        links = await session.execute(
            sa.select(models.AgentQueue.agent_id, models.AgentQueue.queue_id)
            .join(models.Queue, models.Queue.id == models.AgentQueue.queue_id)
            .where(models.AgentQueue.agent_id.in_(ids), models.Queue.active.is_(True))
            .order_by(models.AgentQueue.agent_id, models.AgentQueue.queue_id)
        )
        for agent_id, queue_id in links:
            queues.setdefault(agent_id, []).append(str(queue_id))
    out: dict[str, AgentRow] = {}
    for agent, team_name in agents:
        config = AgentConfig(
            agent_id=str(agent.id),
            skills=tuple(skills.get(agent.id, ())),
            queues=tuple(queues.get(agent.id, ())),
            team=team_name,
            max_missed=agent.max_missed,
        )
        out[config.agent_id] = AgentRow(
            config=config, name=agent.name, device=agent.device, team_id=agent.team_id
        )
    return out


async def load_dnis(session: AsyncSession) -> dict[str, str]:
    """DNIS -> queue id, for active queues only."""
    rows = await session.execute(
        sa.select(models.QueueDnis.dnis, models.QueueDnis.queue_id)
        .join(models.Queue, models.Queue.id == models.QueueDnis.queue_id)
        .where(models.Queue.active.is_(True))
    )
    return {dnis: str(queue_id) for dnis, queue_id in rows}


async def pause_code_exists(session: AsyncSession, code: str) -> bool:
    """An active pause code (``pause_codes``, the agent-log domain's configuration)."""
    found = await session.scalar(
        sa.text("SELECT 1 FROM pause_codes WHERE code = :code AND active"), {"code": code}
    )
    return found is not None


async def disposition_exists(session: AsyncSession, code: str) -> bool:
    found = await session.scalar(
        sa.select(models.Disposition.id).where(
            models.Disposition.code == code, models.Disposition.active.is_(True)
        )
    )
    return found is not None
