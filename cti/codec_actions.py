"""AMI actions the codec sends: Setvar, Redirect, Hangup and Originate, built from
validated parts (no user text reaches a header unchecked)."""

from __future__ import annotations

from collections.abc import Mapping

from cti.codec_model import Action, CodecError


def _setvar(channel: str, variable: str, value: str) -> Action:
    return [("Action", "Setvar"), ("Channel", channel), ("Variable", variable), ("Value", value)]


def _redirect(channel: str, context: str, exten: str, priority: str = "1") -> Action:
    return [
        ("Action", "Redirect"),
        ("Channel", channel),
        ("Context", context),
        ("Exten", exten),
        ("Priority", priority),
    ]


def _hangup(channel: str, cause: int) -> Action:
    return [("Action", "Hangup"), ("Channel", channel), ("Cause", str(int(cause)))]


def _check_exten(value: str) -> None:
    if not value or any(c in value for c in ",\r\n\t "):
        raise CodecError(f"invalid extension {value!r}")


def parse_ext_target(target: str) -> tuple[str, str]:
    """``"ext:<context>,<exten>"`` -> (context, exten)."""
    if not target.startswith("ext:"):
        raise CodecError(f"overflow target {target!r} is not 'ext:<context>,<exten>'")
    context, sep, exten = target[4:].partition(",")
    if not sep or not context or any(c in context for c in ",\r\n\t "):
        raise CodecError(f"overflow target {target!r} is not 'ext:<context>,<exten>'")
    _check_exten(exten)
    return context, exten


def encode_originate(
    *,
    channel: str,
    context: str,
    exten: str,
    variables: Mapping[str, str],
    channel_id: str,
    caller_id: str = "",
    timeout_s: float = 30.0,
    other_channel_id: str = "",
) -> Action:
    """An ``Originate`` (outbound callback), always ``Async: true`` (docs/ami-notes.md, defect 7).

    ``ChannelId`` pre-assigns the Uniqueid (and so the Linkedid) of the call (§6.17).
    """
    if not channel or not channel_id:
        raise CodecError("originate needs a channel and a channel_id")
    _check_exten(exten)
    if not context or any(c in context for c in ",\r\n\t "):
        raise CodecError(f"invalid context {context!r}")
    if timeout_s <= 0:
        raise CodecError("originate timeout must be positive")
    action: Action = [
        ("Action", "Originate"),
        ("Channel", channel),
        ("Context", context),
        ("Exten", exten),
        ("Priority", "1"),
        ("Timeout", str(int(timeout_s * 1000))),
        ("ChannelId", channel_id),
    ]
    if other_channel_id:
        action.append(("OtherChannelId", other_channel_id))
    if caller_id:
        action.append(("CallerID", caller_id))
    for key, value in variables.items():
        if not key or "=" in key or any(c in key for c in ",\r\n"):
            raise CodecError(f"invalid channel variable name {key!r}")
        action.append(("Variable", f"{key}={value}"))
    action.append(("Async", "true"))
    return action
