"""Request and response schemas of the REST API (``XCreate`` / ``XUpdate`` / ``XRead``).

Invariants:
- Request schemas forbid unknown fields (a typo is a 422, not a silently ignored key).
- ``XUpdate`` schemas are partial: only the fields sent are changed; list fields
  (skills, queues, DNIS) replace the whole list when sent.
- Skill levels are 1-5 everywhere; passwords are write-only (never in an ``XRead``).
- Ids: agents and queues are integers in the database; the routing core sees them as
  strings (``agent_id`` = ``str(id)`` = the extension dialled).  An id the database
  column cannot hold (``DbId``: above 2**31-1) is a 422, never a failed query.
- Text refuses NUL and other control characters (``app.text``: ``SingleLine`` for names,
  codes, devices, passwords; ``MultiLine`` for descriptions); floats refuse Infinity/NaN.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.auth import Role
from app.text import MultiLine, SingleLine, SingleLineText

T = TypeVar("T")

# PostgreSQL ``integer``: the id columns and the counters the API stores.
INT4_MAX = 2**31 - 1
DbId = Annotated[int, Field(ge=1, le=INT4_MAX)]

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]
Description = Annotated[str, MultiLine]
Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.\-]+$"),
]
Level = Annotated[int, Field(ge=1, le=5, description="Skill level 1 (novice) - 5 (expert)")]
Password = Annotated[
    str, Field(min_length=8, max_length=1024, description="Write-only"), SingleLine
]
Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=150, pattern=r"^[\w.@\-]+$"),
]
# An Asterisk dial string: TECH/resource, e.g. PJSIP/1001 or Local/1001@agents.  Only its
# shape here; the service checks it with the site's device rules (``app.devices``).
Device = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=200, pattern=r"^[A-Za-z]+/\S+$"
    ),
    SingleLine,
]
Dnis = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32, pattern=r"^\+?\d+$")
]
EXT_TARGET_RE = re.compile(r"^ext:[\w\-]+,[\w+*#\-]+$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


# --- skills, teams, dispositions ----------------------------------------------------------


class SkillCreate(_In):
    name: Code
    description: Description | None = None


class SkillUpdate(_In):
    name: Code | None = None
    description: Description | None = None


class SkillRead(_Out):
    id: int
    name: str
    description: str | None


class TeamCreate(_In):
    name: Name
    description: Description | None = None


class TeamUpdate(_In):
    name: Name | None = None
    description: Description | None = None


class TeamRead(_Out):
    id: int
    name: str
    description: str | None


class DispositionCreate(_In):
    code: Code
    label: Name
    active: bool = True


class DispositionUpdate(_In):
    code: Code | None = None
    label: Name | None = None
    active: bool | None = None


class DispositionRead(_Out):
    id: int
    code: str
    label: str
    active: bool


# --- agents -------------------------------------------------------------------------------


class SkillLevel(_In):
    skill: Code = Field(description="Skill name")
    level: Level


class SkillLevelRead(BaseModel):
    skill: str
    level: int


def _unique_skills(skills: list[SkillLevel] | None) -> list[SkillLevel] | None:
    if skills is not None:
        names = [s.skill for s in skills]
        if len(names) != len(set(names)):
            raise ValueError("each skill may appear only once")
    return skills


def _unique_ints(values: list[int] | None) -> list[int] | None:
    if values is not None and len(values) != len(set(values)):
        raise ValueError("duplicate ids")
    return values


class AgentLoginCreate(_In):
    """The agent's login user, created with the agent (role ``agent``)."""

    username: Username
    password: Password


class AgentCreate(_In):
    name: Name
    device: Device
    team_id: DbId | None = None
    max_missed: int = Field(default=3, ge=1, le=100)
    active: bool = True
    skills: list[SkillLevel] = Field(default_factory=list)
    queue_ids: list[DbId] = Field(default_factory=list)
    login: AgentLoginCreate | None = None

    _skills_unique = field_validator("skills")(_unique_skills)
    _queues_unique = field_validator("queue_ids")(_unique_ints)


class AgentUpdate(_In):
    name: Name | None = None
    device: Device | None = None
    team_id: DbId | None = None
    max_missed: int | None = Field(default=None, ge=1, le=100)
    active: bool | None = None
    skills: list[SkillLevel] | None = None
    queue_ids: list[DbId] | None = None

    _skills_unique = field_validator("skills")(_unique_skills)
    _queues_unique = field_validator("queue_ids")(_unique_ints)


class AgentRead(BaseModel):
    id: int
    agent_id: str = Field(description="The routing id and the extension dialled")
    name: str
    device: str
    team_id: int | None
    max_missed: int
    active: bool
    skills: list[SkillLevelRead]
    queue_ids: list[int]
    usernames: list[str] = Field(default_factory=list, description="Login users of this agent")
    created_at: datetime


# --- devices ------------------------------------------------------------------------------

DevicePart = Annotated[str, StringConstraints(min_length=1, max_length=150), SingleLine]


class DeviceCreate(_In):
    """A phone: Asterisk dials ``technology/endpoint`` (checked by ``app.devices``)."""

    technology: DevicePart = Field(description="PJSIP, SIP, IAX2, DAHDI or Local")
    endpoint: DevicePart = Field(
        description="Endpoint or peer name, DAHDI channel, or <extension>@<context> for Local"
    )
    label: Name | None = None
    agent_id: DbId | None = Field(default=None, description="The agent that may use it")
    active: bool = True


class DeviceUpdate(_In):
    technology: DevicePart | None = None
    endpoint: DevicePart | None = None
    label: Name | None = None
    agent_id: DbId | None = None
    active: bool | None = None


class DeviceRead(_Out):
    id: int
    technology: str
    endpoint: str
    dial: str = Field(description="The dial string Asterisk rings")
    label: str | None
    agent_id: int | None
    active: bool
    created_at: datetime


# --- queues -------------------------------------------------------------------------------

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class QueueHours(_In):
    """Open hours: per weekday a list of ``[start, end]`` ``HH:MM`` intervals (local time).

    A weekday missing or with ``[]`` is closed.  ``None`` hours on a queue: always open.
    """

    timezone: str = "UTC"
    weekly: dict[Weekday, list[tuple[HHMM, HHMM]]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("weekly")
    @classmethod
    def _ordered_intervals(
        cls, value: dict[Weekday, list[tuple[str, str]]]
    ) -> dict[Weekday, list[tuple[str, str]]]:
        def minutes(hhmm: str) -> int:
            t = time.fromisoformat(hhmm)
            return t.hour * 60 + t.minute

        for day, intervals in value.items():
            last_end = -1
            for start, end in sorted(intervals, key=lambda iv: minutes(iv[0])):
                if minutes(start) >= minutes(end):
                    raise ValueError(f"{day}: interval {start}-{end} ends before it starts")
                if minutes(start) < last_end:
                    raise ValueError(f"{day}: intervals overlap")
                last_end = minutes(end)
        return value


class EscalationStepSchema(_In):
    """Relax requirements after ``after_s`` seconds of waiting (``routing.config.EscalationStep``)."""

    after_s: float = Field(ge=0)
    min_level: Level | None = None
    add_queues: list[str] = Field(default_factory=list, description="Queue ids")
    overflow: bool = False


class SkillRequirement(_In):
    skill: Code
    min_level: Level = 1


class SkillRequirementRead(BaseModel):
    skill: str
    min_level: int


class _QueueFields(_In):
    @model_validator(mode="after")
    def _consistent(self) -> Any:
        fields = self.model_fields_set
        overflow_queue_id = getattr(self, "overflow_queue_id", None)
        overflow_target = getattr(self, "overflow_target", None)
        if overflow_queue_id is not None and overflow_target is not None:
            raise ValueError("set overflow_queue_id or overflow_target, not both")
        if overflow_target is not None and not EXT_TARGET_RE.match(overflow_target):
            raise ValueError("overflow_target must look like 'ext:<context>,<exten>'")
        escalation = getattr(self, "escalation", None)
        if escalation is not None and "escalation" in fields:
            after = [step.after_s for step in escalation]
            if after != sorted(after):
                raise ValueError("escalation steps must be ordered by after_s")
        skills = getattr(self, "skills", None)
        if skills is not None and len({s.skill for s in skills}) != len(skills):
            raise ValueError("each skill may appear only once")
        dnis = getattr(self, "dnis", None)
        if dnis is not None and len(set(dnis)) != len(dnis):
            raise ValueError("duplicate DNIS")
        return self


class QueueCreate(_QueueFields):
    name: Name
    description: Description | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    weight: int = Field(default=1, ge=1, le=1000)
    sl_target_s: float = Field(default=15.0, gt=0)
    sl_target_pct: float = Field(default=0.8, gt=0, le=1)
    ring_timeout_s: float = Field(default=15.0, gt=0, le=300)
    wrapup_s: float = Field(default=10.0, ge=0, le=3600)
    max_wait_s: float | None = Field(default=None, gt=0)
    max_len: int | None = Field(default=None, ge=1, le=INT4_MAX)
    overflow_queue_id: DbId | None = None
    overflow_target: SingleLineText | None = None
    hours: QueueHours | None = None
    escalation: list[EscalationStepSchema] = Field(default_factory=list)
    vip_boost: int = Field(default=10, ge=0, le=1000)
    entitled_boost: int = Field(default=5, ge=0, le=1000)
    active: bool = True
    dnis: list[Dnis] = Field(default_factory=list)
    skills: list[SkillRequirement] = Field(default_factory=list)


class QueueUpdate(_QueueFields):
    name: Name | None = None
    description: Description | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    weight: int | None = Field(default=None, ge=1, le=1000)
    sl_target_s: float | None = Field(default=None, gt=0)
    sl_target_pct: float | None = Field(default=None, gt=0, le=1)
    ring_timeout_s: float | None = Field(default=None, gt=0, le=300)
    wrapup_s: float | None = Field(default=None, ge=0, le=3600)
    max_wait_s: float | None = Field(default=None, gt=0)
    max_len: int | None = Field(default=None, ge=1, le=INT4_MAX)
    overflow_queue_id: DbId | None = None
    overflow_target: SingleLineText | None = None
    hours: QueueHours | None = None
    escalation: list[EscalationStepSchema] | None = None
    vip_boost: int | None = Field(default=None, ge=0, le=1000)
    entitled_boost: int | None = Field(default=None, ge=0, le=1000)
    active: bool | None = None
    dnis: list[Dnis] | None = None
    skills: list[SkillRequirement] | None = None


class QueueRead(BaseModel):
    id: int
    queue_id: str = Field(description="The routing queue id")
    name: str
    description: str | None
    priority: int
    weight: int
    sl_target_s: float
    sl_target_pct: float
    ring_timeout_s: float
    wrapup_s: float
    max_wait_s: float | None
    max_len: int | None
    overflow_queue_id: int | None
    overflow_target: str | None
    hours: dict[str, Any] | None
    escalation: list[dict[str, Any]]
    vip_boost: int
    entitled_boost: int
    active: bool
    dnis: list[str]
    skills: list[SkillRequirementRead]
    created_at: datetime


# --- users --------------------------------------------------------------------------------


class UserCreate(_In):
    username: Username
    password: Password
    role: Role = Role.AGENT
    agent_id: DbId | None = Field(default=None, description="Required for the agent role")
    active: bool = True

    @model_validator(mode="after")
    def _agent_has_seat(self) -> UserCreate:
        if self.role == Role.AGENT and self.agent_id is None:
            raise ValueError("a user with the agent role needs an agent_id")
        return self


class UserUpdate(_In):
    password: Password | None = None
    role: Role | None = None
    agent_id: DbId | None = None
    active: bool | None = None


class UserRead(_Out):
    id: int
    username: str
    role: Role
    agent_id: int | None
    active: bool
    created_at: datetime


# --- calls --------------------------------------------------------------------------------


class CallRead(_Out):
    id: int
    call_id: str
    server: str
    uniqueid: str
    linkedid: str | None
    caller: str
    dnis: str | None
    queue_id: int | None
    agents_offered: list[int]
    answered_by: int | None
    arrived_at: datetime
    first_offered_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wrapup_ended_at: datetime | None
    wait_s: float | None
    ring_s: float | None
    talk_s: float | None
    wrapup_s: float | None
    result: str
    rona_count: int
    vip: bool
    entitled: bool
    overflow_target: str | None
    disposition_code: str | None
    notes: str | None
    reason: str | None


class CallEventRead(_Out):
    at: datetime
    kind: str
    agent_id: int | None
    data: dict[str, Any]


class CallDetailRead(CallRead):
    events: list[CallEventRead]
