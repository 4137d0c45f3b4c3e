"""Durable call outcomes, written in batches off the routing path.

Theory of operation:
- ``record_call`` / ``record_event`` / ``record_wrapup`` only append to an in-memory
  backlog (never await, never touch the database); a single flusher task owned by the
  writer drains it in batches of ``batch_size`` every ``flush_interval_s`` (sooner when a
  batch is full), one transaction per batch.
- Idempotent writes, so any batch may be retried or replayed: calls are upserted on
  ``call_id``; events are inserted with ``ON CONFLICT DO NOTHING`` on
  ``(call_id, at, kind)``; wrap-ups are updates.  Retrying a batch whose commit
  succeeded but whose acknowledgement was lost writes nothing twice.
- A wrap-up (disposition, notes, wrap-up end) may come before or after its call row:
  in the same batch it is merged into the row; if the row is already stored it is an
  UPDATE; if the row is not there yet it is *parked* in memory and merged when the row
  comes (the upsert never clears a disposition: ``COALESCE(new, stored)``).
- Transient failures (connection lost, server starting/stopping, timeouts) are retried
  with capped exponential backoff; the batch stays at the head of the backlog.
  A batch rejected for its *data* (constraint / data errors) is split row by row; rows
  PostgreSQL refuses on their own are appended to ``rejected-*.jsonl`` in ``spill_dir``
  and logged: kept for inspection, never silently dropped, never retried forever.
- Each stored call whose number belongs to a customer also upserts its interaction
  (``app.customers.interactions``), in the same transaction: one per call id.
- When the backlog exceeds ``max_pending`` rows, new rows go to an append-only spill
  file (``spill-*.jsonl``, one JSON object per line) instead of memory.  Once the
  database keeps up again (and at ``start``) closed spill files are replayed: renamed to
  ``*.replaying``, loaded, and deleted only after every row in them is committed.  A
  crash during replay leaves the file to be replayed again: harmless, writes are
  idempotent.
- ``close`` flushes everything it can within ``close_timeout_s``; whatever is still
  unwritten (database down) is spilled, so a clean stop never loses an outcome.
- A crash does not lose the backlog either: once ``start`` ran, every row is appended to
  the journal (``app.journal``: one ``write(2)``, no ``fsync``, no database) before
  ``record_*`` returns, and a row leaves the journal only once it is committed or
  spilled.  ``start`` replays what a killed process left (its journal and spill files)
  *before* it returns, so the live runtime's restore, which starts next, finds every
  outcome that process acknowledged already in the database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers import interactions
from app.journal import Journal, Segment, claim_orphans
from app.models import Base, Call
from app.outcome_rows import CallEventRow as CallEventRow
from app.outcome_rows import CallOutcome as CallOutcome
from app.outcome_rows import seconds_between
from app.outcome_rows import to_dt as to_dt
from app.retention import RETENTION_DAYS as RETENTION_DAYS
from app.retention import PurgeReport as PurgeReport
from app.retention import purge_expired as purge_expired
from app.stats import quantile
from app.writer import Flusher, execute_in_slices, is_transient
from cti.ami import backoff_delay

log = logging.getLogger(__name__)


# --- spill-file codec -----------------------------------------------------------------------

Kind = Literal["call", "event", "wrapup"]
_DATETIME_FIELDS = frozenset(
    {"arrived_at", "first_offered_at", "answered_at", "ended_at", "wrapup_ended_at", "at"}
)


def _encode(kind: Kind, row: dict[str, Any]) -> str:
    out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    return json.dumps({"k": kind, "r": out}, ensure_ascii=False, separators=(",", ":"))


def _decode(line: str) -> tuple[Kind, dict[str, Any]]:
    obj = json.loads(line)
    row = {
        k: (datetime.fromisoformat(v) if k in _DATETIME_FIELDS and v is not None else v)
        for k, v in obj["r"].items()
    }
    kind: Kind = obj["k"]
    if kind not in ("call", "event", "wrapup"):
        raise ValueError(f"unknown spill record kind {kind!r}")
    return kind, row


# --- the writer -----------------------------------------------------------------------------


@dataclass(slots=True, eq=False)  # identity, not value: the backlog removes this item
class _Item:
    kind: Kind
    row: dict[str, Any]
    enqueued: float  # clock() when recorded, for the lag statistic
    source: Path | None = None  # spill file it was replayed from
    segment: Segment | None = None  # journal segment holding its copy until committed


@dataclass(frozen=True, slots=True)
class OutcomeStats:
    rows_written: int  # rows committed (calls + events + wrap-ups)
    pending: int  # rows in memory, not yet committed
    retries: int  # failed batch attempts that were retried
    spilled: int  # rows diverted to spill files (overflow or unclean database at close)
    replayed: int  # rows read back from spill files
    rejected: int  # rows PostgreSQL refused for their data (kept in rejected-*.jsonl)
    parked_wrapups: int  # wrap-ups waiting for their call row
    batches: int
    lag_p50_s: float | None  # record -> commit
    lag_p99_s: float | None


class OutcomeWriter:
    """Batched, retrying, spilling writer of call outcomes (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        spill_dir: Path,
        clock: Callable[[], float] = time.time,
        max_pending: int = 100_000,
        spill_file_rows: int = 50_000,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 5.0,
        close_timeout_s: float = 10.0,
        parked_ttl_s: float = 24 * 3600.0,
    ) -> None:
        if batch_size < 1 or flush_interval_s <= 0 or max_pending < batch_size:
            raise ValueError(
                "need batch_size >= 1, flush_interval_s > 0, max_pending >= batch_size"
            )
        self._sessionmaker = sessionmaker
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._spill_dir = spill_dir
        self._clock = clock
        self._max_pending = max_pending
        self._spill_file_rows = spill_file_rows
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._close_timeout_s = close_timeout_s
        self._parked_ttl_s = parked_ttl_s

        self._pending: deque[_Item] = deque()
        self._overflow: list[_Item] = []  # waiting to be appended to the spill file
        self._parked: dict[str, _Item] = {}  # call_id -> wrap-up without a stored call row
        self._replaying: dict[Path, int] = {}  # spill file -> its rows not yet committed
        self._spill_file: Path | None = None
        self._spill_file_count = 0
        self._spill_files_exist = True  # unknown at start: look once
        self._file_seq = itertools.count()

        self._journal: Journal | None = None  # from ``start`` on
        self._flusher = Flusher("outcome-writer")
        self._closing = False
        self._closed = False

        self._lags: deque[float] = deque(maxlen=10_000)
        self._rows_written = 0
        self._retries = 0
        self._spilled = 0
        self._replayed = 0
        self._rejected = 0
        self._batches = 0

    # --- public API -------------------------------------------------------------------------

    def record_call(self, row: CallOutcome) -> None:
        """Queue one call's outcome (non-blocking).  Raises ``ValueError`` for bad rows."""
        row.validate()
        self._enqueue("call", row.to_row())

    def record_event(self, ev: CallEventRow) -> None:
        """Queue one lifecycle event (non-blocking).  Raises ``ValueError`` for bad rows."""
        ev.validate()
        self._enqueue("event", ev.to_row())

    def record_wrapup(
        self,
        call_id: str,
        *,
        disposition_code: str | None,
        notes: str | None,
        wrapup_ended_at: datetime | None,
    ) -> None:
        """Queue the agent's wrap-up of ``call_id`` (before or after the call row)."""
        if not call_id:
            raise ValueError("wrap-up needs a call_id")
        if wrapup_ended_at is not None and wrapup_ended_at.tzinfo is None:
            raise ValueError(f"call {call_id}: wrapup_ended_at must be timezone-aware")
        self._enqueue(
            "wrapup",
            {
                "call_id": call_id,
                "disposition_code": disposition_code,
                "notes": notes,
                "wrapup_ended_at": wrapup_ended_at,
            },
        )

    async def start(self) -> None:
        """Start the flusher; closed spill files left by an earlier run are replayed."""
        if self._flusher.started:
            raise RuntimeError("OutcomeWriter already started")
        await asyncio.to_thread(self._spill_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(claim_orphans, self._spill_dir)
        await self._replay_now()
        self._journal = Journal(self._spill_dir)
        self._flusher.start(self._run())

    async def _replay_now(self) -> None:
        """Write what an earlier run left (spill and journal files) before routing starts,
        within ``close_timeout_s`` while the database answers; the rest is replayed by
        the flusher later."""
        deadline = time.monotonic() + self._close_timeout_s
        while time.monotonic() < deadline:
            claimed = await asyncio.to_thread(self._claim_spill_file)
            if claimed is None:
                return
            path, items = claimed
            try:
                for i in range(0, len(items), self._batch_size):
                    await self._write(items[i : i + self._batch_size])
            except Exception as exc:  # noqa: BLE001 — the file stays; the flusher retries it
                log.warning("outcome writer: replay of %s at start failed (%s)", path.name, exc)
                return
            self._replayed += len(items)
            self._rows_written += len(items)
            await asyncio.to_thread(path.unlink, missing_ok=True)
            log.info("outcome writer: replayed %d rows from %s at start", len(items), path.name)

    async def close(self) -> None:
        """Flush everything (spilling what the database will not take in time); idempotent."""
        if self._closed:
            return
        self._closing = True
        self._flusher.wake()
        try:
            await self._flusher.stop(finish_within_s=self._close_timeout_s)
        except TimeoutError:
            log.warning(
                "outcome writer: database did not take the backlog within %.1f s; spilling",
                self._close_timeout_s,
            )
        leftover = [i for i in self._pending if i.source is None]
        leftover += self._overflow + list(self._parked.values())
        self._pending.clear()
        self._overflow = []
        self._parked.clear()
        if leftover:
            await asyncio.to_thread(self._append_spill, leftover)
            log.warning(
                "outcome writer: %d rows spilled at close, replayed next start", len(leftover)
            )
        if self._journal is not None:
            self._journal.close()  # every row is committed or spilled now
        self._closed = True

    @property
    def stats(self) -> OutcomeStats:
        lags = sorted(self._lags)
        return OutcomeStats(
            rows_written=self._rows_written,
            pending=len(self._pending) + len(self._overflow),
            retries=self._retries,
            spilled=self._spilled,
            replayed=self._replayed,
            rejected=self._rejected,
            parked_wrapups=len(self._parked),
            batches=self._batches,
            lag_p50_s=quantile(lags, 0.50) if lags else None,
            lag_p99_s=quantile(lags, 0.99) if lags else None,
        )

    # --- internals: enqueue and spill -------------------------------------------------------

    def _enqueue(self, kind: Kind, row: dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError("OutcomeWriter is closed")
        item = _Item(kind, row, self._clock())
        if self._journal is not None:
            item.segment = self._journal.append(_encode(kind, row))
        if len(self._pending) >= self._max_pending or self._overflow:
            self._overflow.append(item)  # the flusher appends these to the spill file
        else:
            self._pending.append(item)
        if len(self._pending) >= self._batch_size or self._overflow:
            self._flusher.wake()

    def _append_spill(self, items: list[_Item]) -> None:
        """Blocking: append ``items`` to the current spill file, rotating by size."""
        rest = items
        while rest:
            if self._spill_file is None or self._spill_file_count >= self._spill_file_rows:
                self._spill_file = self._spill_dir / (
                    f"spill-{time.time_ns():020d}-{os.getpid()}-{next(self._file_seq)}.jsonl"
                )
                self._spill_file_count = 0
            room = self._spill_file_rows - self._spill_file_count
            chunk, rest = rest[:room], rest[room:]
            with self._spill_file.open("a", encoding="utf-8") as f:
                f.writelines(_encode(i.kind, i.row) + "\n" for i in chunk)
                f.flush()
                os.fsync(f.fileno())
            self._spill_file_count += len(chunk)
            self._spilled += len(chunk)
            self._release(chunk)
        self._spill_files_exist = True

    def _release(self, items: list[_Item]) -> None:
        """Committed or spilled: their journal copies are no longer needed."""
        if self._journal is None:
            return
        for item in items:
            if item.segment is not None:
                self._journal.release(item.segment)
                item.segment = None

    def _claim_spill_file(self) -> tuple[Path, list[_Item]] | None:
        """Blocking: take the oldest closed spill file (or an interrupted replay)."""
        candidates = sorted(self._spill_dir.glob("spill-*.jsonl*"))
        for path in candidates:
            if path == self._spill_file or path in self._replaying:
                continue
            if path.name.endswith(".jsonl"):
                target = path.with_name(path.name + ".replaying")
                path.rename(target)
            elif path.name.endswith(".jsonl.replaying"):
                target = path
            else:
                continue
            now = self._clock()
            items = []
            with target.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        kind, row = _decode(line)
                    except (ValueError, KeyError, TypeError):
                        # A torn last line from a crash mid-append; the rest is intact.
                        log.error("outcome writer: unreadable line %d in %s skipped", n, target)
                        continue
                    items.append(_Item(kind, row, now, source=target))
            return target, items
        return None

    def _write_rejected(self, items: list[_Item], error: str) -> None:
        """Blocking: keep rows PostgreSQL refused, with the reason, for an operator."""
        path = self._spill_dir / f"rejected-{time.strftime('%Y%m%d')}.jsonl"
        with path.open("a", encoding="utf-8") as f:
            for i in items:
                record = json.loads(_encode(i.kind, i.row))
                record["error"] = error
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # --- internals: the flusher -------------------------------------------------------------

    async def _run(self) -> None:
        await self._replay_one()  # files left by an earlier run
        failures = 0  # consecutive failed attempts of the batch at the head
        while True:
            if self._overflow:
                overflow, self._overflow = self._overflow, []
                await asyncio.to_thread(self._append_spill, overflow)
                log.warning(
                    "outcome writer: backlog over %d rows, %d spilled",
                    self._max_pending,
                    len(overflow),
                )
            if not self._pending:
                if self._closing and not self._overflow:
                    self._finish_spill_file()
                    if not await self._replay_one():
                        return
                    continue
                await self._flusher.wait(self._flush_interval_s)
                if (
                    self._spill_files_exist
                    and not self._pending
                    and not self._overflow
                    and not self._closing
                ):
                    # Idle: the database keeps up, so earlier spills can come back now.
                    self._finish_spill_file()
                    await self._replay_one()
                continue
            if len(self._pending) < self._batch_size and not self._closing:
                # Give a partial batch until the flush interval to fill up.
                await self._flusher.wait(self._flush_interval_s)
            batch = list(itertools.islice(self._pending, self._batch_size))
            try:
                await self._write(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — sorted by is_transient: retried, or the batch's rows isolated
                if not is_transient(exc):
                    await self._isolate(batch, exc)
                    continue
                self._retries += 1
                backoff = backoff_delay(failures, self._backoff_initial_s, self._backoff_max_s)
                failures += 1
                log.warning(
                    "outcome writer: batch of %d failed (%s), retry in %.2f s",
                    len(batch),
                    type(exc).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff * (0.5 + random.random()))
                continue
            failures = 0
            self._committed(batch)

    def _committed(self, batch: list[_Item]) -> None:
        for _ in batch:
            self._pending.popleft()
        now = self._clock()
        for item in batch:
            if item.source is None:
                self._lags.append(max(0.0, now - item.enqueued))
            else:
                self._replaying[item.source] -= 1
        self._rows_written += len(batch)
        self._batches += 1
        self._release(batch)
        for path, remaining in list(self._replaying.items()):
            if remaining == 0:
                del self._replaying[path]
                path.unlink(missing_ok=True)
                log.info("outcome writer: replayed and removed %s", path.name)
        self._expire_parked(now)

    def _finish_spill_file(self) -> None:
        """Close the current spill file so that it can be replayed."""
        self._spill_file = None
        self._spill_file_count = 0

    async def _replay_one(self) -> bool:
        """Load one spill file into the backlog; False when there is none."""
        if len(self._pending) > self._max_pending // 2:
            return False
        if not self._spill_files_exist:
            return False
        claimed = await asyncio.to_thread(self._claim_spill_file)
        if claimed is None:
            self._spill_files_exist = self._spill_file is not None
            return False
        path, items = claimed
        if not items:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            return True
        self._replaying[path] = len(items)
        self._replayed += len(items)
        self._pending.extend(items)
        log.info("outcome writer: replaying %d rows from %s", len(items), path.name)
        return True

    async def _isolate(self, batch: list[_Item], exc: Exception) -> None:
        """A batch failed for its data: write row by row, keep the refused rows aside."""
        log.error("outcome writer: batch refused (%s); retrying its rows one by one", exc)
        for item in batch:
            try:
                await self._write([item])
            except Exception as row_exc:  # noqa: BLE001 — sorted by is_transient: the row set aside with its reason, or the retry resumes
                if is_transient(row_exc):
                    return  # the database went away meanwhile: the normal retry resumes
                self._rejected += 1
                await asyncio.to_thread(self._write_rejected, [item], str(row_exc)[:500])
                log.error(
                    "outcome writer: %s row for call %s rejected: %s",
                    item.kind,
                    item.row.get("call_id"),
                    type(row_exc).__name__,
                )
            # Either written or set aside: it leaves the backlog.
            self._pending.remove(item)
            self._release([item])
            if item.source is not None:
                self._replaying[item.source] -= 1
            else:
                self._lags.append(max(0.0, self._clock() - item.enqueued))
            self._rows_written += 1
        self._committed([])

    def _expire_parked(self, now: float) -> None:
        for call_id, item in list(self._parked.items()):
            if now - item.enqueued > self._parked_ttl_s:
                del self._parked[call_id]
                self._rejected += 1
                self._write_rejected([item], "no call row arrived for this wrap-up")
                self._release([item])
                log.error("outcome writer: wrap-up of unknown call %s set aside", call_id)

    async def _write(self, batch: list[_Item]) -> None:
        """One transaction for the whole batch; raises on any failure (nothing applied)."""
        calls: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        wrapups: dict[str, dict[str, Any]] = {}
        for item in batch:
            if item.kind == "call":
                cid = item.row["call_id"]
                calls[cid] = _merge_call(calls.get(cid), item.row)
            elif item.kind == "event":
                events.append(item.row)
            else:
                cid = item.row["call_id"]
                wrapups[cid] = _merge_wrapup(wrapups.get(cid), item.row)
        # Parked wrap-ups whose call row is in this batch, then this batch's own wrap-ups.
        newly_merged: list[str] = []
        for cid in list(calls):
            parked = self._parked.get(cid)
            if parked is not None:
                calls[cid] = _apply_wrapup(calls[cid], parked.row)
                newly_merged.append(cid)
            if cid in wrapups:
                calls[cid] = _apply_wrapup(calls[cid], wrapups.pop(cid))

        missing: set[str] = set()
        async with self._sessionmaker() as session, session.begin():
            if calls:
                await execute_in_slices(session, _UPSERT_CALLS, list(calls.values()))
            if events:
                await execute_in_slices(session, _INSERT_EVENTS, events)
            if wrapups:
                found = set(
                    (
                        await session.scalars(
                            sa.select(Call.call_id).where(Call.call_id.in_(list(wrapups)))
                        )
                    ).all()
                )
                rows = [_wrapup_params(w) for cid, w in wrapups.items() if cid in found]
                if rows:
                    await session.execute(_UPDATE_WRAPUP, rows)
                    await interactions.write_for_wrapups(session, found)
                missing = set(wrapups) - found
            # The customers' contact history, in the same transaction (idempotent by call).
            if calls:
                await interactions.write_for_calls(session, calls.values())
        # Committed: update parking only now, so a failed attempt changes nothing.
        for cid in newly_merged:
            merged_item = self._parked.pop(cid, None)
            if merged_item is not None:
                self._release([merged_item])
        now = self._clock()
        for cid in missing:
            previous = self._parked.get(cid)
            merged = _merge_wrapup(previous.row if previous else None, wrapups[cid])
            parked = _Item("wrapup", merged, previous.enqueued if previous else now)
            if self._journal is not None:  # parked in memory: journaled again meanwhile
                parked.segment = self._journal.append(_encode("wrapup", merged))
            if previous is not None:
                self._release([previous])
            self._parked[cid] = parked


_WRAPUP_FIELDS = ("disposition_code", "notes", "wrapup_ended_at")


def _merge_wrapup(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    if old is None:
        return dict(new)
    merged = dict(old)
    for key in _WRAPUP_FIELDS:
        if new.get(key) is not None:
            merged[key] = new[key]
    return merged


def _apply_wrapup(call: dict[str, Any], wrapup: dict[str, Any]) -> dict[str, Any]:
    merged = dict(call)
    for key in _WRAPUP_FIELDS:
        if wrapup.get(key) is not None:
            merged[key] = wrapup[key]
    merged["wrapup_s"] = seconds_between(merged["wrapup_ended_at"], merged["ended_at"])
    return merged


def _merge_call(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Two rows for one call in a batch: the later wins, but never loses a wrap-up."""
    if old is None:
        return new
    return _apply_wrapup(new, old) if any(old.get(k) for k in _WRAPUP_FIELDS) else new


def _wrapup_params(w: dict[str, Any]) -> dict[str, Any]:
    return {
        "b_call_id": w["call_id"],
        "b_disposition_code": w.get("disposition_code"),
        "b_notes": w.get("notes"),
        "b_wrapup_ended_at": w.get("wrapup_ended_at"),
    }


_calls = Base.metadata.tables["calls"]
_events = Base.metadata.tables["call_events"]
_insert_calls = pg_insert(_calls)
_KEEP_IF_NEW_IS_NULL = {"disposition_code", "notes", "wrapup_ended_at", "wrapup_s"}
_UPSERT_CALLS = _insert_calls.on_conflict_do_update(
    index_elements=[_calls.c.call_id],
    set_={
        col.name: (
            sa.func.coalesce(_insert_calls.excluded[col.name], col)
            if col.name in _KEEP_IF_NEW_IS_NULL
            else _insert_calls.excluded[col.name]
        )
        for col in _calls.columns
        if col.name not in {"id", "call_id"}
    },
)
_INSERT_EVENTS = pg_insert(_events).on_conflict_do_nothing(index_elements=["call_id", "at", "kind"])
_UPDATE_WRAPUP = (
    sa.update(_calls)
    .where(_calls.c.call_id == sa.bindparam("b_call_id"))
    .values(
        disposition_code=sa.func.coalesce(
            sa.bindparam("b_disposition_code"), _calls.c.disposition_code
        ),
        notes=sa.func.coalesce(sa.bindparam("b_notes"), _calls.c.notes),
        wrapup_ended_at=sa.func.coalesce(
            sa.bindparam("b_wrapup_ended_at", type_=sa.DateTime(timezone=True)),
            _calls.c.wrapup_ended_at,
        ),
        wrapup_s=sa.func.greatest(
            0.0,
            sa.extract(
                "epoch",
                sa.func.coalesce(
                    sa.bindparam("b_wrapup_ended_at", type_=sa.DateTime(timezone=True)),
                    _calls.c.wrapup_ended_at,
                )
                - _calls.c.ended_at,
            ),
        ),
    )
)
