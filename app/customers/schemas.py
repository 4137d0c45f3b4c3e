"""Request and response bodies of the customer routes.  Text is single-line, bounded;
phone numbers are normalized by the service (``invalid-phone-number`` when they cannot)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.crm import ScreenPop
from app.text import SingleLineText

Name = Annotated[SingleLineText, Field(min_length=1, max_length=200)]
Label = Annotated[SingleLineText, Field(min_length=1, max_length=40)]
PhoneText = Annotated[str, Field(min_length=1, max_length=64)]
Short = Annotated[SingleLineText, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PhoneIn(_Strict):
    phone: PhoneText
    label: Label | None = None
    # Optional: the call whose caller this number is; its interaction follows the link.
    call_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ProductIn(_Strict):
    model: Short
    sku: Short
    serial: Short | None = None
    purchase_date: date = Field(ge=date(1990, 1, 1), le=date(9000, 1, 1))
    protection_plan_end: date | None = Field(default=None, le=date(9000, 1, 1))

    @model_validator(mode="after")
    def _plan_after_purchase(self) -> ProductIn:
        end = self.protection_plan_end
        if end is not None and end < self.purchase_date:
            raise ValueError("protection_plan_end must not be before purchase_date")
        return self


class ProductPatch(_Strict):
    model: Short | None = None
    sku: Short | None = None
    serial: Short | None = None
    purchase_date: date | None = Field(default=None, ge=date(1990, 1, 1), le=date(9000, 1, 1))
    protection_plan_end: date | None = Field(default=None, le=date(9000, 1, 1))


class CustomerIn(_Strict):
    name: Name
    vip: bool = False
    member: bool = False
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    products: list[ProductIn] = Field(default_factory=list, max_length=50)


class CustomerPatch(_Strict):
    name: Name | None = None
    vip: bool | None = None
    member: bool | None = None


class PhoneOut(BaseModel):
    phone: str
    label: str | None


class ProductOut(BaseModel):
    id: int
    model: str
    sku: str
    serial: str | None
    purchase_date: date
    protection_plan_end: date | None


class CustomerOut(BaseModel):
    id: int
    name: str
    vip: bool
    member: bool
    created_at: datetime
    phones: list[PhoneOut]
    products: list[ProductOut]


class CustomerSummary(BaseModel):
    id: int
    name: str
    vip: bool
    member: bool


class CustomerPage(BaseModel):
    items: list[CustomerSummary]
    next_cursor: str | None = None


class CallInfo(BaseModel):
    call_id: str
    caller: str
    caller_name: str | None = None
    queue_id: str | None = None
    agent_id: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None


class CallPop(BaseModel):
    """The call an agent is on (or wrapping up) and its screen pop (``null``: unknown caller)."""

    call: CallInfo
    pop: ScreenPop | None
