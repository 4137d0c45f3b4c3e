"""The real-Asterisk lab: a throw-away Asterisk configuration, the processes, an AMI client.

Invariants:
- ``deploy/asterisk/manager.conf`` and ``extensions.conf`` are copied unchanged; what the
  lab needs on top is *appended* (``[general](+)`` with a loopback port, a ``lab`` AMI
  user that sees every event) or *included* (``lab-extensions.conf``: agent phones and the
  callers' trunk).  A test that passes here passes on the files an admin installs.
- Everything Asterisk writes (run, log, spool, lib, db) lives under the lab directory;
  nothing on the machine outside it is read or changed except the installed modules.
- Agent phones are Local channels (no pjproject): the device ``Local/TALK-<s>-<id>@lab-agents``
  answers and talks ``s`` seconds, ``Local/MUTE-<id>@lab-agents`` rings and never answers,
  ``Local/BUSY-<id>@lab-agents`` is busy.
- Callers are ``Originate Local/<DNIS>@lab-trunk`` with ``Application: Wait`` (how long the
  caller stays) and ``OtherChannelId`` (the Uniqueid of the leg that runs ``acd-inbound``),
  so a test knows each call's id (``<server>/<OtherChannelId>``) before it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import socket
import struct
import subprocess
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cti.wire import AmiParser, Message, encode

PREFIX_ENV = "ASTERISK_PREFIX"
AMI_ENV = "ASTERISK_AMI"  # host:port of a staging PBX instead of a lab Asterisk
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy" / "asterisk"
SERVER_NAME = "lab"
SWITCHBOARD_USER = "switchboard"
LAB_USER = "lab"
LAB_AGENT_CONTEXT = "lab-agents"
LAB_SECRET = "lab-observer-secret"  # loopback only, a throw-away Asterisk

# Modules that open network ports, need hardware or external services: never loaded, so
# the lab starts anywhere (and never collides with a PBX on the same host).
NOLOAD = [
    "chan_iax2.so",
    "chan_unistim.so",
    "chan_websocket.so",
    "chan_audiosocket.so",
    "chan_rtp.so",
    "pbx_dundi.so",
    "res_phoneprov.so",
    "res_hep.so",
    "res_hep_rtcp.so",
    "res_stun_monitor.so",
    "res_calendar.so",
    "res_smdi.so",
    "res_statsd.so",
    "res_prometheus.so",
    "res_config_pgsql.so",
    "cdr_pgsql.so",
    "cel_pgsql.so",
    "res_rtp_multicast.so",
    "app_festival.so",
    "res_websocket_client.so",
    "res_aeap.so",
    "res_speech_aeap.so",
]

LAB_EXTENSIONS = """\
; Lab only (tests/asterisk): agent phones and the callers' trunk.  Not for a real PBX.

[lab-agents]
; Local/TALK-<seconds>-<agent>@lab-agents: answers at once, talks, hangs up.
exten => _TALK-.,1,Answer()
 same => n,Wait(${CUT(EXTEN,-,2)})
 same => n,Hangup()
; Local/MUTE-<agent>@lab-agents: rings and never answers.
exten => _MUTE-.,1,Ringing()
 same => n,Wait(3600)
 same => n,Hangup()
; Local/BUSY-<agent>@lab-agents: busy.
exten => _BUSY-.,1,Busy(10)
 same => n,Hangup()

[lab-overflow]
; An overflow target (queue overflow_target "ext:lab-overflow,<exten>"): says it was
; reached, then keeps the caller until the caller hangs up.
exten => _X.,1,UserEvent(LabOverflow,Target: ${EXTEN})
 same => n,Answer()
 same => n,Wait(3600)
 same => n,Hangup()

[lab-trunk]
; A trunk call for the service number ${EXTEN}; LAB_GREETING (an absolute path without
; extension) becomes the greeting the deployed dialplan plays.
exten => _X.,1,ExecIf($["${LAB_GREETING}" != ""]?Set(ACD_GREETING=${LAB_GREETING}))
 same => n,Goto(acd-inbound,${EXTEN},1)
"""


def require_asterisk() -> None:
    """Skip the calling test module unless ``ASTERISK_PREFIX`` is set (one line, at collection)."""
    import pytest

    if not os.environ.get(PREFIX_ENV) and not os.environ.get(AMI_ENV):
        pytest.skip(
            f"real-Asterisk suite: set {PREFIX_ENV} to an installed Asterisk 22 "
            f"or {AMI_ENV} to a staging PBX (make test-asterisk; docs/asterisk.md)",
            allow_module_level=True,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_wav(path: Path, seconds: float, tone_hz: float | None = None) -> None:
    """8 kHz 16-bit mono: silence, or a quiet tone (what Asterisk plays without transcoding)."""
    rate = 8000
    frames = bytearray()
    for i in range(int(seconds * rate)):
        v = 0 if tone_hz is None else int(2000 * math.sin(2 * math.pi * tone_hz * i / rate))
        frames += struct.pack("<h", v)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


@dataclass
class LabConfig:
    """The files of one lab Asterisk under ``root``."""

    prefix: Path
    root: Path
    ami_port: int
    switchboard_secret: str = ""

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "asterisk.conf"

    @property
    def greeting(self) -> Path:
        """The greeting recording, without extension (as Playback() takes it)."""
        return self.root / "sounds" / "greeting"

    def write(self, greeting_s: float = 3.0) -> None:
        etc = self.root / "etc"
        for sub in ("etc", "run", "log", "spool", "lib", "db", "keys", "agi", "moh", "sounds"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        modules = self.prefix / "lib" / "asterisk" / "modules"
        (etc / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {etc}\n"
            f"astmoddir => {modules}\n"
            f"astvarlibdir => {self.root / 'lib'}\n"
            f"astdbdir => {self.root / 'db'}\n"
            f"astkeydir => {self.root / 'keys'}\n"
            f"astdatadir => {self.prefix / 'var' / 'lib' / 'asterisk'}\n"  # its documentation
            f"astagidir => {self.root / 'agi'}\n"
            f"astspooldir => {self.root / 'spool'}\n"
            f"astrundir => {self.root / 'run'}\n"
            f"astlogdir => {self.root / 'log'}\n"
            f"astsbindir => {self.prefix / 'sbin'}\n"
            "[options]\n"
            "verbose = 0\n"
            "debug = 0\n"
            "nocolor = yes\n"
            "highpriority = no\n"
            "transmit_silence = no\n"
            "cache_media_frames = yes\n"
        )
        (etc / "modules.conf").write_text(
            "[modules]\nautoload = yes\n" + "".join(f"noload => {m}\n" for m in NOLOAD)
        )
        (etc / "logger.conf").write_text(
            "[general]\n[logfiles]\nmessages.log => notice,warning,error\n"
        )
        # The deployed AMI user unchanged; the lab appends its port and an observer user.
        deployed = (DEPLOY / "manager.conf").read_text()
        self.switchboard_secret = _ini_value(deployed, SWITCHBOARD_USER, "secret")
        (etc / "manager.conf").write_text(
            deployed
            + "\n; --- appended by tests/asterisk (lab only) ---\n"
            + f"[general](+)\nport = {self.ami_port}\nbindaddr = 127.0.0.1\n\n"
            + f"[{LAB_USER}]\nsecret = {LAB_SECRET}\n"
            + "deny = 0.0.0.0/0.0.0.0\npermit = 127.0.0.1/255.255.255.255\n"
            + "read = all\nwrite = all\nwritetimeout = 5000\n"
        )
        (etc / "extensions.conf").write_text(
            (DEPLOY / "extensions.conf").read_text()
            + "\n; --- appended by tests/asterisk (lab only) ---\n"
            + "#include lab-extensions.conf\n"
        )
        (etc / "lab-extensions.conf").write_text(LAB_EXTENSIONS)
        # MusicOnHold(default) returns at once without a class: one over a generated file.
        write_wav(self.root / "moh" / "hold.wav", 10.0, tone_hz=440.0)
        (etc / "musiconhold.conf").write_text(
            f"[default]\nmode = files\ndirectory = {self.root / 'moh'}\n"
        )
        write_wav(self.greeting.with_suffix(".wav"), greeting_s)
        (etc / "cdr.conf").write_text("[general]\nenable = no\n")
        (etc / "cel.conf").write_text("[general]\nenable = no\n")


def _ini_value(text: str, section: str, key: str) -> str:
    current = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and "]" in line:
            current = line[1 : line.index("]")]
        elif current == section and "=" in line:
            k, v = (part.strip() for part in line.split("=", 1))
            if k == key:
                return v
    raise KeyError(f"{section}.{key} not in manager.conf")


class Process:
    """A child process in its own process group, stopped (and reaped) by ``stop``."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.proc = subprocess.Popen(
            args,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log_file.close()
        return self.proc.returncode


def start_asterisk(cfg: LabConfig) -> Process:
    """``asterisk -f -n -C <conf>``: foreground, no console, no colours."""
    binary = cfg.prefix / "sbin" / "asterisk"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cfg.root)}
    return Process(
        [str(binary), "-f", "-n", "-C", str(cfg.conf)],
        env=env,
        cwd=cfg.root,
        log=cfg.root / "log" / "asterisk.out",
    )


def stop_embedded_postgres(pgdata: Path) -> bool:
    """Stop an embedded PostgreSQL still running in ``pgdata``; True if one was running.

    The service leaves it running after SIGTERM (a known defect); the suite cleans up what
    it started.  pgserver runs PostgreSQL as the user ``pgserver`` when started by root.
    """
    if not (pgdata / "postmaster.pid").exists():
        return False
    try:
        import pgserver
    except ImportError:
        return False
    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    if not pg_ctl.exists():
        return False
    subprocess.run(
        [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        capture_output=True,
        timeout=30,
        check=False,
        user="pgserver" if os.geteuid() == 0 else None,
    )
    return True


@dataclass
class AmiClient:
    """A small AMI session: actions with ActionIDs, every event recorded with its arrival."""

    host: str
    port: int
    username: str
    secret: str
    events: list[Message] = field(default_factory=list)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _task: asyncio.Task[None] | None = None
    _pending: dict[str, asyncio.Future[Message]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def connect(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self._task = asyncio.create_task(self._run())
        answer = await self.action("Login", Username=self.username, Secret=self.secret, Events="on")
        if answer.name != "Success":
            raise RuntimeError(f"AMI login refused: {answer.get('Message')}")

    async def fully_booted(self, timeout: float = 60.0) -> None:
        """Wait for ``FullyBooted``: AMI answers before the modules (the dialplan) are loaded."""
        deadline = time.monotonic() + timeout
        while not self.of("FullyBooted"):
            if time.monotonic() > deadline:
                raise AssertionError("Asterisk did not send FullyBooted")
            await asyncio.sleep(0.05)

    async def _run(self) -> None:
        assert self._reader is not None
        parser = AmiParser(expect_banner=True)
        while data := await self._reader.read(65536):
            for msg in parser.feed(data):
                if msg.kind == "response":
                    fut = self._pending.pop(msg.get("ActionID"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif msg.kind == "event":
                    self.events.append(msg)

    async def action(self, name: str, **headers: str) -> Message:
        return await self.send(name, headers)

    async def send(self, name: str, headers: dict[str, str], timeout: float = 10.0) -> Message:
        """Send one action and wait for its response (matched by ActionID)."""
        assert self._writer is not None
        action_id = f"lab-{next(self._ids)}"
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = fut
        self._writer.write(encode({"Action": name, "ActionID": action_id, **headers}))
        await self._writer.drain()
        return await asyncio.wait_for(fut, timeout)

    async def command(self, command: str) -> Message:
        return await self.action("Command", Command=command)

    def of(self, name: str, pred: Callable[[Message], bool] | None = None) -> list[Message]:
        return [e for e in self.events if e.name == name and (pred is None or pred(e))]

    def user_events(self, kind: str, **match: str) -> list[Message]:
        return self.of(
            "UserEvent",
            lambda e: e.get("UserEvent") == kind and all(e.get(k) == v for k, v in match.items()),
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self._task
