"""``TelephonyLink``: one AMI connection + codec per Asterisk server, one sink for all.

Invariants
- ``sink`` is called synchronously on the event loop, in order, with ``IncomingCall``,
  routing events (``routing.events``), ``ServerStatus`` (on every connect / disconnect /
  failed attempt) and ``OriginateResult``.  An exception raised by the sink is logged and
  never stops a connection.
- ``execute`` never raises and never blocks: the actions of a command are written at once
  and back to back (Setvar, Setvar, Setvar, Redirect pipelined: docs/ami-notes.md, "Measured on a
  real Asterisk 22"), then checked
  in a task owned by the link.  A failed action becomes a routing event:
  ``OfferFailed(LINK)`` for an offer (only if that offer is still the open one): the
  offer never reached the agent's phone, a system failure the routing core does not
  count as the agent's miss (dial results from Asterisk keep their own words), and
  ``CallFailed`` when the call is gone ("channel gone" answers are given a grace period
  for the caller's own Hangup event, so an abandon still reads as ``CallHungUp``).
  While a server is disconnected its commands fail at once (nothing is queued for later,
  docs/ami-notes.md, defect 11); the routing core re-decides after the resync.
- After every login the link resynchronises before it reports the server ready:
  ``CoreShowChannels`` -> ``AmiCodec.reconcile`` (vanished calls end: ``CallHungUp`` after
  a reconnect, ``CallFailed`` after an Asterisk restart; offers answered / failed while
  away are reported; waiting callers nobody knew become ``IncomingCall`` with the DNIS read
  by ``Getvar ACD_DNIS``).  Callers nobody knew that are found *in the connect context*
  (ringing an agent, or bridged with one: typically after a restart of this service)
  are adopted the same way, the ``IncomingCall`` naming the agent (``agent_id``,
  ``answered``).  Live events keep flowing during the resync; the codec keeps the
  two consistent (see ``AmiCodec.begin_resync``): events of a channel being adopted
  update what ``adopt`` reports instead of being emitted.  ``ServerStatus(connected)``
  is emitted after the resync and its adoptions: the app may treat it as "resync done".
- ``may_send`` (several service processes, ``app.ha``) is asked right before every
  action is written to any socket, the login included: while it says no nothing is
  written (commands fail as if the server were disconnected).
- ``close()`` cancels and awaits every task and timer it started; ``settled()`` awaits
  them instead, so a caller can tell "nothing came of a command" from "not yet".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cti.ami import (
    AmiActionTimeout,
    AmiConnection,
    AmiError,
    AmiNotConnected,
    AmiResponse,
    PendingAction,
    SessionInfo,
    State,
)
from cti.codec import (
    DEFAULT_DIALPLAN,
    AmiCodec,
    ChannelInfo,
    CodecError,
    UnknownCall,
    encode_originate,
)
from cti.types import AmiServer, Dialplan, LinkItem, OriginateResult, ServerStatus
from cti.wire import Message
from routing.commands import Command, HangupCall, OfferCall, OverflowCall, ReturnToHold
from routing.events import CallFailed, OfferFailed, OfferFailure

log = logging.getLogger(__name__)

# Asterisk's answers when the channel named in an action does not exist
# (tests/fixtures/ami/README.md §6.23).
_GONE = ("no such channel", "channel does not exist", "channel specified does not exist")
_GONE_GRACE_S = 2.0


def _is_gone(message: str) -> bool:
    low = message.lower()
    return any(text in low for text in _GONE)


class LinkError(AmiError):
    """A request the link cannot carry out (unknown server, invalid originate...)."""


@dataclass(slots=True)
class _Server:
    config: AmiServer
    codec: AmiCodec
    conn: AmiConnection
    originates: dict[str, str] = field(default_factory=dict)  # ActionID -> channel_id


class TelephonyLink:
    """Connections to every configured Asterisk server, speaking routing events."""

    def __init__(
        self,
        servers: Sequence[AmiServer],
        sink: Callable[[LinkItem], None],
        *,
        dialplan: Dialplan = DEFAULT_DIALPLAN,
        action_timeout_s: float = 5.0,
        ping_interval_s: float = 10.0,
        reconnect_max_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        gone_grace_s: float = _GONE_GRACE_S,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate AMI server names: {names}")
        self._sink = sink
        self._clock = clock
        self._gone_grace_s = gone_grace_s
        self.dialplan = dialplan
        self.action_timeout_s = action_timeout_s
        self._servers: dict[str, _Server] = {}
        for server in servers:
            codec = AmiCodec(server.name, dialplan)  # validates the name (no '/')
            name = server.name
            conn = AmiConnection(
                server,
                on_event=functools.partial(self._on_event_of, name),
                on_login=functools.partial(self._resync_of, name),
                on_state=functools.partial(self._on_state_of, name),
                action_timeout_s=action_timeout_s,
                ping_interval_s=ping_interval_s,
                reconnect_max_s=reconnect_max_s,
                may_send=may_send,
            )
            self._servers[name] = _Server(server, codec, conn)
        self._tasks: set[asyncio.Task[None]] = set()  # command checks and grace periods
        self._closed = False

    def __repr__(self) -> str:
        return f"TelephonyLink(servers={list(self._servers)})"

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Begin connecting to every server; returns at once."""
        for srv in self._servers.values():
            await srv.conn.start()

    async def close(self) -> None:
        """Close every connection; cancel and await every task and timer."""
        self._closed = True
        await asyncio.gather(*(srv.conn.close() for srv in self._servers.values()))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def settled(self) -> None:
        """Return once every command check and grace period started so far has run.

        What the commands led to (``OfferFailed``, ``CallFailed`` after the grace period)
        has then reached the sink.
        """
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def status(self) -> list[ServerStatus]:
        return [self._status(srv) for srv in self._servers.values()]

    def _status(self, srv: _Server) -> ServerStatus:
        conn = srv.conn
        return ServerStatus(
            name=srv.config.name,
            connected=conn.ready,
            since=conn.since,
            uptime_s=conn.uptime_s,
            restarts=conn.restarts,
            reconnects=conn.reconnects,
            last_error=conn.last_error,
        )

    def codec(self, server: str) -> AmiCodec:
        """The codec of one server (read-only use: inspection, tests)."""
        return self._servers[server].codec

    def connection(self, server: str) -> AmiConnection:
        """The AMI connection of one server (inspection, tests)."""
        return self._servers[server].conn

    # --- sink -------------------------------------------------------------------------------------

    def _emit(self, event: LinkItem) -> None:
        try:
            self._sink(event)
        except Exception:
            log.exception("sink failed on %r", event)

    def _emit_all(self, events: Sequence[LinkItem]) -> None:
        for event in events:
            self._emit(event)

    def _on_event_of(self, name: str, msg: Message) -> None:
        self._on_event(self._servers[name], msg)

    def _on_state_of(self, name: str, conn: AmiConnection) -> None:
        self._on_state(self._servers[name])

    async def _resync_of(self, name: str, info: SessionInfo) -> None:
        await self._resync(self._servers[name], info)

    def _on_event(self, srv: _Server, msg: Message) -> None:
        events = srv.codec.feed(msg, self._clock())
        for event in events:
            self._emit(event)
        if msg.headers[0][1] == "OriginateResponse":
            self._on_originate_response(srv, msg)

    def _on_state(self, srv: _Server) -> None:
        state = srv.conn.state
        if state in (State.READY, State.DISCONNECTED):
            if state is State.DISCONNECTED:
                self._fail_originates(srv)
            self._emit(self._status(srv))

    # --- resync ---------------------------------------------------------------------------------

    async def _resync(self, srv: _Server, info: SessionInfo) -> None:
        conn, codec = srv.conn, srv.codec
        codec.begin_resync()
        try:
            resp = await conn.action([("Action", "CoreShowChannels")])
            channels = [
                ChannelInfo.from_message(m) for m in resp.items if m.name == "CoreShowChannel"
            ]
            plan = codec.reconcile(channels, restarted=info.restarted)
            log.info(
                "server=%s resync: %d live channels, %d events, %d waiting callers to adopt, %d retries",
                srv.config.name,
                len(channels),
                len(plan.events),
                len(plan.orphans),
                len(plan.retries),
            )
            self._emit_all(plan.events)
            retries = [conn.send_action(action) for action in plan.retries]
            getvars = [
                conn.send_action(
                    [("Action", "Getvar"), ("Channel", orphan.channel), ("Variable", "ACD_DNIS")]
                )
                for orphan in plan.orphans
            ]
            for orphan, pending in zip(plan.orphans, getvars, strict=True):
                dnis_resp = await conn.wait(pending, check=False)
                if not dnis_resp.ok:
                    log.info(
                        "server=%s uniqueid=%s gone before adoption: %s",
                        srv.config.name,
                        orphan.uniqueid,
                        dnis_resp.message,
                    )
                    codec.drop_orphan(orphan.uniqueid)
                    continue
                call = codec.adopt(orphan, dnis_resp.response.get("Value"), self._clock())
                if call is not None:
                    self._emit(call)
            for pending in retries:
                resp = await conn.wait(pending, check=False)
                if not resp.ok:
                    log.info(
                        "server=%s resync retry %s: %s", srv.config.name, pending.name, resp.message
                    )
        finally:
            codec.end_resync()

    # --- commands -------------------------------------------------------------------------------

    def execute(self, cmd: Command) -> None:
        """Carry out a telephony command; failures come back through the sink."""
        if not isinstance(cmd, OfferCall | ReturnToHold | OverflowCall | HangupCall):
            log.debug("not a telephony command: %r", cmd)
            return
        call_id = cmd.call_id
        srv = self._servers.get(call_id.partition("/")[0])
        if srv is None:
            log.error("call=%s: no such AMI server; failing the call", call_id)
            self._fail_command(cmd, "unknown server")
            return
        try:
            actions = srv.codec.encode(cmd)
        except UnknownCall:
            log.warning(
                "server=%s call=%s: %s for a call no longer known",
                srv.config.name,
                call_id,
                type(cmd).__name__,
            )
            self._emit(CallFailed(call_id, "unknown call"))
            return
        except CodecError as exc:
            log.error("server=%s call=%s: cannot encode %r: %s", srv.config.name, call_id, cmd, exc)
            self._command_failed(srv, cmd, str(exc), gone=False)
            return
        if not srv.conn.logged_in:
            log.warning(
                "server=%s call=%s: %s while disconnected; failed at once",
                srv.config.name,
                call_id,
                type(cmd).__name__,
            )
            self._command_failed(srv, cmd, "server disconnected", gone=False, disconnected=True)
            return
        try:
            sent = [srv.conn.send_action(action) for action in actions]
        except AmiNotConnected:
            self._command_failed(srv, cmd, "server disconnected", gone=False, disconnected=True)
            return
        if isinstance(cmd, OfferCall):
            log.info(
                "server=%s call=%s offer to agent=%s device=%s queue=%s",
                srv.config.name,
                call_id,
                cmd.agent_id,
                cmd.device,
                cmd.queue_id,
            )
        self._spawn(self._check(srv, cmd, sent))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, srv: _Server, cmd: Command, sent: list[PendingAction]) -> None:
        results: list[AmiResponse | AmiError] = []
        for pending in sent:
            try:
                results.append(await srv.conn.wait(pending, check=False))
            except AmiError as exc:
                results.append(exc)
        # The last action decides (the Redirect of an offer); earlier Setvars that failed
        # while the Redirect succeeded are only logged.
        final = results[-1]
        for pending, result in zip(sent[:-1], results[:-1], strict=True):
            if isinstance(result, AmiResponse) and not result.ok:
                log.warning(
                    "server=%s %s refused: %s", srv.config.name, pending.name, result.message
                )
        if isinstance(final, AmiResponse):
            if final.ok:
                return
            reason = final.message or final.response.name
            self._command_failed(srv, cmd, reason, gone=_is_gone(reason))
            return
        if isinstance(final, AmiActionTimeout):
            srv.conn.poke()  # a half-open connection is noticed now, not at the next ping
        if (
            isinstance(final, AmiNotConnected)
            and isinstance(cmd, OfferCall)
            and srv.codec.mark_offer_uncertain(cmd.call_id, cmd.agent_id)
        ):
            # Written, then the connection dropped: the Redirect may have run (the agent
            # rings or talks).  Failing the offer now would free an agent who may be on
            # the call; the resync after the reconnect reports what really happened.
            log.warning(
                "server=%s call=%s offer to agent=%s: connection lost before the answer;"
                " the resync decides",
                srv.config.name,
                cmd.call_id,
                cmd.agent_id,
            )
            return
        self._command_failed(
            srv, cmd, str(final), gone=False, disconnected=isinstance(final, AmiNotConnected)
        )

    def _command_failed(
        self, srv: _Server, cmd: Command, reason: str, *, gone: bool, disconnected: bool = False
    ) -> None:
        assert isinstance(cmd, OfferCall | ReturnToHold | OverflowCall | HangupCall)
        name = srv.config.name
        log.warning(
            "server=%s call=%s %s failed: %s", name, cmd.call_id, type(cmd).__name__, reason
        )
        if isinstance(cmd, OfferCall):
            # Only if this offer is still the open one: a newer decision stands.
            if srv.codec.cancel_offer(cmd.call_id, cmd.agent_id):
                self._emit(OfferFailed(cmd.call_id, cmd.agent_id, OfferFailure.LINK))
        elif isinstance(cmd, OverflowCall) and not gone and not disconnected:
            # The caller would wait in hold forever, unknown to routing: hang up.
            try:
                srv.conn.send_action(srv.codec.encode(HangupCall(cmd.call_id))[0])
            except (AmiError, CodecError):
                pass
            self._emit_all(srv.codec.fail_call(cmd.call_id, f"overflow failed: {reason}"))
            return
        if gone:
            self._later(self._gone_grace_s, self._gone_check, srv, cmd.call_id)

    def _fail_command(self, cmd: Command, reason: str) -> None:
        assert isinstance(cmd, OfferCall | ReturnToHold | OverflowCall | HangupCall)
        if isinstance(cmd, OfferCall):
            self._emit(OfferFailed(cmd.call_id, cmd.agent_id, OfferFailure.LINK))
        self._emit(CallFailed(cmd.call_id, reason))

    def _later(self, delay: float, fn: Callable[..., None], *args: object) -> None:
        if not self._closed:
            self._spawn(self._after(delay, fn, *args))

    @staticmethod
    async def _after(delay: float, fn: Callable[..., None], *args: object) -> None:
        await asyncio.sleep(delay)
        fn(*args)

    def _gone_check(self, srv: _Server, call_id: str) -> None:
        # Asterisk said the channel does not exist and no Hangup event ended the call
        # since: fail it, so it is not stuck.
        self._emit_all(srv.codec.fail_call(call_id, "channel gone"))

    # --- originate ---------------------------------------------------------------------------------

    async def originate(
        self,
        server: str,
        *,
        channel: str,
        context: str,
        exten: str,
        variables: Mapping[str, str],
        channel_id: str,
        caller_id: str = "",
        timeout_s: float = 30.0,
    ) -> None:
        """Start an outbound call (callback); returns once Asterisk queued it.

        Always ``Async: true``.  The outcome arrives later through the sink as an
        ``OriginateResult``.  Raises ``LinkError`` (unknown server, invalid arguments),
        ``AmiNotConnected``, ``AmiActionTimeout`` or ``AmiActionFailed``.
        """
        srv = self._servers.get(server)
        if srv is None:
            raise LinkError(f"unknown AMI server {server!r}")
        try:
            action = encode_originate(
                channel=channel,
                context=context,
                exten=exten,
                variables=variables,
                channel_id=channel_id,
                caller_id=caller_id,
                timeout_s=timeout_s,
            )
        except CodecError as exc:
            raise LinkError(str(exc)) from exc
        pending = srv.conn.send_action(action)
        # Registered before awaiting: the OriginateResponse may arrive in the same read.
        srv.originates[pending.action_id] = channel_id
        try:
            await srv.conn.wait(pending)
        except AmiError:
            srv.originates.pop(pending.action_id, None)
            raise
        log.info("server=%s originate %s via %s queued", server, channel_id, channel)

    def _on_originate_response(self, srv: _Server, msg: Message) -> None:
        channel_id = srv.originates.pop(msg.get("ActionID"), None)
        if channel_id is None:
            return
        success = msg.get("Response") == "Success"
        self._emit(
            OriginateResult(srv.config.name, channel_id, success, msg.get("Reason"), self._clock())
        )

    def _fail_originates(self, srv: _Server) -> None:
        pending, srv.originates = srv.originates, {}
        for channel_id in pending.values():
            self._emit(
                OriginateResult(srv.config.name, channel_id, False, "disconnected", self._clock())
            )
