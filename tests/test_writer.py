"""``app.writer.Flusher``: the task life cycle both background writers share."""

from __future__ import annotations

import asyncio

import pytest

from app.writer import Flusher


async def test_wake_ends_a_wait_and_stop_lets_the_task_finish() -> None:
    flusher = Flusher("test-flusher")
    woken: list[bool] = []

    async def run() -> None:
        await flusher.wait(3600.0)  # only a wake ends it within the test
        woken.append(True)

    flusher.start(run())
    assert flusher.started
    await asyncio.sleep(0)  # the task runs up to its wait
    flusher.wake()
    await flusher.stop(finish_within_s=5.0)
    assert woken == [True]


async def test_stop_cancels_a_task_that_does_not_finish_in_time() -> None:
    flusher = Flusher("test-flusher")
    cancelled = asyncio.Event()

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    flusher.start(run())
    with pytest.raises(TimeoutError):
        await flusher.stop(finish_within_s=0.01)
    assert cancelled.is_set()


async def test_a_flusher_starts_once() -> None:
    flusher = Flusher("test-flusher")

    async def run() -> None:
        return None

    flusher.start(run())
    second = run()
    with pytest.raises(RuntimeError, match="already started"):
        flusher.start(second)
    await flusher.stop()
