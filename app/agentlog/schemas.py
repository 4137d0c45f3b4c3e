"""Pause codes as the API shows them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.text import SingleLine

# Existing codes hold spaces ("after-call work"); no control characters (``app.text``).
PauseCodeText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w .\-]+$"),
    SingleLine,
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PauseCodeCreate(_In):
    code: PauseCodeText
    label: Label
    productive: bool = False
    active: bool = True
    position: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class PauseCodeUpdate(_In):
    label: Label | None = None
    productive: bool | None = None
    active: bool | None = None
    position: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class PauseCodeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
    productive: bool = Field(description="Counted as productive time (training, coaching)")
    active: bool
    position: int
