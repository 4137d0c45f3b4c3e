"""Report routes (``/reports/queues|teams|agents``): supervisors and above; JSON, or CSV
with ``Accept: text/csv`` or ``?format=csv``.

Team scoping: ``visible_teams`` decides which teams a principal may see (``None``:
all).  Admins see everything; supervisors see every team until accounts carry their
teams, then only theirs (the one place to change)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth import Principal, Role, require_role
from app.deps import SessionDep, SettingsDep, reject_unknown_query
from app.errors import ValidationFailed
from app.reports import service
from app.reports.schemas import Report

router = APIRouter(prefix="/reports", tags=["reports"])

SupervisorUser = Annotated[Principal, require_role(Role.SUPERVISOR)]
MAX_RANGE = timedelta(days=400)


def visible_teams(principal: Principal) -> frozenset[int] | None:
    """The teams whose agents this principal may report on (``None``: every team)."""
    del principal  # accounts do not carry teams yet: every supervisor sees every team
    return None


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValidationFailed(
            f"{name} needs a time zone (e.g. 2026-12-01T00:00:00+08:00).",
            errors=[{"loc": ["query", name], "msg": "naive datetime", "type": "timezone_aware"}],
        )
    return value


def _csv(rows: list[dict[str, Any]]) -> str:
    reasons = sorted({r for row in rows for r in row.get("paused_by_reason", {})})
    columns = [
        c
        for c in (rows[0] if rows else {"period": 0, "id": 0, "name": 0})
        if c != "paused_by_reason"
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns + [f"paused_s:{r}" for r in reasons])
    for row in rows:
        pauses = row.get("paused_by_reason", {})
        writer.writerow(
            ["" if row[c] is None else row[c] for c in columns]
            + [pauses.get(r, 0) for r in reasons]
        )
    return out.getvalue()


async def _report(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: Principal,
    kind: service.Kind,
    since: datetime,
    until: datetime,
    group: service.Group,
    ids: list[int],
    tz: str | None,
    fmt: Literal["json", "csv"] | None,
) -> Any:
    since, until = _aware("from", since), _aware("to", until)
    if not since < until or until - since > MAX_RANGE:
        raise ValidationFailed(
            "from must be before to, at most 400 days apart.",
            errors=[{"loc": ["query", "to"], "msg": "bad range", "type": "range"}],
        )
    zone = tz or settings.reports.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(
            f"Unknown time zone {zone!r}.",
            errors=[{"loc": ["query", "tz"], "msg": "unknown time zone", "type": "timezone"}],
        ) from exc
    query = service.ReportQuery(
        kind=kind,
        start=since,
        end=until,
        group=group,
        timezone=zone,
        ids=tuple(ids),
        teams=visible_teams(principal),
        daily_timezone=settings.reports.timezone,
    )
    try:
        rows = await service.report(session, query, formula=settings.kpi.sl_formula)
    except ValueError as exc:
        raise ValidationFailed(
            str(exc), errors=[{"loc": ["query"], "msg": str(exc), "type": "too_large"}]
        ) from exc
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))
    if wants_csv:
        name = f"{kind}s-{since.date()}-{until.date()}-{group}.csv"
        return Response(
            _csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Report(
        kind=kind,
        start=since,
        end=until,
        group=group,
        timezone=zone,
        sl_formula=settings.kpi.sl_formula.value,
        rows=rows,
    )


From = Annotated[datetime, Query(alias="from", description="Start (ISO 8601 with zone)")]
To = Annotated[datetime, Query(alias="to", description="End, exclusive")]
GroupQ = Annotated[service.Group, Query(description="Period of each row")]
Ids = Annotated[list[int], Query(alias="id", description="Only these ids (repeatable)")]
Tz = Annotated[str | None, Query(max_length=64, description="Time zone of hours/days/months")]
Fmt = Annotated[Literal["json", "csv"] | None, Query(alias="format")]
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "The report (JSON or CSV)"}
}


@router.get(
    "/queues",
    summary="Queue report",
    response_model=Report,
    responses=_CSV,
    dependencies=[Depends(reject_unknown_query)],
)
async def queue_report(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: SupervisorUser,
    since: From,
    until: To,
    group: GroupQ = "day",
    ids: Ids = [],  # noqa: B006 - FastAPI query list
    tz: Tz = None,
    fmt: Fmt = None,
) -> Any:
    return await _report(
        request, session, settings, principal, "queue", since, until, group, ids, tz, fmt
    )


@router.get(
    "/teams",
    summary="Team report",
    response_model=Report,
    responses=_CSV,
    dependencies=[Depends(reject_unknown_query)],
)
async def team_report(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: SupervisorUser,
    since: From,
    until: To,
    group: GroupQ = "day",
    ids: Ids = [],  # noqa: B006
    tz: Tz = None,
    fmt: Fmt = None,
) -> Any:
    return await _report(
        request, session, settings, principal, "team", since, until, group, ids, tz, fmt
    )


@router.get(
    "/agents",
    summary="Agent report",
    response_model=Report,
    responses=_CSV,
    dependencies=[Depends(reject_unknown_query)],
)
async def agent_report(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: SupervisorUser,
    since: From,
    until: To,
    group: GroupQ = "day",
    ids: Ids = [],  # noqa: B006
    tz: Tz = None,
    fmt: Fmt = None,
) -> Any:
    return await _report(
        request, session, settings, principal, "agent", since, until, group, ids, tz, fmt
    )
