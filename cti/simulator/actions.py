"""AMI action handlers of the simulator, with Asterisk 22's exact response texts.

Invariants:
- Every handler writes its response before it causes any event (§6.9; every § here is a
  section of the recordings' notes, tests/fixtures/ami/README.md).
- Texts come from the captures (§6.23, ``errors.ami``, ``queries-*.ami``); list
  actions answer ``EventList: start``, items carrying the ActionID, then ``…Complete``
  with ``ListItems`` (``StatusComplete`` also ``Items``; ``Status`` items put
  ``Privilege: Call`` first and the ActionID last, §6.6).
- A secret is compared in constant time and never logged.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cti.simulator.world import AMI_VERSION, ASTERISK_VERSION, STATE_DESC, Chan
from cti.wire import Message

if TYPE_CHECKING:
    from cti.simulator.engine import AsteriskSimulator
    from cti.simulator.session import AmiSession

log = logging.getLogger(__name__)

Handler = Callable[["AsteriskSimulator", "AmiSession", Message, str], None]

# Write classes an action needs (any one of them); actions not listed need none.
WRITE_CLASSES: dict[str, frozenset[str]] = {
    "originate": frozenset({"originate"}),
    "redirect": frozenset({"call"}),
    "setvar": frozenset({"call"}),
    "hangup": frozenset({"system", "call"}),
    "blindtransfer": frozenset({"call"}),
    "getvar": frozenset({"call", "reporting"}),
    "status": frozenset({"system", "call", "reporting"}),
    "coreshowchannels": frozenset({"system", "reporting"}),
    "userevent": frozenset({"user"}),
    "corestatus": frozenset({"system", "reporting"}),
    "coresettings": frozenset({"system", "reporting"}),
    "command": frozenset({"command"}),
    "bridgelist": frozenset({"reporting"}),
    "bridgeinfo": frozenset({"reporting"}),
}

SYNOPSIS: dict[str, tuple[str, str]] = {
    "BlindTransfer": ("Blind transfer channel(s) to the given destination", "call,all"),
    "BridgeInfo": ("Get information about a bridge.", "reporting,all"),
    "BridgeList": ("Get a list of bridges in the system.", "reporting,all"),
    "Command": ("Execute Asterisk CLI Command.", "command,all"),
    "CoreSettings": ("Show PBX core settings (version etc).", "system,reporting,all"),
    "CoreShowChannels": ("List currently active channels.", "system,reporting,all"),
    "CoreStatus": ("Show PBX core status variables.", "system,reporting,all"),
    "Events": ("Control Event Flow.", "<none>"),
    "Getvar": ("Gets a channel variable or function value.", "call,reporting,all"),
    "Hangup": ("Hangup channel.", "system,call,all"),
    "ListCommands": ("List available manager commands.", "<none>"),
    "Login": ("Login Manager.", "<none>"),
    "Logoff": ("Logoff Manager.", "<none>"),
    "Originate": ("Originate a call.", "originate,all"),
    "Ping": ("Keepalive command.", "<none>"),
    "Redirect": ("Redirect (transfer) a call.", "call,all"),
    "Setvar": ("Sets a channel variable or function value.", "call,all"),
    "Status": ("List channel status.", "system,call,reporting,all"),
    "UserEvent": ("Send an arbitrary event.", "user,all"),
}


def _ok(s: AmiSession, aid: str, message: str) -> None:
    s.respond("Success", aid, [("Message", message)])


def _err(s: AmiSession, aid: str, message: str) -> None:
    s.respond("Error", aid, [("Message", message)])


def _security_event(
    sim: AsteriskSimulator,
    s: AmiSession,
    name: str,
    account: str,
    extra: list[tuple[str, str]],
    version: int = 1,
) -> None:
    if not sim.wants(name):
        return
    now = time.time()
    tv = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}+0000"
    )
    session_tv = tv if s.authed else "1970-01-01T00:00:00.000+0000"
    headers = [
        ("EventTV", tv),
        ("Severity", "Informational" if name == "SuccessfulAuth" else "Error"),
        ("Service", "AMI"),
        ("EventVersion", str(version)),
        ("AccountID", account),
        ("SessionID", s.session_id),
        ("LocalAddress", f"IPV4/TCP/{s.local[0]}/{s.local[1]}"),
        ("RemoteAddress", f"IPV4/TCP/{s.peer[0]}/{s.peer[1]}"),
        *extra,
        ("SessionTV", session_tv),
    ]
    sim.emit_event(name, "".join(f"{k}: {v}\r\n" for k, v in headers))


# ---------------------------------------------------------------- session actions


def a_login(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    if s.authed:
        _ok(s, aid, "Already authenticated")
        return
    username = msg.get("Username")
    secret = msg.get("Secret")
    user = sim.users.get(username)
    if user is None or not hmac.compare_digest(secret.encode(), user.secret.encode()):
        # Asterisk sleeps ~1 s before answering a failed login, then closes (§6.3).
        log.info("sim %s: failed AMI login for user %r", sim.name, username)
        if user is None:
            _security_event(sim, s, "InvalidAccountID", username, [])
        else:
            _security_event(sim, s, "InvalidPassword", username, [], version=2)
        s.hold()

        def fail() -> None:
            if not s.closing:
                _err(s, aid, "Authentication failed")
                s.close_after_write()

        asyncio.get_running_loop().call_later(sim.login_fail_delay_s, fail)
        return
    s.login(username, user, msg.get("Events", "on"))
    sim.logged_in(s)
    _ok(s, aid, "Authentication accepted")
    if s.receives_class("system"):
        # Written straight to the session: no Timestamp, not subject to eventfilter (§5).
        up = sim.uptime_s()
        s.write(
            (
                f"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: {up}\r\n"
                f"LastReload: {up}\r\nStatus: Fully Booted\r\n\r\n"
            ).encode()
        )
    _security_event(sim, s, "SuccessfulAuth", username, [("UsingPassword", "0")])


def a_logoff(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    s.respond("Goodbye", aid, [("Message", "Thanks for all the fish.")])
    s.close_after_write()


def a_ping(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    s.respond("Success", aid, [("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")])


def a_events(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    mask = msg.get("EventMask", "on")
    s.set_events(mask)
    sim.events_changed()
    s.respond("Success", aid, [("Events", "On" if s.events_on else "Off")])


def a_listcommands(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    s.respond(
        "Success",
        aid,
        [(name, f"{syn}  (Priv: {priv})") for name, (syn, priv) in sorted(SYNOPSIS.items())],
    )


def a_coresettings(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    s.respond(
        "Success",
        aid,
        [
            ("AMIversion", AMI_VERSION),
            ("AsteriskVersion", ASTERISK_VERSION),
            ("SystemName", sim.system_name),
            ("CoreMaxCalls", "0"),
            ("CoreMaxLoadAvg", "0.000000"),
            ("CoreRunUser", ""),
            ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"),
            ("CoreRealTimeEnabled", "No"),
            ("CoreCDRenabled", "No"),
            ("CoreHTTPenabled", "No"),
            ("SoundsSearchCustomDir", "No"),
        ],
    )


def a_corestatus(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    s.respond("Success", aid, list(sim.core_status().items()))


def a_command(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    cmd = " ".join(msg.get("Command").split())
    if cmd == "core show version":
        out = f"Asterisk {ASTERISK_VERSION} built by switchboard @ simulator on a x86_64 running Linux"
        s.respond("Success", aid, [("Message", "Command output follows"), ("Output", out)])
    elif cmd == "core show uptime seconds":
        up = sim.uptime_s()
        s.respond(
            "Success",
            aid,
            [
                ("Message", "Command output follows"),
                ("Output", f"System uptime: {up}"),
                ("Output", f"Last reload: {up}"),
            ],
        )
    else:
        s.respond(
            "Error",
            aid,
            [
                ("Message", "Command output follows"),
                (
                    "Output",
                    f"No such command '{cmd}' (type 'core show help {cmd}' for other possible commands)",
                ),
            ],
        )


def a_userevent(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    name = msg.get("UserEvent")
    if not name:
        _err(s, aid, "UserEvent header missing")
        return
    _ok(s, aid, "Event Sent")
    # §6.28: no channel block; the sender's ActionID, then the custom headers.
    skip = {"action", "userevent", "actionid"}
    extra = "".join(f"{k}: {v}\r\n" for k, v in msg.headers if k.lower() not in skip)
    if sim.wants("UserEvent"):
        sim.emit_event(
            "UserEvent", f"UserEvent: {name}\r\n" + (f"ActionID: {aid}\r\n" if aid else "") + extra
        )


# ---------------------------------------------------------------- channel actions


def _channel(
    sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str, missing: str, not_found: str
) -> Chan | None:
    name = msg.get("Channel")
    if not name:
        _err(s, aid, missing)
        return None
    ch = sim.find_channel(name)
    if ch is None:
        _err(s, aid, not_found.format(name=name))
        return None
    return ch


def a_setvar(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    var = msg.get("Variable")
    if not var:
        _err(s, aid, "No variable specified")
        return
    value = msg.get("Value")
    if not msg.get("Channel"):
        sim.globals[var] = value
        _ok(s, aid, "Variable Set")
        return
    ch = _channel(sim, s, msg, aid, "No channel specified", "No such channel")
    if ch is None:
        return
    _ok(s, aid, "Variable Set")
    sim.action_setvar(ch, var, value)


def _read_var(sim: AsteriskSimulator, ch: Chan, var: str) -> str:
    if var == "BRIDGEPEER":
        if ch.bridge is None:
            return ""
        return ",".join(c.name for c in ch.bridge.chans if c is not ch)
    if var in ("CHANNEL", "CHANNEL(name)"):
        return ch.name
    if var in ("UNIQUEID", "CHANNEL(uniqueid)"):
        return ch.uniqueid
    if var == "CHANNEL(linkedid)":
        return ch.linkedid
    if var == "CALLERID(num)":
        return ch.cid_num
    if var == "CALLERID(name)":
        return ch.cid_name
    return ch.vars.get(var, sim.globals.get(var, ""))


def a_getvar(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    var = msg.get("Variable")
    if not var:
        _err(s, aid, "No variable specified")
        return
    if not msg.get("Channel"):
        s.respond("Success", aid, [("Variable", var), ("Value", sim.globals.get(var, ""))])
        return
    ch = _channel(sim, s, msg, aid, "No channel specified", "No such channel")
    if ch is None:
        return
    s.respond("Success", aid, [("Variable", var), ("Value", _read_var(sim, ch, var))])


def a_redirect(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    ch = _channel(sim, s, msg, aid, "Channel not specified", "Channel does not exist: {name}")
    if ch is None:
        return
    context, exten = msg.get("Context"), msg.get("Exten")
    if not context:
        _err(s, aid, "Context not specified")
        return
    if not exten:
        _err(s, aid, "Exten not specified")
        return
    try:
        priority = int(msg.get("Priority") or "1")
    except ValueError:
        _err(s, aid, "Invalid priority")
        return
    _ok(s, aid, "Redirect successful")
    sim.action_redirect(ch, context, exten, priority)


def a_hangup(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    ch = _channel(sim, s, msg, aid, "No channel specified", "No such channel")
    if ch is None:
        return
    try:
        cause = int(msg.get("Cause") or "16")
    except ValueError:
        cause = 16
    _ok(s, aid, "Channel Hungup")
    sim.action_hangup(ch, cause)


def a_blindtransfer(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    ch = _channel(sim, s, msg, aid, "No channel specified", "Channel specified does not exist")
    if ch is None:
        return
    context, exten = msg.get("Context"), msg.get("Exten")
    if not exten:
        _err(s, aid, "No extension specified")
        return
    error = sim.action_blind_transfer(ch, context, exten)
    if error:
        _err(s, aid, error)
        return
    _ok(s, aid, "Transfer succeeded")
    sim.blind_transfer_effects(ch, context or ch.context, exten)


def a_originate(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    if not msg.get("Channel"):
        _err(s, aid, "Channel not specified")
        return
    if not msg.get("Exten") and not msg.get("Application"):
        _err(s, aid, "Exten not specified")
        return
    if msg.get("Async") and msg.get("Async").lower() in ("true", "yes", "1", "on"):
        _ok(s, aid, "Originate successfully queued")
        error = sim.originate(msg)
        if error:
            log.warning("sim %s: async Originate could not start: %s", sim.name, error)
        return
    # Synchronous: the session answers only when the originated channel answered or failed,
    # and processes nothing else meanwhile (docs/ami-notes.md: one action at a time).
    s.hold()
    answered: list[bool] = []

    def done(ok: bool) -> None:
        if answered:
            return
        answered.append(ok)
        if ok:
            _ok(s, aid, "Originate successfully queued")
        else:
            _err(s, aid, "Originate failed")
        s.release()

    error = sim.originate(msg, done)
    if error and not answered:
        answered.append(False)
        _err(s, aid, error)
        s.release()


# ---------------------------------------------------------------- list actions


def _list_start(s: AmiSession, aid: str, message: str) -> None:
    s.respond("Success", aid, [("EventList", "start"), ("Message", message)])


def _aid(aid: str) -> list[tuple[str, str]]:
    return [("ActionID", aid)] if aid else []


def _hms(seconds: float) -> str:
    n = int(seconds)
    return f"{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}"


def a_coreshowchannels(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    _list_start(s, aid, "Channels will follow")
    now = time.monotonic()
    items = []
    chans = sim.all_channels()
    for ch in chans:
        items.append(
            [
                ("Event", "CoreShowChannel"),
                *_aid(aid),
                *ch.items(),
                ("Application", ch.app),
                ("ApplicationData", ch.appdata),
                ("Duration", _hms(now - ch.created)),
                ("BridgeId", ch.bridge.id if ch.bridge else ""),
            ]
        )
    items.append(
        [
            ("Event", "CoreShowChannelsComplete"),
            *_aid(aid),
            ("EventList", "Complete"),
            ("ListItems", str(len(chans))),
        ]
    )
    s.write_items(items)


def a_status(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    name = msg.get("Channel")
    if name:
        ch = sim.find_channel(name)
        if ch is None:
            _err(s, aid, "No such channel")
            return
        chans = [ch]
    else:
        chans = sim.all_channels()
    wanted = [v.strip() for v in msg.get("Variables").split(",") if v.strip()]
    _list_start(s, aid, "Channel status will follow")
    now = time.monotonic()
    items = []
    for ch in chans:
        tech = ch.name.split("/", 1)[0]
        item = [
            ("Event", "Status"),
            ("Privilege", "Call"),
            *ch.items(),
            ("Type", tech),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", ch.co_num),
            ("EffectiveConnectedLineName", ch.co_name),
            ("TimeToHangup", "0"),
            ("BridgeID", ch.bridge.id if ch.bridge else ""),
            ("Application", ch.app),
            ("Data", ch.appdata),
            ("Nativeformats", "(slin)" if tech == "Local" else "(ulaw)"),
            ("Readformat", "slin" if tech == "Local" else "ulaw"),
            ("Readtrans", ""),
            ("Writeformat", "slin" if tech == "Local" else "ulaw"),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(int(now - ch.created))),
        ]
        item.extend(("Variable", f"{v}={_read_var(sim, ch, v)}") for v in wanted)
        item.extend(_aid(aid))
        items.append(item)
    n = str(len(chans))
    items.append(
        [
            ("Event", "StatusComplete"),
            *_aid(aid),
            ("EventList", "Complete"),
            ("ListItems", n),
            ("Items", n),
        ]
    )
    s.write_items(items)


def a_bridgelist(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    _list_start(s, aid, "Bridge listing will follow")
    bridges = sim.all_bridges()
    items = [[("Event", "BridgeListItem"), *_aid(aid), *b.items()] for b in bridges]
    items.append(
        [
            ("Event", "BridgeListComplete"),
            *_aid(aid),
            ("EventList", "Complete"),
            ("ListItems", str(len(bridges))),
        ]
    )
    s.write_items(items)


def a_bridgeinfo(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    bid = msg.get("BridgeUniqueid")
    if not bid:
        _err(s, aid, "Bridge identifier not provided")
        return
    br = sim.find_bridge(bid)
    if br is None:
        _err(s, aid, f"Bridge {bid} not found")
        return
    _list_start(s, aid, "Bridge channel listing will follow")
    items = [[("Event", "BridgeInfoChannel"), *_aid(aid), *c.items()] for c in br.chans]
    items.append(
        [
            ("Event", "BridgeInfoComplete"),
            *_aid(aid),
            ("EventList", "Complete"),
            ("ListItems", str(len(br.chans))),
            *br.items(),
        ]
    )
    s.write_items(items)


def a_devicestatelist(sim: AsteriskSimulator, s: AmiSession, msg: Message, aid: str) -> None:
    _list_start(s, aid, "Device State Changes will follow")
    s.write_items(
        [
            [
                ("Event", "DeviceStateListComplete"),
                *_aid(aid),
                ("EventList", "Complete"),
                ("ListItems", "0"),
            ]
        ]
    )


HANDLERS: dict[str, Handler] = {
    "login": a_login,
    "logoff": a_logoff,
    "ping": a_ping,
    "events": a_events,
    "listcommands": a_listcommands,
    "coresettings": a_coresettings,
    "corestatus": a_corestatus,
    "command": a_command,
    "userevent": a_userevent,
    "setvar": a_setvar,
    "getvar": a_getvar,
    "redirect": a_redirect,
    "hangup": a_hangup,
    "blindtransfer": a_blindtransfer,
    "originate": a_originate,
    "coreshowchannels": a_coreshowchannels,
    "status": a_status,
    "bridgelist": a_bridgelist,
    "bridgeinfo": a_bridgeinfo,
    "devicestatelist": a_devicestatelist,
}

_PRE_LOGIN = frozenset({"login", "logoff", "challenge"})


def dispatch(sim: AsteriskSimulator, s: AmiSession, msg: Message) -> None:
    action = msg.name
    key = action.lower()
    aid = msg.get("ActionID")
    if not s.authed and key not in _PRE_LOGIN:
        _err(s, aid, "Permission denied")
        _security_event(sim, s, "RequestNotAllowed", "", [("RequestType", f"Action: {action}")])
        return
    handler = HANDLERS.get(key)
    if handler is None:
        _err(
            s,
            aid,
            f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.",
        )
        return
    need = WRITE_CLASSES.get(key)
    user = s.user
    if need and user is not None and "all" not in user.write and not (need & user.write):
        _err(s, aid, "Permission denied")
        return
    handler(sim, s, msg, aid)


__all__ = ["HANDLERS", "STATE_DESC", "dispatch"]
