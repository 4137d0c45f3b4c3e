"""One AMI TCP session of the simulator (the server side of a manager connection).

Invariants:
- The banner is written on connect, one CRLF line, no blank line
  (tests/fixtures/ami/README.md §6.1).
- Actions are handled strictly one at a time and in order; while one is pending (a
  configured response delay, a failed login's sleep, a synchronous Originate) later
  actions wait in ``_pending``.  A response is always written before the events the
  action causes, because effects run after the response is queued on the same transport.
- Before login every action but Login/Logoff/Challenge gets ``Permission denied``.
- Event delivery is decided per session by read classes, ``Events`` on/off/class list and
  the user's include-only ``eventfilter`` (responses and list items are never filtered).
- writetimeout: when the client stops reading, the transport buffer passes its high-water
  mark; if it has not drained ``writetimeout_ms`` later the session is aborted, like
  Asterisk closing a session whose write blocked too long.  Events for it are lost.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING

from cti.simulator.model import ALL, SimUser
from cti.wire import AmiParser, Message

if TYPE_CHECKING:
    from cti.simulator.engine import AsteriskSimulator

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
WRITE_HIGH_WATER = 256 * 1024

# Event name -> AMI class (the Privilege header's first part).
EVENT_CLASS: dict[str, str] = {
    "Newexten": "dialplan",
    "VarSet": "dialplan",
    "UserEvent": "user",
    "FullyBooted": "system",
    "SuccessfulAuth": "security",
    "InvalidPassword": "security",
    "InvalidAccountID": "security",
    "RequestNotAllowed": "security",
}


def event_class(name: str) -> str:
    return EVENT_CLASS.get(name, "call")


def parse_event_mask(mask: str) -> tuple[bool, frozenset[str] | None]:
    """``Events:`` header -> (events on, class restriction or None for "as permitted")."""
    value = mask.strip().lower()
    if value in ("off", "no", "false", "0", "none"):
        return False, None
    if value in ("on", "yes", "true", "1", "all", ""):
        return True, None
    return True, frozenset(v.strip() for v in value.split(",") if v.strip())


class AmiSession(asyncio.Protocol):
    def __init__(self, sim: AsteriskSimulator) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None
        self.parser = AmiParser()
        self.username = ""
        self.user: SimUser | None = None
        self.authed = False
        self.closing = False
        self.events_on = True
        self.mask: frozenset[str] | None = None
        self._accept: dict[str, bool] = {}
        self._pending: deque[Message] = deque()
        self._busy = False
        self._write_timer: asyncio.TimerHandle | None = None
        self.session_id = f"0x{id(self):x}"
        self.peer = ("", 0)
        self.local = ("", 0)

    # ---- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if peer:
            self.peer = (str(peer[0]), int(peer[1]))
        if local:
            self.local = (str(local[0]), int(local[1]))
        self.sim.session_opened(self)
        transport.write(BANNER)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self.sim.session_closed(self)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.parser.feed(data)
        except ValueError:
            log.warning("sim: AMI session %s sent an oversized message; closing", self.session_id)
            self.abort()
            return
        for msg in messages:
            if msg.kind != "action":
                # Asterisk answers a message without Action: with "Missing action in request".
                self.respond(
                    "Error", msg.get("ActionID"), [("Message", "Missing action in request")]
                )
                continue
            self._pending.append(msg)
        self._drain()

    def pause_writing(self) -> None:
        if self._write_timer is None and self.user is not None:
            timeout = self.user.writetimeout_ms / 1000.0
            loop = asyncio.get_running_loop()
            self._write_timer = loop.call_later(timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        log.warning(
            "sim: AMI session %s (%s) did not read for %d ms; cutting it off",
            self.session_id,
            self.username,
            self.user.writetimeout_ms if self.user else 0,
        )
        self.sim.stats.sessions_cut_slow += 1
        self.abort()

    # ---- action pipeline --------------------------------------------------------------

    def _drain(self) -> None:
        while self._pending and not self._busy and not self.closing:
            msg = self._pending.popleft()
            delay = self.sim.response_delay
            if delay > 0:
                self._busy = True
                asyncio.get_running_loop().call_later(delay, self._run_delayed, msg)
                return
            self.sim.handle_action(self, msg)

    def _run_delayed(self, msg: Message) -> None:
        self._busy = False
        if not self.closing:
            self.sim.handle_action(self, msg)
        self._drain()

    def hold(self) -> None:
        """Stop processing further actions until ``release`` (sync Originate, login delay)."""
        self._busy = True

    def release(self) -> None:
        self._busy = False
        self._drain()

    # ---- output -----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closing and self.transport is not None:
            self.transport.write(data)

    def respond(self, status: str, action_id: str, headers: list[tuple[str, str]]) -> None:
        parts = [f"Response: {status}\r\n"]
        if action_id:
            parts.append(f"ActionID: {action_id}\r\n")
        parts.extend(f"{k}: {v}\r\n" for k, v in headers)
        parts.append("\r\n")
        self.write("".join(parts).encode("utf-8"))

    def write_items(self, items: list[list[tuple[str, str]]]) -> None:
        """List items / Complete events (never filtered: they answer an action)."""
        out = []
        for headers in items:
            out.append("".join(f"{k}: {v}\r\n" for k, v in headers))
            out.append("\r\n")
        self.write("".join(out).encode("utf-8"))

    def close_after_write(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self, reset: bool = False) -> None:
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0: close() sends a TCP RST instead of a FIN.
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
        transport.abort()

    # ---- event selection --------------------------------------------------------------

    def login(self, username: str, user: SimUser, events_mask: str) -> None:
        self.username = username
        self.user = user
        self.authed = True
        self.events_on, self.mask = parse_event_mask(events_mask)
        self._accept.clear()

    def set_events(self, mask: str) -> None:
        self.events_on, self.mask = parse_event_mask(mask)
        self._accept.clear()

    def accepts(self, name: str) -> bool:
        cached = self._accept.get(name)
        if cached is not None:
            return cached
        ok = self._compute_accept(name)
        self._accept[name] = ok
        return ok

    def receives_class(self, cls: str) -> bool:
        user = self.user
        if not self.authed or user is None or not self.events_on:
            return False
        if user.read != ALL and cls not in user.read:
            return False
        return self.mask is None or "all" in self.mask or cls in self.mask

    def _compute_accept(self, name: str) -> bool:
        user = self.user
        if user is None or not self.receives_class(event_class(name)):
            return False
        return user.eventfilter is None or name in user.eventfilter
