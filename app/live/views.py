"""Live queries of the call center (REST and pages): agents, calls, queues, servers,
latency.  Read-only over the driver's state and the routing core's views."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple, NotRequired

from typing_extensions import TypedDict  # pydantic needs it before Python 3.12 (REST models)

from app.errors import AgentNotFound
from app.live import loader, protocol
from app.live.contracts import TelephonyLinkLike
from app.live.protocol import AgentView, ScopeFigures, SnapshotFrame
from app.live.tracking import LiveState
from app.live.wallboard import Wallboard
from app.stats import quantile
from cti.types import ServerStatus
from routing.errors import RoutingError
from routing.views import CallState

logger = logging.getLogger(__name__)


class LiveCallView(TypedDict):
    """A call in progress.  The routing core's fields (``priority`` ...) once it has the
    call; ``state`` is "classifying" while the screen pop is looked up."""

    call_id: str
    server: str
    caller: str
    caller_name: str
    dnis: str
    queue_id: str
    arrived_at: float
    waited_s: float
    vip: bool
    entitled: bool
    agent_id: str | None
    state: str | None
    priority: NotRequired[int]
    rona_count: NotRequired[int]
    queued_at: NotRequired[float]
    first_offered_at: NotRequired[float | None]
    answered_at: NotRequired[float | None]
    agents_offered: NotRequired[list[str]]
    suspended: NotRequired[bool]
    retry_at: NotRequired[float | None]


class LiveCallsView(TypedDict):
    waiting: dict[str, list[LiveCallView]]  # per queue, every configured queue listed
    offered: list[LiveCallView]  # ringing an agent
    connected: list[LiveCallView]


class QueueView(TypedDict):
    queue_id: str
    name: str
    open: bool
    priority: int
    ring_timeout_s: float
    wrapup_s: float
    dnis: list[str]
    wallboard: ScopeFigures | None
    routing: NotRequired[dict[str, object]]  # ``routing.views.QueueStats`` (absent: removed)


class ServerStatusView(TypedDict):
    """One AMI server (``cti.types.ServerStatus``'s fields)."""

    name: str
    connected: bool
    since: float | None
    uptime_s: float | None
    restarts: int
    reconnects: int
    last_error: str | None


class LatencySummary(TypedDict):
    """Milliseconds over the kept samples; only ``count`` when there are none."""

    count: int
    p50_ms: NotRequired[float]
    p90_ms: NotRequired[float]
    p99_ms: NotRequired[float]
    max_ms: NotRequired[float]
    mean_ms: NotRequired[float]


class LatencyStats(TypedDict):
    routing: LatencySummary
    screen_pop: LatencySummary
    counters: dict[str, int]


def server_view(status: ServerStatus) -> ServerStatusView:
    return ServerStatusView(
        name=status.name,
        connected=status.connected,
        since=status.since,
        uptime_s=status.uptime_s,
        restarts=status.restarts,
        reconnects=status.reconnects,
        last_error=status.last_error,
    )


def percentiles(samples: Iterable[float]) -> LatencySummary:
    data = sorted(samples)
    if not data:
        return {"count": 0}

    return {
        "count": len(data),
        "p50_ms": round(quantile(data, 0.50) * 1000, 3),
        "p90_ms": round(quantile(data, 0.90) * 1000, 3),
        "p99_ms": round(quantile(data, 0.99) * 1000, 3),
        "max_ms": round(data[-1] * 1000, 3),
        "mean_ms": round(sum(data) / len(data) * 1000, 3),
    }


class WrappedUp(NamedTuple):
    """An agent's view after its wrap-up, with the call the disposition was recorded for."""

    view: AgentView
    wrapped_call_id: str


class LiveViews:
    """The live queries, over the state the driver keeps."""

    def __init__(
        self,
        state: LiveState,
        wallboard: Wallboard,
        link: Callable[[], TelephonyLinkLike | None],
    ) -> None:
        self.state = state
        self.wallboard = wallboard
        self._link = link

    def agent_state(self, agent_id: str) -> str | None:
        view = self.state.engine.agent(agent_id)
        return None if view is None else view.state.value

    def agent_view(self, agent_id: str) -> AgentView:
        row = self.state.agents.get(agent_id)
        if row is None:
            raise AgentNotFound(f"Agent {agent_id} does not exist.")
        return self._agent_view(row)

    def _agent_view(self, row: loader.AgentRow) -> AgentView:
        config = row.config
        return protocol.agent_view(
            agent_id=config.agent_id,
            name=row.name,
            team=config.team,
            queues=list(config.queues),
            engine=self.state.engine.agent(config.agent_id),
            now=self.state.clock(),
        )

    def agent_states(
        self, *, queue_id: str | None = None, team: str | None = None
    ) -> list[AgentView]:
        out = []
        for row in self.state.agents.values():
            if queue_id is not None and queue_id not in row.config.queues:
                continue
            if team is not None and team not in (row.config.team, str(row.team_id)):
                continue
            out.append(self._agent_view(row))
        return out

    def live_calls(self) -> LiveCallsView:
        """Calls in progress: waiting per queue, offered (ringing), connected."""
        state = self.state
        now = state.clock()
        waiting: dict[str, list[LiveCallView]] = {q: [] for q in state.queues}
        offered: list[LiveCallView] = []
        connected: list[LiveCallView] = []
        for call_id, meta in state.calls.items():
            view = state.engine.call(call_id) if meta.classified else None
            inc = meta.incoming
            item = LiveCallView(
                call_id=call_id,
                server=inc.server,
                caller=inc.caller_num,
                caller_name=inc.caller_name,
                dnis=inc.dnis,
                queue_id=meta.queue_id if view is None else view.queue_id,
                arrived_at=inc.at,
                waited_s=round(now - inc.at, 1),
                vip=meta.vip,
                entitled=meta.entitled,
                agent_id=None if view is None else view.agent_id,
                state="classifying" if not meta.classified else None,
            )
            if view is None:
                waiting.setdefault(item["queue_id"], []).append(item)
                continue
            item["state"] = view.state.value
            item["priority"] = view.priority
            item["rona_count"] = view.rona_count
            item["queued_at"] = view.queued_at
            item["first_offered_at"] = view.first_offered_at
            item["answered_at"] = view.answered_at
            item["agents_offered"] = list(view.agents_offered)
            item["suspended"] = view.suspended
            item["retry_at"] = view.retry_at
            if view.state is CallState.CONNECTED:
                connected.append(item)
            elif view.state is CallState.OFFERED:
                offered.append(item)
            else:
                waiting.setdefault(item["queue_id"], []).append(item)
        return {"waiting": waiting, "offered": offered, "connected": connected}

    def queue_views(self) -> list[QueueView]:
        state = self.state
        board = self.wallboard.state(state.clock())
        out = []
        for queue_id, row in state.queues.items():
            item = QueueView(
                queue_id=queue_id,
                name=row.name,
                open=state.queue_open.get(queue_id, True),
                priority=row.config.priority,
                ring_timeout_s=row.config.ring_timeout_s,
                wrapup_s=row.config.wrapup_s,
                dnis=sorted(d for d, q in state.dnis.items() if q == queue_id),
                wallboard=board["queues"].get(queue_id),
            )
            try:
                item["routing"] = dataclasses.asdict(state.engine.queue_stats(queue_id))
            except RoutingError:  # the queue was removed from the router meanwhile
                pass
            out.append(item)
        return out

    def server_status(self) -> list[ServerStatusView]:
        link = self._link()
        if link is not None:
            try:
                status = link.status()
            except Exception:  # a status page must not fail with the link: last known
                logger.exception("link status failed")
            else:
                return [server_view(s) for s in status]
        return [server_view(s) for s in self.state.servers.values()]

    def latency_stats(self) -> LatencyStats:
        """Routing latency (event received -> OfferCall executed) and screen-pop latency."""
        state = self.state
        return {
            "routing": percentiles(state.routing_latency),
            "screen_pop": percentiles(state.pop_latency),
            "counters": dict(state.counters),
        }

    def latency_samples(self, since: float = 0.0) -> list[tuple[str, float, float]]:
        """(call_id, routing latency s, epoch s the offer's Redirect was written) per
        executed offer written after ``since``, oldest first (kept: the last
        ``latency_window``).  The load test joins them with the simulator's ACDHold
        times: AMI event -> Redirect written, across processes on one clock."""
        samples = self.state.per_call_latency
        if since <= 0.0:
            return list(samples)
        out = []
        for sample in reversed(samples):
            if sample[2] <= since:
                break
            out.append(sample)
        out.reverse()
        return out

    def wallboard_snapshot(self) -> SnapshotFrame:
        return self.wallboard.snapshot(self.state.clock())
