"""The simulator's core: state, lifecycle, the one timer heap, events and channels."""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from cti.simulator.model import (
    LAB_CUSTOMER,
    LAB_PROFILES,
    CallTrace,
    ChannelInfo,
    DeviceProfile,
    SimStats,
    SimUser,
    lab_users,
)
from cti.simulator.session import AmiSession, event_class
from cti.simulator.world import (
    CAUSE_TXT,
    STATE_DESC,
    Bridge,
    Call,
    Chan,
    _Timer,
)
from cti.types import Dialplan

if TYPE_CHECKING:
    from cti.simulator.engine import AsteriskSimulator

log = logging.getLogger("cti.simulator.engine")


class SimulatorCore:
    """State, lifecycle, the timer heap, event emission and channel helpers."""

    def __init__(
        self,
        *,
        name: str = "sim1",
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, SimUser] | None = None,
        channel_style: str = "pjsip",
        seed: int = 0,
        login_fail_delay_s: float = 1.0,
        dialplan: Dialplan | None = None,
        inbound_context: str = "acd-inbound",
        transfer_context: str = "acd-transfer",
        overflow_context: str = "acd-overflow",
        agents_context: str = "sim-agents",
        customers_context: str = "sim-customers",
        answer_delay_s: float | None = None,
        hold_limit_s: float = 3600.0,
        overflow_play_s: float = 2.0,
        unknown_devices: str = "default",
        lab_profiles: bool | None = None,
        system_name: str = "",
        globals_: Mapping[str, str] | None = None,
        time_scale: float = 1.0,
        arrive_event: bool = False,
        greeting_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if greeting_s < 0:
            raise ValueError("greeting_s must be >= 0")
        if channel_style not in ("pjsip", "local"):
            raise ValueError(f"channel_style must be 'pjsip' or 'local', not {channel_style!r}")
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if unknown_devices not in ("default", "unavailable"):
            raise ValueError("unknown_devices must be 'default' or 'unavailable'")
        self.name = name
        self.host = host
        self.port = port
        self._monotonic = monotonic  # the clock of the reported Uptime (tests advance it)
        self.users: dict[str, SimUser] = dict(users) if users is not None else lab_users()
        self.channel_style = channel_style
        self.login_fail_delay_s = login_fail_delay_s
        self.dp = dialplan or Dialplan()
        self.inbound_context = inbound_context
        self.transfer_context = transfer_context
        self.overflow_context = overflow_context
        self.agents_context = agents_context
        self.customers_context = customers_context
        # Answer() on a Local channel waits ~0.5 s for media (§6.14); PJSIP does not.
        self.answer_delay_s = (
            answer_delay_s
            if answer_delay_s is not None
            else (0.5 if channel_style == "local" else 0.0)
        )
        # deploy/asterisk's inbound context: UserEvent(ACDArrive) before Answer, then a
        # greeting (Playback) of ``greeting_s``.  Off by default: the lab captures have
        # neither.
        self.arrive_event = arrive_event
        self.greeting_s = greeting_s
        self.hold_limit_s = hold_limit_s
        self.overflow_play_s = overflow_play_s
        self.unknown_devices = unknown_devices
        self.system_name = system_name
        self.default_profile = DeviceProfile()
        self.customer_profile = LAB_CUSTOMER
        self._devices: dict[str, DeviceProfile] = {}
        if lab_profiles if lab_profiles is not None else channel_style == "local":
            self._devices.update(LAB_PROFILES)
        self.globals: dict[str, str] = dict(globals_) if globals_ is not None else {}
        if lab_profiles if lab_profiles is not None else channel_style == "local":
            self.globals.setdefault("SIM_TALK_1002", "30")
            self.globals.setdefault("SIM_RING_1003", "2")
            self.globals.setdefault("SIM_TALK_1003", "4")
        # Every simulated delay (ring, talk, patience, timeouts) is multiplied by this:
        # tests run the lab's 1-30 s scenarios in milliseconds.
        self.time_scale = time_scale
        self.response_delay = 0.0
        self.calls: dict[str, CallTrace] = {}
        self.stats = SimStats()
        self._rng = random.Random(seed)
        self._sessions: list[AmiSession] = []
        self._all_sessions: set[AmiSession] = set()
        self._chans: dict[str, Chan] = {}
        self._bridges: dict[str, Bridge] = {}
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = 0
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._uid_counter = 0
        self._chan_counter = 0
        self._started_mono = self._monotonic()
        self._started_epoch = time.time()
        self._reload_epoch = self._started_epoch
        self._processed_calls = 0
        self._want: dict[str, bool] = {}
        self._prefix: dict[str, str] = {}
        self._traffic: set[asyncio.Task[None]] = set()

    # ================================================================ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started_mono = self._monotonic()
        self._started_epoch = self._reload_epoch = time.time()
        await self._listen()
        log.info(
            "sim %s: AMI listening on %s:%d (%s channels)",
            self.name,
            self.host,
            self.port,
            self.channel_style,
        )

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AmiSession(cast("AsteriskSimulator", self)),
            self.host,
            self.port,
            reuse_address=True,
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        for task in list(self._traffic):
            task.cancel()
        for task in list(self._traffic):
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._traffic.clear()
        if self._server is not None:
            self._server.close()
        for s in list(self._all_sessions):
            s.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._clear_world("lost")
        self._disarm()

    def drop_connections(self) -> None:
        """TCP reset of every AMI session (the server keeps listening)."""
        for s in list(self._all_sessions):
            s.abort(reset=True)

    async def restart(self) -> None:
        """Like ``core restart now``: sessions dropped, channels gone, uptime starts over."""
        log.info("sim %s: restarting", self.name)
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        if self._server is not None:
            await self._server.wait_closed()
        self._clear_world("lost")
        self._started_mono = self._monotonic()
        self._started_epoch = self._reload_epoch = time.time()
        await self._listen()

    def _clear_world(self, result: str) -> None:
        now = time.time()
        calls = {c.call for c in self._chans.values() if c.call is not None}
        for ch in self._chans.values():
            ch.alive = False
        self._chans.clear()
        self._bridges.clear()
        for call in calls:
            call.phase = "gone"
            call.live = 0
            tr = call.trace
            if tr.result is None:
                tr.ended = now
                tr.ended_by = "restart"
                tr.result = result
                self.stats.lost += 1
                self.stats.in_progress -= 1
        self._heap.clear()
        self._disarm()
        self._armed_at = float("inf")

    def set_response_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("response delay must be >= 0")
        self.response_delay = seconds

    def set_device(self, device: str, profile: DeviceProfile) -> None:
        """Profile for a dial string (``PJSIP/1001``, ``Local/1001@sim-agents``) or a bare
        extension (``1001``), which then applies to every technology."""
        self._devices[device] = profile

    def now_epoch(self) -> float:
        return time.time()

    def uptime_s(self) -> int:
        return int(self._monotonic() - self._started_mono)

    # ================================================================ introspection

    def channels(self) -> list[ChannelInfo]:
        return [
            ChannelInfo(
                name=c.name,
                uniqueid=c.uniqueid,
                linkedid=c.linkedid,
                state=STATE_DESC.get(c.state, "Unknown"),
                context=c.context,
                exten=c.exten,
                priority=c.priority,
                application=c.app,
                bridge_id=c.bridge.id if c.bridge else "",
                role=c.role,
            )
            for c in self._chans.values()
        ]

    # ================================================================ scheduler

    def _at(self, delay: float, fn: Callable[..., None], *args: Any) -> _Timer:
        loop = self._loop
        assert loop is not None, "simulator not started"
        when = loop.time() + max(0.0, delay) * self.time_scale
        t = _Timer(when, fn, args)
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, t))
        if when < self._armed_at:
            self._disarm()
            self._arm(when)
        return t

    def _arm(self, when: float) -> None:
        """Schedule ``_fire`` at ``when`` (callers ``_disarm`` first: one handle at most)."""
        assert self._loop is not None
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._fire)
        self.stats.timer_handles_live += 1

    def _disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self.stats.timer_handles_live -= 1
        self._armed_at = float("inf")

    @staticmethod
    def _cancel(t: _Timer | None) -> None:
        if t is not None:
            t.fn = None
            t.args = ()

    def _fire(self) -> None:
        loop = self._loop
        assert loop is not None
        self._handle = None
        self._armed_at = float("inf")
        self.stats.timer_handles_live -= 1
        heap = self._heap
        now = loop.time()
        stats = self.stats
        while heap and heap[0][0] <= now:
            when, _, t = heapq.heappop(heap)
            fn = t.fn
            if fn is None:
                continue
            t.fn = None
            lag = now - when
            if lag > stats.timer_lag_max_s:
                stats.timer_lag_max_s = lag
            try:
                fn(*t.args)
            except Exception:
                log.exception(
                    "sim %s: timer callback %s failed", self.name, getattr(fn, "__name__", fn)
                )
        while heap and heap[0][2].fn is None:
            heapq.heappop(heap)
        # The callbacks above may have scheduled timers (``_at`` armed a handle while this
        # ran): replace that handle, never leave it live.  Left live, every such handle
        # later fired ``_fire`` once more and re-armed yet another: the loop's timer heap
        # grew without bound (docs/loadtest.md, "History of measurements").
        self._disarm()
        if heap:
            self._arm(heap[0][0])

    # ================================================================ sessions and events

    def session_opened(self, s: AmiSession) -> None:
        self._all_sessions.add(s)

    def session_closed(self, s: AmiSession) -> None:
        self._all_sessions.discard(s)
        if s in self._sessions:
            self._sessions.remove(s)
            self._want.clear()
        self.stats.sessions = len(self._sessions)

    def _session_changed(self) -> None:
        self._want.clear()

    def _wants(self, name: str) -> bool:
        w = self._want.get(name)
        if w is None:
            w = self._want[name] = any(s.accepts(name) for s in self._sessions)
        return w

    def _emit(self, name: str, body: str, *, timestamp: bool = True) -> None:
        """Send one event (``body`` = headers after Privilege/Timestamp) to its sessions."""
        prefix = self._prefix.get(name)
        if prefix is None:
            prefix = self._prefix[name] = f"Event: {name}\r\nPrivilege: {event_class(name)},all\r\n"
        sysname = f"SystemName: {self.system_name}\r\n" if self.system_name else ""
        ts = f"Timestamp: {time.time():.6f}\r\n" if timestamp else ""
        data = f"{prefix}{ts}{sysname}{body}\r\n".encode()
        self.stats.events_emitted += 1
        n = 0
        for s in self._sessions:
            if s.accepts(name):
                s.write(data)
                n += 1
        self.stats.events_sent += n

    def _originate_response(
        self,
        action_id: str | None,
        response: str,
        channel: str,
        reason: int,
        uniqueid: str,
        num: str,
        name: str,
        *,
        app: tuple[str, str] | None = None,
        dest: tuple[str, str] | None = None,
    ) -> None:
        if action_id is None or not self._wants("OriginateResponse"):
            return
        parts = [f"ActionID: {action_id}\r\n" if action_id else "", f"Response: {response}\r\n"]
        parts.append(f"Channel: {channel}\r\n")
        if dest is not None:
            parts.append(f"Context: {dest[0]}\r\nExten: {dest[1]}\r\n")
        elif app is not None:
            parts.append(f"Application: {app[0]}\r\nData: {app[1]}\r\n")
        parts.append(
            f"Reason: {reason}\r\nUniqueid: {uniqueid}\r\nCallerIDNum: {num}\r\nCallerIDName: {name}\r\n"
        )
        self._emit("OriginateResponse", "".join(parts))

    def _ev(self, name: str, ch: Chan, extra: str = "") -> None:
        if self._wants(name):
            self._emit(name, ch.block() + extra)

    def _newexten(self, ch: Chan) -> None:
        if self._wants("Newexten"):
            self._emit(
                "Newexten",
                f"{ch.block()}Extension: {ch.exten}\r\nApplication: {ch.app}\r\nAppData: {ch.appdata}\r\n",
            )

    def _varset(self, ch: Chan, var: str, value: str) -> None:
        ch.vars[var] = value
        if self._wants("VarSet"):
            self._emit("VarSet", f"{ch.block()}Variable: {var}\r\nValue: {value}\r\n")

    def _userevent(self, ch: Chan, name: str, headers: list[tuple[str, str]]) -> None:
        ch.app, ch.appdata = "UserEvent", ",".join([name, *(f"{k}: {v}" for k, v in headers)])
        self._newexten(ch)
        if self._wants("UserEvent"):
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
            self._emit("UserEvent", f"{ch.block()}UserEvent: {name}\r\n{extra}")

    def _newstate(self, ch: Chan, state: int) -> None:
        ch.state = state
        ch.touch()
        self._ev("Newstate", ch)

    # ================================================================ channels

    def _uid(self) -> str:
        n = self._uid_counter
        self._uid_counter += 1
        prefix = f"{self.system_name}-" if self.system_name else ""
        return f"{prefix}{int(time.time())}.{n}"

    def _suffix(self) -> str:
        n = self._chan_counter
        self._chan_counter += 1
        return f"{n:08x}"

    def _add(self, ch: Chan, call: Call) -> None:
        ch.call = call
        call.live += 1
        self._chans[ch.name] = ch
        self._ev("Newchannel", ch)

    def _local_pair(
        self,
        exten: str,
        context: str,
        call: Call,
        linkedid: str | None,
        roles: tuple[str, str],
        uid1: str = "",
        uid2: str = "",
    ) -> tuple[Chan, Chan]:
        base = f"Local/{exten}@{context}-{self._suffix()}"
        u1 = uid1 or self._uid()
        linked = linkedid or u1
        c1 = Chan(base + ";1", u1, linked, 0, context, exten, roles[0])
        c2 = Chan(base + ";2", uid2 or self._uid(), linked, 4, context, exten, roles[1])
        c1.peer, c2.peer = c2, c1
        self._add(c1, call)
        self._add(c2, call)
        return c1, c2

    def _set_cids(self, ch: Chan, num: str, name: str, co_num: str, co_name: str) -> None:
        ch.cid_num, ch.cid_name, ch.co_num, ch.co_name = num, name, co_num, co_name
        ch.touch()

    def _local_bridge(self, c1: Chan, c2: Chan) -> None:
        if self._wants("LocalBridge"):
            self._emit(
                "LocalBridge",
                f"{c1.pblock('LocalOne')}{c2.pblock('LocalTwo')}Context: {c1.context}\r\n"
                f"Exten: {c1.exten}\r\nLocalOptimization: Yes\r\n",
            )

    def _hangup(self, ch: Chan | None, cause: int) -> None:
        if ch is None or not ch.alive:
            return
        ch.alive = False
        if ch.bridge is not None:
            br = ch.bridge
            if ch in br.chans:
                br.chans.remove(ch)
            ch.bridge = None
        self._ev(
            "Hangup", ch, f"Cause: {cause}\r\nCause-txt: {CAUSE_TXT.get(cause, 'Unknown')}\r\n"
        )
        self._chans.pop(ch.name, None)
        call = ch.call
        if call is not None:
            call.live -= 1
            if call.live <= 0:
                self._finish(call)

    def _bridge_leave(self, ch: Chan | None) -> None:
        if ch is None or ch.bridge is None:
            return
        br = ch.bridge
        if ch in br.chans:
            br.chans.remove(ch)
        ch.bridge = None
        if self._wants("BridgeLeave"):
            self._emit("BridgeLeave", br.block() + ch.block())
        if not br.chans:
            self._bridges.pop(br.id, None)
            if self._wants("BridgeDestroy"):
                self._emit("BridgeDestroy", br.block())

    def _bridge_enter(self, br: Bridge, ch: Chan) -> None:
        br.chans.append(ch)
        ch.bridge = br
        if self._wants("BridgeEnter"):
            self._emit("BridgeEnter", br.block() + ch.block())

    def _finish(self, call: Call) -> None:
        if call.phase == "gone":
            return
        call.phase = "gone"
        self._cancel(call.customer_timer)
        self._cancel(call.wait_timer)
        tr = call.trace
        if tr.result is not None:
            return
        tr.ended = time.time()
        st = self.stats
        st.in_progress -= 1
        if tr.answered_at is not None:
            tr.result = "answered"
            st.answered += 1
        elif call.overflowed:
            tr.result = "overflowed"
            st.overflowed += 1
        elif tr.ended_by == "caller":
            tr.result = "abandoned"
            st.abandoned += 1
        else:
            tr.result = "failed"
            st.failed += 1

    def _new_call(self, kind: str, dnis: str, num: str, name: str) -> Call:
        tr = CallTrace(
            kind=kind,
            uniqueid="",
            linkedid="",
            dnis=dnis,
            caller_num=num,
            caller_name=name,
            arrived=time.time(),
        )
        self.stats.placed += 1
        self.stats.in_progress += 1
        self._processed_calls += 1
        return Call(tr)

    def _register(self, call: Call, ch: Chan) -> None:
        call.trace.uniqueid = ch.uniqueid
        call.trace.linkedid = ch.linkedid
        self.calls[ch.uniqueid] = call.trace
