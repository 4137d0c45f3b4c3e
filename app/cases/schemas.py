"""The public shape of cases: request bodies and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import CaseKind, CaseSeverity

Stage = Literal["registered", "accepted", "handling", "replied", "closed", "archived"]
Channel = Literal["phone", "email", "letter", "visit", "other"]
Text = Field(min_length=1, max_length=2000)


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(ge=1, le=2**63 - 1)
    kind: CaseKind = CaseKind.COMPLAINT
    category: str | None = Field(default=None, min_length=1, max_length=64)
    channel: Channel = "phone"
    severity: CaseSeverity = CaseSeverity.NORMAL
    subject: str = Field(min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=10000)
    call_id: str | None = Field(default=None, min_length=1, max_length=200)
    valid: bool = True
    referred: bool = False  # passed to another department
    department: str | None = Field(default=None, min_length=1, max_length=200)
    team_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    due_at: datetime | None = None  # None: from the SLA policy


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Stage
    reason: str | None = Field(default=None, max_length=2000)


class AssignIn(BaseModel):
    """Give the case to another owner and/or team; no owner: the caller takes it over."""

    model_config = ConfigDict(extra="forbid")

    owner_user_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    team_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    reason: str | None = Field(default=None, max_length=2000)


class EscalateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


class CaseEventOut(BaseModel):
    at: datetime
    user_id: int | None
    kind: str
    from_stage: str | None
    to_stage: str | None
    level: int | None
    reason: str | None


class CaseOut(BaseModel):
    id: int
    customer_id: int
    kind: str
    category: str | None
    channel: str
    severity: str
    subject: str
    notes: str | None
    call_id: str | None
    valid: bool
    referred: bool
    department: str | None
    stage: str
    status: str
    owner_user_id: int | None
    team_id: int | None
    opened_at: datetime
    closed_at: datetime | None
    due_at: datetime | None
    overdue: bool
    escalation_level: int
    escalated_to: str  # owner, supervisor or manager
    next_escalation_at: datetime | None


class CaseDetail(CaseOut):
    events: list[CaseEventOut]
    ladder: list[CaseEventOut]  # the escalations, oldest first


class CasePage(BaseModel):
    items: list[CaseOut]


class CategoryOut(BaseModel):
    code: str
    name: str
    active: bool
