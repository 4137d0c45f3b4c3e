"""Registered devices (``/api/v1/devices``): admin CRUD over ``devices`` rows, each dial
string checked by ``app.devices``' rule before it is stored."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app import models
from app.api import schemas
from app.api.pagination import DEFAULT_LIMIT
from app.api.service import _check_ids, _get, _page, commit
from app.devices import check_device, refuse_anothers_device
from app.errors import ValidationFailed
from app.settings import DeviceSettings


def device_read(device: models.Device) -> schemas.DeviceRead:
    return schemas.DeviceRead.model_validate(device)


async def list_devices(
    session: AsyncSession,
    *,
    agent_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> tuple[list[schemas.DeviceRead], str | None]:
    stmt = sa.select(models.Device)
    if agent_id is not None:
        stmt = stmt.where(models.Device.agent_id == agent_id)
    rows, nxt = await _page(session, stmt, models.Device.id, limit=limit, cursor=cursor)
    return [device_read(d) for d in rows], nxt


async def get_device(session: AsyncSession, *, device_id: int) -> schemas.DeviceRead:
    return device_read(await _get(session, models.Device, device_id, "Device"))


async def _checked_device(
    session: AsyncSession,
    *,
    technology: str,
    endpoint: str,
    agent_id: int | None,
    device_id: int | None,
    policy: DeviceSettings,
) -> tuple[str, str]:
    # Technology and endpoint are one dial string: checked together, by the one rule.
    dial = check_device(f"{technology}/{endpoint}", policy, ["body", "endpoint"])
    if agent_id is not None:
        await _check_ids(session, models.Agent, [agent_id], ["body", "agent_id"], "agent")
        await refuse_anothers_device(session, dial=dial, agent_id=agent_id, device_id=device_id)
    return dial.technology, dial.endpoint


async def create_device(
    session: AsyncSession, *, data: schemas.DeviceCreate, policy: DeviceSettings
) -> schemas.DeviceRead:
    technology, endpoint = await _checked_device(
        session,
        technology=data.technology,
        endpoint=data.endpoint,
        agent_id=data.agent_id,
        device_id=None,
        policy=policy,
    )
    device = models.Device(
        technology=technology,
        endpoint=endpoint,
        label=data.label,
        agent_id=data.agent_id,
        active=data.active,
    )
    session.add(device)
    await commit(session)
    await session.refresh(device)  # created_at is the database's
    return device_read(device)


async def update_device(
    session: AsyncSession, *, device_id: int, data: schemas.DeviceUpdate, policy: DeviceSettings
) -> schemas.DeviceRead:
    device = await _get(session, models.Device, device_id, "Device")
    sent = data.model_fields_set
    for field in ("technology", "endpoint", "active"):
        if field in sent and getattr(data, field) is None:
            raise ValidationFailed(
                f"{field} cannot be null.",
                errors=[{"loc": ["body", field], "msg": "may not be null", "type": "not_null"}],
            )
    agent_id = data.agent_id if "agent_id" in sent else device.agent_id
    device.technology, device.endpoint = await _checked_device(
        session,
        technology=data.technology or device.technology,
        endpoint=data.endpoint or device.endpoint,
        agent_id=agent_id,
        device_id=device_id,
        policy=policy,
    )
    device.agent_id = agent_id
    if "label" in sent:
        device.label = data.label
    if data.active is not None:
        device.active = data.active
    await commit(session)
    await session.refresh(device)
    return device_read(device)


async def delete_device(session: AsyncSession, *, device_id: int) -> None:
    device = await _get(session, models.Device, device_id, "Device")
    await session.delete(device)
    await commit(session)
