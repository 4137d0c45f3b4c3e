"""Tables of the agent-state domain: the append-only state log and the pause codes.

Invariants:
- ``agent_state_log`` has one row per state an agent *entered* (``at``; it lasts until
  the agent's next row).  Append-only; the primary key ``(agent_id, at, state)`` makes a
  replayed batch a no-op.  No foreign key: the log outlives the agent row (two years).
- It is range-partitioned by month on ``at`` (``app.partitions``): the migration creates
  the parent, a default partition and the months around its date; the daily maintenance
  creates the months ahead, and retention drops whole months.
- ``pause_codes`` is configuration: an agent (or a supervisor forcing a pause) may
  pause only with an active code.  The routing core's own reasons (``login`` on log-in,
  ``no-answer`` after missed offers) are not codes: nobody picks them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.models import Base, _enum
from routing.commands import AgentState


class AgentStateLog(Base):
    __tablename__ = "agent_state_log"

    agent_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    state: Mapped[AgentState] = mapped_column(
        _enum(AgentState, "agent_state_log_state"), primary_key=True
    )
    previous: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    call_id: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.Index("ix_agent_state_log_at", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )


class PauseCode(Base):
    __tablename__ = "pause_codes"

    code: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    label: Mapped[str] = mapped_column(sa.Text)
    # Counted as productive time (training, coaching) in occupancy-style reports.
    productive: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    position: Mapped[int] = mapped_column(sa.Integer, server_default="0")
