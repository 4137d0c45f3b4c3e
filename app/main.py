"""The application factory and composition root.

Invariants:
- Importing this module creates nothing: no engine, no client, no settings.  Everything is
  built in ``create_app(settings)`` and started in its lifespan, in this order, and
  stopped in reverse: settings checked (secrets, database) -> database opened and
  migrated -> bootstrap admin -> [demo mode: ``app.demo`` seeds and starts the AMI
  simulator] -> live runtime (routing engine, telephony, outcome writer, websocket hubs)
  -> [demo mode: simulated phones, ready agents, Poisson callers].
- ``app.state`` carries ``settings``, ``token_versions`` and ``login_limiter`` (from
  ``create_app``) and, while the lifespan runs, ``db``, ``leadership`` (``app.ha``) and
  ``callcenter`` (a ``LiveService``, stored and read with ``app.liveservice``'s typed
  accessors; set only while this process leads).
- The live runtime (and whatever else registers on the ``LeaderGate``) runs only while
  this process holds the lease (``app.ha``, docs/ha.md); a lone process takes it at
  once, so the lifespan starts everything before the first request as it always did.  Handlers
  reach them through ``app.deps``.
- Tests swap parts through ``create_app(settings, live_options=LiveOptions(...))`` or a
  whole ``live_runtime``, never by patching.
- Process-wide policies (garbage-collector tuning, logging) are the entry point's
  (``app.__main__``), not this factory's: tests build many apps in one process.
- Every route requires a bearer token except ``/health``, ``/ready`` (which tells only
  ready / not ready without one), the token endpoint and the OpenAPI documents.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel

from app import agentlog, live, reports
from app import db as database
from app.api import api_router
from app.api.dberrors import install_database_error_handlers
from app.apidocs import install_api_docs
from app.auth import Role, TokenVersions, ensure_admin, load_token_version, optional_principal
from app.bodylimit import BodySizeLimitMiddleware
from app.cases import routes as case_routes
from app.cases.routes import case_clock, policy_from
from app.cases.scheduler import EscalationScheduler
from app.customers import routes as customer_routes
from app.errors import ServiceUnavailable, Standby, install_error_handlers
from app.ha.leader import Leadership, lease_connection
from app.ha.routes import router as cluster_router
from app.live import routes as live_routes
from app.live import ws as live_ws
from app.live.runtime import LiveOptions
from app.liveservice import LiveService, live_service, set_live_service
from app.loginlimit import LoginLimiter
from app.pages import router as pages_router
from app.redact import install_token_redaction
from app.reports.retention_job import RetentionJob
from app.settings import CaseSettings, Settings
from routing.commands import Command

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "auth", "description": "Tokens and the current principal."},
    {"name": "agents", "description": "Agent seats: skills, queues, team, device (admin)."},
    {"name": "devices", "description": "Phones agents may log in on (admin)."},
    {"name": "queues", "description": "Queues / service lines: DNIS, skills, hours, escalation."},
    {"name": "skills", "description": "Skills agents have and queues require."},
    {"name": "teams", "description": "Teams of agents."},
    {"name": "dispositions", "description": "Wrap-up disposition codes."},
    {"name": "pause-codes", "description": "Reasons an agent may pause with."},
    {"name": "reports", "description": "Queue, team and agent reports from the interval rollups."},
    {"name": "users", "description": "Login accounts and roles."},
    {"name": "crm", "description": "Caller lookup (the screen pop)."},
    {"name": "calls", "description": "Call history and call events."},
    {"name": "health", "description": "Liveness and readiness probes (no token)."},
    {"name": "cluster", "description": "Service processes, the leader and takeovers (admin)."},
]


class HealthRead(BaseModel):
    status: str


class ServerStatusRead(BaseModel):
    name: str
    connected: bool
    since: float | None = None
    uptime_s: float | None = None
    restarts: int = 0
    reconnects: int = 0
    last_error: str | None = None


class ReadyRead(BaseModel):
    """``status`` for anyone; ``database`` and ``ami`` only for a supervisor's token."""

    status: str
    database: bool | None = None
    ami: list[ServerStatusRead] | None = None


async def _start_live(
    stack: AsyncExitStack,
    runtime: LiveRuntime,
    settings: Settings,
    db: database.Database,
    options: LiveOptions,
) -> LiveService:
    """The live runtime, wrapped in the demo center in demo mode (no servers given)."""
    if not (settings.demo_mode and options.servers is None):
        return await stack.enter_async_context(runtime(settings, db, options))
    from app.demo import DemoCenter  # the simulator is imported in demo mode only

    demo = await stack.enter_async_context(DemoCenter.open(settings, db))
    callcenter = await stack.enter_async_context(
        runtime(settings, db, replace(options, servers=demo.servers))
    )
    if not isinstance(callcenter, live.CallCenter):
        raise TypeError("demo mode drives the real call center, not a double")
    await stack.enter_async_context(demo.drive(callcenter))
    return callcenter


async def _start_history(
    stack: AsyncExitStack, settings: Settings, db: database.Database
) -> tuple[Callable[[Command, float], None], ...]:
    """The writers that keep history of the routing notifications (started before the
    live runtime, stopped after it, so they see its last notification): the agent state
    log and the interval rollups."""
    from app.agentlog.writer import AgentStateWriter
    from app.reports.rollup import RollupMaintainer

    states = await stack.enter_async_context(AgentStateWriter.running(db.sessionmaker))
    rollups = RollupMaintainer(
        db.sessionmaker,
        short_abandon_s=settings.kpi.short_abandon_s,
        timezone=settings.reports.timezone,
    )
    await rollups.start()
    stack.push_async_callback(rollups.close)
    return (states.notify, rollups.notify)


async def _demo_cases(db: database.Database) -> CaseSettings:
    """Demo mode: round-the-clock case hours and a complaint that climbs within minutes."""
    from app.cases.demo import ROUND_THE_CLOCK, add_climbing_complaint

    async with db.sessionmaker() as session:
        case_id = await add_climbing_complaint(session, now=datetime.now(UTC))
    logger.info("demo mode: complaint #%s escalates every 2 minutes (/cases)", case_id)
    return ROUND_THE_CLOCK


def _server_statuses(callcenter: LiveService | None) -> list[ServerStatusRead]:
    if callcenter is None:
        return []
    return [ServerStatusRead.model_validate(status) for status in callcenter.server_status()]


async def _nothing() -> None:
    return None


def _register_live(
    app: FastAPI,
    leadership: Leadership,
    runtime: LiveRuntime,
    settings: Settings,
    db: database.Database,
    options: LiveOptions,
) -> None:
    """The live runtime runs on the leader only: started when the lease is won (the
    tenure's checks passed down to the AMI link and the live-state store), stopped when
    it is lost or the process stops."""
    stacks: list[AsyncExitStack] = []

    async def start() -> None:
        tenure = leadership.tenure()
        opts = (
            replace(options, may_send=tenure.may_act, write_fence=tenure.write_fence)
            if leadership.enabled
            else options
        )
        stack = AsyncExitStack()
        stacks.append(stack)
        listeners = await _start_history(stack, settings, db)
        opts = replace(opts, listeners=(*opts.listeners, *listeners))
        service = await _start_live(stack, runtime, settings, db, opts)
        set_live_service(app.state, service)

    async def stop() -> None:
        set_live_service(app.state, None)
        while stacks:
            await stacks.pop().aclose()

    leadership.register("live runtime", start, stop)


LiveRuntime = Callable[
    [Settings, database.Database, LiveOptions], AbstractAsyncContextManager[LiveService]
]
"""``app.live.live_runtime``'s shape: ``(settings, db, options)`` -> yields the call center
(or, in REST tests, a double of the ``LiveService`` it is to the REST layer)."""


def create_app(
    settings: Settings | None = None,
    *,
    live_runtime: LiveRuntime | None = None,
    live_options: LiveOptions | None = None,
    on_started: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the service.

    ``live_options`` go to ``app.live.live_runtime`` (tests connect it to their
    simulators, shorten its timings...).  ``live_runtime`` replaces that factory as a
    whole (called as ``live_runtime(settings, db, options)``), for tests of the REST
    layer that must not depend on the call-center runtime.  ``on_started`` runs once
    everything has started, before the first request (the entry point's hook).
    """
    settings = settings if settings is not None else Settings()
    runtime: LiveRuntime = live_runtime if live_runtime is not None else live.live_runtime
    options = live_options if live_options is not None else LiveOptions()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Here, not at import: whoever runs the app (uvicorn) has configured logging by now.
        install_token_redaction()
        settings.check_secrets()
        settings.check_database()
        async with database.open_database(settings.database) as db:
            await ensure_admin(db, settings)
            app.state.db = db
            leadership = Leadership(
                settings.ha,
                lease_connection(db) if settings.ha.enabled else None,
                address=f"http://{settings.host}:{settings.port}",
            )
            app.state.leadership = leadership

            async def forget_token_versions() -> None:
                # Users changed through the previous leader: read them again.
                app.state.token_versions.forget()

            leadership.register("token versions", forget_token_versions, _nothing)
            _register_live(app, leadership, runtime, settings, db, options)
            retention = RetentionJob(
                db.sessionmaker,
                retention_days=settings.outcomes.retention_days,
                timezone=settings.reports.timezone,
            )
            leadership.register("retention", retention.start, retention.stop)
            case_settings = settings.cases
            if settings.demo_mode and "cases" not in settings.model_fields_set:
                case_settings = await _demo_cases(db)
            app.state.case_policy = policy_from(case_settings)
            escalations = EscalationScheduler(
                db.sessionmaker,
                app.state.case_policy,
                interval_s=case_settings.scheduler_interval_s,
                batch=case_settings.scheduler_batch,
                clock=case_clock(app),
            )
            app.state.case_escalations = escalations
            leadership.register("case escalations", escalations.start, escalations.stop)
            try:
                await leadership.start()
                logger.info("service started (demo=%s, %s)", settings.demo_mode, leadership.role)
                if on_started is not None:
                    on_started()
                yield
            finally:
                await leadership.close()
                set_live_service(app.state, None)
                app.state.db = None
        logger.info("service stopped")

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        summary="Contact-center telephony backend",
        description=(
            "Routes inbound Asterisk calls to agents, pops the caller's CRM record, logs "
            "every outcome and streams a live wallboard.  Errors are RFC 9457 problem "
            "details (`application/problem+json`) with a stable `error_id`.  Get a token "
            f"from `POST {API_PREFIX}/auth/token` and send it as `Authorization: Bearer`."
        ),
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        docs_url=None,  # app.apidocs serves them from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = None
    app.state.leadership = None
    set_live_service(app.state, None)

    async def load_version(user_id: int) -> int | None:
        db = app.state.db
        if db is None:
            raise ServiceUnavailable("The database is not available.")
        return await load_token_version(db, user_id)

    app.state.token_versions = TokenVersions(load_version)
    app.state.login_limiter = LoginLimiter(
        per_user=settings.auth.login_failures_per_user,
        per_address=settings.auth.login_failures_per_address,
        window_s=settings.auth.login_window_s,
        max_verifying=settings.auth.login_max_verifying,
    )
    install_error_handlers(app)
    install_database_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware)
    app.include_router(api_router, prefix=API_PREFIX)
    app.include_router(agentlog.router, prefix=API_PREFIX)
    app.include_router(customer_routes.router, prefix=API_PREFIX)
    app.include_router(case_routes.router, prefix=API_PREFIX)
    app.include_router(reports.router, prefix=API_PREFIX)
    app.include_router(cluster_router, prefix=API_PREFIX)
    app.include_router(live_routes.router)
    app.include_router(live_ws.router)
    app.include_router(pages_router)
    install_api_docs(app)

    @app.get("/health", tags=["health"], summary="Liveness: the process answers")
    async def health() -> HealthRead:
        return HealthRead(status="ok")

    @app.get(
        "/ready",
        tags=["health"],
        summary="Readiness: database reachable and every AMI server connected",
        description=(
            "Without a token only ready / not ready; with a supervisor's token also the "
            "database and each AMI server (names, errors)."
        ),
        responses={503: {"description": "Not ready (problem details)"}},
        response_model_exclude_none=True,
    )
    async def ready(request: Request) -> ReadyRead:
        db = request.app.state.db
        leadership: Leadership | None = request.app.state.leadership
        if leadership is not None and not (leadership.leading and leadership.running):
            # Another process leads (or this one is still taking over): send traffic there.
            role = "starting" if leadership.leading else "standby"
            raise Standby(f"{role.capitalize()}: this process does not route now.", role=role)
        db_ok = db is not None and await database.check(db)
        service = live_service(request.app.state)
        servers = _server_statuses(service)
        ok = db_ok and service is not None and all(s.connected for s in servers)
        # A probe needs no more; PBX names and errors (hosts, ports) are for staff only.
        principal = await optional_principal(request)
        if principal is None or not principal.has_role(Role.SUPERVISOR):
            if not ok:
                raise ServiceUnavailable("Not ready.")
            return ReadyRead(status="ready")
        if not ok:
            down = [s.name for s in servers if not s.connected]
            raise ServiceUnavailable(
                "Not ready: "
                + ", ".join(
                    (["database unreachable"] if not db_ok else [])
                    + ([f"AMI down: {', '.join(down)}"] if down else [])
                ),
                database=db_ok,
                ami=[s.model_dump() for s in servers],
            )
        return ReadyRead(status="ready", database=db_ok, ami=servers)

    return app
