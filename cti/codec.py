"""The AMI <-> routing codec for one Asterisk server: pure, synchronous, no I/O, no clock.

Theory of operation
-------------------
A *call* is the caller channel that fired ``UserEvent(ACDHold)`` (the trunk channel in
production, the ``;2`` leg of a Local pair in the lab).  Its id is
``"<server>/<Uniqueid>"``.  Every other channel matters only as an *agent leg*: the
``DestUniqueid`` of a ``DialBegin`` made by the caller channel in the connect context
while an offer is open.  Everything is keyed by Uniqueid, never by channel name (names
change on masquerade, Uniqueids do not) and never by event order across channels
(only the per-channel order is stable: tests/fixtures/ami/README.md §6.29; the other §
numbers below are that file's too).

State per call: at most one open *offer* (agent id, the agent legs dialled for it,
answered or not).  ``encode(OfferCall)`` (or ``note_offer``) opens it and forgets the
previous one, so a late ``DialEnd CANCEL`` / ``DialEnd ANSWER`` / ``ACDDialResult`` of an
earlier attempt is recognised by its DestUniqueid / AgentId and ignored (§6.19).

Event -> routing event
- ``UserEvent: ACDArrive`` (optional, top of the inbound dialplan) -> ``CallerArriving``
  (a hint: prefetch the screen pop while the caller hears the greeting); the channel is
  remembered until its ``ACDHold`` (then it is a call) or its ``Hangup`` before that ->
  ``CallerLeftEarly`` (the caller gave up in the greeting / IVR: recorded, not routed).
  At most ``MAX_ARRIVING`` such channels are remembered (oldest forgotten first).
- first ``ACDHold`` of a channel              -> ``IncomingCall``; repeated ones (after RONA
  / busy) are the same call and yield nothing, unless an offer whose Dial had started
  ended without a result we saw -> ``OfferFailed(FAILED)`` (no agent stays reserved).
- ``DialEnd ANSWER`` / ``BridgeEnter`` of an open offer's leg -> ``OfferAnswered`` (once).
- ``DialEnd`` NOANSWER/BUSY/CONGESTION/CHANUNAVAIL of the last ringing leg, or
  ``ACDDialResult`` with such a status for the open offer's agent -> ``OfferFailed`` (once).
  ``DialEnd CANCEL`` yields nothing: it is our own re-route, or the caller hanging up
  (whose ``Hangup`` follows; there is no ACDDialResult then, §6.25).
- ``Hangup`` of the caller channel            -> ``CallHungUp`` (the call is forgotten).
- ``Hangup`` of the answering agent leg       -> ``AgentHungUp`` (the caller may stay up).
  After the caller's own Hangup nothing more is said about the call, so a caller hangup
  yields ``AgentHungUp`` only when the agent leg happened to go first.
- ``BlindTransfer`` whose transferee is a connected caller, or the connected caller
  leaving its bridge for a context other than connect/hold (an external Redirect)
  -> ``CallTransferred(target="<context>,<exten>")``; the call has left ACD control and
  its later events (including its Hangup) yield nothing.
- Every call yields exactly one terminal event: CallHungUp, CallTransferred, or CallFailed
  (``fail_call``, resync).  ``OverflowCall`` also ends ACD control (the routing core
  already ended the call when it decided to overflow).

Resync (``begin_resync`` / ``reconcile`` / ``adopt`` / ``end_resync``): known calls are
checked against ``CoreShowChannels``; callers nobody knows are *orphans* to adopt: those
waiting in the hold context, and those in the connect context dialling an agent (found
after a restart of the service: the agent is the channel's ``Exten``; bridged with a peer
-> answered by that leg, else ringing, the legs being the ``AppDial`` channels of the same
Linkedid).  ``reconcile`` starts following each orphan at once, so the events that come
while its DNIS is read (answer, RONA, hangup) keep its state right; those events are held
back (a call is news only once adopted) and ``adopt`` reports where the call is then:
waiting, ringing ``agent_id`` or connected to it (``IncomingCall.adopted``), or ``None`` if
it went.  Later events (DialEnd, BridgeLeave, Hangup of the leg) are attributed as for
any call.

Unknown events and events missing a header they need are skipped (debug log), never
raised: handlers read headers with defaults and give up on what they cannot use.  So an
exception out of a handler is a codec bug, and the call it concerned may be stranded:
``feed`` logs it at ERROR with its traceback, counts it in ``handler_errors`` and drops
that one event, so the connection (every other call) carries on.
Dispatch is a dict lookup on the event name before any header is read; events nobody
handles cost one lookup.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections import OrderedDict
from collections.abc import Callable

from cti.codec_actions import _check_exten as _check_exten
from cti.codec_actions import _hangup, _redirect, _setvar
from cti.codec_actions import encode_originate as encode_originate
from cti.codec_actions import parse_ext_target as parse_ext_target
from cti.codec_model import Action as Action
from cti.codec_model import ChannelInfo as ChannelInfo
from cti.codec_model import CodecError as CodecError
from cti.codec_model import Resync as Resync
from cti.codec_model import UnknownCall as UnknownCall
from cti.codec_model import _Call, _clean_caller, _Offer
from cti.codec_model import _int as _int
from cti.codec_resync import CodecResync
from cti.types import CallerArriving, CallerLeftEarly, CodecItem, Dialplan, IncomingCall
from cti.wire import Message
from routing.commands import HangupCall, OfferCall, OverflowCall, ReturnToHold
from routing.events import (
    AgentHungUp,
    CallFailed,
    CallHungUp,
    CallTransferred,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
)

log = logging.getLogger(__name__)

MAX_ARRIVING = 100_000
"""Channels remembered between ``ACDArrive`` and ``ACDHold``/``Hangup`` (a bound: a
channel the IVR sends elsewhere and whose Hangup was missed must not stay for ever)."""

DEFAULT_DIALPLAN = Dialplan()

_FAILURES: dict[str, OfferFailure] = {
    "NOANSWER": OfferFailure.NOANSWER,
    "BUSY": OfferFailure.BUSY,
    "CONGESTION": OfferFailure.CONGESTION,
    "CHANUNAVAIL": OfferFailure.CHANUNAVAIL,
}


class AmiCodec(CodecResync):
    """AMI events -> ``IncomingCall`` / routing events; routing commands -> AMI actions."""

    __slots__ = (
        "_adopting",
        "_arriving",
        "_calls",
        "_dispatch",
        "_legs",
        "_offer_prefix",
        "_offers",
        "_prefix",
        "dialplan",
        "handler_errors",
        "server",
    )

    def __init__(self, server: str, dialplan: Dialplan = DEFAULT_DIALPLAN) -> None:
        if not server or "/" in server:
            raise ValueError(f"server name {server!r} must be non-empty and contain no '/'")
        self.server = server
        self.dialplan = dialplan
        self.handler_errors = 0  # events a handler raised on (each one a codec bug)
        self._prefix = server + "/"
        self._calls: dict[str, _Call] = {}  # caller Uniqueid -> call
        self._legs: dict[str, _Call] = {}  # agent leg Uniqueid -> call
        # Offer ids: unique per codec (a random part, so a restarted service never reuses
        # the id of an offer the previous run made on a call it adopts) plus a counter.
        self._offers = itertools.count(1)
        self._offer_prefix = secrets.token_hex(3)
        # Uniqueid -> the ACDArrive of a caller not in hold yet (greeting / IVR).
        self._arriving: OrderedDict[str, CallerArriving] = OrderedDict()
        self._resync_before: set[str] | None = None
        self._resync_hangups: set[str] = set()
        # Channels found by a resync and not yet adopted (their DNIS is being read): their
        # state is tracked, their routing events are held back until ``adopt``.
        self._adopting: set[str] = set()
        self._dispatch: dict[str, Callable[[Message, float], list[CodecItem]]] = {
            "UserEvent": self._on_user_event,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "BridgeEnter": self._on_bridge_enter,
            "BridgeLeave": self._on_bridge_leave,
            "Hangup": self._on_hangup,
            "BlindTransfer": self._on_blind_transfer,
            "Rename": self._on_rename,
        }

    # --- inspection ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._calls)

    def call_ids(self) -> list[str]:
        return [c.call_id for c in self._calls.values()]

    def channel_of(self, call_id: str) -> str:
        return self._call(call_id).channel

    def offered_agent(self, call_id: str) -> str | None:
        call = self._calls.get(self._uid(call_id))
        return call.offer.agent_id if call is not None and call.offer is not None else None

    @property
    def handled_events(self) -> frozenset[str]:
        """Event names ``feed`` looks at; every other event can be dropped unparsed."""
        return frozenset(self._dispatch)

    # --- events --------------------------------------------------------------------------

    def feed(self, msg: Message, now: float) -> list[CodecItem]:
        """Apply one AMI message; return the routing events it implies (often none)."""
        headers = msg.headers
        if not headers:
            return []
        handler = self._dispatch.get(headers[0][1])
        if handler is None or headers[0][0] != "Event":
            return []
        try:
            events = handler(msg, now)
        except Exception:  # one event's failure must not stop every other call's stream
            self.handler_errors += 1
            log.exception(
                "server=%s codec failed on a %s event (a bug; %d so far): event dropped, "
                "its call may be stranded",
                self.server,
                headers[0][1],
                self.handler_errors,
            )
            return []
        if self._adopting and events:
            # ``adopt`` reports where such a call is now; its history is not routing news.
            cut = len(self._prefix)
            events = [
                e
                for e in events
                if getattr(e, "call_id", "")[cut:] not in self._adopting
                or not getattr(e, "call_id", "").startswith(self._prefix)
            ]
        return events

    def _on_user_event(self, msg: Message, now: float) -> list[CodecItem]:
        sub = msg.get("UserEvent")
        if sub == self.dialplan.hold_user_event:
            return self._on_hold(msg, now)
        if sub == self.dialplan.dial_result_user_event:
            return self._on_dial_result(msg)
        if sub == self.dialplan.arrive_user_event:
            return self._on_arrive(msg, now)
        return []

    def _on_arrive(self, msg: Message, now: float) -> list[CodecItem]:
        uid = msg.get("Uniqueid")
        if not uid or uid in self._calls:
            return []  # a known call back in the inbound context: not news
        item = CallerArriving(
            call_id=self._prefix + uid,
            server=self.server,
            uniqueid=uid,
            caller_num=_clean_caller(msg.get("CallerIDNum")),
            dnis=msg.get("DNIS"),
            at=now,
        )
        arriving = self._arriving
        if uid not in arriving:
            arriving[uid] = item
            while len(arriving) > MAX_ARRIVING:
                arriving.popitem(last=False)
        return [item]

    def _on_hold(self, msg: Message, now: float) -> list[CodecItem]:
        uid = msg.get("Uniqueid")
        if not uid:
            log.debug("server=%s ACDHold without Uniqueid skipped", self.server)
            return []
        self._arriving.pop(uid, None)
        call = self._calls.get(uid)
        channel = msg.get("Channel")
        if call is None or call.left:
            # First time in hold, or back in hold after leaving ACD control (a transfer to
            # another service line): a new ACD episode.
            call = _Call(self._prefix + uid, uid, msg.get("Linkedid") or uid, channel)
            self._calls[uid] = call
            log.info("server=%s uniqueid=%s call arrived channel=%s", self.server, uid, channel)
            return [
                IncomingCall(
                    call_id=call.call_id,
                    server=self.server,
                    uniqueid=uid,
                    linkedid=call.linkedid,
                    channel=channel,
                    caller_num=_clean_caller(msg.get("CallerIDNum")),
                    caller_name=_clean_caller(msg.get("CallerIDName")),
                    dnis=msg.get("DNIS"),
                    at=now,
                )
            ]
        if channel:
            call.channel = channel
        offer = call.offer
        if offer is not None and offer.dialled and not offer.answered:
            # The offer's Dial ran and the caller is back in hold without a result we saw
            # (a Redirect by someone else, a dialplan without ACDDialResult): end it.
            call.offer = None
            self._drop_legs(offer)
            return [OfferFailed(call.call_id, offer.agent_id, OfferFailure.FAILED)]
        # After RONA/busy (result already reported), or our new offer's Redirect has not
        # acted yet: the same call, nothing to say.
        return []

    def _on_dial_result(self, msg: Message) -> list[CodecItem]:
        call = self._calls.get(msg.get("Uniqueid"))
        if call is None or call.left:
            return []
        offer = call.offer
        agent = msg.get("AgentId")
        if offer is None or offer.agent_id != agent or offer.answered:
            return []  # an earlier attempt, or already decided by DialEnd
        offer_id = msg.get("OfferId")
        if offer_id and offer.offer_id and offer_id != offer.offer_id:
            # A late result of an earlier offer to the same agent (re-offered at once):
            # that offer was already decided by its DialEnd; never charge it twice.
            return []
        status = msg.get("DialStatus").upper()
        if status == "ANSWER":
            # DialEnd/BridgeEnter were not seen (e.g. reconnect): answered after all.
            offer.answered = True
            return [OfferAnswered(call.call_id, agent)]
        call.offer = None
        self._drop_legs(offer)
        return [OfferFailed(call.call_id, agent, _FAILURES.get(status, OfferFailure.FAILED))]

    def _on_dial_begin(self, msg: Message, now: float) -> list[CodecItem]:
        call = self._calls.get(msg.get("Uniqueid"))
        if call is None or call.left:
            return []
        offer = call.offer
        dest = msg.get("DestUniqueid")
        if offer is None or offer.answered or not dest:
            return []
        if (
            msg.get("Context") != self.dialplan.connect_context
            or msg.get("Exten") != offer.agent_id
        ):
            return []  # not the connect context's Dial for this offer
        offer.legs.append(dest)
        offer.dialled = True
        self._legs[dest] = call
        return []

    def _on_dial_end(self, msg: Message, now: float) -> list[CodecItem]:
        dest = msg.get("DestUniqueid")
        call = self._legs.get(dest)
        if call is None:
            return []
        offer = call.offer
        if offer is None or dest not in offer.legs or call.left:
            # A leg of an attempt we already replaced (our own re-route's CANCEL, §6.19).
            del self._legs[dest]
            return []
        status = msg.get("DialStatus").upper()
        if status == "ANSWER":
            if offer.answered:
                return []
            offer.answered = True
            offer.leg = dest
            for other in offer.legs:
                if other != dest:
                    self._legs.pop(other, None)
            offer.legs = [dest]
            return [OfferAnswered(call.call_id, offer.agent_id)]
        if offer.answered:
            return []
        offer.legs.remove(dest)
        del self._legs[dest]
        if offer.legs:
            return []  # a forked Dial still rings elsewhere
        failure = _FAILURES.get(status)
        if failure is None:
            # CANCEL (caller hung up or was redirected) or an odd status: the caller's own
            # Hangup or its next ACDHold tells what happened.
            return []
        call.offer = None
        return [OfferFailed(call.call_id, offer.agent_id, failure)]

    def _on_bridge_enter(self, msg: Message, now: float) -> list[CodecItem]:
        uid = msg.get("Uniqueid")
        call = self._legs.get(uid)
        if call is None or call.left:
            return []
        offer = call.offer
        if offer is None or offer.answered or uid not in offer.legs:
            return []
        offer.answered = True
        offer.leg = uid
        offer.legs = [uid]
        return [OfferAnswered(call.call_id, offer.agent_id)]

    def _on_bridge_leave(self, msg: Message, now: float) -> list[CodecItem]:
        # Who left the agent<->caller bridge first decides whether the agent hung up on a
        # caller who stays (AgentHungUp) or the caller went (nothing until its Hangup).
        # BridgeNumChannels (the count left behind, computed under the bridge lock) tells
        # the order even when the two BridgeLeave events arrive swapped; the Hangup events
        # of the two legs do not (§6.29), so they are only the fallback.
        uid = msg.get("Uniqueid")
        remaining = _int(msg.get("BridgeNumChannels"))
        call = self._calls.get(uid)
        if call is not None:
            offer = call.offer
            if call.left or offer is None or not offer.answered:
                return []
            context = msg.get("Context")
            if context not in (self.dialplan.connect_context, self.dialplan.hold_context, ""):
                call.left = True
                target = f"{context},{msg.get('Exten')}"
                log.info(
                    "server=%s uniqueid=%s redirected out of ACD to %s", self.server, uid, target
                )
                return [CallTransferred(call.call_id, target)]
            if call.agent_gone or remaining < 0:
                return []
            call.agent_gone = True  # decided: whoever left first
            return [AgentHungUp(call.call_id, offer.agent_id)] if remaining == 0 else []
        call = self._legs.get(uid)
        if call is None or call.left or call.agent_gone or remaining < 0:
            return []
        offer = call.offer
        if offer is None or not offer.answered or offer.leg != uid:
            return []
        call.agent_gone = True
        return [AgentHungUp(call.call_id, offer.agent_id)] if remaining > 0 else []

    def _on_blind_transfer(self, msg: Message, now: float) -> list[CodecItem]:
        if msg.get("Result") != "Success":
            return []
        call = self._calls.get(msg.get("TransfereeUniqueid"))
        if call is None or call.left:
            return []
        call.left = True
        target = f"{msg.get('Context')},{msg.get('Extension')}"
        log.info("server=%s uniqueid=%s blind transfer to %s", self.server, call.uniqueid, target)
        return [CallTransferred(call.call_id, target)]

    def _on_hangup(self, msg: Message, now: float) -> list[CodecItem]:
        uid = msg.get("Uniqueid")
        if self._resync_before is not None:
            self._resync_hangups.add(uid)
        call = self._calls.pop(uid, None)
        if call is not None:
            if call.offer is not None:
                self._drop_legs(call.offer)
            if call.left:
                return []
            return [CallHungUp(call.call_id)]
        arrived = self._arriving.pop(uid, None)
        if arrived is not None:
            log.info("server=%s uniqueid=%s caller left before hold", self.server, uid)
            return [
                CallerLeftEarly(
                    call_id=arrived.call_id,
                    server=self.server,
                    uniqueid=uid,
                    linkedid=msg.get("Linkedid") or uid,
                    caller_num=arrived.caller_num,
                    dnis=arrived.dnis,
                    arrived_at=arrived.at,
                    at=now,
                )
            ]
        call = self._legs.pop(uid, None)
        if call is None or call.left or call.agent_gone:
            return []
        offer = call.offer
        if offer is None or not offer.answered or offer.leg != uid:
            return []
        call.agent_gone = True
        return [AgentHungUp(call.call_id, offer.agent_id)]

    def _on_rename(self, msg: Message, now: float) -> list[CodecItem]:
        call = self._calls.get(msg.get("Uniqueid"))
        if call is not None and msg.get("Newname"):
            call.channel = msg.get("Newname")
        return []

    def _drop_legs(self, offer: _Offer) -> None:
        for leg in offer.legs:
            self._legs.pop(leg, None)

    # --- commands ------------------------------------------------------------------------

    def _uid(self, call_id: str) -> str:
        if not call_id.startswith(self._prefix):
            raise UnknownCall(f"call {call_id!r} does not belong to server {self.server!r}")
        return call_id[len(self._prefix) :]

    def _call(self, call_id: str) -> _Call:
        call = self._calls.get(self._uid(call_id))
        if call is None:
            raise UnknownCall(f"unknown call {call_id!r}")
        return call

    def note_offer(self, call_id: str, agent_id: str, offer_id: str = "") -> None:
        """Open an offer of ``call_id`` to ``agent_id``; any earlier attempt is forgotten."""
        call = self._call(call_id)
        if call.offer is not None:
            self._detach(call.offer)
        call.offer = _Offer(agent_id, offer_id)
        call.agent_gone = False

    def cancel_offer(self, call_id: str, agent_id: str | None = None) -> bool:
        """Forget the open offer (if it is ``agent_id``'s); its later events are ignored."""
        call = self._calls.get(self._uid(call_id))
        if call is None or call.offer is None:
            return False
        if agent_id is not None and call.offer.agent_id != agent_id:
            return False
        self._detach(call.offer)
        call.offer = None
        return True

    def mark_offer_uncertain(self, call_id: str, agent_id: str) -> bool:
        """The connection dropped under ``agent_id``'s open offer: keep it for the resync.

        Its Redirect may have run (the agent rings, or already talks) or not (the caller
        is still in hold); only the resync after the reconnect can tell, so the offer is
        neither failed nor answered now.
        """
        call = self._calls.get(self._uid(call_id))
        if call is None or call.offer is None or call.offer.agent_id != agent_id:
            return False
        call.offer.uncertain = True
        return True

    def _detach(self, offer: _Offer) -> None:
        # Keep the legs in ``_legs``: their DialEnd (CANCEL) will come and is dropped then.
        # An answered leg is dropped now (its Hangup must not become AgentHungUp).
        if offer.answered:
            self._drop_legs(offer)

    def encode(self, cmd: object) -> list[Action]:
        """AMI actions (without ActionID) that carry out a routing command.

        ``OfferCall`` and ``ReturnToHold`` also record the intent (see ``note_offer``).
        Raises ``UnknownCall`` for a call the codec does not know, ``CodecError`` for a
        command it cannot express.
        """
        dp = self.dialplan
        if isinstance(cmd, OfferCall):
            call = self._call(cmd.call_id)
            _check_exten(cmd.agent_id)
            if not cmd.device:
                raise CodecError(f"offer of {cmd.call_id} to {cmd.agent_id}: empty device")
            ring = max(1, math.ceil(cmd.ring_timeout_s))
            offer_id = f"{self._offer_prefix}.{next(self._offers)}"
            actions = [
                _setvar(call.channel, dp.device_var, cmd.device),
                _setvar(call.channel, dp.ring_timeout_var, str(ring)),
                _setvar(call.channel, dp.offer_var, offer_id),
                _redirect(call.channel, dp.connect_context, cmd.agent_id),
            ]
            self.note_offer(cmd.call_id, cmd.agent_id, offer_id)
            return actions
        if isinstance(cmd, ReturnToHold):
            call = self._call(cmd.call_id)
            self.cancel_offer(cmd.call_id, cmd.agent_id)
            return [_redirect(call.channel, dp.hold_context, dp.hold_exten)]
        if isinstance(cmd, OverflowCall):
            call = self._call(cmd.call_id)
            context, exten = parse_ext_target(cmd.target)
            if call.offer is not None:
                self._detach(call.offer)
                call.offer = None
            call.left = True
            call.overflow_to = (context, exten)
            return [_redirect(call.channel, context, exten)]
        if isinstance(cmd, HangupCall):
            call = self._call(cmd.call_id)
            call.hangup_requested = True
            return [_hangup(call.channel, cmd.cause)]
        raise CodecError(f"not a telephony command: {type(cmd).__name__}")

    def fail_call(self, call_id: str, reason: str) -> list[CodecItem]:
        """End a call the link cannot carry on (its channel is gone, server lost)."""
        try:
            uid = self._uid(call_id)
        except UnknownCall:
            return []
        call = self._calls.pop(uid, None)
        if call is None:
            return []
        if call.offer is not None:
            self._drop_legs(call.offer)
        if call.left:
            return []
        return [CallFailed(call.call_id, reason)]
