"""Pause-code routes (``/pause-codes``): anyone signed in reads them (the agent and
supervisor pages offer them); admins change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.agentlog import schemas, service
from app.auth import AdminUser, CurrentUser
from app.deps import SessionDep, reject_unknown_query

router = APIRouter(prefix="/pause-codes", tags=["pause-codes"])

CodePath = Annotated[str, Path(min_length=1, max_length=64)]
NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "Unknown pause code"}}


@router.get(
    "",
    summary="Pause codes, in the order the pages show them",
    dependencies=[Depends(reject_unknown_query)],
)
async def list_pause_codes(
    session: SessionDep,
    _: CurrentUser,
    include_inactive: Annotated[bool, Query(description="Also the retired codes")] = False,
) -> list[schemas.PauseCodeRead]:
    rows = await service.list_codes(session, include_inactive=include_inactive)
    return [schemas.PauseCodeRead.model_validate(r) for r in rows]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a pause code",
    responses={409: {"description": "The code exists"}},
)
async def create_pause_code(
    session: SessionDep, _: AdminUser, body: schemas.PauseCodeCreate
) -> schemas.PauseCodeRead:
    obj = await service.create_code(session, data=body.model_dump())
    return schemas.PauseCodeRead.model_validate(obj)


@router.patch("/{code}", summary="Change a pause code", responses=NOT_FOUND)
async def update_pause_code(
    session: SessionDep, _: AdminUser, code: CodePath, body: schemas.PauseCodeUpdate
) -> schemas.PauseCodeRead:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    obj = await service.update_code(session, code=code, changes=changes)
    return schemas.PauseCodeRead.model_validate(obj)


@router.delete(
    "/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a pause code (past pauses keep their reason)",
    responses=NOT_FOUND,
)
async def delete_pause_code(session: SessionDep, _: AdminUser, code: CodePath) -> Response:
    await service.delete_code(session, code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
