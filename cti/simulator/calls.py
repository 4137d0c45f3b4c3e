"""The lab dialplan as Python: inbound calls, hold, redirects, locations, Dial()."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from cti.simulator.core import SimulatorCore
from cti.simulator.model import (
    DeviceProfile,
    sample,
)
from cti.simulator.world import (
    UNKNOWN,
    Bridge,
    Call,
    Chan,
    Dial,
)

log = logging.getLogger("cti.simulator.engine")


class CallFlow(SimulatorCore):
    """The inbound dialplan, routing actions, Dial() and the caller's far party."""

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
