"""Agent actions (REST and the pages): log in, ready, pause, log out, wrap up, and a
supervisor forcing a state.  Each goes through the driver like any other event; a
refusal of the routing core (its state unchanged) becomes the problem of its class
(``app.errors.map_routing_errors``)."""

from __future__ import annotations

import logging
import time

from app import errors as problems
from app.errors import (
    AgentNotFound,
    InvalidForcedState,
    NothingToWrapUp,
    UnknownDisposition,
    UnknownPauseCode,
)
from app.live import loader, protocol
from app.live.contracts import DatabaseLike, Driver
from app.live.records import Recorder
from app.live.tracking import LiveState
from app.live.views import LiveViews, WrappedUp
from routing.commands import AgentState
from routing.events import AgentLogin, AgentLogout, AgentPause, AgentReady

logger = logging.getLogger(__name__)


class AgentActions:
    """What an agent (or a supervisor for an agent) asks of the call center."""

    def __init__(
        self,
        state: LiveState,
        driver: Driver,
        views: LiveViews,
        recorder: Recorder,
        database: DatabaseLike,
    ) -> None:
        self.state = state
        self.driver = driver
        self.views = views
        self.recorder = recorder
        self.database = database

    def _action(self, event: AgentLogin | AgentReady | AgentPause | AgentLogout) -> None:
        if event.agent_id not in self.state.agents:
            raise AgentNotFound(f"Agent {event.agent_id} does not exist.")
        self.state.mark_agent(event.agent_id)  # a deferred pause / logout changes no state
        with problems.map_routing_errors():  # the core refused: its state is unchanged
            self.driver.handle(event, time.perf_counter())

    async def login(self, agent_id: str, device: str | None = None) -> protocol.AgentView:
        row = self.state.agents.get(agent_id)
        if row is None:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        self._action(AgentLogin(agent_id, device or row.device))
        return self.views.agent_view(agent_id)

    async def ready(self, agent_id: str) -> protocol.AgentView:
        self._action(AgentReady(agent_id))
        return self.views.agent_view(agent_id)

    async def _check_pause_code(self, reason: str) -> None:
        async with self.database.sessionmaker() as session:
            known = await loader.pause_code_exists(session, reason)
        if not known:
            raise UnknownPauseCode(f"Pause code {reason!r} does not exist.", reason=reason)

    async def pause(self, agent_id: str, reason: str) -> protocol.AgentView:
        if agent_id not in self.state.agents:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        await self._check_pause_code(reason)
        self._action(AgentPause(agent_id, reason))
        return self.views.agent_view(agent_id)

    async def logout(self, agent_id: str) -> protocol.AgentView:
        self._action(AgentLogout(agent_id))
        return self.views.agent_view(agent_id)

    async def wrap_up(
        self, agent_id: str, disposition_code: str, notes: str | None = None
    ) -> WrappedUp:
        """Record the disposition of the agent's last call and end its wrap-up."""
        if agent_id not in self.state.agents:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        async with self.database.sessionmaker() as session:
            known = await loader.disposition_exists(session, disposition_code)
        if not known:
            raise UnknownDisposition(
                f"Disposition code {disposition_code!r} does not exist.",
                disposition_code=disposition_code,
            )
        last = self.state.last_call.get(agent_id)
        if last is None or last.dispositioned:
            raise NothingToWrapUp(f"Agent {agent_id} has no call to wrap up.")
        state = self.views.agent_state(agent_id)
        if state == AgentState.WRAP_UP.value:
            self._action(AgentReady(agent_id))  # ends the wrap-up: WrapUpEnded is emitted
        last.dispositioned = True
        self.recorder.wrapup(last.call_id, disposition_code, notes, last.wrapup_ended_at)
        return WrappedUp(view=self.views.agent_view(agent_id), wrapped_call_id=last.call_id)

    async def force_state(
        self, agent_id: str, state: str, reason: str | None = None, *, by: str | None = None
    ) -> protocol.AgentView:
        """A supervisor moves an agent to ready, paused (with a reason) or logged out."""
        if state == AgentState.READY.value:
            event: AgentReady | AgentPause | AgentLogout = AgentReady(agent_id)
        elif state == AgentState.PAUSED.value:
            if agent_id not in self.state.agents:
                raise AgentNotFound(f"Agent {agent_id} does not exist.")
            await self._check_pause_code(reason or "supervisor")
            event = AgentPause(agent_id, reason or "supervisor")
        elif state == AgentState.LOGGED_OUT.value:
            event = AgentLogout(agent_id)
        else:
            raise InvalidForcedState(f"Cannot force state {state!r}.", state=state)
        logger.info("agent %s forced to %s by %s (%s)", agent_id, state, by, reason)
        self._action(event)
        return self.views.agent_view(agent_id)
