"""REST routes of the live call center: agent actions and live views (``/api/v1``).

Invariants:
- Handlers are thin: they authorise, validate the body, call one ``CallCenter`` method
  and return its view.  State changes happen only in the call center (and thereby in
  the routing core, which leaves its state unchanged when it refuses).
- An agent acts only on itself; a supervisor (or admin) on anyone.  Forcing a state and
  the live views of all agents / calls are supervisor-only.
- A login dials only a device the agent may use (``app.devices``): its own, or a
  registered device assigned to it, named by ``device_id``; a free-text ``device`` is 422
  ``invalid-device``, another's device 403 ``device-not-allowed``.  Resolved here, before
  the call center is asked.
- Errors are problems (``docs/errors.md``): unknown agent 404, illegal transition 409 (``illegal-transition``),
  wrap-up with nothing to wrap 409 (``nothing-to-wrap-up``), unknown disposition 422.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from app import devices
from app.api.schemas import DbId
from app.auth import AgentSelfOrSupervisor, CurrentUser, SupervisorUser
from app.deps import SessionDep, SettingsDep
from app.errors import FREE_TEXT_DEVICE, ServiceUnavailable
from app.live.callcenter import CallCenter
from app.live.views import LatencyStats
from app.liveservice import live_service
from app.text import MultiLine, SingleLine

router = APIRouter(prefix="/api/v1", tags=["live"])

# Client text never carries NUL or control characters (``app.text``): it is persisted
# with the agent's session, and one bad row must not reach the live-state writer.
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), SingleLine
]


def get_live(request: Request) -> CallCenter:
    callcenter = live_service(request.app.state)
    if not isinstance(callcenter, CallCenter):
        raise ServiceUnavailable("The live call center is not running.")
    return callcenter


LiveDep = Annotated[CallCenter, Depends(get_live)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(_In):
    device_id: DbId | None = Field(
        default=None,
        description="A registered device assigned to the agent; its own device if omitted",
    )
    # Named only to refuse it clearly (not in the OpenAPI document).
    device: SkipJsonSchema[Any] = None

    @field_validator("device")
    @classmethod
    def _no_free_text_device(cls, value: Any) -> Any:
        raise PydanticCustomError(
            FREE_TEXT_DEVICE,
            "a device is chosen by device_id (a registered device of the agent), or left "
            "out for the agent's own device; a dial string is refused",
        )


class LoginDeviceRead(BaseModel):
    """A device the agent may log in on; ``id`` None: its own device (send no id)."""

    id: int | None
    dial: str
    label: str | None = None


class PauseBody(_In):
    reason: Reason


class WrapUpBody(_In):
    disposition_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), SingleLine
    ]
    notes: Annotated[str, StringConstraints(max_length=4000), MultiLine] | None = None


class ForceBody(_In):
    state: Literal["ready", "paused", "logged_out"]
    reason: Reason | None = None


class AgentStateRead(BaseModel):
    """``app.live.protocol.AgentView``: the same fields as the agent channel's ``hello``."""

    agent_id: str
    name: str
    team: str | None = None
    queues: list[str] = Field(default_factory=list)
    state: str
    reason: str | None = None
    call_id: str | None = None
    device: str | None = None
    since: float | None = None
    time_in_state_s: float | None = None
    pending: str | None = None
    missed_in_row: int = 0
    until: float | None = None


class WrapUpRead(AgentStateRead):
    """The agent's view after a wrap-up, and the call the disposition was recorded for."""

    wrapped_call_id: str


class LiveCallRead(BaseModel):
    call_id: str
    server: str
    caller: str
    caller_name: str = ""
    dnis: str = ""
    queue_id: str
    arrived_at: float
    waited_s: float
    vip: bool = False
    entitled: bool = False
    agent_id: str | None = None
    state: str | None = None
    priority: int | None = None
    rona_count: int | None = None


class LiveCallsRead(BaseModel):
    waiting: dict[str, list[LiveCallRead]]
    offered: list[LiveCallRead]
    connected: list[LiveCallRead]


class LiveQueueRead(BaseModel):
    queue_id: str
    name: str
    open: bool
    priority: int
    ring_timeout_s: float
    wrapup_s: float
    dnis: list[str]
    wallboard: dict[str, Any] | None = None
    routing: dict[str, Any] | None = None


@router.post("/agents/{agent_id}/login", summary="Log an agent in on a device (starts paused)")
async def login(
    agent_id: str,
    body: LoginBody,
    principal: AgentSelfOrSupervisor,
    live: LiveDep,
    session: SessionDep,
    settings: SettingsDep,
) -> AgentStateRead:
    own = live.own_device(agent_id) if body.device_id is None else None
    if own is not None:
        # The usual shift-start login (its own phone): checked from the call center's
        # configuration, no database round trip per agent.
        device = devices.check_device(own, settings.devices, ["agent", "device"]).dial
    else:
        device = await devices.login_device(
            session, agent_id=agent_id, device_id=body.device_id, policy=settings.devices
        )
        await session.close()  # nothing more to read: the connection goes back first
    return AgentStateRead.model_validate(await live.login(agent_id, device))


@router.get("/agents/{agent_id}/devices", summary="The devices an agent may log in on")
async def login_devices(
    agent_id: str, principal: AgentSelfOrSupervisor, session: SessionDep
) -> list[LoginDeviceRead]:
    own = await devices.own_device(session, agent_id=agent_id)
    usable = await devices.usable_devices(session, agent_id=agent_id)
    return [LoginDeviceRead(id=None, dial=own, label="own device")] + [
        LoginDeviceRead(id=d.id, dial=d.dial, label=d.label) for d in usable if d.dial != own
    ]


@router.post("/agents/{agent_id}/ready", summary="Become ready for calls (or end wrap-up)")
async def ready(agent_id: str, principal: AgentSelfOrSupervisor, live: LiveDep) -> AgentStateRead:
    return AgentStateRead.model_validate(await live.ready(agent_id))


@router.post("/agents/{agent_id}/pause", summary="Pause with a reason")
async def pause(
    agent_id: str, body: PauseBody, principal: AgentSelfOrSupervisor, live: LiveDep
) -> AgentStateRead:
    return AgentStateRead.model_validate(await live.pause(agent_id, body.reason))


@router.post("/agents/{agent_id}/logout", summary="Log out")
async def logout(agent_id: str, principal: AgentSelfOrSupervisor, live: LiveDep) -> AgentStateRead:
    return AgentStateRead.model_validate(await live.logout(agent_id))


@router.post(
    "/agents/{agent_id}/wrapup",
    summary="Record the disposition of the agent's last call and end its wrap-up",
)
async def wrap_up(
    agent_id: str, body: WrapUpBody, principal: AgentSelfOrSupervisor, live: LiveDep
) -> WrapUpRead:
    done = await live.wrap_up(agent_id, body.disposition_code, body.notes)
    return WrapUpRead.model_validate({**done.view, "wrapped_call_id": done.wrapped_call_id})


@router.get("/agents/{agent_id}/state", summary="An agent's live state")
async def agent_state(
    agent_id: str, principal: AgentSelfOrSupervisor, live: LiveDep
) -> AgentStateRead:
    return AgentStateRead.model_validate(live.agent_view(agent_id))


@router.post("/agents/{agent_id}/force", summary="Supervisor: force an agent's state")
async def force(
    agent_id: str, body: ForceBody, principal: SupervisorUser, live: LiveDep
) -> AgentStateRead:
    view = await live.force_state(agent_id, body.state, body.reason, by=principal.username)
    return AgentStateRead.model_validate(view)


@router.get("/live/agents", summary="Supervisor: live states of all agents")
async def live_agents(
    principal: SupervisorUser,
    live: LiveDep,
    queue_id: Annotated[str | None, Query(max_length=32)] = None,
    team: Annotated[str | None, Query(max_length=200)] = None,
) -> list[AgentStateRead]:
    return [
        AgentStateRead.model_validate(a) for a in live.agent_states(queue_id=queue_id, team=team)
    ]


@router.get("/live/calls", summary="Supervisor: calls in progress")
async def live_calls(principal: SupervisorUser, live: LiveDep) -> LiveCallsRead:
    return LiveCallsRead.model_validate(live.live_calls())


@router.get("/live/queues", summary="Live queue status and wallboard figures")
async def live_queues(principal: CurrentUser, live: LiveDep) -> list[LiveQueueRead]:
    return [LiveQueueRead.model_validate(q) for q in live.queue_views()]


@router.get("/live/latency", summary="Supervisor: routing and screen-pop latency")
async def live_latency(principal: SupervisorUser, live: LiveDep) -> LatencyStats:
    return live.latency_stats()


@router.get(
    "/live/latency/samples",
    summary="Supervisor: per-offer routing latency and the time each Redirect was written",
)
async def live_latency_samples(
    principal: SupervisorUser,
    live: LiveDep,
    since: Annotated[float, Query(ge=0, description="epoch s; only offers written after")] = 0.0,
) -> dict[str, Any]:
    return {
        "samples": [
            {"call_id": c, "latency_s": round(lat, 6), "written_at": w}
            for c, lat, w in live.latency_samples(since)
        ]
    }
