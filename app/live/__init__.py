"""Live call handling: the call-center driver, agent actions, websockets, wallboard.

Contract with ``app.main``:
- ``routes.router`` (the agent-action and live-view routes, ``/api/v1``) and
  ``ws.router`` (the websocket channels ``/ws/agents/{agent_id}``, ``/ws/wallboard``).
  This package does not import them itself: ``app.auth`` imports ``protocol`` (the close
  codes), and the routes import ``app.auth``.
- ``live_runtime(settings, database, options)``: an async context manager that starts
  the routing engine, the telephony link, the outcome writer and the websocket hubs,
  yields the ``CallCenter``, and stops them on exit.  ``LiveOptions`` (frozen, typed)
  holds what callers may change; demo mode's simulator is ``app.demo``'s, not this
  package's.

Modules: ``callcenter`` (the asyncio driver around the routing core, with its parts
``classify``, ``actions``, ``restore``, ``views``, ``agents``, ``configure``, ``records``,
``inbox``, ``tracking`` and the typed collaborators in ``contracts``), ``routes``
(REST), ``ws`` (websockets), ``protocol`` (the websocket frames and close codes),
``hub`` (bounded fan-out), ``wallboard`` (KPIs), ``loader`` (configuration from the
database), ``runtime`` (composition).
"""

from __future__ import annotations

from app.live.callcenter import CallCenter
from app.live.runtime import LiveOptions, live_runtime

__all__ = ["CallCenter", "LiveOptions", "live_runtime"]
