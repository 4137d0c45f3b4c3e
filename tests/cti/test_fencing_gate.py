"""``may_send`` (the leadership's gate, ``app.ha``): asked right before every AMI write.

While it says no, nothing reaches the socket — no Redirect, not even the login — and a
command fails as if the server were disconnected.
"""

from __future__ import annotations

from collections.abc import Callable

from cti.link import TelephonyLink
from cti.types import AmiServer
from routing.commands import OfferCall
from routing.events import OfferFailed, OfferFailure
from tests.cti.amipeer import AmiPeer
from tests.cti.test_link import SECRET, Sink, arrive, peer
from tests.polling import wait_for

__all__ = ["peer"]  # the fixture, shared with test_link


def gated_link(peer: AmiPeer, sink: Sink, may_send: Callable[[], bool]) -> TelephonyLink:
    server = AmiServer(
        name="pbx1", host="127.0.0.1", port=peer.port, username="switchboard", secret=SECRET
    )
    return TelephonyLink(
        [server], sink, clock=lambda: 100.0, reconnect_max_s=0.2, may_send=may_send
    )


async def test_no_action_is_written_once_the_gate_closes(peer: AmiPeer) -> None:
    gate = [True]
    sink = Sink()
    link = gated_link(peer, sink, lambda: gate[0])
    await link.start()
    try:
        await wait_for(lambda: any(s.connected for s in sink.statuses()))
        first = await arrive(peer, sink, "u1")
        link.execute(OfferCall(first, "1001", "PJSIP/1001", 15, "q"))
        await wait_for(lambda: len(peer.actions("Redirect")) == 1)
        gate[0] = False  # the lease is gone (or its safe deadline passed)
        second = await arrive(peer, sink, "u2")
        link.execute(OfferCall(second, "1002", "PJSIP/1002", 15, "q"))
        await link.settled()
        assert sink.of(OfferFailed) == [OfferFailed(second, "1002", OfferFailure.LINK)]
        assert len(peer.actions("Redirect")) == 1  # the second offer never left
        assert not peer.actions("Setvar")[3:]  # nor its Setvars (the first offer's three)
    finally:
        await link.close()


async def test_a_process_that_may_not_act_does_not_even_log_in(peer: AmiPeer) -> None:
    sink = Sink()
    link = gated_link(peer, sink, lambda: False)
    conn = link.connection("pbx1")
    await link.start()
    try:
        await wait_for(lambda: conn.attempts >= 2, what="two connection attempts")
        assert peer.logins == 0
        assert not any(s.connected for s in sink.statuses())
    finally:
        await link.close()
