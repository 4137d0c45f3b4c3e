"""Configuration routes: agents, devices, queues, skills, teams, dispositions, users.

Invariants:
- Reading needs ``supervisor`` (admins included); creating, changing and deleting needs
  ``admin``.  Users too: supervisors read them, only admins change them.
- A device (an agent's own, or a registered one) is checked by the site's device rules
  (``app.devices``): 422 ``invalid-device``; another agent's phone is 409 ``device-in-use``.
- Routers are thin: validate (schemas), authorise (dependencies), call ``service``,
  then notify the live runtime of agent/queue changes after the commit, and revoke the
  tokens of a user whose role, seat, password or status changed, or who was deleted.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status

from app import models
from app.api import device_service, schemas, service
from app.api.notify import calls_in_queue, config_changed
from app.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.auth import AdminUser, CurrentUser, Role, SupervisorUser, token_versions
from app.deps import SessionDep, SettingsDep
from app.errors import QueueInUse

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Id = Annotated[int, Path(ge=1, le=schemas.INT4_MAX)]
# A filter by id: beyond the column's range it could match nothing, and is a 422.
IdFilter = Annotated[int | None, Query(ge=1, le=schemas.INT4_MAX)]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id (problem details)"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Duplicate or in use (problem details)"}
}

router = APIRouter()


# --- skills --------------------------------------------------------------------------------

skills = APIRouter(prefix="/skills", tags=["skills"])


@skills.get("", summary="List skills")
async def list_skills(
    session: SessionDep, _: SupervisorUser, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> schemas.Page[schemas.SkillRead]:
    rows, nxt = await service.list_simple(session, model=models.Skill, limit=limit, cursor=cursor)
    return schemas.Page(items=[schemas.SkillRead.model_validate(r) for r in rows], next_cursor=nxt)


@skills.post("", status_code=status.HTTP_201_CREATED, summary="Create a skill", responses=CONFLICT)
async def create_skill(
    session: SessionDep, _: AdminUser, body: schemas.SkillCreate
) -> schemas.SkillRead:
    obj = await service.create_simple(session, model=models.Skill, data=body.model_dump())
    return schemas.SkillRead.model_validate(obj)


@skills.get("/{skill_id}", summary="Get a skill", responses=NOT_FOUND)
async def get_skill(session: SessionDep, _: SupervisorUser, skill_id: Id) -> schemas.SkillRead:
    obj = await service.get_simple(session, model=models.Skill, ident=skill_id, what="Skill")
    return schemas.SkillRead.model_validate(obj)


@skills.patch("/{skill_id}", summary="Change a skill", responses=NOT_FOUND | CONFLICT)
async def update_skill(
    request: Request, session: SessionDep, _: AdminUser, skill_id: Id, body: schemas.SkillUpdate
) -> schemas.SkillRead:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        changes.pop("name")
    obj = await service.update_simple(
        session, model=models.Skill, ident=skill_id, what="Skill", changes=changes
    )
    if "name" in changes:  # routing refers to skills by name
        users = await service.skill_users(session, skill_id=skill_id)
        await config_changed(request, agent_ids=users[0], queue_ids=users[1])
    return schemas.SkillRead.model_validate(obj)


@skills.delete(
    "/{skill_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an unused skill",
    responses=NOT_FOUND | CONFLICT,
)
async def delete_skill(session: SessionDep, _: AdminUser, skill_id: Id) -> Response:
    await service.delete_skill(session, skill_id=skill_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- teams ---------------------------------------------------------------------------------

teams = APIRouter(prefix="/teams", tags=["teams"])


@teams.get("", summary="List teams")
async def list_teams(
    session: SessionDep, _: SupervisorUser, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> schemas.Page[schemas.TeamRead]:
    rows, nxt = await service.list_simple(session, model=models.Team, limit=limit, cursor=cursor)
    return schemas.Page(items=[schemas.TeamRead.model_validate(r) for r in rows], next_cursor=nxt)


@teams.post("", status_code=status.HTTP_201_CREATED, summary="Create a team", responses=CONFLICT)
async def create_team(
    session: SessionDep, _: AdminUser, body: schemas.TeamCreate
) -> schemas.TeamRead:
    obj = await service.create_simple(session, model=models.Team, data=body.model_dump())
    return schemas.TeamRead.model_validate(obj)


@teams.get("/{team_id}", summary="Get a team", responses=NOT_FOUND)
async def get_team(session: SessionDep, _: SupervisorUser, team_id: Id) -> schemas.TeamRead:
    obj = await service.get_simple(session, model=models.Team, ident=team_id, what="Team")
    return schemas.TeamRead.model_validate(obj)


@teams.patch("/{team_id}", summary="Change a team", responses=NOT_FOUND | CONFLICT)
async def update_team(
    session: SessionDep, _: AdminUser, team_id: Id, body: schemas.TeamUpdate
) -> schemas.TeamRead:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        changes.pop("name")
    obj = await service.update_simple(
        session, model=models.Team, ident=team_id, what="Team", changes=changes
    )
    return schemas.TeamRead.model_validate(obj)


@teams.delete(
    "/{team_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a team (its agents keep working, without a team)",
    responses=NOT_FOUND,
)
async def delete_team(request: Request, session: SessionDep, _: AdminUser, team_id: Id) -> Response:
    members = await service.team_agent_ids(session, team_id=team_id)
    await service.delete_simple(session, model=models.Team, ident=team_id, what="Team")
    await config_changed(request, agent_ids=members)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- dispositions ----------------------------------------------------------------------------

dispositions = APIRouter(prefix="/dispositions", tags=["dispositions"])


@dispositions.get("", summary="List disposition codes")
async def list_dispositions(
    session: SessionDep, _: CurrentUser, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> schemas.Page[schemas.DispositionRead]:
    rows, nxt = await service.list_simple(
        session, model=models.Disposition, limit=limit, cursor=cursor
    )
    return schemas.Page(
        items=[schemas.DispositionRead.model_validate(r) for r in rows], next_cursor=nxt
    )


@dispositions.post(
    "", status_code=status.HTTP_201_CREATED, summary="Create a disposition code", responses=CONFLICT
)
async def create_disposition(
    session: SessionDep, _: AdminUser, body: schemas.DispositionCreate
) -> schemas.DispositionRead:
    obj = await service.create_simple(session, model=models.Disposition, data=body.model_dump())
    return schemas.DispositionRead.model_validate(obj)


@dispositions.get("/{disposition_id}", summary="Get a disposition code", responses=NOT_FOUND)
async def get_disposition(
    session: SessionDep, _: CurrentUser, disposition_id: Id
) -> schemas.DispositionRead:
    obj = await service.get_simple(
        session, model=models.Disposition, ident=disposition_id, what="Disposition"
    )
    return schemas.DispositionRead.model_validate(obj)


@dispositions.patch(
    "/{disposition_id}", summary="Change a disposition code", responses=NOT_FOUND | CONFLICT
)
async def update_disposition(
    session: SessionDep, _: AdminUser, disposition_id: Id, body: schemas.DispositionUpdate
) -> schemas.DispositionRead:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    obj = await service.update_simple(
        session, model=models.Disposition, ident=disposition_id, what="Disposition", changes=changes
    )
    return schemas.DispositionRead.model_validate(obj)


@dispositions.delete(
    "/{disposition_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a disposition code (past calls keep theirs)",
    responses=NOT_FOUND,
)
async def delete_disposition(session: SessionDep, _: AdminUser, disposition_id: Id) -> Response:
    await service.delete_simple(
        session, model=models.Disposition, ident=disposition_id, what="Disposition"
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- agents ----------------------------------------------------------------------------------

agents = APIRouter(prefix="/agents", tags=["agents"])


@agents.get("", summary="List agents")
async def list_agents(
    session: SessionDep,
    _: SupervisorUser,
    team_id: IdFilter = None,
    queue_id: IdFilter = None,
    active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> schemas.Page[schemas.AgentRead]:
    items, nxt = await service.list_agents(
        session, team_id=team_id, queue_id=queue_id, active=active, limit=limit, cursor=cursor
    )
    return schemas.Page(items=items, next_cursor=nxt)


@agents.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an agent (optionally with its login user)",
    responses=CONFLICT,
)
async def create_agent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: AdminUser,
    body: schemas.AgentCreate,
) -> schemas.AgentRead:
    agent = await service.create_agent(session, data=body, policy=settings.devices)
    await config_changed(request, agent_ids=[agent.id])
    return agent


@agents.get("/{agent_id}", summary="Get an agent", responses=NOT_FOUND)
async def get_agent(session: SessionDep, _: SupervisorUser, agent_id: Id) -> schemas.AgentRead:
    return await service.get_agent(session, agent_id=agent_id)


@agents.patch("/{agent_id}", summary="Change an agent", responses=NOT_FOUND | CONFLICT)
async def update_agent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _: AdminUser,
    agent_id: Id,
    body: schemas.AgentUpdate,
) -> schemas.AgentRead:
    agent = await service.update_agent(
        session, agent_id=agent_id, data=body, policy=settings.devices
    )
    await config_changed(request, agent_ids=[agent_id])
    return agent


@agents.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an agent",
    responses=NOT_FOUND,
)
async def delete_agent(
    request: Request, session: SessionDep, _: AdminUser, agent_id: Id
) -> Response:
    await service.delete_agent(session, agent_id=agent_id)
    await config_changed(request, agent_ids=[agent_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- devices ---------------------------------------------------------------------------------

devices = APIRouter(prefix="/devices", tags=["devices"])


@devices.get("", summary="List registered devices")
async def list_devices(
    session: SessionDep,
    _: SupervisorUser,
    agent_id: IdFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> schemas.Page[schemas.DeviceRead]:
    items, nxt = await device_service.list_devices(
        session, agent_id=agent_id, limit=limit, cursor=cursor
    )
    return schemas.Page(items=items, next_cursor=nxt)


@devices.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a device (optionally assigned to the agent that may use it)",
    responses=CONFLICT,
)
async def create_device(
    session: SessionDep, settings: SettingsDep, _: AdminUser, body: schemas.DeviceCreate
) -> schemas.DeviceRead:
    return await device_service.create_device(session, data=body, policy=settings.devices)


@devices.get("/{device_id}", summary="Get a device", responses=NOT_FOUND)
async def get_device(session: SessionDep, _: SupervisorUser, device_id: Id) -> schemas.DeviceRead:
    return await device_service.get_device(session, device_id=device_id)


@devices.patch(
    "/{device_id}",
    summary="Change a device (dial string, label, agent, active)",
    responses=NOT_FOUND | CONFLICT,
)
async def update_device(
    session: SessionDep,
    settings: SettingsDep,
    _: AdminUser,
    device_id: Id,
    body: schemas.DeviceUpdate,
) -> schemas.DeviceRead:
    return await device_service.update_device(
        session, device_id=device_id, data=body, policy=settings.devices
    )


@devices.delete(
    "/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a device (agents logged in on it stay until they log out)",
    responses=NOT_FOUND,
)
async def delete_device(session: SessionDep, _: AdminUser, device_id: Id) -> Response:
    await device_service.delete_device(session, device_id=device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- queues ----------------------------------------------------------------------------------

queues = APIRouter(prefix="/queues", tags=["queues"])


@queues.get("", summary="List queues / service lines")
async def list_queues(
    session: SessionDep,
    _: SupervisorUser,
    active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> schemas.Page[schemas.QueueRead]:
    items, nxt = await service.list_queues(session, active=active, limit=limit, cursor=cursor)
    return schemas.Page(items=items, next_cursor=nxt)


@queues.post("", status_code=status.HTTP_201_CREATED, summary="Create a queue", responses=CONFLICT)
async def create_queue(
    request: Request, session: SessionDep, _: AdminUser, body: schemas.QueueCreate
) -> schemas.QueueRead:
    queue = await service.create_queue(session, data=body)
    await config_changed(request, queue_ids=[queue.id])
    return queue


@queues.get("/{queue_id}", summary="Get a queue", responses=NOT_FOUND)
async def get_queue(session: SessionDep, _: SupervisorUser, queue_id: Id) -> schemas.QueueRead:
    return await service.get_queue(session, queue_id=queue_id)


def _refuse_if_in_use(request: Request, queue_id: int, action: str) -> None:
    # Consistent with the routing core, which keeps a queue that holds calls: refuse
    # before the database changes (a call arriving during the commit is the one gap).
    calls = calls_in_queue(request, queue_id)
    if calls:
        raise QueueInUse(
            f"Queue {queue_id} still holds {calls} call(s); {action} it once they are gone.",
            queue_id=str(queue_id),
            calls=calls,
        )


@queues.patch("/{queue_id}", summary="Change a queue", responses=NOT_FOUND | CONFLICT)
async def update_queue(
    request: Request, session: SessionDep, _: AdminUser, queue_id: Id, body: schemas.QueueUpdate
) -> schemas.QueueRead:
    if body.active is False:
        _refuse_if_in_use(request, queue_id, "deactivate")
    queue = await service.update_queue(session, queue_id=queue_id, data=body)
    await config_changed(request, queue_ids=[queue_id])
    return queue


@queues.delete(
    "/{queue_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a queue (409 queue-in-use while it holds calls)",
    responses=NOT_FOUND | CONFLICT,
)
async def delete_queue(
    request: Request, session: SessionDep, _: AdminUser, queue_id: Id
) -> Response:
    _refuse_if_in_use(request, queue_id, "delete")
    members = await service.delete_queue(session, queue_id=queue_id)
    await config_changed(request, agent_ids=members, queue_ids=[queue_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- users -----------------------------------------------------------------------------------

users = APIRouter(prefix="/users", tags=["users"])


@users.get("", summary="List users")
async def list_users(
    session: SessionDep,
    _: SupervisorUser,
    role: Role | None = None,
    agent_id: IdFilter = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> schemas.Page[schemas.UserRead]:
    rows, nxt = await service.list_users(
        session, role=role.value if role else None, agent_id=agent_id, limit=limit, cursor=cursor
    )
    return schemas.Page(items=[schemas.UserRead.model_validate(r) for r in rows], next_cursor=nxt)


@users.post("", status_code=status.HTTP_201_CREATED, summary="Create a user", responses=CONFLICT)
async def create_user(
    session: SessionDep, _: AdminUser, body: schemas.UserCreate
) -> schemas.UserRead:
    return schemas.UserRead.model_validate(await service.create_user(session, data=body))


@users.get("/{user_id}", summary="Get a user", responses=NOT_FOUND)
async def get_user(session: SessionDep, _: SupervisorUser, user_id: Id) -> schemas.UserRead:
    return schemas.UserRead.model_validate(await service.get_user(session, user_id=user_id))


@users.patch(
    "/{user_id}", summary="Change a user (role, seat, password, active)", responses=NOT_FOUND
)
async def update_user(
    request: Request,
    session: SessionDep,
    principal: AdminUser,
    user_id: Id,
    body: schemas.UserUpdate,
) -> schemas.UserRead:
    user = await service.update_user(
        session, user_id=user_id, data=body, acting_user_id=int(principal.user_id)
    )
    token_versions(request.app.state).revoke(user.id, user.token_version)
    return schemas.UserRead.model_validate(user)


@users.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user",
    responses=NOT_FOUND,
)
async def delete_user(
    request: Request, session: SessionDep, principal: AdminUser, user_id: Id
) -> Response:
    await service.delete_user(session, user_id=user_id, acting_user_id=int(principal.user_id))
    token_versions(request.app.state).revoke(user_id, None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


for sub in (agents, devices, queues, skills, teams, dispositions, users):
    router.include_router(sub)
