"""Resync and adoption for ``cti.codec.AmiCodec``: after a (re)connect, what Asterisk
still has (``CoreShowChannels``) is reconciled with what the codec knew, and callers it
did not know are adopted.  A mixin: it works on the codec's own state."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from cti.codec_actions import _hangup, _redirect
from cti.codec_model import Action, ChannelInfo, Resync, _Call, _clean_caller, _Offer
from cti.types import CallerArriving, CodecItem, Dialplan, IncomingCall
from routing.events import (
    AgentHungUp,
    CallFailed,
    CallHungUp,
    CallTransferred,
    OfferAnswered,
    OfferFailed,
    OfferFailure,
)

log = logging.getLogger("cti.codec")


class CodecResync:
    """The resync half of ``AmiCodec`` (same object, same state)."""

    __slots__ = ("_resync_before", "_resync_hangups")  # initialised by AmiCodec.__init__

    server: str
    dialplan: Dialplan
    _prefix: str
    _calls: dict[str, _Call]
    _legs: dict[str, _Call]
    _arriving: OrderedDict[str, CallerArriving]
    _adopting: set[str]
    _resync_before: set[str] | None
    _resync_hangups: set[str]

    def _drop_legs(self, offer: _Offer) -> None:
        raise NotImplementedError  # AmiCodec's

    def begin_resync(self) -> None:
        """Mark the calls known now; Hangups seen from here on are remembered."""
        self._resync_before = set(self._calls)
        self._resync_hangups = set()

    def end_resync(self) -> None:
        for uid in list(self._adopting):
            self.drop_orphan(uid)  # not adopted (the resync failed): found again next time
        self._resync_before = None
        self._resync_hangups = set()

    def reconcile(self, channels: Iterable[ChannelInfo], *, restarted: bool) -> Resync:
        """Compare the known calls with a fresh ``CoreShowChannels`` list.

        Returns the routing events that bring the routing core in line, the channels
        waiting in the hold context that nobody knows yet (``adopt`` each once its DNIS is
        known), and actions to send again (a Hangup or overflow Redirect that was lost
        with the connection; a caller found in the connect context without an open offer
        is sent back to hold, so no agent talks to a call the router thinks is waiting).
        Call between ``begin_resync`` and ``end_resync``; calls that first appeared after
        ``begin_resync`` are left alone (the list may predate them).

        Decisions: a known call whose channel vanished yields ``CallHungUp`` after a plain
        reconnect (it ended while we were away) and ``CallFailed("asterisk restarted")``
        after a restart.  An open offer whose caller is back in hold yields
        ``OfferFailed(FAILED)``; one found bridged in the connect context for the offered
        agent yields ``OfferAnswered``; a connected call whose agent leg vanished yields
        ``AgentHungUp``; a connected call found in another context ``CallTransferred``.
        """
        before = self._resync_before if self._resync_before is not None else set(self._calls)
        live = {c.uniqueid: c for c in channels if c.uniqueid}
        # A caller seen arriving whose channel went while we were away: its Hangup is lost,
        # and whether it reached hold first is unknown; forgotten (no guess recorded).
        for uid in [u for u in self._arriving if u not in live]:
            del self._arriving[uid]
        by_bridge: dict[str, list[ChannelInfo]] = {}
        for chan in live.values():
            if chan.bridge_id:
                by_bridge.setdefault(chan.bridge_id, []).append(chan)
        dp = self.dialplan
        events: list[CodecItem] = []
        retries: list[Action] = []
        for uid in sorted(before):
            call = self._calls.get(uid)
            if call is None:
                continue
            info = live.get(uid)
            if info is None:
                del self._calls[uid]
                if call.offer is not None:
                    self._drop_legs(call.offer)
                if call.left:
                    continue
                if restarted:
                    events.append(CallFailed(call.call_id, "asterisk restarted"))
                else:
                    events.append(CallHungUp(call.call_id))
                continue
            call.channel = info.channel or call.channel
            if call.hangup_requested:
                retries.append(_hangup(call.channel, 16))
                continue
            if call.left:
                if call.overflow_to is not None and info.context == dp.hold_context:
                    retries.append(_redirect(call.channel, *call.overflow_to))
                continue
            if call.offer is None:
                if info.context == dp.connect_context:
                    log.warning(
                        "server=%s uniqueid=%s found in %s/%s without an open offer; back to hold",
                        self.server,
                        uid,
                        info.context,
                        info.exten,
                    )
                    retries.append(_redirect(call.channel, dp.hold_context, dp.hold_exten))
                continue
            events.extend(self._reconcile_offer(call, call.offer, info, by_bridge, live))
        # Legs of calls that are gone, or that vanished themselves, are dropped.
        stale = [
            leg for leg, c in self._legs.items() if leg not in live or c.uniqueid not in self._calls
        ]
        for leg in stale:
            del self._legs[leg]
        orphans = [
            info
            for uid, info in sorted(live.items())
            if uid not in self._calls and self._adoptable(info)
        ]
        for info in orphans:
            self._track_orphan(info, by_bridge, live)
        return Resync(events, orphans, retries)

    def _adoptable(self, info: ChannelInfo) -> bool:
        """A caller channel under ACD control: waiting in hold, or in the connect context
        dialling an agent (not the agent leg that Dial created: ``AppDial``)."""
        dp = self.dialplan
        if info.context == dp.hold_context:
            return True
        return (
            info.context == dp.connect_context
            and info.application != "AppDial"
            and bool(info.exten)
        )

    def _track_orphan(
        self,
        info: ChannelInfo,
        by_bridge: Mapping[str, list[ChannelInfo]],
        live: Mapping[str, ChannelInfo],
    ) -> None:
        """Start following an unknown caller at once (its events may come before ``adopt``).

        In the connect context its offer is rebuilt from the channel list: bridged with a
        peer -> answered by that leg; else ringing, the legs being the ``AppDial``
        channels of the same Linkedid.
        """
        uid = info.uniqueid
        call = _Call(self._prefix + uid, uid, info.linkedid or uid, info.channel)
        if info.context == self.dialplan.connect_context:
            offer = _Offer(info.exten)
            offer.dialled = True
            peers = [
                p.uniqueid
                for p in by_bridge.get(info.bridge_id, [])
                if info.bridge_id and p.uniqueid != uid
            ]
            if peers:
                offer.answered = True
                offer.leg = peers[0]
                offer.legs = [peers[0]]
            else:
                offer.legs = [
                    p.uniqueid
                    for p in live.values()
                    if p.uniqueid != uid
                    and p.application == "AppDial"
                    and p.linkedid == call.linkedid
                    and not p.bridge_id
                ]
            for leg in offer.legs:
                self._legs[leg] = call
            call.offer = offer
        self._calls[uid] = call
        self._adopting.add(uid)

    def drop_orphan(self, uid: str) -> None:
        """Stop following a channel found by the resync that will not be adopted."""
        if uid not in self._adopting:
            return
        self._adopting.discard(uid)
        call = self._calls.pop(uid, None)
        if call is not None and call.offer is not None:
            self._drop_legs(call.offer)

    def _reconcile_offer(
        self,
        call: _Call,
        offer: _Offer,
        info: ChannelInfo,
        by_bridge: Mapping[str, list[ChannelInfo]],
        live: Mapping[str, ChannelInfo],
    ) -> list[CodecItem]:
        dp = self.dialplan
        in_connect = info.context == dp.connect_context
        if not offer.answered:
            if info.context == dp.hold_context:
                if offer.dialled:
                    call.offer = None
                    self._drop_legs(offer)
                    return [OfferFailed(call.call_id, offer.agent_id, OfferFailure.FAILED)]
                if offer.uncertain:
                    # Written on the lost connection and never carried out: it did not
                    # reach the agent's phone (not the agent's miss).
                    call.offer = None
                    self._drop_legs(offer)
                    return [OfferFailed(call.call_id, offer.agent_id, OfferFailure.LINK)]
                return []  # our Redirect has not acted yet
            peers = [p for p in by_bridge.get(info.bridge_id, []) if p.uniqueid != info.uniqueid]
            if in_connect and info.exten == offer.agent_id and info.bridge_id and peers:
                self._drop_legs(offer)
                offer.answered = True
                offer.dialled = True
                offer.leg = peers[0].uniqueid
                offer.legs = [offer.leg]
                self._legs[offer.leg] = call
                return [OfferAnswered(call.call_id, offer.agent_id)]
            return []  # still ringing (or our Redirect is in flight)
        # Connected before the disconnect.
        if in_connect:
            if offer.leg and offer.leg not in live and not call.agent_gone:
                call.agent_gone = True
                self._legs.pop(offer.leg, None)
                return [AgentHungUp(call.call_id, offer.agent_id)]
            return []
        if info.context == dp.hold_context:
            return []
        call.left = True
        return [CallTransferred(call.call_id, f"{info.context},{info.exten}")]

    def adopt(self, info: ChannelInfo, dnis: str, now: float) -> IncomingCall | None:
        """Turn a channel found by resync into a call (None if it went meanwhile).

        The ``IncomingCall`` says where the call is *now* (events seen since the channel
        list was taken included): ``agent_id`` set -> ringing that agent, plus
        ``answered`` -> connected to it; else waiting.  ``adopted`` marks it as found by
        a resync, not by its own arrival.
        """
        uid = info.uniqueid
        if not uid:
            return None
        self._arriving.pop(uid, None)
        if uid in self._adopting:
            self._adopting.discard(uid)
            call = self._calls.get(uid)
            if call is None or call.left:
                # Hung up or transferred away while its DNIS was read: not ours any more.
                if call is not None:
                    del self._calls[uid]
                    if call.offer is not None:
                        self._drop_legs(call.offer)
                return None
        elif uid in self._calls or uid in self._resync_hangups:
            return None
        else:
            call = _Call(self._prefix + uid, uid, info.linkedid or uid, info.channel)
            self._calls[uid] = call
        offer = call.offer
        agent_id = offer.agent_id if offer is not None else ""
        answered = offer is not None and offer.answered
        log.info(
            "server=%s uniqueid=%s call found on resync channel=%s agent=%s answered=%s",
            self.server,
            uid,
            call.channel,
            agent_id or "-",
            answered,
        )
        return IncomingCall(
            call_id=call.call_id,
            server=self.server,
            uniqueid=uid,
            linkedid=call.linkedid,
            channel=call.channel,
            caller_num=_clean_caller(info.caller_num),
            caller_name=_clean_caller(info.caller_name),
            dnis=dnis,
            at=now,
            agent_id=agent_id,
            answered=answered,
            adopted=True,
        )
