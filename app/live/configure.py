"""Routing configuration in the live runtime: queues, agents and the DNIS map loaded
from the database into the routing core (all at start, the changed rows after a REST
change), and queues opened / closed by their opening hours."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from app.live import loader
from app.live.contracts import DatabaseLike, Driver
from app.live.tracking import LiveState
from app.live.wallboard import Wallboard
from routing.errors import RoutingError
from routing.events import (
    ConfigureAgent,
    ConfigureQueue,
    Event,
    RemoveAgent,
    RemoveQueue,
    SetQueueOpen,
)

logger = logging.getLogger(__name__)


class Configuration:
    """Keeps the routing core's configuration in step with the database."""

    def __init__(
        self, state: LiveState, driver: Driver, wallboard: Wallboard, database: DatabaseLike
    ) -> None:
        self.state = state
        self.driver = driver
        self.wallboard = wallboard
        self.database = database

    async def reload(
        self,
        *,
        agent_ids: Iterable[str] | None = None,
        queue_ids: Iterable[str] | None = None,
    ) -> None:
        """(Re)load queues, agents and the DNIS map from the database into the core.

        ``None`` for both means everything.  Rows that vanished or were deactivated are
        removed from the core (agents first, so no agent refers to a removed queue).
        """
        state = self.state
        full = agent_ids is None and queue_ids is None
        now = state.clock()
        q_filter = None if full or queue_ids is None else [int(q) for q in queue_ids]
        a_filter = None if full or agent_ids is None else [int(a) for a in agent_ids]
        wanted_queues = set(state.queues) if full else {str(q) for q in q_filter or ()}
        wanted_agents = set(state.agents) if full else {str(a) for a in a_filter or ()}
        async with self.database.sessionmaker() as session:
            queues = (
                await loader.load_queues(session, now, q_filter)
                if full or queue_ids is not None
                else {}
            )
            agents = (
                await loader.load_agents(session, a_filter) if full or agent_ids is not None else {}
            )
            gone = {q for q in wanted_queues - set(queues) if q in state.queues}
            # Members of a queue that goes away are reloaded too: their membership shrinks.
            members = {
                a for a, row in state.agents.items() if gone.intersection(row.config.queues)
            } - set(agents)
            if members:
                agents.update(await loader.load_agents(session, [int(a) for a in members]))
                wanted_agents |= members
            dnis = await loader.load_dnis(session)
        for queue_id, qrow in queues.items():
            self._apply(ConfigureQueue(qrow.config))
            state.queues[queue_id] = qrow
            state.queue_open[queue_id] = qrow.config.is_open
            self.wallboard.set_queue(queue_id, sl_target_s=qrow.config.sl_target_s)
        for agent_id, arow in agents.items():
            self._apply(ConfigureAgent(arow.config))
            state.agents[agent_id] = arow
            self.wallboard.set_agent_queues(agent_id, arow.config.queues)
        for agent_id in wanted_agents - set(agents):
            if agent_id in state.agents:
                self._apply(RemoveAgent(agent_id))
                state.agents.pop(agent_id, None)
                self.wallboard.remove_agent(agent_id)
        for queue_id in wanted_queues - set(queues):
            if queue_id in state.queues:
                self._apply(RemoveQueue(queue_id))
                state.queues.pop(queue_id, None)
                state.queue_open.pop(queue_id, None)
                self.wallboard.remove_queue(queue_id)
        state.dnis = dnis
        logger.info(
            "configuration loaded: %d queues, %d agents, %d DNIS",
            len(state.queues),
            len(state.agents),
            len(state.dnis),
        )

    async def config_changed(
        self, *, agent_ids: Iterable[str] = (), queue_ids: Iterable[str] = ()
    ) -> None:
        """The REST layer changed these rows: reload them (and the DNIS map)."""
        agents, queues = list(agent_ids), list(queue_ids)
        await self.reload(agent_ids=agents, queue_ids=queues)

    def _apply(self, event: Event) -> None:
        try:
            self.driver.handle(event, time.perf_counter())
        except RoutingError as exc:
            logger.error("configuration refused by the routing core: %s: %s", event, exc)
            raise

    def check_hours(self) -> None:
        """Open / close queues whose opening hours say so (``SetQueueOpen`` on change)."""
        state = self.state
        now = state.clock()
        for queue_id, row in state.queues.items():
            is_open = loader.is_open(row.hours, now)
            if state.queue_open.get(queue_id) != is_open:
                state.queue_open[queue_id] = is_open
                logger.info("queue %s is now %s", queue_id, "open" if is_open else "closed")
                self.driver.handle(SetQueueOpen(queue_id, is_open), time.perf_counter())
