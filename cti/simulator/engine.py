"""A fake Asterisk 22 speaking AMI on loopback, running the lab's ACD dialplan.

Theory of operation
-------------------
* One ``AsteriskSimulator`` = one Asterisk server: a TCP listener, AMI sessions
  (``session.AmiSession``), channels, bridges and the dialplan of
  ``ami-captures/asterisk-config/extensions.conf`` written as Python:

  ``acd-inbound`` Answer -> Set(ACD_DNIS) -> ``acd-hold`` UserEvent(ACDHold) -> Wait;
  ``acd-connect/<agent>`` Dial(${ACD_AGENT_DEVICE},${ACD_RING_TIMEOUT}) ->
  UserEvent(ACDDialResult) -> back to hold unless ANSWER;  ``acd-transfer/<x>`` and
  ``callback-out/<number>`` Dial and report; ``acd-overflow`` plays and hangs up.

* Time: every delay (answer, ring, ring timeout, talk, patience, hold limit) is an entry
  in ONE heap driven by one ``loop.call_at`` handle, never a task per channel.  Entries
  are cancelled by flagging them dead.

* Events are rendered once per event (channel header blocks are cached on the channel
  until it changes) and the same bytes are written to every session that accepts the
  event.  Events nobody would receive are not rendered at all.

* Ordering: an action's response is written before the events it causes.  Between
  channels the simulator uses the order seen in the captures, which real Asterisk does
  not guarantee (§6.13, §6.29; every § here is a section of the recordings' notes,
  tests/fixtures/ami/README.md); clients must not rely on it.

* Channel styles: ``Local/...`` devices and Originates make the lab's ``;1``/``;2``
  pairs (faithful to the captures for the router-class events); ``PJSIP/...`` makes one
  channel per party.  ``channel_style`` picks what ``place_call`` creates, and the
  devices used for transfers and callbacks.

* Lost-call bookkeeping: every placed call has a ``CallTrace`` whose ``result`` is set
  exactly once, when the last channel of the call has hung up.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cti.simulator.model import (
    LAB_CUSTOMER,
    LAB_PROFILES,
    CallTrace,
    ChannelInfo,
    DeviceProfile,
    SimStats,
    SimUser,
    lab_users,
    sample,
)
from cti.simulator.session import AmiSession, event_class
from cti.types import Dialplan
from cti.wire import Message

log = logging.getLogger(__name__)

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 21: "Call Rejected"}
AMI_VERSION = "11.0.0"
ASTERISK_VERSION = "22.5.2"
UNKNOWN = "<unknown>"


class _Timer:
    __slots__ = ("args", "fn", "when")

    def __init__(self, when: float, fn: Callable[..., None] | None, args: tuple[Any, ...]) -> None:
        self.when = when
        self.fn = fn
        self.args = args


class Chan:
    """One live channel.  ``block()`` caches the standard header block until ``touch()``."""

    __slots__ = (
        "_blk",
        "_dblk",
        "alive",
        "app",
        "appdata",
        "bridge",
        "call",
        "cid_name",
        "cid_num",
        "co_name",
        "co_num",
        "context",
        "created",
        "exten",
        "linkedid",
        "name",
        "peer",
        "priority",
        "role",
        "state",
        "uniqueid",
        "vars",
    )

    def __init__(
        self,
        name: str,
        uniqueid: str,
        linkedid: str,
        state: int,
        context: str,
        exten: str,
        role: str,
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.state = state
        self.cid_num = self.cid_name = self.co_num = self.co_name = UNKNOWN
        self.context = context
        self.exten = exten
        self.priority = 1
        self.app = ""
        self.appdata = ""
        self.created = time.monotonic()
        self.vars: dict[str, str] = {}
        self.bridge: Bridge | None = None
        self.call: Call | None = None
        self.role = role
        self.peer: Chan | None = None
        self.alive = True
        self._blk: str | None = None
        self._dblk: str | None = None

    def touch(self) -> None:
        self._blk = self._dblk = None

    def at(self, context: str, exten: str, priority: int, app: str, appdata: str) -> None:
        self.context, self.exten, self.priority, self.app, self.appdata = (
            context,
            exten,
            priority,
            app,
            appdata,
        )
        self._blk = self._dblk = None

    def pblock(self, p: str) -> str:
        return (
            f"{p}Channel: {self.name}\r\n{p}ChannelState: {self.state}\r\n"
            f"{p}ChannelStateDesc: {STATE_DESC.get(self.state, 'Unknown')}\r\n"
            f"{p}CallerIDNum: {self.cid_num}\r\n{p}CallerIDName: {self.cid_name}\r\n"
            f"{p}ConnectedLineNum: {self.co_num}\r\n{p}ConnectedLineName: {self.co_name}\r\n"
            f"{p}Language: en\r\n{p}AccountCode: \r\n{p}Context: {self.context}\r\n"
            f"{p}Exten: {self.exten}\r\n{p}Priority: {self.priority}\r\n"
            f"{p}Uniqueid: {self.uniqueid}\r\n{p}Linkedid: {self.linkedid}\r\n"
        )

    def block(self) -> str:
        blk = self._blk
        if blk is None:
            blk = self._blk = self.pblock("")
        return blk

    def dblock(self) -> str:
        blk = self._dblk
        if blk is None:
            blk = self._dblk = self.pblock("Dest")
        return blk

    def items(self) -> list[tuple[str, str]]:
        return [
            ("Channel", self.name),
            ("ChannelState", str(self.state)),
            ("ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            ("CallerIDNum", self.cid_num),
            ("CallerIDName", self.cid_name),
            ("ConnectedLineNum", self.co_num),
            ("ConnectedLineName", self.co_name),
            ("Language", "en"),
            ("AccountCode", ""),
            ("Context", self.context),
            ("Exten", self.exten),
            ("Priority", str(self.priority)),
            ("Uniqueid", self.uniqueid),
            ("Linkedid", self.linkedid),
        ]


class Bridge:
    __slots__ = ("chans", "id")

    def __init__(self) -> None:
        self.id = str(uuid.uuid4())
        self.chans: list[Chan] = []

    def block(self) -> str:
        return (
            f"BridgeUniqueid: {self.id}\r\nBridgeType: basic\r\nBridgeTechnology: simple_bridge\r\n"
            f"BridgeCreator: <unknown>\r\nBridgeName: <unknown>\r\n"
            f"BridgeNumChannels: {len(self.chans)}\r\nBridgeVideoSourceMode: none\r\n"
        )

    def items(self) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", self.id),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(self.chans))),
            ("BridgeVideoSourceMode", "none"),
        ]


class Dial:
    """One Dial() run by ``owner``: its callee legs, timers and phase."""

    __slots__ = (
        "agent",
        "answer_timer",
        "call",
        "device",
        "exten",
        "kind",
        "offer_id",
        "owner",
        "phase",
        "phone",
        "profile",
        "ring_timer",
        "talk_timer",
    )

    def __init__(self, call: Call, owner: Chan, kind: str, exten: str, device: str) -> None:
        self.call = call
        self.owner = owner
        self.kind = kind  # connect | transfer | callback | originate
        self.exten = exten
        self.device = device
        # [acd-connect] copies ACD_OFFER_ID before Dial and echoes the copy (not the
        # variable, which the next offer's Setvar may already have changed).
        self.offer_id = ""
        self.agent: Chan | None = None  # the leg bridged with the owner (PJSIP or Local ;1)
        self.phone: Chan | None = None  # Local ;2 running the phone simulation
        self.profile = DeviceProfile()
        self.phase = "ringing"  # ringing | bridged | done
        self.ring_timer: _Timer | None = None
        self.answer_timer: _Timer | None = None
        self.talk_timer: _Timer | None = None


class Call:
    """The channels of one call and where its dialplan is."""

    __slots__ = (
        "action_id",
        "caller",
        "customer",
        "customer_timer",
        "dial",
        "live",
        "originate",
        "overflowed",
        "phase",
        "trace",
        "wait_timer",
    )

    def __init__(self, trace: CallTrace) -> None:
        self.trace = trace
        self.caller: Chan | None = None  # the channel running the ACD dialplan
        self.customer: Chan | None = None  # Local ;1 peer of the caller (the far party)
        self.dial: Dial | None = None
        self.phase = "new"  # new | hold | dial | bridged | app | gone
        self.live = 0
        self.customer_timer: _Timer | None = None  # patience / originated phone's talk
        self.wait_timer: _Timer | None = None  # hold limit, overflow, Wait() app
        self.overflowed = False
        self.action_id = ""
        self.originate: dict[str, str] | None = None


def _parse_callerid(value: str) -> tuple[str, str]:
    """``Customer <13800138000>`` -> ("13800138000", "Customer")."""
    value = value.strip()
    if "<" in value and value.endswith(">"):
        name, _, num = value[:-1].partition("<")
        return num.strip() or UNKNOWN, name.strip().strip('"') or UNKNOWN
    return (value or UNKNOWN), UNKNOWN


class AsteriskSimulator:
    """A fake Asterisk AMI server; see the module docstring for the model."""

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
            lambda: AmiSession(self), self.host, self.port, reuse_address=True
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

    # ================================================================ inbound calls

    def place_call(
        self, *, dnis: str, caller_num: str, caller_name: str = "", patience_s: float | None = None
    ) -> str:
        """A customer calls ``dnis``; returns the Uniqueid of the channel the router drives
        (the trunk channel, or ``;2`` in the local style).  ``patience_s`` counts from
        arrival and applies while waiting, ringing and talking (the lab's Wait(patience));
        ``None`` means the caller never gives up."""
        if self._loop is None:
            raise RuntimeError("simulator not started")
        if self.channel_style == "local":
            call = self._inbound_local(
                dnis, caller_num or UNKNOWN, caller_name or UNKNOWN, patience_s
            )
        else:
            call = self._inbound_pjsip(
                dnis, caller_num or UNKNOWN, caller_name or UNKNOWN, patience_s
            )
        assert call.caller is not None
        return call.caller.uniqueid

    def _inbound_pjsip(self, dnis: str, num: str, name: str, patience: float | None) -> Call:
        call = self._new_call("inbound", dnis, num, name)
        uid = self._uid()
        ch = Chan(
            f"PJSIP/trunk-{self._suffix()}", uid, uid, 4, self.inbound_context, dnis, "caller"
        )
        ch.cid_num, ch.cid_name = num, name
        call.caller = ch
        self._register(call, ch)
        self._add(ch, call)
        if self.arrive_event:
            self._userevent(ch, self.dp.arrive_user_event, [("DNIS", dnis)])
        ch.app = "Answer"
        self._newexten(ch)
        self._newstate(ch, 6)
        if patience is not None:
            call.customer_timer = self._at(patience, self._customer_gone, call)
        delay = self.answer_delay_s + self.greeting_s
        if delay > 0:
            call.wait_timer = self._at(delay, self._greeting_done, call)
        else:
            self._inbound_dialplan(call)
        return call

    def _greeting_done(self, call: Call) -> None:
        if self.greeting_s > 0 and call.caller is not None and call.caller.alive:
            call.caller.app, call.caller.appdata = "Playback", "greeting"
        self._inbound_dialplan(call)

    def _inbound_local(
        self,
        dnis: str,
        num: str,
        name: str,
        patience: float | None,
        action_id: str | None = None,
        app: tuple[str, str] = ("Wait", ""),
        uids: tuple[str, str] = ("", ""),
        variables: Sequence[tuple[str, str]] = (),
    ) -> Call:
        call = self._new_call("inbound", dnis, num, name)
        c1, c2 = self._local_pair(
            dnis, self.inbound_context, call, None, ("customer", "caller"), uids[0], uids[1]
        )
        call.caller, call.customer = c2, c1
        self._register(call, c2)
        c1.app, c1.appdata = "AppDial2", "(Outgoing Line)"
        self._newexten(c1)
        for k, v in variables:
            c1.vars[k] = v
        self._set_cids(c1, num, name, num, name)
        self._set_cids(c2, num, name, num, name)
        self._local_bridge(c1, c2)
        if self._wants("DialBegin"):
            self._emit("DialBegin", f"{c1.dblock()}DialString: {dnis}@{self.inbound_context}\r\n")
        if self.arrive_event:
            self._userevent(c2, self.dp.arrive_user_event, [("DNIS", dnis)])
        c2.app = "Answer"
        self._newexten(c2)
        self._newstate(c2, 6)
        self._newstate(c1, 6)
        if self._wants("DialEnd"):
            self._emit("DialEnd", f"{c1.dblock()}DialStatus: ANSWER\r\n")
        c1.app, c1.appdata = app[0], app[1]
        c1.touch()
        if action_id is not None:
            self._originate_response(
                action_id, "Success", c1.name, 4, c1.uniqueid, num, name, app=app
            )
        if patience is not None:
            call.customer_timer = self._at(patience, self._customer_gone, call)
        call.wait_timer = self._at(self.answer_delay_s + self.greeting_s, self._greeting_done, call)
        return call

    def _inbound_dialplan(self, call: Call) -> None:
        ch = call.caller
        if ch is None or not ch.alive or call.phase != "new":
            return
        dnis = ch.exten
        ch.at(self.inbound_context, dnis, 2, "Set", f"ACD_DNIS={dnis}")
        self._newexten(ch)
        self._varset(ch, "ACD_DNIS", dnis)
        ch.at(
            self.inbound_context, dnis, 3, "Goto", f"{self.dp.hold_context},{self.dp.hold_exten},1"
        )
        self._newexten(ch)
        self._enter_hold(call)

    def _enter_hold(self, call: Call) -> None:
        ch = call.caller
        assert ch is not None
        dp = self.dp
        dnis = ch.vars.get("ACD_DNIS", "")
        ch.at(dp.hold_context, dp.hold_exten, 1, "UserEvent", "")
        call.trace.holds.append(time.time())
        self._userevent(ch, dp.hold_user_event, [("DNIS", dnis)])
        ch.at(dp.hold_context, dp.hold_exten, 2, "Wait", str(int(self.hold_limit_s)))
        self._newexten(ch)
        call.phase = "hold"
        call.dial = None
        self._cancel(call.wait_timer)
        call.wait_timer = self._at(self.hold_limit_s, self._hold_expired, call)

    def _hold_expired(self, call: Call) -> None:
        ch = call.caller
        if ch is None or not ch.alive:
            return
        ch.at(self.dp.hold_context, self.dp.hold_exten, 3, "Hangup", "")
        self._newexten(ch)
        self._dialplan_hangup(call)

    def _dialplan_hangup(self, call: Call) -> None:
        """``Hangup()`` in the caller's dialplan: the caller leg, then its Local peer."""
        call.trace.ended_by = call.trace.ended_by or "dialplan"
        if self._wants("SoftHangupRequest") and call.caller is not None:
            self._emit("SoftHangupRequest", call.caller.block() + "Cause: 16\r\n")
        self._hangup(call.caller, 16)
        self._hangup(call.customer, 16)

    # ================================================================ routing actions

    def _redirect(self, ch: Chan, context: str, exten: str, priority: int) -> None:
        call = ch.call
        if call is None:
            return
        if ch is not call.caller:
            # Redirecting an agent leg (§6.22): the agent leaves and the caller's
            # Dial ends as answered.  Simplified: the leg is hung up.
            d = call.dial
            if d is not None and ch in (d.agent, d.phone):
                self._far_end_gone(d)
            elif ch is call.customer:
                self._customer_gone(call)
            return
        self._leave_current(call, context, exten, priority)
        self._run_location(call, ch, context, exten)

    def _leave_current(self, call: Call, context: str, exten: str, priority: int) -> None:
        """Stop what the caller is doing (hold, ringing, talking) for a new location."""
        ch = call.caller
        assert ch is not None
        self._cancel(call.wait_timer)
        call.wait_timer = None
        d = call.dial
        ch.at(context, exten, priority, ch.app, ch.appdata)
        if d is None:
            return
        call.dial = None
        if d.phase == "ringing":
            # §6.19: the old Dial ends CANCEL with the caller already at its new place.
            d.phase = "done"
            self._cancel_dial_timers(d)
            d.call.trace.dial_results.append("CANCEL")
            if d.agent is not None and self._wants("DialEnd"):
                self._emit("DialEnd", f"{ch.block()}{d.agent.dblock()}DialStatus: CANCEL\r\n")
            self._hangup(d.agent, 16)
            self._hangup(d.phone, 16)
        elif d.phase == "bridged":
            d.phase = "done"
            self._cancel_dial_timers(d)
            self._bridge_leave(ch)
            self._bridge_leave(d.agent)
            self._hangup(d.agent, 16)
            self._hangup(d.phone, 16)

    def _cancel_dial_timers(self, d: Dial) -> None:
        self._cancel(d.ring_timer)
        self._cancel(d.answer_timer)
        self._cancel(d.talk_timer)

    def _run_location(self, call: Call, ch: Chan, context: str, exten: str) -> None:
        dp = self.dp
        if context == dp.hold_context:
            self._enter_hold(call)
        elif context == dp.connect_context:
            self._start_dial(
                call,
                ch,
                "connect",
                exten,
                ch.vars.get(dp.device_var, ""),
                ch.vars.get(dp.ring_timeout_var, ""),
            )
        elif context == self.transfer_context:
            self._start_dial(call, ch, "transfer", exten, self._transfer_device(exten), "20")
        elif context == dp.callback_context:
            self._start_dial(call, ch, "callback", exten, self._customer_device(exten), "30")
        elif context == self.overflow_context:
            ch.at(context, exten, 1, "Playback", "acd-overflow")
            self._newexten(ch)
            call.phase = "app"
            call.overflowed = True
            call.wait_timer = self._at(self.overflow_play_s, self._overflow_done, call)
        elif context == self.inbound_context:
            ch.at(context, exten, 1, "Answer", "")
            call.phase = "new"
            self._inbound_dialplan(call)
        else:
            # No such extension: the PBX hangs the channel up.
            log.info(
                "sim %s: %s redirected to unknown %s,%s; hanging up",
                self.name,
                ch.name,
                context,
                exten,
            )
            self._dialplan_hangup(call)

    def _overflow_done(self, call: Call) -> None:
        ch = call.caller
        if ch is None or not ch.alive:
            return
        ch.at(ch.context, ch.exten, 2, "Hangup", "")
        self._newexten(ch)
        self._dialplan_hangup(call)

    def _transfer_device(self, exten: str) -> str:
        return (
            f"Local/{exten}@{self.agents_context}"
            if self.channel_style == "local"
            else f"PJSIP/{exten}"
        )

    def _customer_device(self, number: str) -> str:
        return (
            f"Local/{number}@{self.customers_context}"
            if self.channel_style == "local"
            else f"PJSIP/{number}@trunk"
        )

    def _profile(self, device: str, ext: str, customer: bool) -> DeviceProfile | None:
        p = self._devices.get(device) or self._devices.get(ext)
        if p is not None:
            return p
        if customer:
            return self.customer_profile
        return self.default_profile if self.unknown_devices == "default" else None

    def _parse_device(self, device: str) -> tuple[str, str, str] | None:
        """-> (tech, ext, context-or-host) for ``Local/x@ctx``, ``PJSIP/x``, ``PJSIP/x@trunk``."""
        tech, _, rest = device.partition("/")
        ext, _, where = rest.partition("@")
        if not ext:
            return None
        if tech == "Local" and where in (self.agents_context, self.customers_context):
            return "Local", ext, where
        if tech == "PJSIP" and "/" not in ext:
            return "PJSIP", ext, where
        return None

    # ---- Dial() ----------------------------------------------------------------------

    def _start_dial(
        self, call: Call, owner: Chan, kind: str, exten: str, device: str, timeout: str
    ) -> None:
        owner.at(owner.context, exten, 1, "Dial", f"{device},{timeout},g")
        self._newexten(owner)
        if not device:
            # Dial() without an argument fails and the channel is hung up.
            log.warning("sim %s: Dial without a device on %s", self.name, owner.name)
            self._dialplan_hangup(call)
            return
        self._varset(owner, "DIALSTATUS", "")
        try:
            timeout_s = float(timeout) if timeout else 0.0
        except ValueError:
            timeout_s = 0.0
        d = Dial(call, owner, kind, exten, device)
        if kind == "connect":
            d.offer_id = owner.vars.get(self.dp.offer_var, "")
        call.dial = d
        call.phase = "dial"
        if kind == "connect":
            call.trace.offered.append(device)
        parsed = self._parse_device(device)
        profile = None
        if parsed is not None:
            profile = self._profile(
                device, parsed[1], parsed[2] == self.customers_context or kind == "callback"
            )
        if parsed is None or profile is None or profile.unavailable:
            self._dial_fail(d, "CHANUNAVAIL")
            return
        d.profile = profile
        tech, ext, where = parsed
        name = owner.cid_name
        if tech == "Local":
            role = (
                ("callee", "callee-phone")
                if where == self.customers_context
                else ("agent", "phone")
            )
            a1, a2 = self._local_pair(ext, where, call, owner.linkedid, role)
            d.agent, d.phone = a1, a2
            a1.app, a1.appdata = "AppDial", "(Outgoing Line)"
            self._newexten(a1)
            self._set_cids(a1, ext, name, owner.cid_num, name)
            self._set_cids(a2, owner.cid_num, name, ext, name)
            self._local_bridge(a1, a2)
            dial_string = f"{ext}@{where}"
        else:
            suffix = self._suffix()
            chan_name = f"PJSIP/trunk-{suffix}" if where else f"PJSIP/{ext}-{suffix}"
            role_name = "callee" if kind == "callback" else "agent"
            a = Chan(chan_name, self._uid(), owner.linkedid, 0, self.agents_context, ext, role_name)
            a.cid_num, a.cid_name, a.co_num, a.co_name = ext, name, owner.cid_num, name
            a.app, a.appdata = "AppDial", "(Outgoing Line)"
            self._add(a, call)
            d.agent = a
            dial_string = f"{ext}@{where}" if where else ext
        agent = d.agent
        assert agent is not None
        if self._wants("DialBegin"):
            self._emit("DialBegin", f"{owner.block()}{agent.dblock()}DialString: {dial_string}\r\n")
        if profile.busy:
            if d.phone is not None:
                d.phone.app = "Busy"
                self._newexten(d.phone)
                self._newstate(d.phone, 7)
            self._dial_fail(d, "BUSY")
            return
        self._newstate(agent, 5)
        if d.phone is not None:
            d.phone.app, d.phone.appdata = "Ringing", ""
            self._newexten(d.phone)
            d.phone.at(d.phone.context, d.phone.exten, 2, "Wait", "")
        rng = self._rng
        ring = sample(profile.ring_s, rng)
        answers = rng.random() < profile.answer_prob
        if timeout_s > 0:
            d.ring_timer = self._at(timeout_s, self._dial_fail, d, "NOANSWER")
        if answers and (timeout_s <= 0 or ring < timeout_s):
            d.answer_timer = self._at(ring, self._dial_answer, d)

    def _dial_fail(self, d: Dial, status: str) -> None:
        """The Dial ends without an answer (NOANSWER, BUSY, CHANUNAVAIL)."""
        if d.phase != "ringing":
            return
        d.phase = "done"
        self._cancel_dial_timers(d)
        owner = d.owner
        if d.kind == "connect":
            d.call.trace.dial_results.append(status)
        if d.agent is not None and self._wants("DialEnd"):
            self._emit("DialEnd", f"{owner.block()}{d.agent.dblock()}DialStatus: {status}\r\n")
        self._varset(owner, "DIALSTATUS", status)
        phone_cause = 17 if status == "BUSY" else 0
        if d.phone is not None:
            # Local pair: ;1 goes first, the result, then ;2 (rona.ami, busy.ami).
            self._hangup(d.agent, 0)
            self._dial_result(d, status)
            self._hangup(d.phone, phone_cause)
        else:
            self._hangup(d.agent, phone_cause)
            self._dial_result(d, status)
        self._dial_continue(d, status)

    def _dial_answer(self, d: Dial) -> None:
        if d.phase != "ringing":
            return
        self._cancel(d.ring_timer)
        owner, agent, phone = d.owner, d.agent, d.phone
        assert agent is not None
        call = d.call
        if phone is not None:
            phone.at(phone.context, phone.exten, 3, "Answer", "")
            self._newexten(phone)
            self._newstate(phone, 6)
        self._newstate(agent, 6)
        agent.exten = ""  # §6.30: after the answer the leg's snapshot has an empty Exten
        agent.touch()
        self._varset(owner, "DIALSTATUS", "ANSWER")
        if self._wants("DialEnd"):
            self._emit("DialEnd", f"{owner.block()}{agent.dblock()}DialStatus: ANSWER\r\n")
        br = Bridge()
        self._bridges[br.id] = br
        if self._wants("BridgeCreate"):
            self._emit("BridgeCreate", br.block())
        self._bridge_enter(br, agent)
        self._bridge_enter(br, owner)
        d.phase = "bridged"
        call.phase = "bridged"
        tr = call.trace
        if tr.answered_at is None and d.kind in ("connect", "callback"):
            tr.answered_at = time.time()
            tr.answered_by = d.device if d.kind == "connect" else (tr.answered_by or d.device)
        if d.kind == "connect":
            tr.dial_results.append("ANSWER")
        rng = self._rng
        talk = sample(d.profile.talk_s, rng)
        far_hangs = rng.random() < d.profile.agent_hangs_up_prob
        if phone is not None:
            phone.at(phone.context, phone.exten, 4, "Wait", str(talk))
            self._newexten(phone)
        if far_hangs:
            d.talk_timer = self._at(talk, self._far_end_gone, d)
        else:
            d.talk_timer = self._at(talk, self._customer_gone, call)

    def _far_end_gone(self, d: Dial) -> None:
        """The dialled party hangs up (agent after talk time, AMI Hangup of its leg)."""
        if d.phase == "ringing":
            self._dial_fail(d, "NOANSWER")
            return
        if d.phase != "bridged":
            return
        d.phase = "done"
        self._cancel_dial_timers(d)
        owner, agent, phone = d.owner, d.agent, d.phone
        call = d.call
        if call.trace.ended_by is None and d.kind == "connect":
            call.trace.ended_by = "agent"
        if phone is not None:
            phone.at(phone.context, phone.exten, 5, "Hangup", "")
            self._newexten(phone)
            self._hangup(phone, 16)
        self._bridge_leave(agent)
        self._hangup(agent, 16)
        self._bridge_leave(owner)
        self._dial_result(d, "ANSWER")
        self._dial_continue(d, "ANSWER")

    def _dial_result(self, d: Dial, status: str) -> None:
        owner = d.owner
        owner.at(owner.context, owner.exten, 2, "UserEvent", "")
        if d.kind == "connect":
            headers = [("AgentId", d.exten), ("DialStatus", status)]
            if d.offer_id:
                # deploy/asterisk echoes the offer id; the lab captures (tests/fixtures/ami)
                # predate it and were made without one, so it is left out when none was set.
                headers.append(("OfferId", d.offer_id))
            self._userevent(owner, self.dp.dial_result_user_event, headers)
        elif d.kind == "transfer":
            self._userevent(
                owner, "ACDTransferResult", [("Target", d.exten), ("DialStatus", status)]
            )
        elif d.kind == "callback":
            self._userevent(
                owner, "ACDCallbackResult", [("Number", d.exten), ("DialStatus", status)]
            )

    def _dial_continue(self, d: Dial, status: str) -> None:
        call = d.call
        if call.dial is d:
            call.dial = None
        owner = d.owner
        if not owner.alive:
            return
        if d.kind == "connect":
            owner.at(
                owner.context, owner.exten, 3, "GotoIf", f"{int(status != 'ANSWER')}?acd-hold,s,1"
            )
            self._newexten(owner)
            if status != "ANSWER":
                self._enter_hold(call)
                return
            owner.at(owner.context, owner.exten, 4, "Hangup", "")
        else:
            owner.at(owner.context, owner.exten, 3, "Hangup", "")
        self._newexten(owner)
        self._dialplan_hangup(call)

    # ---- the far party of the caller goes away --------------------------------------

    def _customer_gone(self, call: Call, by: str = "caller", cause: int | None = None) -> None:
        """The caller side hangs up: patience ran out, caller ends the talk, or AMI
        Hangup of the caller channel (``by="ami"``, ``cause`` from the action)."""
        if call.phase == "gone":
            return
        tr = call.trace
        if tr.ended_by is None:
            tr.ended_by = by
        self._cancel(call.customer_timer)
        self._cancel(call.wait_timer)
        caller, customer = call.caller, call.customer
        local = customer is not None
        # Local ;1 ends its Originate application: Cause 0 (§6.24); a trunk BYE: 16.
        cust_cause = 0 if local else 16
        if by == "ami":
            # The AMI hangs up the ;2/trunk leg itself; its ;1 peer follows normally.
            first_cause = cause if cause is not None else 16
        d = call.dial
        call.dial = None
        if d is not None and d.phase == "ringing":
            d.phase = "done"
            self._cancel_dial_timers(d)
            if d.kind == "connect":
                tr.dial_results.append("CANCEL")
            if by != "ami":
                self._hangup(customer, cust_cause)
            if d.agent is not None and caller is not None and self._wants("DialEnd"):
                self._emit("DialEnd", f"{caller.block()}{d.agent.dblock()}DialStatus: CANCEL\r\n")
            self._hangup(d.phone, 16)
            self._hangup(d.agent, 16)
            if by == "ami":
                self._hangup(caller, first_cause)
                self._hangup(customer, 16)
            else:
                self._hangup(caller, cust_cause)
        elif d is not None and d.phase == "bridged":
            d.phase = "done"
            self._cancel_dial_timers(d)
            if by == "ami":
                self._bridge_leave(caller)
                self._hangup(caller, first_cause)
                self._hangup(customer, 16)
            else:
                self._hangup(customer, cust_cause)
                self._bridge_leave(caller)
            self._bridge_leave(d.agent)
            self._hangup(d.agent, 16)
            self._hangup(d.phone, 16)
            self._hangup(caller, 16)
        else:
            if by == "ami":
                self._hangup(caller, first_cause)
                self._hangup(customer, 16)
            else:
                self._hangup(customer, cust_cause)
                self._hangup(caller, cust_cause)

    # ================================================================ originate

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

    def originate(self, msg: Message, done: Callable[[bool], None] | None = None) -> str | None:
        """Run an Originate action.  Returns an error text when it cannot start at all;
        ``done(success)`` is called when OriginateResponse is sent (for sync Originate)."""
        channel = msg.get("Channel")
        action_id = msg.get("ActionID")
        app = (msg.get("Application"), msg.get("Data"))
        dest = (
            (msg.get("Context"), msg.get("Exten"))
            if msg.get("Context") or msg.get("Exten")
            else None
        )
        num, name = _parse_callerid(msg.get("CallerID"))
        try:
            timeout_s = int(msg.get("Timeout") or "30000") / 1000.0
        except ValueError:
            return "Invalid timeout"
        variables: list[tuple[str, str]] = []
        for raw in msg.get_all("Variable"):
            for item in raw.split(","):
                k, sep, v = item.partition("=")
                if sep and k.strip():
                    variables.append((k.strip(), v))
        uids = (msg.get("ChannelId"), msg.get("OtherChannelId"))
        # A synchronous Originate is answered by its response, not by OriginateResponse.
        event_id: str | None = action_id if done is None else None
        done = done or (lambda ok: None)
        tech, _, rest = channel.partition("/")
        exten, _, context = rest.partition("@")
        if tech == "Local" and exten and context == self.inbound_context and dest is None:
            patience: float | None
            try:
                patience = float(app[1]) if app[0].lower() == "wait" and app[1] else None
            except ValueError:
                patience = None
            call = self._inbound_local(
                exten, num, name, patience, event_id, (app[0], app[1]), uids, variables
            )
            call.action_id = action_id
            done(True)
            return None
        device_ok = (
            tech == "Local" and exten and context in (self.agents_context, self.customers_context)
        ) or (tech == "PJSIP" and exten)
        if device_ok:
            self._originate_device(
                channel, event_id, app, dest, num, name, timeout_s, uids, variables, done
            )
            return None
        self._originate_fail(channel, event_id, app, dest, tech, exten, context, done)
        return None

    def _originate_fail(
        self,
        channel: str,
        action_id: str | None,
        app: tuple[str, str],
        dest: tuple[str, str] | None,
        tech: str,
        exten: str,
        context: str,
        done: Callable[[bool], None],
    ) -> None:
        # errors.ami: a Local pair into a context that does not exist is created and
        # hung up at once; the OriginateResponse names the dial string, Reason 0.
        call = self._new_call("originate", exten, UNKNOWN, UNKNOWN)
        call.trace.ended_by = "dialplan"
        done(False)
        if tech == "Local" and exten and context:
            c1, c2 = self._local_pair(exten, context, call, None, ("agent", "phone"))
            self._register(call, c1)
            c1.app, c1.appdata = "AppDial2", "(Outgoing Line)"
            self._newexten(c1)
            self._hangup(c2, 0)
            self._originate_response(
                action_id, "Failure", channel, 0, UNKNOWN, UNKNOWN, UNKNOWN, app=app, dest=dest
            )
            self._hangup(c1, 0)
        else:
            self._originate_response(
                action_id, "Failure", channel, 0, UNKNOWN, UNKNOWN, UNKNOWN, app=app, dest=dest
            )
            call.trace.result = "failed"
            call.trace.ended = time.time()
            self.stats.failed += 1
            self.stats.in_progress -= 1

    def _originate_device(
        self,
        channel: str,
        action_id: str | None,
        app: tuple[str, str],
        dest: tuple[str, str] | None,
        num: str,
        name: str,
        timeout_s: float,
        uids: tuple[str, str],
        variables: Sequence[tuple[str, str]],
        done: Callable[[bool], None],
    ) -> None:
        """Originate to a phone (callback): ring it, on answer run Context/Exten or the app."""
        parsed = self._parse_device(channel)
        tech, ext, where = parsed if parsed is not None else ("PJSIP", channel, "")
        call = self._new_call("originate", dest[1] if dest else app[0], num, name)
        call.action_id = action_id or ""
        call.originate = {"channel": channel}
        profile = self._profile(channel, ext, where == self.customers_context)
        if profile is None or profile.unavailable:
            call.trace.ended_by = "dialplan"
            self._originate_response(
                action_id, "Failure", channel, 0, UNKNOWN, num, name, app=app, dest=dest
            )
            call.trace.result, call.trace.ended = "failed", time.time()
            self.stats.failed += 1
            self.stats.in_progress -= 1
            done(False)
            return
        if tech == "Local":
            a1, a2 = self._local_pair(ext, where, call, None, ("agent", "phone"), uids[0], uids[1])
            call.caller, call.customer = a1, a2
            a1.app, a1.appdata = "AppDial2", "(Outgoing Line)"
            self._newexten(a1)
            cid_num = num if num != UNKNOWN else ext
            self._set_cids(a1, ext, name, cid_num, name)
            self._set_cids(a2, cid_num, name, ext, name)
            self._local_bridge(a1, a2)
            dial_string = f"{ext}@{where}"
        else:
            uid = uids[0] or self._uid()
            a1 = Chan(
                f"PJSIP/{ext}-{self._suffix()}", uid, uid, 0, self.agents_context, ext, "agent"
            )
            a1.cid_num, a1.cid_name, a1.co_num, a1.co_name = ext, name, num, name
            call.caller = a1
            self._add(a1, call)
            a2 = None
            dial_string = ext
        self._register(call, a1)
        for k, v in variables:
            a1.vars[k] = v
        d = Dial(call, a1, "originate", ext, channel)
        d.agent, d.phone, d.profile = a1, a2, profile
        call.dial = d
        call.phase = "dial"
        call.trace.offered.append(channel)
        if self._wants("DialBegin"):
            self._emit("DialBegin", f"{a1.dblock()}DialString: {dial_string}\r\n")
        meta = (channel, action_id, app, dest, num, name, done)
        if profile.busy:
            if a2 is not None:
                self._newstate(a2, 7)
            self._originate_failed(d, "BUSY", 5, meta)
            return
        self._newstate(a1, 5)
        rng = self._rng
        ring = sample(profile.ring_s, rng)
        answers = rng.random() < profile.answer_prob
        d.ring_timer = self._at(timeout_s, self._originate_failed, d, "NOANSWER", 3, meta)
        if answers and ring < timeout_s:
            d.answer_timer = self._at(ring, self._originate_answered, d, meta)

    def _originate_failed(self, d: Dial, status: str, reason: int, meta: tuple[Any, ...]) -> None:
        if d.phase != "ringing":
            return
        d.phase = "done"
        self._cancel_dial_timers(d)
        channel, action_id, app, dest, num, name, done = meta
        call = d.call
        call.trace.dial_results.append(status)
        call.trace.ended_by = "dialplan"
        if self._wants("DialEnd"):
            assert d.agent is not None
            self._emit("DialEnd", f"{d.agent.dblock()}DialStatus: {status}\r\n")
        done(False)
        self._hangup(d.agent, 0)
        self._hangup(d.phone, 17 if status == "BUSY" else 0)
        self._originate_response(
            action_id, "Failure", channel, reason, UNKNOWN, num, name, app=app, dest=dest
        )

    def _originate_answered(self, d: Dial, meta: tuple[Any, ...]) -> None:
        if d.phase != "ringing":
            return
        self._cancel(d.ring_timer)
        d.phase = "done"
        channel, action_id, app, dest, _num, _name, done = meta
        a1, a2 = d.agent, d.phone
        assert a1 is not None
        call = d.call
        call.dial = None
        if a2 is not None:
            a2.at(a2.context, a2.exten, 3, "Answer", "")
            self._newexten(a2)
            self._newstate(a2, 6)
        self._newstate(a1, 6)
        call.trace.dial_results.append("ANSWER")
        call.trace.answered_by = channel
        if self._wants("DialEnd"):
            self._emit("DialEnd", f"{a1.dblock()}DialStatus: ANSWER\r\n")
        self._originate_response(
            action_id,
            "Success",
            a1.name,
            4,
            a1.uniqueid,
            a1.cid_num,
            a1.cid_name,
            app=app,
            dest=dest,
        )
        done(True)
        # The phone's own talk time ends the call from its side (the lab's Wait(talk)).
        talk = sample(d.profile.talk_s, self._rng)
        if a2 is not None:
            a2.at(a2.context, a2.exten, 4, "Wait", str(talk))
            self._newexten(a2)
        call.customer_timer = self._at(talk, self._customer_gone, call, "agent")
        if dest is not None:
            a1.at(dest[0], dest[1], 1, "", "")
            a1.exten = dest[1]
            if call.trace.answered_at is None and dest[0] != self.dp.callback_context:
                call.trace.answered_at = time.time()
            self._run_location(call, a1, dest[0], dest[1])
        else:
            call.trace.answered_at = time.time()
            a1.app, a1.appdata = app
            a1.touch()
            call.phase = "app"
            wait = 0.0
            if app[0].lower() == "wait":
                try:
                    wait = float(app[1] or 0)
                except ValueError:
                    wait = 0.0
            call.wait_timer = self._at(wait, self._dialplan_hangup, call)

    # ================================================================ traffic

    async def run_traffic(
        self,
        *,
        rate_per_s: float,
        duration_s: float | None,
        dnis: Sequence[str],
        callers: Callable[[random.Random], tuple[str, str]],
        patience: Callable[[random.Random], float] | None,
    ) -> None:
        """Poisson arrivals at ``rate_per_s`` for ``duration_s`` (forever if None)."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        if not dnis:
            raise ValueError("dnis must not be empty")
        loop = asyncio.get_running_loop()
        rng = self._rng
        start = loop.time()
        end = start + duration_s if duration_s is not None else None
        next_t = start + rng.expovariate(rate_per_s)
        while end is None or next_t < end:
            delay = next_t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            # Place every arrival that is due (catching up if the loop was busy).
            while next_t <= now and (end is None or next_t < end):
                num, name = callers(rng)
                self.place_call(
                    dnis=dnis[rng.randrange(len(dnis))],
                    caller_num=num,
                    caller_name=name,
                    patience_s=patience(rng) if patience is not None else None,
                )
                next_t += rng.expovariate(rate_per_s)

    def start_traffic(self, **kwargs: Any) -> asyncio.Task[None]:
        """``run_traffic`` as a task owned (and cancelled on close) by the simulator."""
        task = asyncio.get_running_loop().create_task(self.run_traffic(**kwargs))
        self._traffic.add(task)
        task.add_done_callback(self._traffic.discard)
        return task

    # ================================================================ AMI actions

    def handle_action(self, s: AmiSession, msg: Message) -> None:
        from cti.simulator import actions  # local import: actions imports this module

        self.stats.actions_received += 1
        actions.dispatch(self, s, msg)

    # Hooks used by actions.py ---------------------------------------------------------

    def find_channel(self, name: str) -> Chan | None:
        return self._chans.get(name)

    def all_channels(self) -> list[Chan]:
        return list(self._chans.values())

    def find_bridge(self, bridge_id: str) -> Bridge | None:
        return self._bridges.get(bridge_id)

    def all_bridges(self) -> list[Bridge]:
        return list(self._bridges.values())

    def logged_in(self, s: AmiSession) -> None:
        if s not in self._sessions:
            self._sessions.append(s)
        self.stats.sessions = len(self._sessions)
        self._session_changed()

    def events_changed(self) -> None:
        self._session_changed()

    def emit_event(self, name: str, body: str, *, timestamp: bool = True) -> None:
        self._emit(name, body, timestamp=timestamp)

    def wants(self, name: str) -> bool:
        return self._wants(name)

    def action_setvar(self, ch: Chan, var: str, value: str) -> None:
        self._varset(ch, var, value)

    def action_redirect(self, ch: Chan, context: str, exten: str, priority: int) -> None:
        self._redirect(ch, context, exten, priority)

    def action_hangup(self, ch: Chan, cause: int) -> None:
        call = ch.call
        if call is None:
            self._hangup(ch, cause)
            return
        d = call.dial
        if ch is call.caller:
            self._customer_gone(call, "ami", cause)
        elif ch is call.customer:
            self._customer_gone(call, "caller")
        elif d is not None and ch in (d.agent, d.phone):
            self._far_end_gone(d)
        else:
            self._hangup(ch, cause)

    def action_blind_transfer(self, ch: Chan, context: str, exten: str) -> str | None:
        """Returns an error text, or None after the transfer was started."""
        call = ch.call
        d = call.dial if call is not None else None
        if call is None or d is None or d.phase != "bridged" or ch is not d.agent:
            return "Transfer failed"
        return None

    def blind_transfer_effects(self, ch: Chan, context: str, exten: str) -> None:
        call = ch.call
        assert call is not None
        d = call.dial
        assert d is not None
        owner = d.owner
        self._ev("Unhold", ch)
        if self._wants("BlindTransfer") and owner.bridge is not None:
            self._emit(
                "BlindTransfer",
                f"Result: Success\r\n{ch.pblock('Transferer')}{owner.pblock('Transferee')}"
                f"{owner.bridge.block()}IsExternal: Yes\r\nContext: {context}\r\nExtension: {exten}\r\n",
            )
        self._varset(ch, "BLINDTRANSFER", owner.name)
        self._leave_current(call, context, exten, 1)
        self._run_location(call, owner, context, exten)

    def core_status(self) -> dict[str, str]:
        st = time.gmtime(self._started_epoch)
        rl = time.gmtime(self._reload_epoch)
        return {
            "CoreStartupDate": time.strftime("%Y-%m-%d", st),
            "CoreStartupTime": time.strftime("%H:%M:%S", st),
            "CoreReloadDate": time.strftime("%Y-%m-%d", rl),
            "CoreReloadTime": time.strftime("%H:%M:%S", rl),
            "CoreCurrentCalls": str(
                sum(1 for c in self._chans.values() if c.role in ("caller", "agent"))
            ),
            "CoreProcessedCalls": str(self._processed_calls),
        }
