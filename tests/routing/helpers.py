"""Small builders shared by the routing tests (pure: no loop, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from routing.commands import Command
from routing.config import AgentConfig, QueueConfig
from routing.engine import RoutingEngine
from routing.events import (
    AgentLogin,
    AgentReady,
    CallArrived,
    ConfigureAgent,
    ConfigureQueue,
)

T = TypeVar("T")


def engine(
    queues: Sequence[QueueConfig],
    agents: Sequence[AgentConfig],
    *,
    ready: Iterable[tuple[str, float]] = (),
    **kwargs: Any,
) -> RoutingEngine:
    """An engine with ``queues`` and ``agents`` configured and ``ready`` = (agent, at) READY."""
    eng = RoutingEngine(**kwargs)
    for q in queues:
        eng.handle(ConfigureQueue(q), 0.0)
    for a in agents:
        eng.handle(ConfigureAgent(a), 0.0)
    for aid, at in ready:
        make_ready(eng, aid, at)
    return eng


def make_ready(eng: RoutingEngine, aid: str, at: float) -> list[Command]:
    view = eng.agent(aid)
    assert view is not None
    if view.state == "logged_out":
        eng.handle(AgentLogin(aid, f"PJSIP/{aid}"), at)
    return eng.handle(AgentReady(aid), at)


def arrive(eng: RoutingEngine, call_id: str, queue_id: str, at: float, **kw: Any) -> list[Command]:
    return eng.handle(CallArrived(call_id, queue_id, caller=f"+{call_id}", **kw), at)


def of(cmds: Iterable[Command], kind: type[T]) -> list[T]:
    return [c for c in cmds if isinstance(c, kind)]


def one(cmds: Iterable[Command], kind: type[T]) -> T:
    found = of(cmds, kind)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
    return found[0]


def names(cmds: Iterable[Command]) -> list[str]:
    return [type(c).__name__ for c in cmds]
