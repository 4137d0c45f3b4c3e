"""Every offer has an id (``Setvar ACD_OFFER_ID``) that [acd-connect] echoes in
``ACDDialResult``: a late result of an earlier offer to the same agent is ignored, so one
no-answer is charged once when the only ready agent is re-offered the call at once."""

from __future__ import annotations

from cti.codec import AmiCodec
from cti.wire import Message
from routing.commands import OfferCall
from routing.events import OfferFailed, OfferFailure
from tests.cti.test_codec import S, dial, ev, feed_all, hold


def offer(codec: AmiCodec) -> str:
    """Offer the call to agent 1001; the id set on the caller channel."""
    actions = codec.encode(OfferCall("pbx1/t.1", "1001", "PJSIP/1001", 15, "q"))
    (offer_id,) = [dict(a)["Value"] for a in actions if dict(a).get("Variable") == "ACD_OFFER_ID"]
    assert [dict(a)["Action"] for a in actions][-1] == "Redirect"  # set before it
    return offer_id


def result(status: str, offer_id: str | None) -> Message:
    extra = {"OfferId": offer_id} if offer_id is not None else {}
    return ev(
        "UserEvent",
        "t.1",
        Context="acd-connect",
        UserEvent="ACDDialResult",
        AgentId="1001",
        DialStatus=status,
        **extra,
    )


def test_offer_ids_are_unique() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    ids = {offer(codec) for _ in range(3)}
    assert len(ids) == 3 and "" not in ids
    other = AmiCodec(S)  # another run of the service: other ids
    feed_all(other, [hold()])
    assert offer(other) not in ids


def test_late_result_of_the_first_offer_is_not_charged_to_the_second() -> None:
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    first = offer(codec)
    missed = feed_all(
        codec, [dial("DialBegin", "t.2", "1001"), dial("DialEnd", "t.2", "1001", "NOANSWER")]
    )
    assert missed == [OfferFailed("pbx1/t.1", "1001", OfferFailure.NOANSWER)]
    # The router re-offers the call to the same agent at once, before the dialplan's
    # ACDDialResult of the first offer has arrived.
    second = offer(codec)
    assert second != first
    assert feed_all(codec, [result("NOANSWER", first)]) == []  # late: ignored
    assert codec.offered_agent("pbx1/t.1") == "1001"  # the second offer is still open
    # The second offer's own result counts.
    assert feed_all(codec, [result("BUSY", second)]) == [
        OfferFailed("pbx1/t.1", "1001", OfferFailure.BUSY)
    ]


def test_a_result_without_offer_id_is_still_understood() -> None:
    # A dialplan from before offer ids: the agent id alone decides, as it did.
    codec = AmiCodec(S)
    feed_all(codec, [hold()])
    offer(codec)
    assert feed_all(codec, [result("BUSY", None)]) == [
        OfferFailed("pbx1/t.1", "1001", OfferFailure.BUSY)
    ]
