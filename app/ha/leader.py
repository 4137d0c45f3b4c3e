"""``Leadership``: hold (or wait for) the lease and run what only the leader may run.

Theory of operation (docs/ha.md has the why):

- Every service process of one database runs one ``Leadership``.  At start it makes one
  attempt to take the lease (``app.ha.lease``): a lone process, or the first of several,
  leads at once, and its lifespan starts exactly as a single process always did.  The
  others stand by and poll the lease every ``poll_interval_s``.
- What only the leader may run registers on the ``LeaderGate``: a ``start`` and a
  ``stop`` coroutine (the live runtime, scheduled jobs of other domains).  Starts run in
  registration order when leadership is won, stops in reverse when it ends.  The lease
  keeps being renewed while they run (a long configuration load never loses it).
- The leader renews every ``renew_interval_s`` on its own connection (never the busy
  pool), from its own thread and event loop (the *keeper*): a busy main loop never
  delays a renewal.  Its *safe deadline* is the monotonic time at which it *sent* the last
  successful renewal (or the acquisition) plus ``lease_ttl_s - margin_s``: the database
  extended the lease from a later instant, so the deadline always falls before the
  lease can expire for anybody else.
- ``may_act`` (asked right before every AMI write, ``cti.ami``) is true only while this
  tenure is current and the safe deadline has not passed; checking the clock there is
  what stops a paused-then-resumed process: after a SIGSTOP the first write it attempts
  finds the deadline passed, whatever ran first after SIGCONT.  A timer at the deadline
  and any failed check *fence* the process: the tenure ends at once (no action, no
  live-state write), the stops run (AMI sessions dropped), and it becomes a standby.
- Live-state writes carry the tenure's token (``write_fence``, ``app.fencing``): a
  locking read of the lease row in the write's transaction, refused once the lease
  moved on.
- A clean stop (SIGTERM) runs the stops while still renewing (the last live state is
  written under the lease), then releases the lease: a standby takes over on its next
  poll instead of waiting for the expiry.
- Every process heartbeats its ``ha_members`` row with its role; a takeover is logged
  in ``ha_takeovers`` with the time routing resumed.

With ``enabled=False`` the process leads without a lease (no fencing): one process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.fencing import Fenced, WriteFence
from app.ha import lease
from app.settings import HaSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")
Callback = Callable[[], Awaitable[None]]
Connect = Callable[[], Awaitable[Any]]  # -> an asyncpg connection

_PRUNE_MEMBERS_AFTER_S = 24 * 3600.0
_FENCE = sa.text(lease.FENCE_SQL)


class LeaderGate(Protocol):
    """What a domain sees of the leadership: register work only the leader runs."""

    @property
    def leading(self) -> bool:
        """This process holds the lease now."""

    def register(self, name: str, start: Callback, stop: Callback) -> None:
        """``start`` when leadership is won (in registration order), ``stop`` when it
        ends (in reverse).  Registered while leading: started at once."""


def leader_gate(state: Any) -> LeaderGate:
    """The running process's ``LeaderGate`` from ``app.state`` (set by the lifespan)."""
    gate = getattr(state, "leadership", None)
    if gate is None:
        raise RuntimeError("no leadership: the lifespan has not started")
    if not isinstance(gate, Leadership):
        raise TypeError(f"app.state.leadership is not a Leadership: {type(gate).__name__}")
    return gate


@dataclass(frozen=True, slots=True)
class Tenure:
    """One holding of the lease: its token and the checks bound to it."""

    token: int
    may_act: Callable[[], bool]
    write_fence: WriteFence | None


@dataclass(slots=True)
class _Registered:
    name: str
    start: Callback
    stop: Callback


def lease_connection(database: Database) -> Connect:
    """Opens the lease's own asyncpg connection to the service's database (never one of
    the pool's: a busy pool must not delay a renewal)."""
    import asyncpg

    engine = database.engine
    _args, kwargs = engine.dialect.create_connect_args(engine.url)

    async def connect() -> Any:
        return await asyncpg.connect(**kwargs, timeout=5.0)

    return connect


def default_member_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Leadership:
    """The lease holder / standby of one process (see the module docstring)."""

    def __init__(
        self,
        settings: HaSettings,
        connect: Connect | None,
        *,
        address: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.enabled and connect is None:
            raise ValueError("leadership with a lease needs a database connection")
        self.settings = settings
        self.enabled = settings.enabled
        self.member = settings.member_name or default_member_name()
        self.address = address
        self.clock = clock
        self._connect = connect
        self._conn: Any = None
        self._db_lock = asyncio.Lock()
        self._registered: list[_Registered] = []
        self._started: list[_Registered] = []
        self._token: int | None = None
        self._safe_until = 0.0
        self._next_renew = 0.0
        self._next_heartbeat = 0.0
        self._deadline: asyncio.TimerHandle | None = None
        self._loop_task: asyncio.Task[None] | None = None  # on the keeper's loop
        self._main: asyncio.AbstractEventLoop | None = None
        self._keeper: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._transition: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.running = False  # the registered starts all ran for the current tenure
        self.takeovers = 0
        self.fenced = 0
        self.last_reason: str | None = None
        self._start_error: BaseException | None = None

    # --- what others ask ------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self._token is not None

    @property
    def token(self) -> int | None:
        return self._token

    @property
    def role(self) -> str:
        if self._closing:
            return "stopped"
        return "leader" if self.leading else "standby"

    def may_act(self, token: int | None = None) -> bool:
        """Leading (in tenure ``token``, if given) and the safe deadline not passed."""
        current = self._token
        if current is None or (token is not None and token != current):
            return False
        if not self.enabled:
            return True
        if self.clock() < self._safe_until:
            return True
        asyncio.get_running_loop().call_soon(self._check_deadline)
        return False

    def tenure(self) -> Tenure:
        """The current tenure (only while leading)."""
        token = self._token
        if token is None:
            raise RuntimeError("not leading")
        return Tenure(
            token=token,
            may_act=lambda: self.may_act(token),
            write_fence=self._write_fence(token) if self.enabled else None,
        )

    def register(self, name: str, start: Callback, stop: Callback) -> None:
        entry = _Registered(name, start, stop)
        self._registered.append(entry)
        if self.leading and self.running:
            self._spawn(self._start_one(entry), f"leader-start-{name}")

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """One attempt at the lease (a lone process leads before this returns), then
        keep renewing / polling in the background."""
        if not self.enabled:
            self._token = 0
            await self._run_starts(0)
            error, self._start_error = self._start_error, None
            if error is not None:
                raise error
            return
        self._main = asyncio.get_running_loop()
        keeper = asyncio.new_event_loop()
        self._keeper = keeper
        self._thread = threading.Thread(target=keeper.run_forever, name="ha-lease", daemon=True)
        self._thread.start()
        await self._on_keeper(self._try_acquire())
        self._loop_task = await self._on_keeper(self._start_loop())
        with contextlib.suppress(Exception):  # the loop heartbeats again; here: be seen now
            async with asyncio.timeout(self.settings.renew_interval_s):
                await self._on_keeper(self._heartbeat(force=True))
        if self._transition is not None:  # won: the starts run while the loop renews
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._transition)
        error, self._start_error = self._start_error, None
        if error is not None:  # as a single process always did: a failed start fails
            await self.close()
            raise error

    async def close(self) -> None:
        """Stop what the leader runs (still under the lease), then release it."""
        self._closing = True
        token = self._token
        if self._transition is not None and not self._transition.done():
            self._transition.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._transition
        await self._run_stops()
        if self._keeper is not None:
            with contextlib.suppress(Exception):
                await self._on_keeper(self._halt_loop())
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._cancel_deadline()
        if not self.enabled:
            self._token = None
            return
        if token is not None and self._token == token:
            self._token = None
            try:
                async with asyncio.timeout(self.settings.lease_ttl_s):
                    await self._on_keeper(
                        self._db(
                            lambda c: lease.release(c, self.settings.lease_name, self.member, token)
                        )
                    )
                logger.info("ha: lease released (token %d)", token)
            except Exception as exc:  # noqa: BLE001 — it expires by itself
                logger.warning("ha: lease not released (%s); it expires by itself", exc)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self._on_keeper(self._heartbeat(force=True))
        keeper, thread = self._keeper, self._thread
        if keeper is not None and thread is not None:
            with contextlib.suppress(Exception):
                await self._on_keeper(self._close_connection())
            keeper.call_soon_threadsafe(keeper.stop)
            await asyncio.to_thread(thread.join, 5.0)
            if not thread.is_alive():
                keeper.close()
            self._keeper = self._thread = None

    # --- the keeper thread ------------------------------------------------------------------
    #
    # The lease's connection, renewals and polls run on their own event loop in their own
    # thread: a stalled main loop (a takeover loading 20,000 agents and adopting thousands
    # of calls, a burst of work) never delays a renewal.  A stall of the whole process
    # (SIGSTOP, a collection holding the GIL) stops the thread too, and ``may_act``'s clock
    # check catches it.  What the keeper decides reaches the main loop through
    # ``call_soon_threadsafe`` (``_to_main``); the main loop runs its coroutines on the
    # keeper's loop with ``_on_keeper``.

    async def _on_keeper(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the keeper's loop and await its result here."""
        keeper = self._keeper
        if keeper is None:
            coro.close()
            raise RuntimeError("the lease keeper is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, keeper))

    def _to_main(self, fn: Callable[..., None], *args: Any) -> None:
        main = self._main
        if main is not None and not main.is_closed():
            main.call_soon_threadsafe(fn, *args)

    async def _start_loop(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._loop(), name="ha-lease")

    async def _halt_loop(self) -> None:
        """Stop renewing and polling (close; tests stall a holder with it)."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1.0)

    # --- the lease loop -------------------------------------------------------------------

    async def _loop(self) -> None:
        s = self.settings
        while True:
            if self._token is not None:
                delay = self._next_renew - self.clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self._token is not None:
                    await self._renew()
            else:
                await asyncio.sleep(s.poll_interval_s)
                busy = self._transition is not None and not self._transition.done()
                if not busy and not self._closing:
                    await self._try_acquire()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(s.renew_interval_s):
                    await self._heartbeat()

    async def _db(self, op: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``op`` on the lease connection (opened on demand; dropped on failure)."""
        async with self._db_lock:
            if self._conn is None or self._conn.is_closed():
                assert self._connect is not None
                self._conn = await self._connect()
            try:
                return await op(self._conn)
            except BaseException:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.terminate()
                raise

    async def _try_acquire(self) -> None:
        s = self.settings
        sent = self.clock()
        try:
            async with asyncio.timeout(max(s.poll_interval_s, s.renew_interval_s)):
                result = await self._db(
                    lambda c: lease.acquire(c, s.lease_name, self.member, s.lease_ttl_s)
                )
        except Exception as exc:  # noqa: BLE001 — a standby just tries again
            logger.warning("ha: lease not checked (%s: %s)", type(exc).__name__, exc)
            return
        if isinstance(result, lease.Held):
            return
        self._token = result.token
        self._set_safe(sent)
        self.takeovers += 1
        logger.warning(
            "ha: leading (token %d, %s%s)",
            result.token,
            result.reason,
            f" from {result.previous_holder}" if result.previous_holder else "",
        )
        self._to_main(self._won, result.token)

    def _won(self, token: int) -> None:
        """(main loop) The keeper took the lease: run the starts."""
        if self._token == token and not self._closing:
            self._arm_deadline()
            self._transition = self._spawn(self._run_starts(token), "ha-starts")

    async def _renew(self) -> None:
        s = self.settings
        token = self._token
        assert token is not None
        sent = self.clock()
        try:
            async with asyncio.timeout(max(0.05, self._safe_until - sent)):
                ok = await self._db(
                    lambda c: lease.renew(c, s.lease_name, self.member, token, s.lease_ttl_s)
                )
        except Exception as exc:  # noqa: BLE001 — retried until the safe deadline
            logger.warning("ha: lease renewal failed (%s: %s)", type(exc).__name__, exc)
            self._next_renew = self.clock() + min(0.2, s.renew_interval_s)
            self._to_main(self._check_deadline)
            return
        if self._token != token:
            return
        if not ok:
            self._to_main(self.fence, "the lease is no longer ours")
            return
        self._set_safe(sent)
        self._to_main(self._arm_deadline)

    def _set_safe(self, sent: float) -> None:
        """(keeper) A renewal or acquisition sent at ``sent`` succeeded."""
        s = self.settings
        self._safe_until = sent + s.lease_ttl_s - s.margin_s
        self._next_renew = sent + s.renew_interval_s

    def _arm_deadline(self) -> None:
        """(main loop) Fence at the safe deadline unless a renewal moves it first."""
        self._cancel_deadline()
        if self._token is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._safe_until - self.clock())
        self._deadline = loop.call_at(loop.time() + delay, self._check_deadline)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _check_deadline(self) -> None:
        if self._token is not None and self.enabled and self.clock() >= self._safe_until:
            self.fence("the lease could not be renewed before its safe deadline")

    def fence(self, reason: str) -> None:
        """End this tenure now: no further action or write; stop what the leader runs."""
        token = self._token
        if token is None:
            return
        self._token = None
        self._safe_until = 0.0
        self.running = False
        self.fenced += 1
        self.last_reason = reason
        self._cancel_deadline()
        logger.error("ha: fenced (token %d): %s; standing by", token, reason)
        previous = self._transition
        if previous is not None and not previous.done():
            previous.cancel()
        self._transition = self._spawn(self._stops_after(previous), "ha-stops")

    async def _stops_after(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        await self._run_stops()

    # --- starts and stops -------------------------------------------------------------------

    async def _run_starts(self, token: int) -> None:
        for entry in list(self._registered):
            if self._token != token:
                return
            try:
                await self._start_one(entry)
            except Exception as exc:
                logger.exception("ha: %s failed to start; giving the lease up", entry.name)
                self._start_error = exc
                await self._give_up(token)
                return
        if self._token == token:
            self.running = True
            logger.info("ha: leader running (token %d)", token)
            if self.enabled:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self.settings.renew_interval_s):
                        await self._on_keeper(
                            self._db(
                                lambda c: lease.routing_resumed(c, self.settings.lease_name, token)
                            )
                        )

    async def _start_one(self, entry: _Registered) -> None:
        self._started.append(entry)
        await entry.start()

    async def _give_up(self, token: int) -> None:
        self._token = None
        self.running = False
        self._cancel_deadline()
        await self._run_stops()
        if self.enabled:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.settings.renew_interval_s):
                    await self._on_keeper(
                        self._db(
                            lambda c: lease.release(c, self.settings.lease_name, self.member, token)
                        )
                    )

    async def _run_stops(self) -> None:
        while self._started:
            entry = self._started.pop()
            try:
                await entry.stop()
            except Exception:
                logger.exception("ha: %s failed to stop", entry.name)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- fencing of writes, heartbeats ------------------------------------------------------

    def _write_fence(self, token: int) -> WriteFence:
        params = {"name": self.settings.lease_name, "holder": self.member, "token": token}

        async def fence(session: AsyncSession) -> None:
            if not self.may_act(token):
                raise Fenced(f"token {token} is no longer this process's lease")
            if (await session.execute(_FENCE, params)).first() is None:
                self._loop_call(lambda: self.fence("a write found the lease moved on"))
                raise Fenced(f"token {token}: the lease moved on")

        return fence

    @staticmethod
    def _loop_call(fn: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(fn)

    async def _heartbeat(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.settings.renew_interval_s
        role, token = self.role, self._token
        await self._db(
            lambda c: lease.heartbeat(
                c,
                member=self.member,
                host=socket.gethostname(),
                pid=os.getpid(),
                address=self.address,
                role=role,
                token=token,
                prune_after_s=_PRUNE_MEMBERS_AFTER_S,
            )
        )
