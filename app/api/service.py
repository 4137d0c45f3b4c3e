"""Configuration services: agents, queues, skills, teams, dispositions, users.

Invariants:
- Keyword-only functions taking the request's ``AsyncSession``; each write function does
  all of its work in the session's one transaction and commits once at the end, so a
  failure anywhere (unknown reference, duplicate, constraint) leaves nothing written.
- References in a body (skill names, queue ids, team id, agent id) are resolved before
  anything is written; an unknown one is a 422 ``validation-failed`` naming the field.
  An unknown id in the path is a 404 ``not-found``.
- Database constraint violations are mapped at this boundary: unique -> 409 ``conflict``,
  check / foreign key -> 422 ``validation-failed``; never a 500.
- Skills in use by an agent or a queue cannot be deleted (409): deleting them would
  silently change routing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app import models
from app.api import schemas
from app.api.pagination import DEFAULT_LIMIT, decode_id_cursor, encode_cursor
from app.auth import hash_password_async
from app.devices import check_device, refuse_anothers_device
from app.errors import Conflict, NotFound, ValidationFailed
from app.settings import DeviceSettings

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=models.Base)

# Readable messages for the named unique constraints (see models.NAMING_CONVENTION).
_UNIQUE_MESSAGES = {
    "uq_skills_name": "A skill with this name already exists.",
    "uq_teams_name": "A team with this name already exists.",
    "uq_dispositions_code": "A disposition with this code already exists.",
    "uq_queues_name": "A queue with this name already exists.",
    "uq_users_username": "A user with this username already exists.",
    "pk_queue_dnis": "This DNIS already belongs to a queue.",
    "uq_devices_technology_endpoint": "This device is already registered.",
}


def _sqlstate(exc: IntegrityError) -> tuple[str | None, str | None]:
    """(SQLSTATE, constraint name): SQLAlchemy's adapter error carries the state, the
    asyncpg error it wraps (its ``__cause__``) the constraint name."""
    orig: Any = exc.orig
    state: str | None = None
    constraint: str | None = None
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if candidate is None:
            continue
        state = state or getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        constraint = constraint or getattr(candidate, "constraint_name", None)
    return state, constraint


async def commit(session: AsyncSession) -> None:
    """Commit, mapping constraint violations to problems (and rolling back)."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise integrity_problem(exc) from exc


def integrity_problem(exc: IntegrityError) -> Conflict | ValidationFailed:
    state, constraint = _sqlstate(exc)
    if state == "23505":  # unique_violation
        return Conflict(
            _UNIQUE_MESSAGES.get(constraint or "", "A resource with these values already exists."),
            constraint=constraint,
        )
    if state == "23503":  # foreign_key_violation
        return ValidationFailed(
            "A referenced resource does not exist (or was just deleted).",
            errors=[
                {"loc": ["body"], "msg": f"reference {constraint}", "type": "unknown_reference"}
            ],
        )
    logger.warning("integrity error %s on %s", state, constraint)
    return ValidationFailed(
        "The values break a database constraint.",
        errors=[{"loc": ["body"], "msg": f"constraint {constraint}", "type": "constraint"}],
    )


async def flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise integrity_problem(exc) from exc


def unknown_reference(loc: Sequence[str | int], msg: str) -> ValidationFailed:
    return ValidationFailed(
        msg, errors=[{"loc": list(loc), "msg": msg, "type": "unknown_reference"}]
    )


async def _get(session: AsyncSession, model: type[M], ident: int, what: str) -> M:
    obj = await session.get(model, ident)
    if obj is None:
        raise NotFound(f"{what} {ident} does not exist.", resource=what.lower(), id=ident)
    return obj


async def _page(
    session: AsyncSession, stmt: sa.Select[Any], id_col: Any, *, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    after = decode_id_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_col > after)
    rows = list((await session.scalars(stmt.order_by(id_col).limit(limit + 1))).all())
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


# --- simple resources: skills, teams, dispositions -----------------------------------------


async def list_simple(
    session: AsyncSession,
    *,
    model: type[M],
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[M], str | None]:
    id_col: Any = model.id  # type: ignore[attr-defined]
    return await _page(session, sa.select(model), id_col, limit=limit, cursor=cursor)


async def get_simple(session: AsyncSession, *, model: type[M], ident: int, what: str) -> M:
    return await _get(session, model, ident, what)


async def create_simple(session: AsyncSession, *, model: type[M], data: dict[str, Any]) -> M:
    obj = model(**data)
    session.add(obj)
    await commit(session)
    return obj


async def update_simple(
    session: AsyncSession, *, model: type[M], ident: int, what: str, changes: dict[str, Any]
) -> M:
    obj = await _get(session, model, ident, what)
    for key, value in changes.items():
        setattr(obj, key, value)
    await commit(session)
    return obj


async def delete_simple(session: AsyncSession, *, model: type[M], ident: int, what: str) -> None:
    obj = await _get(session, model, ident, what)
    await session.delete(obj)
    await commit(session)


async def delete_skill(session: AsyncSession, *, skill_id: int) -> None:
    skill = await _get(session, models.Skill, skill_id, "Skill")
    agents = await session.scalar(
        sa.select(sa.func.count()).where(models.AgentSkill.skill_id == skill_id)
    )
    queues = await session.scalar(
        sa.select(sa.func.count()).where(models.QueueSkill.skill_id == skill_id)
    )
    if agents or queues:
        raise Conflict(
            f"Skill {skill.name!r} is used by {agents} agent(s) and {queues} queue(s); "
            "remove it from them first.",
            agents=agents,
            queues=queues,
        )
    await session.delete(skill)
    await commit(session)


async def skill_users(session: AsyncSession, *, skill_id: int) -> tuple[list[int], list[int]]:
    """(agent ids, queue ids) that refer to this skill."""
    agent_ids = (
        await session.scalars(
            sa.select(models.AgentSkill.agent_id).where(models.AgentSkill.skill_id == skill_id)
        )
    ).all()
    queue_ids = (
        await session.scalars(
            sa.select(models.QueueSkill.queue_id).where(models.QueueSkill.skill_id == skill_id)
        )
    ).all()
    return list(agent_ids), list(queue_ids)


async def team_agent_ids(session: AsyncSession, *, team_id: int) -> list[int]:
    return list(
        (
            await session.scalars(sa.select(models.Agent.id).where(models.Agent.team_id == team_id))
        ).all()
    )


# --- reference resolution --------------------------------------------------------------------


async def _skill_ids(
    session: AsyncSession, names: Iterable[str], loc: Sequence[str]
) -> dict[str, int]:
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    rows = (
        await session.execute(
            sa.select(models.Skill.name, models.Skill.id).where(models.Skill.name.in_(wanted))
        )
    ).all()
    found: dict[str, int] = {name: ident for name, ident in rows}  # noqa: C416 - typed
    missing = [n for n in wanted if n not in found]
    if missing:
        raise unknown_reference(loc, f"Unknown skill(s): {', '.join(missing)}.")
    return found


async def _check_ids(
    session: AsyncSession, model: type[M], ids: Iterable[int], loc: Sequence[str], what: str
) -> None:
    wanted = set(ids)
    if not wanted:
        return
    id_col: Any = model.id  # type: ignore[attr-defined]
    found = set((await session.scalars(sa.select(id_col).where(id_col.in_(wanted)))).all())
    missing = sorted(wanted - found)
    if missing:
        raise unknown_reference(loc, f"Unknown {what}(s): {', '.join(map(str, missing))}.")


# --- agents ------------------------------------------------------------------------------------


def _agent_query() -> sa.Select[models.Agent]:
    return sa.select(models.Agent).options(
        selectinload(models.Agent.skills).selectinload(models.AgentSkill.skill),
        selectinload(models.Agent.queue_links),
    )


async def _usernames(session: AsyncSession, agent_ids: Sequence[int]) -> dict[int, list[str]]:
    if not agent_ids:
        return {}
    rows = (
        await session.execute(
            sa.select(models.User.agent_id, models.User.username)
            .where(models.User.agent_id.in_(agent_ids))
            .order_by(models.User.username)
        )
    ).all()
    out: dict[int, list[str]] = {}
    for agent_id, username in rows:
        if agent_id is not None:
            out.setdefault(agent_id, []).append(username)
    return out


def agent_read(agent: models.Agent, usernames: list[str]) -> schemas.AgentRead:
    return schemas.AgentRead(
        id=agent.id,
        agent_id=str(agent.id),
        name=agent.name,
        device=agent.device,
        team_id=agent.team_id,
        max_missed=agent.max_missed,
        active=agent.active,
        skills=sorted(
            (schemas.SkillLevelRead(skill=s.skill.name, level=s.level) for s in agent.skills),
            key=lambda s: s.skill,
        ),
        queue_ids=sorted(q.queue_id for q in agent.queue_links),
        usernames=usernames,
        created_at=agent.created_at,
    )


async def _load_agent(session: AsyncSession, agent_id: int) -> models.Agent:
    agent = await session.scalar(
        _agent_query().where(models.Agent.id == agent_id).execution_options(populate_existing=True)
    )
    if agent is None:
        raise NotFound(f"Agent {agent_id} does not exist.", resource="agent", id=agent_id)
    return agent


async def get_agent(session: AsyncSession, *, agent_id: int) -> schemas.AgentRead:
    agent = await _load_agent(session, agent_id)
    return agent_read(agent, (await _usernames(session, [agent.id])).get(agent.id, []))


async def list_agents(
    session: AsyncSession,
    *,
    team_id: int | None = None,
    queue_id: int | None = None,
    active: bool | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[schemas.AgentRead], str | None]:
    stmt = _agent_query()
    if team_id is not None:
        stmt = stmt.where(models.Agent.team_id == team_id)
    if active is not None:
        stmt = stmt.where(models.Agent.active.is_(active))
    if queue_id is not None:
        stmt = stmt.where(
            sa.exists().where(
                models.AgentQueue.agent_id == models.Agent.id,
                models.AgentQueue.queue_id == queue_id,
            )
        )
    agents, next_cursor = await _page(session, stmt, models.Agent.id, limit=limit, cursor=cursor)
    names = await _usernames(session, [a.id for a in agents])
    return [agent_read(a, names.get(a.id, [])) for a in agents], next_cursor


async def _set_agent_links(
    session: AsyncSession,
    agent: models.Agent,
    *,
    skills: list[schemas.SkillLevel] | None,
    queue_ids: list[int] | None,
) -> None:
    if skills is not None:
        ids = await _skill_ids(session, (s.skill for s in skills), ["body", "skills"])
        agent.skills = [models.AgentSkill(skill_id=ids[s.skill], level=s.level) for s in skills]
    if queue_ids is not None:
        await _check_ids(session, models.Queue, queue_ids, ["body", "queue_ids"], "queue")
        agent.queue_links = [models.AgentQueue(queue_id=q) for q in queue_ids]


async def create_agent(
    session: AsyncSession, *, data: schemas.AgentCreate, policy: DeviceSettings
) -> schemas.AgentRead:
    device = check_device(data.device, policy, ["body", "device"])
    await refuse_anothers_device(session, dial=device, agent_id=None)
    if data.team_id is not None:
        await _check_ids(session, models.Team, [data.team_id], ["body", "team_id"], "team")
    agent = models.Agent(
        name=data.name,
        device=device.dial,
        team_id=data.team_id,
        max_missed=data.max_missed,
        active=data.active,
        skills=[],
        queue_links=[],
    )
    session.add(agent)
    await _set_agent_links(session, agent, skills=data.skills, queue_ids=data.queue_ids)
    await flush(session)  # the identity (the extension) is needed for the login user
    if data.login is not None:
        session.add(
            models.User(
                username=data.login.username,
                password_hash=await hash_password_async(data.login.password),
                role=models.Role.AGENT,
                agent_id=agent.id,
            )
        )
    await commit(session)
    return await get_agent(session, agent_id=agent.id)


async def update_agent(
    session: AsyncSession, *, agent_id: int, data: schemas.AgentUpdate, policy: DeviceSettings
) -> schemas.AgentRead:
    agent = await _load_agent(session, agent_id)
    changes = data.model_dump(exclude_unset=True, exclude={"skills", "queue_ids"})
    for field in ("name", "device", "max_missed", "active"):
        if field in changes and changes[field] is None:
            raise ValidationFailed(
                f"{field} cannot be null.",
                errors=[{"loc": ["body", field], "msg": "may not be null", "type": "not_null"}],
            )
    if "device" in changes:
        device = check_device(changes["device"], policy, ["body", "device"])
        await refuse_anothers_device(session, dial=device, agent_id=agent_id)
        changes["device"] = device.dial
    if changes.get("team_id") is not None:
        await _check_ids(session, models.Team, [changes["team_id"]], ["body", "team_id"], "team")
    for key, value in changes.items():
        setattr(agent, key, value)
    await _set_agent_links(
        session,
        agent,
        skills=data.skills if "skills" in data.model_fields_set else None,
        queue_ids=data.queue_ids if "queue_ids" in data.model_fields_set else None,
    )
    await commit(session)
    return await get_agent(session, agent_id=agent_id)


async def delete_agent(session: AsyncSession, *, agent_id: int) -> None:
    agent = await _get(session, models.Agent, agent_id, "Agent")
    await session.delete(agent)
    await commit(session)


# --- queues ------------------------------------------------------------------------------------


def _queue_query() -> sa.Select[models.Queue]:
    return sa.select(models.Queue).options(
        selectinload(models.Queue.dnis),
        selectinload(models.Queue.skills).selectinload(models.QueueSkill.skill),
    )


def queue_read(queue: models.Queue) -> schemas.QueueRead:
    return schemas.QueueRead(
        id=queue.id,
        queue_id=str(queue.id),
        name=queue.name,
        description=queue.description,
        priority=queue.priority,
        weight=queue.weight,
        sl_target_s=queue.sl_target_s,
        sl_target_pct=queue.sl_target_pct,
        ring_timeout_s=queue.ring_timeout_s,
        wrapup_s=queue.wrapup_s,
        max_wait_s=queue.max_wait_s,
        max_len=queue.max_len,
        overflow_queue_id=queue.overflow_queue_id,
        overflow_target=queue.overflow_target,
        hours=queue.hours,
        escalation=list(queue.escalation or []),
        vip_boost=queue.vip_boost,
        entitled_boost=queue.entitled_boost,
        active=queue.active,
        dnis=sorted(d.dnis for d in queue.dnis),
        skills=sorted(
            (
                schemas.SkillRequirementRead(skill=s.skill.name, min_level=s.min_level)
                for s in queue.skills
            ),
            key=lambda s: s.skill,
        ),
        created_at=queue.created_at,
    )


async def _load_queue(session: AsyncSession, queue_id: int) -> models.Queue:
    queue = await session.scalar(
        _queue_query().where(models.Queue.id == queue_id).execution_options(populate_existing=True)
    )
    if queue is None:
        raise NotFound(f"Queue {queue_id} does not exist.", resource="queue", id=queue_id)
    return queue


async def get_queue(session: AsyncSession, *, queue_id: int) -> schemas.QueueRead:
    return queue_read(await _load_queue(session, queue_id))


async def list_queues(
    session: AsyncSession,
    *,
    active: bool | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[schemas.QueueRead], str | None]:
    stmt = _queue_query()
    if active is not None:
        stmt = stmt.where(models.Queue.active.is_(active))
    queues, next_cursor = await _page(session, stmt, models.Queue.id, limit=limit, cursor=cursor)
    return [queue_read(q) for q in queues], next_cursor


def _escalation_json(steps: list[schemas.EscalationStepSchema]) -> list[dict[str, Any]]:
    return [step.model_dump(exclude_defaults=True) | {"after_s": step.after_s} for step in steps]


async def _check_queue_refs(
    session: AsyncSession,
    *,
    queue_id: int | None,
    overflow_queue_id: int | None,
    escalation: list[schemas.EscalationStepSchema] | None,
) -> None:
    if overflow_queue_id is not None:
        if overflow_queue_id == queue_id:
            raise ValidationFailed(
                "A queue cannot overflow to itself.",
                errors=[
                    {
                        "loc": ["body", "overflow_queue_id"],
                        "msg": "self reference",
                        "type": "value_error",
                    }
                ],
            )
        await _check_ids(
            session, models.Queue, [overflow_queue_id], ["body", "overflow_queue_id"], "queue"
        )
    for i, step in enumerate(escalation or []):
        ids: list[int] = []
        for ref in step.add_queues:
            # ASCII digits within the id column's range ("²".isdigit() is True, too).
            if not (ref.isascii() and ref.isdigit() and 0 < int(ref) <= schemas.INT4_MAX):
                raise unknown_reference(
                    ["body", "escalation", str(i), "add_queues"], f"Unknown queue {ref!r}."
                )
            ids.append(int(ref))
        await _check_ids(
            session, models.Queue, ids, ["body", "escalation", str(i), "add_queues"], "queue"
        )


async def _set_queue_links(
    session: AsyncSession,
    queue: models.Queue,
    *,
    dnis: list[str] | None,
    skills: list[schemas.SkillRequirement] | None,
) -> None:
    if skills is not None:
        ids = await _skill_ids(session, (s.skill for s in skills), ["body", "skills"])
        queue.skills = [
            models.QueueSkill(skill_id=ids[s.skill], min_level=s.min_level) for s in skills
        ]
    if dnis is not None:
        taken = (
            await session.execute(
                sa.select(models.QueueDnis.dnis, models.QueueDnis.queue_id).where(
                    models.QueueDnis.dnis.in_(dnis)
                )
            )
        ).all()
        clash = sorted(d for d, owner in taken if owner != queue.id)
        if clash:
            raise Conflict(f"DNIS already routed to another queue: {', '.join(clash)}.", dnis=clash)
        keep = {d.dnis: d for d in queue.dnis if d.dnis in set(dnis)}
        queue.dnis = [keep.get(d) or models.QueueDnis(dnis=d) for d in dnis]


async def create_queue(session: AsyncSession, *, data: schemas.QueueCreate) -> schemas.QueueRead:
    await _check_queue_refs(
        session, queue_id=None, overflow_queue_id=data.overflow_queue_id, escalation=data.escalation
    )
    fields = data.model_dump(exclude={"dnis", "skills", "hours", "escalation"})
    queue = models.Queue(
        **fields,
        hours=data.hours.model_dump(mode="json") if data.hours is not None else None,
        escalation=_escalation_json(data.escalation),
        dnis=[],
        skills=[],
    )
    session.add(queue)
    await _set_queue_links(session, queue, dnis=data.dnis, skills=data.skills)
    await commit(session)
    return await get_queue(session, queue_id=queue.id)


_QUEUE_NOT_NULL = (
    "name",
    "priority",
    "weight",
    "sl_target_s",
    "sl_target_pct",
    "ring_timeout_s",
    "wrapup_s",
    "escalation",
    "vip_boost",
    "entitled_boost",
    "active",
    "dnis",
    "skills",
)


async def update_queue(
    session: AsyncSession, *, queue_id: int, data: schemas.QueueUpdate
) -> schemas.QueueRead:
    queue = await _load_queue(session, queue_id)
    sent = data.model_fields_set
    for field in _QUEUE_NOT_NULL:
        if field in sent and getattr(data, field) is None:
            raise ValidationFailed(
                f"{field} cannot be null.",
                errors=[{"loc": ["body", field], "msg": "may not be null", "type": "not_null"}],
            )
    overflow_queue_id = (
        data.overflow_queue_id if "overflow_queue_id" in sent else queue.overflow_queue_id
    )
    overflow_target = data.overflow_target if "overflow_target" in sent else queue.overflow_target
    if overflow_queue_id is not None and overflow_target is not None:
        raise ValidationFailed(
            "set overflow_queue_id or overflow_target, not both",
            errors=[{"loc": ["body"], "msg": "both overflow targets set", "type": "value_error"}],
        )
    await _check_queue_refs(
        session,
        queue_id=queue_id,
        overflow_queue_id=data.overflow_queue_id if "overflow_queue_id" in sent else None,
        escalation=data.escalation if "escalation" in sent else None,
    )
    changes = data.model_dump(exclude_unset=True, exclude={"dnis", "skills", "hours", "escalation"})
    for key, value in changes.items():
        setattr(queue, key, value)
    if "hours" in sent:
        queue.hours = data.hours.model_dump(mode="json") if data.hours is not None else None
    if data.escalation is not None:
        queue.escalation = _escalation_json(data.escalation)
    await _set_queue_links(session, queue, dnis=data.dnis, skills=data.skills)
    await commit(session)
    return await get_queue(session, queue_id=queue_id)


async def delete_queue(session: AsyncSession, *, queue_id: int) -> list[int]:
    """Delete a queue; returns the agents that were members (their config changed)."""
    queue = await _get(session, models.Queue, queue_id, "Queue")
    members = list(
        (
            await session.scalars(
                sa.select(models.AgentQueue.agent_id).where(models.AgentQueue.queue_id == queue_id)
            )
        ).all()
    )
    await session.delete(queue)
    await commit(session)
    return members


# --- users -------------------------------------------------------------------------------------


async def list_users(
    session: AsyncSession,
    *,
    role: str | None = None,
    agent_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[models.User], str | None]:
    stmt = sa.select(models.User)
    if role is not None:
        stmt = stmt.where(models.User.role == models.Role(role))
    if agent_id is not None:
        stmt = stmt.where(models.User.agent_id == agent_id)
    return await _page(session, stmt, models.User.id, limit=limit, cursor=cursor)


async def get_user(session: AsyncSession, *, user_id: int) -> models.User:
    return await _get(session, models.User, user_id, "User")


async def create_user(session: AsyncSession, *, data: schemas.UserCreate) -> models.User:
    if data.agent_id is not None:
        await _check_ids(session, models.Agent, [data.agent_id], ["body", "agent_id"], "agent")
    user = models.User(
        username=data.username,
        password_hash=await hash_password_async(data.password),
        role=models.Role(data.role.value),
        agent_id=data.agent_id,
        active=data.active,
    )
    session.add(user)
    await commit(session)
    return user


async def update_user(
    session: AsyncSession, *, user_id: int, data: schemas.UserUpdate, acting_user_id: int
) -> models.User:
    user = await _get(session, models.User, user_id, "User")
    sent = data.model_fields_set
    for field in ("password", "role", "active"):
        if field in sent and getattr(data, field) is None:
            raise ValidationFailed(
                f"{field} cannot be null.",
                errors=[{"loc": ["body", field], "msg": "may not be null", "type": "not_null"}],
            )
    role = data.role.value if data.role is not None else user.role.value
    agent_id = data.agent_id if "agent_id" in sent else user.agent_id
    if role == models.Role.AGENT and agent_id is None:
        raise ValidationFailed(
            "A user with the agent role needs an agent_id.",
            errors=[{"loc": ["body", "agent_id"], "msg": "required for agents", "type": "missing"}],
        )
    if user_id == acting_user_id and (
        (data.role is not None and data.role.value != models.Role.ADMIN) or data.active is False
    ):
        # Locking yourself out is almost always a mistake, and could leave no admin.
        raise Conflict("You cannot demote or disable your own account.")
    if "agent_id" in sent and agent_id is not None:
        await _check_ids(session, models.Agent, [agent_id], ["body", "agent_id"], "agent")
    revokes = (
        data.password is not None
        or role != user.role.value
        or agent_id != user.agent_id
        or (data.active is not None and data.active != user.active)
    )
    if data.password is not None:
        user.password_hash = await hash_password_async(data.password)
    user.role = models.Role(role)
    user.agent_id = agent_id
    if data.active is not None:
        user.active = data.active
    if revokes:  # what the user's tokens claim (or let them do) changed: they go
        user.token_version += 1
    await commit(session)
    return user


async def bump_token_version(session: AsyncSession, *, user_id: int) -> int | None:
    """Revoke every token of ``user_id`` (logout); its new version, ``None`` if gone."""
    version: int | None = await session.scalar(
        sa.update(models.User)
        .where(models.User.id == user_id)
        .values(token_version=models.User.token_version + 1)
        .returning(models.User.token_version)
    )
    await commit(session)
    return version


async def delete_user(session: AsyncSession, *, user_id: int, acting_user_id: int) -> None:
    user = await _get(session, models.User, user_id, "User")
    if user_id == acting_user_id:
        raise Conflict("You cannot delete your own account.")
    await session.delete(user)
    await commit(session)
