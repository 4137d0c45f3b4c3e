"""Case routes (``/cases``): every route needs a signed-in user; agents create cases and
work their own, supervisors their teams' (assign, take over, escalate), admins all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request

from app.auth import CurrentUser, Principal
from app.cases import escalation, service, sla
from app.cases.schemas import (
    AssignIn,
    CaseDetail,
    CaseIn,
    CaseOut,
    CasePage,
    CategoryOut,
    EscalateIn,
    Stage,
    StageIn,
)
from app.deps import SessionDep, reject_unknown_query
from app.settings import CaseSettings

router = APIRouter(prefix="/cases", tags=["cases"])

CaseId = Annotated[int, Path(ge=1, le=2**63 - 1)]
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "forbidden or team-out-of-scope (problem details)"},
    404: {"description": "Unknown case, customer, team or user (problem details)"},
    409: {"description": "illegal-stage-change, or a case already at the top (conflict)"},
    422: {"description": "validation-failed, unknown-category or due-in-past"},
}


def policy_from(settings: CaseSettings) -> sla.SlaPolicy:
    """The SLA policy the settings describe."""
    return sla.SlaPolicy(
        hours=sla.WorkingHours(
            tz=ZoneInfo(settings.timezone),
            start=settings.work_start,
            end=settings.work_end,
            weekdays=frozenset(settings.weekdays),
        ),
        same_day_kinds=frozenset(settings.same_day_kinds),
        long_days=settings.long_days,
        long_days_by_kind=dict(settings.long_days_by_kind),
        long_days_by_category=dict(settings.long_days_by_category),
        escalate_share=settings.escalate_share,
    )


def case_clock(app: FastAPI) -> Callable[[], datetime]:
    """The clock of cases: ``app.state.case_clock`` when a test or the demo set one,
    else the wall clock (read at each call, so it may be set after start)."""

    def now() -> datetime:
        clock: Callable[[], datetime] | None = getattr(app.state, "case_clock", None)
        return clock() if clock is not None else datetime.now(UTC)

    return now


def _now(request: Request) -> datetime:
    return case_clock(request.app)()


def _policy(request: Request) -> sla.SlaPolicy:
    """The scheduler's policy (the demo's round-the-clock hours too), else the settings'."""
    policy: sla.SlaPolicy | None = getattr(request.app.state, "case_policy", None)
    return policy if policy is not None else policy_from(request.app.state.settings.cases)


async def _actor(session: SessionDep, principal: CurrentUser) -> service.Actor:
    return await service.actor_for(session, user_id=int(principal.user_id), role=principal.role)


ActorDep = Annotated[service.Actor, Depends(_actor)]
del Principal


@router.get("/categories", summary="The case category taxonomy")
async def list_categories(session: SessionDep, _: CurrentUser) -> list[CategoryOut]:
    return [
        CategoryOut(code=c.code, name=c.name, active=c.active)
        for c in await service.categories(session)
    ]


@router.post(
    "", status_code=201, summary="Register a case (owned by the caller)", responses=_PROBLEMS
)
async def create_case(
    request: Request, session: SessionDep, actor: ActorDep, body: CaseIn
) -> CaseOut:
    return await service.create(
        session, actor=actor, body=body, now=_now(request), policy=_policy(request)
    )


@router.get(
    "",
    summary="Cases in scope: mine, a team board, the escalation queue",
    responses=_PROBLEMS,
    dependencies=[Depends(reject_unknown_query)],
)
async def list_cases(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    mine: bool = False,
    open: bool = True,
    stage: Stage | None = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    team_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    overdue: bool | None = None,
    escalated_to_me: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> CasePage:
    items = await service.list_cases(
        session,
        actor=actor,
        now=_now(request),
        mine=mine,
        open_only=open,
        stage=stage,
        category=category,
        team_id=team_id,
        overdue=overdue,
        escalated_to_me=escalated_to_me,
        limit=limit,
    )
    return CasePage(items=items)


@router.get(
    "/{case_id}", summary="A case with its events and escalation ladder", responses=_PROBLEMS
)
async def get_case(
    request: Request, session: SessionDep, actor: ActorDep, case_id: CaseId
) -> CaseDetail:
    return await service.get(session, actor=actor, case_id=case_id, now=_now(request))


@router.post("/{case_id}/stage", summary="Move a case to another stage", responses=_PROBLEMS)
async def change_stage(
    request: Request, session: SessionDep, actor: ActorDep, case_id: CaseId, body: StageIn
) -> CaseOut:
    return await service.change_stage(
        session, actor=actor, case_id=case_id, body=body, now=_now(request)
    )


@router.post(
    "/{case_id}/assign", summary="Assign a case, or take it over (supervisors)", responses=_PROBLEMS
)
async def assign_case(
    request: Request, session: SessionDep, actor: ActorDep, case_id: CaseId, body: AssignIn
) -> CaseOut:
    return await service.assign(session, actor=actor, case_id=case_id, body=body, now=_now(request))


@router.post("/{case_id}/escalate", summary="Raise a case one level by hand", responses=_PROBLEMS)
async def escalate_case(
    request: Request, session: SessionDep, actor: ActorDep, case_id: CaseId, body: EscalateIn
) -> CaseOut:
    return await escalation.escalate(
        session,
        actor=actor,
        case_id=case_id,
        body=body,
        now=_now(request),
        policy=_policy(request),
    )
