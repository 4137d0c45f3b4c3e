"""Which phone the PBX may ring for an agent: the one rule for device strings, and the
resolution of a login's device id to the dial string the call center dials.

A device is what Asterisk's ``Dial()`` rings when a call is offered to the agent.  A
free-text device is a toll-fraud and call-diversion hole (``PJSIP/+86...@trunk`` dials
abroad through a trunk, ``PJSIP/1001,1,U(x^y)`` injects Dial options, ``Local/x@ctx``
enters any dialplan context, a colleague's extension steals their calls).  So:

Invariants:
- ``parse_device`` is the only check of a dial string: ``TECH/endpoint`` with ``TECH`` one
  of PJSIP, SIP, IAX2 (a configured endpoint or peer name: letters, digits, ``_``, ``-``;
  no number, no host, no URI), DAHDI (one channel number, no group hunting) or Local
  (``Local/<ext>@<context>`` with the context in ``DeviceSettings.local_contexts``).  No
  Dial option or multi-dial separator (``,`` ``&`` ``^`` ``(`` ``)`` a second ``/``)
  passes; a site may narrow further with ``DeviceSettings.patterns``.
- An agent logs in on its own device (``agents.device``, set by an admin and checked by
  the rule again at login) or on an active registered device (``devices``) assigned to
  it, by id; never on a dial string from the request.  A supervisor logging an agent in
  obeys the same rule for that agent.
- A registered device belongs to at most one agent, and is never another agent's own
  device (409 ``device-in-use``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app import models
from app.errors import AgentNotFound, DeviceInUse, DeviceNotAllowed, InvalidDevice, NotFound
from app.settings import DeviceSettings

_TECHNOLOGIES = {t.lower(): t for t in models.DEVICE_TECHNOLOGIES}
# Anything that could make Dial() do more than ring one phone, named in the refusal.
_SEPARATORS = re.compile(r"[,&^()/|;:'\"\\\s]")
_NAME = r"[A-Za-z0-9_-]{1,64}"
_PEER = re.compile(_NAME)
_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "PJSIP": (_PEER, "an endpoint name (letters, digits, _ -): no number@trunk, no URI, no host"),
    "SIP": (_PEER, "a peer name (letters, digits, _ -): no number@peer, no host"),
    "IAX2": (_PEER, "a peer name (letters, digits, _ -): no user@host, no extension"),
    "DAHDI": (re.compile(r"[0-9]{1,4}"), "one channel number: no group, no number to dial"),
    "Local": (
        re.compile(rf"(?P<ext>[A-Za-z0-9_-]{{1,32}})@(?P<context>{_NAME})"),
        "<extension>@<context> (letters, digits, _ -)",
    ),
}
# The longest dial string a device may be (Asterisk's own limit is far above).
MAX_LENGTH = 160


@dataclass(frozen=True, slots=True)
class DialString:
    technology: str
    endpoint: str

    @property
    def dial(self) -> str:
        return f"{self.technology}/{self.endpoint}"


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def parse_device(value: str, policy: DeviceSettings) -> DialString:
    """The dial string ``value`` names, in canonical form; ``ValueError`` saying why not."""
    if len(value) > MAX_LENGTH:
        raise ValueError(f"a device is at most {MAX_LENGTH} characters")
    tech, sep, endpoint = value.partition("/")
    if not sep:
        raise ValueError("a device is TECHNOLOGY/endpoint, e.g. PJSIP/1001")
    technology = _TECHNOLOGIES.get(tech.lower())
    if technology is None:
        allowed = ", ".join(models.DEVICE_TECHNOLOGIES)
        raise ValueError(f"technology {tech!r} is not allowed (one of {allowed})")
    bad = _SEPARATORS.search(endpoint)
    if bad is not None:
        raise ValueError(
            f"{bad.group()!r} is not allowed in a device endpoint: one phone, "
            "no Dial options, no second device"
        )
    rule, shape = _RULES[technology]
    match = rule.fullmatch(endpoint)
    if match is None:
        raise ValueError(f"a {technology} device is {technology}/{shape}")
    if technology == "Local" and match["context"] not in policy.local_contexts:
        allowed = ", ".join(policy.local_contexts) or "none"
        raise ValueError(
            f"context {match['context']!r} is not one agents may be reached through "
            f"(allowed: {allowed})"
        )
    parsed = DialString(technology, endpoint)
    if policy.patterns and not any(
        p.fullmatch(parsed.dial) for p in _compiled(tuple(policy.patterns))
    ):
        raise ValueError("the device does not match this site's device patterns")
    return parsed


def check_device(value: str, policy: DeviceSettings, loc: Sequence[str]) -> DialString:
    """``parse_device`` as a 422 ``invalid-device`` problem naming the field."""
    try:
        return parse_device(value, policy)
    except ValueError as exc:
        raise InvalidDevice(
            f"Not an allowed device: {exc}.",
            errors=[{"loc": list(loc), "msg": str(exc), "type": "invalid_device"}],
        ) from exc


def agent_pk(agent_id: str) -> int:
    """The database id of a routing agent id; an id no agent can have is not found."""
    if agent_id.isascii() and agent_id.isdigit() and 0 < int(agent_id) < 2**31:
        return int(agent_id)
    raise AgentNotFound(f"Agent {agent_id} does not exist.", id=agent_id)


async def login_device(
    session: AsyncSession, *, agent_id: str, device_id: int | None, policy: DeviceSettings
) -> str:
    """The dial string to log ``agent_id`` in on: its own device (``device_id`` None) or
    the registered device ``device_id`` if it is active and assigned to this agent."""
    pk = agent_pk(agent_id)
    own = await session.scalar(sa.select(models.Agent.device).where(models.Agent.id == pk))
    if own is None:
        raise AgentNotFound(f"Agent {agent_id} does not exist.", id=agent_id)
    if device_id is None:
        return check_device(own, policy, ["agent", "device"]).dial
    device = await session.get(models.Device, device_id)
    if device is None:
        raise NotFound(f"Device {device_id} does not exist.", resource="device", id=device_id)
    if device.agent_id != pk or not device.active:
        raise DeviceNotAllowed(
            f"Agent {agent_id} may not log in on device {device_id}.",
            agent_id=agent_id,
            device_id=device_id,
        )
    return check_device(device.dial, policy, ["body", "device_id"]).dial


async def usable_devices(session: AsyncSession, *, agent_id: str) -> list[models.Device]:
    """The registered, active devices ``agent_id`` may log in on (its own aside)."""
    pk = agent_pk(agent_id)
    rows = await session.scalars(
        sa.select(models.Device)
        .where(models.Device.agent_id == pk, models.Device.active.is_(True))
        .order_by(models.Device.id)
    )
    return list(rows.all())


async def own_device(session: AsyncSession, *, agent_id: str) -> str:
    pk = agent_pk(agent_id)
    own = await session.scalar(sa.select(models.Agent.device).where(models.Agent.id == pk))
    if own is None:
        raise AgentNotFound(f"Agent {agent_id} does not exist.", id=agent_id)
    return own


async def refuse_anothers_device(
    session: AsyncSession, *, dial: DialString, agent_id: int | None, device_id: int | None = None
) -> None:
    """409 ``device-in-use`` if ``dial`` is another agent's: a registered device (other
    than ``device_id``) assigned to someone else, or someone else's own device.  One phone
    rings for one agent.  ``agent_id`` None: for an agent not created yet."""
    stmt = sa.select(models.Device.agent_id).where(
        models.Device.technology == dial.technology,
        models.Device.endpoint == dial.endpoint,
        models.Device.agent_id.is_not(None),
    )
    if device_id is not None:
        stmt = stmt.where(models.Device.id != device_id)
    if agent_id is not None:
        stmt = stmt.where(models.Device.agent_id != agent_id)
    owner = await session.scalar(stmt.limit(1))
    if owner is None:
        own = sa.select(models.Agent.id).where(models.Agent.device == dial.dial)
        if agent_id is not None:
            own = own.where(models.Agent.id != agent_id)
        owner = await session.scalar(own.limit(1))
    if owner is not None:
        raise DeviceInUse(
            f"{dial.dial} is the device of agent {owner}.", device=dial.dial, agent_id=str(owner)
        )
