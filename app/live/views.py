"""Live queries of the call center (REST and pages): agents, calls, queues, servers,
latency.  Read-only over the driver's state and the routing core's views."""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from app.errors import AgentNotFound
from app.jsonable import jsonable
from app.live import loader, protocol
from app.live.contracts import TelephonyLinkLike
from app.live.protocol import AgentView, SnapshotFrame
from app.live.tracking import LiveState
from app.live.wallboard import Wallboard
from app.stats import quantile

logger = logging.getLogger(__name__)


def percentiles(samples: Iterable[float]) -> dict[str, Any]:
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
        if view is None:
            return None
        state = getattr(view, "state", None)
        return state.value if isinstance(state, enum.Enum) else state

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

    def live_calls(self) -> dict[str, Any]:
        """Calls in progress: waiting per queue, offered (ringing), connected."""
        state = self.state
        now = state.clock()
        waiting: dict[str, list[dict[str, Any]]] = {q: [] for q in state.queues}
        offered: list[dict[str, Any]] = []
        connected: list[dict[str, Any]] = []
        for call_id, meta in state.calls.items():
            view = state.engine.call(call_id) if meta.classified else None
            data: dict[str, Any] = jsonable(view) if view is not None else {}
            inc = meta.incoming
            item = {
                "call_id": call_id,
                "server": inc.server,
                "caller": inc.caller_num,
                "caller_name": inc.caller_name,
                "dnis": inc.dnis,
                "queue_id": data.get("queue_id", meta.queue_id),
                "arrived_at": inc.at,
                "waited_s": round(now - inc.at, 1),
                "vip": meta.vip,
                "entitled": meta.entitled,
                "agent_id": data.get("agent_id"),
                "state": data.get("state", "classifying" if not meta.classified else None),
            }
            for key, value in data.items():
                item.setdefault(key, value)
            call_state = str(item["state"] or "")
            if call_state in ("connected", "answered", "on_call", "talking"):
                connected.append(item)
            elif call_state in ("offered", "ringing", "reserved"):
                offered.append(item)
            else:
                waiting.setdefault(str(item["queue_id"]), []).append(item)
        return {"waiting": waiting, "offered": offered, "connected": connected}

    def queue_views(self) -> list[dict[str, Any]]:
        state = self.state
        board = self.wallboard.state(state.clock())
        out = []
        for queue_id, row in state.queues.items():
            item: dict[str, Any] = {
                "queue_id": queue_id,
                "name": row.name,
                "open": state.queue_open.get(queue_id, True),
                "priority": row.config.priority,
                "ring_timeout_s": row.config.ring_timeout_s,
                "wrapup_s": row.config.wrapup_s,
                "dnis": sorted(d for d, q in state.dnis.items() if q == queue_id),
                "wallboard": board["queues"].get(queue_id),
            }
            with contextlib.suppress(Exception):  # queue removed meanwhile
                item["routing"] = jsonable(state.engine.queue_stats(queue_id))
            out.append(item)
        return out

    def server_status(self) -> list[dict[str, Any]]:
        link = self._link()
        if link is not None:
            try:
                status = link.status()
            except Exception:
                logger.exception("link status failed")
            else:
                return [jsonable(s) for s in status]
        return [jsonable(s) for s in self.state.servers.values()]

    def latency_stats(self) -> dict[str, Any]:
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
