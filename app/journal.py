"""The outcome writer's journal: every row it accepts is in a file before it is accepted.

Why: the outcome writer batches rows in memory for up to ``flush_interval_s`` (and much
longer while PostgreSQL is away).  A process killed with SIGKILL (or OOM-killed) would
lose that backlog, and with it calls that the routing core had already finished.

What "acknowledged" means here: ``record_call`` / ``record_event`` / ``record_wrapup``
returned.  Before they return, the row has been handed to the kernel with one
``write(2)`` on an ``O_APPEND`` file descriptor (no ``fsync``, no database round trip:
a few microseconds on the routing path).  Data in the kernel's page cache outlives the
process, so a crash of the *process* loses no acknowledged row; a crash of the *host*
may lose what the kernel had not written yet (the database's own commits remain the
durable copy for that case).

Segments: ``journal-<ns>-<pid>-<seq>.jsonl`` in the spill directory, one JSON line per
row (the spill-file codec).  The live process holds an exclusive ``flock`` on each of
its open segments; a segment whose rows are all committed (or spilled, which fsyncs
them elsewhere) is deleted.  At start the writer claims every segment nobody holds a
lock on (a dead process's, even another process's sharing the directory on this host)
by renaming it to a spill file, and replays it *before* the live runtime restores its
calls, so a restart sees every acknowledged outcome in the database.  Replays are
harmless: every outcome write is idempotent.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PREFIX = "journal-"


class Segment:
    """One open journal file and how many of its rows are not yet safe elsewhere."""

    __slots__ = ("fd", "open_rows", "path", "rows")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.rows = 0  # written into it
        self.open_rows = 0  # written and not yet committed / spilled


class Journal:
    """Append-before-acknowledge log of the outcome writer's backlog (module docstring)."""

    def __init__(self, directory: Path, *, segment_rows: int = 20_000) -> None:
        self.directory = directory
        self.segment_rows = segment_rows
        self._current: Segment | None = None
        self._seq = itertools.count()
        self.failed = 0  # rows that could not be journaled (kept in memory only)

    def append(self, line: str) -> Segment | None:
        """Blocking but short: one ``write(2)`` of ``line``; the segment it went to."""
        try:
            seg = self._current
            if seg is None or seg.rows >= self.segment_rows:
                seg = self._rotate()
            os.write(seg.fd, (line + "\n").encode())
        except OSError as exc:
            self.failed += 1
            if self.failed == 1 or not self.failed % 1000:
                log.error(
                    "outcome journal: write failed (%s); %d rows unjournaled", exc, self.failed
                )
            return None
        seg.rows += 1
        seg.open_rows += 1
        return seg

    def release(self, seg: Segment | None) -> None:
        """One row of ``seg`` is committed or spilled: delete the segment once all are."""
        if seg is None:
            return
        seg.open_rows -= 1
        if seg.open_rows <= 0 and seg is not self._current:
            self._drop(seg)

    def close(self) -> None:
        """Clean stop: every row is committed or spilled, so no segment is needed."""
        if self._current is not None:
            self._drop(self._current)
            self._current = None

    def _rotate(self) -> Segment:
        old = self._current
        path = (
            self.directory / f"{_PREFIX}{time.time_ns():020d}-{os.getpid()}-{next(self._seq)}.jsonl"
        )
        self._current = Segment(path)
        if old is not None and old.open_rows <= 0:
            self._drop(old)
        return self._current

    @staticmethod
    def _drop(seg: Segment) -> None:
        try:
            seg.path.unlink(missing_ok=True)
        finally:
            os.close(seg.fd)  # unlinked first: nobody can claim it in between


def claim_orphans(directory: Path) -> list[Path]:
    """Blocking: rename every journal segment no live process holds into a spill file
    (``spill-…jsonl``), which the outcome writer then replays; returns the new paths."""
    claimed: list[Path] = []
    for path in sorted(directory.glob(f"{_PREFIX}*.jsonl")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process still writes it
            target = path.with_name("spill-" + path.name[len(_PREFIX) :])
            try:
                path.rename(target)
            except FileNotFoundError:
                continue
            claimed.append(target)
        finally:
            os.close(fd)
    if claimed:
        log.warning("outcome journal: %d segments of a stopped process to replay", len(claimed))
    return claimed
