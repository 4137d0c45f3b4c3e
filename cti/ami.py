"""One AMI connection (login, actions, events, watchdog, reconnect) on panoramisk 1.4.

panoramisk's ``Manager`` is the connector (``Manager.connect`` -> ``loop.create_connection``
with our ``protocol_factory``); everything it gets wrong is replaced here, one workaround
per defect listed in ``docs/ami-notes.md`` (numbered the same):

1. UTF-8 split across TCP reads: ``AmiProtocol`` buffers bytes and frames them with
   ``cti.wire.AmiParser`` (``FilteringParser``) before decoding; panoramisk's decoder is
   never used.
2. A raising callback kills the transport: there is exactly one synchronous event
   callback, called inside ``try``; an exception is logged and the stream goes on.
3. No action timeouts: ``action()`` is ``wait_for(shield(future), timeout)`` and drops the
   pending entry when it gives up, so a late response is ignored, not mis-delivered.
4. The built-in ping never checks the answer: panoramisk's pinger is disabled; our
   watchdog sends ``Ping`` with a timeout and ``abort()``s a half-open transport.
5. ``close()`` does not stop a scheduled reconnect: every reconnect is our own timer
   handle, cancelled by ``close()``, and ``connect`` is guarded by a closing flag.
6. A wrong secret loops silently: the Login response is checked; a refusal is logged
   (user name only), kept in ``last_error`` and retried with exponential backoff.
7. ``Originate`` without ``Async``: ``cti.codec.encode_originate`` always sends
   ``Async: true`` and the action completes on "successfully queued"; the later
   ``OriginateResponse`` arrives as an ordinary event.
8. Events with a pending ActionID: only list items (between ``EventList: start`` and
   ``...Complete``) go to the action; any other event (``OriginateResponse``, an AMI
   ``UserEvent`` echoing the sender's ActionID) goes to the event callback.
9. Header normalisation: ``cti.wire.Message`` keeps every repeated header
   (``get_all``) and ``get`` always returns one ``str``.
10. No ``CallManager`` / ``panoramisk.testing``: not imported anywhere.
11. Actions while disconnected are never queued for later: ``send_action`` raises
    ``AmiNotConnected`` at once, and pending actions fail when the connection drops.

Invariants: the secret appears only in the Login action on the wire, never in a log
line, an exception or a repr.  All tasks and timers are owned and cancelled by
``close()``.  Callbacks run synchronously on the event loop, in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager

from cti.types import AmiServer
from cti.wire import AmiParser, Message, encode, parse_block

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

# Events a call router never needs; dropped before they are parsed (an unfiltered
# session receives about four of these for every event the codec reads:
# tests/fixtures/ami/README.md §5).
NOISE_EVENTS = frozenset(
    {
        "VarSet",
        "Newexten",
        "DeviceStateChange",
        "NewCallerid",
        "NewConnectedLine",
        "HangupRequest",
        "SoftHangupRequest",
        "LocalBridge",
        "DialState",
        "BridgeCreate",
        "BridgeDestroy",
        "Newchannel",
        "Newstate",
        "NewAccountCode",
        "RTCPSent",
        "RTCPReceived",
        "Cdr",
        "CEL",
        "ChannelTalkingStart",
        "ChannelTalkingStop",
        "DTMFBegin",
        "DTMFEnd",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "Hold",
        "Unhold",
        "LocalOptimizationBegin",
        "LocalOptimizationEnd",
        "SuccessfulAuth",
        "ContactStatus",
        "PeerStatus",
        "Registry",
    }
)


class AmiError(Exception):
    """Base of every error raised by ``cti.ami`` (and ``cti.link``).

    AmiError
    ├── AmiNotConnected      not logged in (fail fast, defect 11)
    ├── AmiActionTimeout     no response within the action timeout (defect 3)
    └── AmiActionFailed      ``Response: Error`` (``.message`` is Asterisk's text)

    A refused login is not raised: it is kept in ``last_error`` and retried with backoff.
    """


class AmiNotConnected(AmiError):
    pass


class AmiFenced(AmiNotConnected):
    """The process may not act on Asterisk now (it is not, or no longer surely, the
    leader: ``may_send`` said no); nothing was written."""


class AmiActionTimeout(AmiError):
    pass


class AmiActionFailed(AmiError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


@dataclass(slots=True)
class AmiResponse:
    """An action's response, plus the list items of a list action (``EventList``)."""

    response: Message
    items: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.response.name in ("Success", "Goodbye", "Follows")

    @property
    def message(self) -> str:
        return self.response.get("Message")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a (re)login found: first contact, a plain reconnect, or an Asterisk restart."""

    first: bool
    restarted: bool
    uptime_s: float | None


class State(enum.StrEnum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    LOGGING_IN = "logging_in"
    READY = "ready"
    CLOSED = "closed"


def backoff_delay(failures: int, low: float, high: float) -> float:
    """Seconds before reconnect attempt ``failures + 1``: doubling from ``low`` up to ``high``."""
    return min(high, low * 2.0 ** min(failures, 30))


# --- framing ------------------------------------------------------------------------------


class FilteringParser(AmiParser):
    """``AmiParser`` that drops unwanted events before parsing them, in linear time.

    Same framing rules as ``AmiParser`` (bytes split on the blank line before decoding,
    CRLF or bare LF).  Blocks whose first line is ``Event: <name>`` with a name in
    ``skip_events`` are counted in ``skipped`` and never decoded.  The base ``feed``
    searches for a bare-LF terminator from every message start, which rescans the whole
    buffer per message on a CRLF stream; here that search runs once per ``feed``.
    """

    __slots__ = ("_skip", "skipped")

    def __init__(self, *, expect_banner: bool = False, skip_events: Iterable[str] = ()) -> None:
        super().__init__(expect_banner=expect_banner)
        self._skip = frozenset(b"Event: " + name.encode() for name in skip_events)
        self.skipped = 0

    def feed(self, data: bytes) -> list[Message]:
        if self._banner_pending:
            return super().feed(data)  # the banner line, then the base path once
        buf = self._buf
        buf += data
        out: list[Message] = []
        view = bytes(buf)
        bare_lf = view.find(b"\n\n") >= 0
        skip = self._skip
        start = 0
        while True:
            i = view.find(b"\r\n\r\n", start)
            if bare_lf:
                j = view.find(b"\n\n", start)
                if j >= 0 and (i < 0 or j < i):
                    end, nxt = j, j + 2
                elif i >= 0:
                    end, nxt = i, i + 4
                else:
                    break
            elif i >= 0:
                end, nxt = i, i + 4
            else:
                break
            if skip:
                eol = view.find(b"\r\n", start, end)
                first = view[start : end if eol < 0 else eol]
                if first in skip:
                    self.skipped += 1
                    start = nxt
                    continue
            block = view[start:end]
            start = nxt
            if block.strip():
                out.append(_parse_fast(block))
        if start:
            del buf[:start]
        if len(buf) > 4 * 1024 * 1024:
            buf.clear()
            raise ValueError("AMI message exceeds the buffer limit")
        return out


def _parse_fast(block: bytes) -> Message:
    """``cti.wire.parse_block`` in one pass for well-formed ``Key: Value`` CRLF blocks.

    Anything unusual (a bare LF, a line without ``": "``, a colon before the first
    ``": "``, padded keys or values) goes to ``parse_block`` itself, so the result is
    always identical to it.
    """
    text = block.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    index: dict[str, str] = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if (
            not sep
            or ":" in key  # parse_block splits at the first colon, not at the first ": "
            or "\n" in line
            or "\r" in line
            or key != key.strip()
            or value.startswith(" ")
        ):
            if line:
                return parse_block(block)
            continue
        headers.append((key, value))
        low = key.lower()
        if low not in index:
            index[low] = value
    msg = Message.__new__(Message)
    msg.headers = headers
    msg._index = index
    return msg


# --- panoramisk glue -------------------------------------------------------------------------


class AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """Byte-buffering protocol: frames with ``FilteringParser``, hands messages on."""

    def __init__(self, conn: AmiConnection) -> None:
        super().__init__()
        self._conn = conn
        self.closed = False
        self._parser = FilteringParser(expect_banner=True, skip_events=conn.skip_events)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._conn.bytes_received += len(data)
        try:
            messages = self._parser.feed(data)
        except ValueError:
            log.error(
                "server=%s AMI stream unusable (oversized message); reconnecting", self._conn.name
            )
            self.abort()
            return
        handle = self._conn._on_message
        for msg in messages:
            handle(msg)

    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise AmiNotConnected("transport closed")
        self.transport.write(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._conn._on_lost(self, exc)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _Connector(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's Manager reduced to connecting; our ``AmiConnection`` does the rest."""

    def __init__(self, conn: AmiConnection, **config: Any) -> None:
        super().__init__(**config)
        self._conn = conn

    def connect(
        self, run_forever: bool = False, on_startup: Any = None, on_shutdown: Any = None
    ) -> Any:
        if self._conn.closing:  # defect 5: a closed connection never reconnects
            return None
        return super().connect()

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        self._conn._on_connect_done(f)

    def ping(self) -> None:  # defect 4: replaced by the watchdog
        return None

    def connection_lost(self, exc: Exception | None) -> None:  # routed via AmiProtocol
        return None

    def close(self) -> None:
        return None


@dataclass(slots=True)
class _Pending:
    name: str
    future: asyncio.Future[AmiResponse]
    response: Message | None = None
    items: list[Message] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PendingAction:
    action_id: str
    name: str
    future: asyncio.Future[AmiResponse]


_ids = itertools.count(1)


class AmiConnection:
    """A logged-in AMI session to one server that keeps itself alive.

    ``on_event(msg)`` is called synchronously for every event (not list items), in order.
    ``on_login(info)`` runs after each successful login (resync); actions are allowed
    while it runs.  ``on_state(conn)`` is called on every state change.
    """

    def __init__(
        self,
        server: AmiServer,
        *,
        on_event: Callable[[Message], None],
        on_login: Callable[[SessionInfo], Awaitable[None]] | None = None,
        on_state: Callable[[AmiConnection], None] | None = None,
        action_timeout_s: float = 5.0,
        ping_interval_s: float = 10.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        skip_events: Iterable[str] = NOISE_EVENTS,
        events: str = "on",
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        self.server = server
        # Asked right before every write to the socket (the login included): the
        # leadership's "still the leader, lease not past its safe deadline" (app.ha).
        self._may_send = may_send
        self.name = server.name
        self._on_event = on_event
        self._on_login = on_login
        self._on_state = on_state
        self.action_timeout_s = action_timeout_s
        self.ping_interval_s = ping_interval_s
        self.reconnect_min_s = min(reconnect_min_s, reconnect_max_s)
        self.reconnect_max_s = reconnect_max_s
        self.skip_events = frozenset(skip_events)
        self._events = events
        self.state = State.DISCONNECTED
        self.closing = False
        self.since: float | None = None
        self.uptime_s: float | None = None
        self.restarts = 0
        self.reconnects = 0
        self.logins = 0
        self.last_error: str | None = None
        self.banner = ""
        self.attempts = 0  # connection attempts started (the first one included)
        self.bytes_received = 0  # raw bytes read from the server, over every session
        self._uptime_seen_at: float | None = None  # monotonic time of the last uptime
        self._protocol: AmiProtocol | None = None
        self._pending: dict[str, _Pending] = {}
        self._prefix = f"sb{os.getpid()}-{next(_ids)}-"
        self._seq = itertools.count(1)
        self._connector: _Connector | None = None
        self._connect_task: asyncio.Future[Any] | None = None
        self._connect_timer: asyncio.TimerHandle | None = None
        self._reconnect_timer: asyncio.TimerHandle | None = None
        self._session_task: asyncio.Task[None] | None = None
        self._booted: asyncio.Future[float | None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._failures = 0  # consecutive failed attempts (reset after a good login)
        self._logged_in = False
        self._abort_reason: str | None = None
        self._checks: set[asyncio.Task[bool]] = set()

    def __repr__(self) -> str:
        return f"AmiConnection({self.server!r}, state={self.state.value})"

    @property
    def ready(self) -> bool:
        """Logged in and resynchronised."""
        return self.state is State.READY

    @property
    def failures(self) -> int:
        """Consecutive failed connect/login attempts (0 after a good login)."""
        return self._failures

    @property
    def pending_actions(self) -> int:
        return len(self._pending)

    @property
    def reconnect_at(self) -> float | None:
        """Loop time (``loop.time()``) of the scheduled reconnect attempt, if one is due.

        Lets a caller wait until that moment has demonstrably passed (the loop runs timers
        in deadline order) instead of guessing a delay.
        """
        timer = self._reconnect_timer
        return None if timer is None or timer.cancelled() else timer.when()

    @property
    def logged_in(self) -> bool:
        """Actions are accepted (also while ``on_login`` resynchronises)."""
        return self._logged_in and self._protocol is not None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting; returns at once (progress is reported through ``on_state``)."""
        if self._connector is not None:
            return
        loop = asyncio.get_running_loop()
        self._connector = _Connector(
            self,
            host=self.server.host,
            port=self.server.port,
            ssl=ssl.create_default_context() if self.server.tls else False,
            protocol_factory=lambda: AmiProtocol(self),
            loop=loop,
            ping_delay=0,
            reconnect_timeout=0,
        )
        self._connect()

    async def close(self) -> None:
        """Log off, stop every timer and task, and never reconnect again."""
        if self.closing:
            return
        self.closing = True
        for timer in (self._reconnect_timer, self._connect_timer):
            if timer is not None:
                timer.cancel()
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
        tasks = [t for t in (self._session_task, *self._checks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        protocol = self._protocol
        if protocol is not None:
            lost = self._lost
            protocol.close()
            if lost is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(lost), 1.0)
        self._fail_pending(AmiNotConnected("connection closed"))
        self._set_state(State.CLOSED)

    def _connect(self) -> None:
        self._reconnect_timer = None
        if self.closing or self._connector is None:
            return
        self._set_state(State.CONNECTING)
        task = self._connector.connect()
        if task is None:
            return
        self._connect_task = task
        self.attempts += 1
        loop = asyncio.get_running_loop()
        # create_connection has no timeout of its own (a black-holed SYN waits minutes).
        self._connect_timer = loop.call_later(
            max(self.action_timeout_s, 1.0), self._connect_timeout, task
        )

    def _connect_timeout(self, task: asyncio.Future[Any]) -> None:
        if not task.done():
            self.last_error = "connect timed out"
            task.cancel()

    def _on_connect_done(self, f: asyncio.Future[Any]) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self.closing:
            if not f.cancelled() and f.exception() is None:
                f.result()[0].close()
            return
        if f.cancelled() or f.exception() is not None:
            exc = None if f.cancelled() else f.exception()
            if exc is not None:
                self.last_error = f"connect failed: {exc}"
            log.warning(
                "server=%s AMI connect to %s:%s failed: %s",
                self.name,
                self.server.host,
                self.server.port,
                self.last_error,
            )
            self._schedule_reconnect()
            return
        _transport, protocol = f.result()
        assert isinstance(protocol, AmiProtocol)
        self._protocol = protocol
        self._lost = asyncio.get_running_loop().create_future()
        self._booted = asyncio.get_running_loop().create_future()
        self._set_state(State.LOGGING_IN)
        self._session_task = asyncio.get_running_loop().create_task(
            self._session(protocol), name=f"ami-session-{self.name}"
        )

    def _schedule_reconnect(self) -> None:
        if self.closing:
            return
        delay = backoff_delay(self._failures, self.reconnect_min_s, self.reconnect_max_s)
        self._failures += 1
        self._set_state(State.DISCONNECTED)
        log.info("server=%s AMI reconnect in %.1f s", self.name, delay)
        self._reconnect_timer = asyncio.get_running_loop().call_later(delay, self._connect)

    def _on_lost(self, protocol: AmiProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        self._logged_in = False
        was_ready = self.state is State.READY
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._session_task is not None and not self._session_task.done():
            self._session_task.cancel()
        self._fail_pending(AmiNotConnected("connection lost"))
        if self.closing:
            return
        if self._abort_reason:
            self.last_error, self._abort_reason = self._abort_reason, None
        elif was_ready:
            self.last_error = f"connection lost: {exc}" if exc else "connection lost"
            log.warning("server=%s AMI %s", self.name, self.last_error)
        self._schedule_reconnect()

    def _set_state(self, state: State) -> None:
        if state is self.state:
            return
        self.state = state
        if state in (State.READY, State.DISCONNECTED, State.CLOSED):
            self.since = time.time()
        if self._on_state is not None:
            try:
                self._on_state(self)
            except Exception:
                log.exception("server=%s state callback failed", self.name)

    # --- session: login, resync, watchdog ---------------------------------------------------

    async def _session(self, protocol: AmiProtocol) -> None:
        try:
            login: Headers = [
                ("Action", "Login"),
                ("Username", self.server.username),
                ("Secret", self.server.secret),
                ("Events", self._events),
            ]
            # Asterisk answers a wrong secret after a deliberate ~1 s delay.
            resp = await self.action(
                login, timeout_s=max(self.action_timeout_s, 3.0), check=False, _login=True
            )
            if not resp.ok:
                self.last_error = f"login refused for user {self.server.username!r}: {resp.message or resp.response.name}"
                log.error("server=%s AMI %s", self.name, self.last_error)
                protocol.close()
                return
            self._logged_in = True
            uptime = await self._wait_booted()
            info = self._classify(uptime)
            self.logins += 1
            if info.restarted:
                self.restarts += 1
            if not info.first:
                self.reconnects += 1
            log.info(
                "server=%s AMI logged in (%s, uptime=%s, banner=%r)",
                self.name,
                "first contact"
                if info.first
                else ("asterisk restarted" if info.restarted else "reconnect"),
                uptime,
                self.banner,
            )
            if self._on_login is not None:
                try:
                    await self._on_login(info)
                except AmiError as exc:
                    self._abort_reason = f"resync failed: {exc}"
                    log.warning("server=%s %s; reconnecting", self.name, self._abort_reason)
                    protocol.abort()
                    return
                except Exception:
                    self._abort_reason = "resync failed (bug, see log)"
                    log.exception("server=%s resync raised; reconnecting", self.name)
                    protocol.abort()
                    return
            self._failures = 0
            self.last_error = None
            self._set_state(State.READY)
            await self._watchdog(protocol)
        except AmiError as exc:
            if not self.closing:
                self.last_error = self.last_error or str(exc)
                log.warning("server=%s AMI session ended: %s", self.name, exc)
                protocol.abort()

    async def _wait_booted(self) -> float | None:
        booted = self._booted
        assert booted is not None
        try:
            return await asyncio.wait_for(asyncio.shield(booted), self.action_timeout_s)
        except TimeoutError:
            log.warning("server=%s no FullyBooted after login; uptime unknown", self.name)
            return None

    def _classify(self, uptime: float | None) -> SessionInfo:
        now = time.monotonic()
        first = self.logins == 0
        restarted = False
        if uptime is not None:
            if self.uptime_s is not None and self._uptime_seen_at is not None:
                expected = self.uptime_s + (now - self._uptime_seen_at)
                # Uptime only grows while Asterisk runs; well below the expected value
                # means the process was restarted while we were away.
                restarted = uptime + 2.0 < expected
            self.uptime_s = uptime
            self._uptime_seen_at = now
        return SessionInfo(first=first, restarted=restarted and not first, uptime_s=uptime)

    async def _watchdog(self, protocol: AmiProtocol) -> None:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            if not await self.check_alive(protocol):
                return

    async def check_alive(self, protocol: AmiProtocol | None = None) -> bool:
        """Ping once; on no answer abort the transport (reconnect + resync follow)."""
        protocol = protocol or self._protocol
        if protocol is None:
            return False
        try:
            await self.action([("Action", "Ping")], check=False)
        except AmiActionTimeout:
            self._abort_reason = "ping timed out (half-open connection)"
            log.warning("server=%s AMI %s; aborting", self.name, self._abort_reason)
            protocol.abort()
            return False
        except AmiNotConnected:
            return False
        return True

    def poke(self) -> None:
        """Schedule an immediate liveness check (after an action timed out)."""
        if self._protocol is None or self.closing:
            return
        task = asyncio.get_running_loop().create_task(self.check_alive(self._protocol))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    # --- actions ------------------------------------------------------------------------------

    def send_action(self, headers: Headers, *, _login: bool = False) -> PendingAction:
        """Write one action now (pipelining); the future resolves with its response."""
        protocol = self._protocol
        if protocol is None or not (_login or self.logged_in):
            raise AmiNotConnected(f"server {self.name} is not connected")
        name = headers[0][1] if headers else ""
        if self._may_send is not None and not self._may_send():
            raise AmiFenced(f"server {self.name}: {name} not sent, this process is not the leader")
        action_id = f"{self._prefix}{next(self._seq)}"
        data = encode([*headers, ("ActionID", action_id)])
        future: asyncio.Future[AmiResponse] = asyncio.get_running_loop().create_future()
        protocol.write(data)
        self._pending[action_id] = _Pending(name, future)
        return PendingAction(action_id, name, future)

    async def wait(
        self, pending: PendingAction, *, timeout_s: float | None = None, check: bool = True
    ) -> AmiResponse:
        """Await a sent action with a timeout (defect 3); a late answer is then dropped."""
        try:
            resp = await asyncio.wait_for(
                asyncio.shield(pending.future),
                self.action_timeout_s if timeout_s is None else timeout_s,
            )
        except TimeoutError:
            self._pending.pop(pending.action_id, None)
            if not pending.future.done():
                pending.future.cancel()
            raise AmiActionTimeout(f"{pending.name}: no response from {self.name}") from None
        if check and not resp.ok:
            raise AmiActionFailed(pending.name, resp.message or resp.response.name)
        return resp

    async def action(
        self,
        headers: Headers,
        *,
        timeout_s: float | None = None,
        check: bool = True,
        _login: bool = False,
    ) -> AmiResponse:
        pending = self.send_action(headers, _login=_login)
        return await self.wait(pending, timeout_s=timeout_s, check=check)

    def _fail_pending(self, exc: AmiError) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exc)
                # Nobody may be awaiting it any more; mark the exception retrieved.
                p.future.exception()

    # --- incoming -------------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        try:
            headers = msg.headers
            kind = headers[0][0]
            if kind == "Event":
                if "ActionID" in msg:
                    p = self._pending.get(msg.get("ActionID"))
                    if p is not None and p.response is not None:  # a list item (defect 8)
                        if msg.get("EventList").lower() == "complete":
                            del self._pending[msg.get("ActionID")]
                            if not p.future.done():
                                p.future.set_result(AmiResponse(p.response, p.items))
                        else:
                            p.items.append(msg)
                        return
                if headers[0][1] == "FullyBooted":
                    self._fully_booted(msg)
                self._on_event(msg)
            elif kind == "Response":
                action_id = msg.get("ActionID")
                p = self._pending.get(action_id)
                if p is None:
                    log.debug(
                        "server=%s response to unknown/expired action %s", self.name, action_id
                    )
                    return
                if msg.get("EventList").lower() == "start":
                    p.response = msg  # items follow until ...Complete
                    return
                del self._pending[action_id]
                if not p.future.done():
                    p.future.set_result(AmiResponse(msg))
            elif kind == "Banner":
                self.banner = headers[0][1]
        except Exception:  # defect 2: never let one message kill the connection
            log.exception("server=%s failed to handle AMI message %s", self.name, msg.name)

    def _fully_booted(self, msg: Message) -> None:
        try:
            uptime: float | None = float(msg.get("Uptime"))
        except ValueError:
            uptime = None
        booted = self._booted
        if booted is not None and not booted.done():
            booted.set_result(uptime)
