"""The pages in a real Chromium when the service goes away and comes back.

The test stops the service and starts it again on the same port; it has this module's
service to itself (one per module, see conftest), so no other test depends on running
before it, and it may run in any order.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import AGENT_PASSWORD, SUPERVISOR, Service, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_connection_lost_and_back(service: Service, open_page: Any) -> None:
    """The pages say so when the server goes away, and recover when it returns."""
    wall, _ = await open_page(1600, 900)
    await sign_in(wall, "/wallboard", *SUPERVISOR)
    await expect(wall.locator("#conn")).to_have_text("Live")
    agent, _ = await open_page(1280, 800)
    await sign_in(agent, "/agent", "agent1022", AGENT_PASSWORD)
    await expect(agent.locator("#conn")).to_have_text("Connected")
    sup, _ = await open_page(1280, 800)
    await sign_in(sup, "/supervisor", *SUPERVISOR)
    await expect(sup.locator("#conn")).to_have_text("Live")

    await service.stop()
    for page in (wall, agent, sup):
        await expect(page.locator("#conn")).to_contain_text("Connection lost")
        await expect(page.locator("#conn-banner")).to_be_visible()
    await expect(wall.locator("body")).to_have_class(re.compile(r"\bstale\b"))
    await screenshot(wall, "wallboard-connection-lost")
    await screenshot(agent, "agent-connection-lost")

    await service.start()
    await expect(wall.locator("#conn")).to_have_text("Live", timeout=15_000)
    await expect(wall.locator("#conn-banner")).to_be_hidden()
    await expect(wall.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))
    await expect(wall.locator('.tile[data-queue="2"]')).to_be_visible()
    await expect(agent.locator("#conn")).to_have_text("Connected", timeout=15_000)
    await expect(agent.locator("#state-badge")).to_have_text("Logged out")
    await expect(sup.locator("#conn")).to_have_text("Live", timeout=15_000)
