"""The shipped Asterisk snippets agree with ``cti.types.Dialplan`` and the codec's needs."""

from __future__ import annotations

import re
from pathlib import Path

from cti.codec import AmiCodec
from cti.types import Dialplan

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "asterisk"


def test_extensions_conf_has_the_dialplan_names() -> None:
    text = (DEPLOY / "extensions.conf").read_text(encoding="utf-8")
    dp = Dialplan()
    contexts = set(re.findall(r"^\[([\w-]+)\]", text, flags=re.M))
    assert {
        "acd-inbound",
        dp.hold_context,
        dp.connect_context,
        dp.callback_context,
        "acd-overflow",
    } <= contexts
    assert f"UserEvent({dp.hold_user_event},DNIS: ${{ACD_DNIS}})" in text
    assert (
        f"UserEvent({dp.dial_result_user_event},AgentId: ${{EXTEN}},DialStatus: ${{DIALSTATUS}},"
        "OfferId: ${ACD_DIALLED_OFFER})" in text
    )
    # The offer id is copied before Dial: the next offer's Setvar cannot change the echo.
    assert f"1,Set(ACD_DIALLED_OFFER=${{{dp.offer_var}}})" in text
    assert f"Dial(${{{dp.device_var}}},${{{dp.ring_timeout_var}}},g)" in text
    assert "exten => _[0-9A-Za-z]!,1," in text  # any agent id


def test_manager_conf_filter_keeps_every_event_the_codec_reads() -> None:
    text = (DEPLOY / "manager.conf").read_text(encoding="utf-8")
    included = set(
        re.findall(r"^eventfilter\(action\(include\),name\((\w+)\)\) =", text, flags=re.M)
    )
    assert AmiCodec("pbx1").handled_events <= included | {"FullyBooted"}
    assert "OriginateResponse" in included
    assert re.search(r"^writetimeout = (\d+)", text, flags=re.M)
    timeout = int(re.search(r"^writetimeout = (\d+)", text, flags=re.M).group(1))  # type: ignore[union-attr]
    assert 1000 <= timeout <= 5000
    assert re.search(r"^read = system,call,user$", text, flags=re.M)
    assert re.search(r"^deny = 0\.0\.0\.0/0\.0\.0\.0$", text, flags=re.M)


def _context(text: str, name: str) -> list[str]:
    lines: list[str] = []
    inside = False
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            inside = line == f"[{name}]"
            continue
        if inside and line:
            lines.append(line)
    return lines


def test_connect_hangup_extension_never_falls_into_the_agent_pattern() -> None:
    # Asterisk runs h,1, h,2, ... and the agent pattern `_[0-9A-Za-z]!` also matches "h":
    # every priority the pattern has beyond those of `h` would run as the hangup handler
    # (a real Asterisk 22 reported ACDDialResult AgentId: h after every answered call).
    text = (DEPLOY / "extensions.conf").read_text(encoding="utf-8")
    current = ""
    apps: dict[str, list[str]] = {}
    for line in _context(text, Dialplan().connect_context):
        head, _, rest = line.partition("=>")
        if head.strip() == "exten":
            current, _, app = rest.strip().split(",", 2)
        else:
            app = rest.strip().split(",", 1)[1]
        apps.setdefault(current, []).append(app)
    assert "h" in apps
    pattern = next(k for k in apps if k.startswith("_"))
    assert len(apps[pattern]) > 1
    assert apps["h"][-1].startswith("Hangup("), apps["h"]
