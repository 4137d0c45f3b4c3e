"""AMI lines end in CRLF and nothing else: one framing for the fast and the slow parser."""

from __future__ import annotations

import pytest

from cti.ami import FilteringParser, _parse_fast
from cti.codec import _int
from cti.wire import AmiParser, parse_block

# Every character str.splitlines() breaks on besides CR and LF.
SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


def _newchannel(name: str) -> bytes:
    return (
        "Event: Newchannel\r\n"
        "Channel: Local/100@acd-inbound-00000001;2\r\n"
        f"CallerIDName: {name}\r\n"
        "Uniqueid: 1700000000.1\r\n"
        "Linkedid: 1700000000.1\r\n"
        "\r\n"
    ).encode()


@pytest.mark.parametrize("sep", SEPARATORS, ids=[f"U+{ord(c):04X}" for c in SEPARATORS])
def test_a_display_name_cannot_inject_a_header(sep: str) -> None:
    name = f"Mallory{sep}Uniqueid: 1699999999.9"
    data = _newchannel(name)
    for msgs in (
        AmiParser().feed(data),
        FilteringParser().feed(data),
        [parse_block(data[:-4])],
        [_parse_fast(data[:-4])],
    ):
        (msg,) = msgs
        assert msg.get("Uniqueid") == "1700000000.1"
        assert msg.get("CallerIDName") == name
        assert msg.get_all("Uniqueid") == ["1700000000.1"]


def test_fast_and_slow_parsers_agree_on_odd_bytes() -> None:
    block = "Event: X\r\nA: one\u2028B: two\r\nC: bare\nlf\r\nD:  padded\r\n".encode()
    assert _parse_fast(block).headers == parse_block(block).headers
    assert parse_block(block).get("B") == ""


def test_hand_typed_lf_blocks_still_parse() -> None:
    (msg,) = AmiParser().feed(b"Action: Ping\nActionID: 7\n\n")
    assert msg.get("ActionID") == "7"


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "1\u00b2", "", "-1", "x"])
def test_header_integers_are_ascii_digits_only(value: str) -> None:
    assert _int(value) == -1


def test_header_integer() -> None:
    assert _int("42") == 42
