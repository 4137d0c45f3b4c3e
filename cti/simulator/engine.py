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
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from cti.simulator.calls import CallFlow
from cti.simulator.model import (
    sample,
)
from cti.simulator.session import AmiSession
from cti.simulator.world import (
    UNKNOWN,
    Bridge,
    Chan,
    Dial,
    _parse_callerid,
)
from cti.wire import Message

log = logging.getLogger("cti.simulator.engine")


class AsteriskSimulator(CallFlow):
    """A fake Asterisk AMI server; see the module docstring for the model."""

    # ================================================================ originate

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
