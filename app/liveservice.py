"""What the REST layer and the process need of the live runtime, typed.

``app.main`` stores the running call center on ``app.state`` with ``set_live_service``;
``app.main`` (``/ready``) and ``app.api`` (configuration routes) read it with
``live_service``.  Both see only ``LiveService``: the call center
(``app.live.callcenter.CallCenter``) satisfies it, and so do the REST tests' doubles,
without either reaching for attributes by name.

This module sits outside ``app.live`` on purpose: ``app.api`` may import it without
importing the live runtime (and its routes, which import ``app.api``'s neighbours).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from starlette.datastructures import State


@runtime_checkable
class LiveService(Protocol):
    """The live runtime as the REST layer sees it."""

    async def config_changed(self, *, agent_ids: list[str], queue_ids: list[str]) -> None:
        """Committed configuration changed in these rows (routing ids): reload them."""

    def server_status(self) -> Sequence[Mapping[str, object]]:
        """One JSON-ready ``cti.types.ServerStatus`` per AMI server."""

    def calls_in_queue(self, queue_id: str) -> int:
        """Calls the routing core holds in ``queue_id`` now (0 if it is not routed)."""


def set_live_service(state: State, service: LiveService | None) -> None:
    """Store the running live runtime (``None`` while it is not running)."""
    state.callcenter = service


def live_service(state: State) -> LiveService | None:
    """The running live runtime, or ``None`` while it is not running.

    Raises ``TypeError`` if something else was stored: a wiring bug, not a state to hide.
    """
    service: object = state.callcenter
    if service is None:
        return None
    if not isinstance(service, LiveService):
        raise TypeError(f"app.state.callcenter is not a LiveService: {type(service).__name__}")
    return service
