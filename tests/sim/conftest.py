"""Fixtures: a simulator on a loopback port, in the lab's Local-channel style."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cti.simulator import AsteriskSimulator

# The lab's 1-30 s rings/talks/patience run 50x faster; event order does not change.
TIME_SCALE = 0.02


@pytest.fixture
async def lab_sim() -> AsyncIterator[AsteriskSimulator]:
    sim = AsteriskSimulator(channel_style="local", time_scale=TIME_SCALE, login_fail_delay_s=0.05)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


@pytest.fixture
async def pjsip_sim() -> AsyncIterator[AsteriskSimulator]:
    sim = AsteriskSimulator(channel_style="pjsip", time_scale=TIME_SCALE, login_fail_delay_s=0.05)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()
