"""The agent desktop and the customer's history, in a real Chromium against the service.

- The pop carries the repeat-caller mark and the last contacts; a page reload mid-call
  shows the current call and its pop again; the wrapped-up call becomes an interaction
  on the customer's record with its disposition.
- An unknown caller: the agent creates a customer from the pop and links the number; the
  pop shows the new customer and the call lands on that customer's record.
(A module of its own: its own service and database, so its rows are its own.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import expect

from app import models
from cti.simulator import DeviceProfile
from tests.browser.conftest import (
    AGENT_PASSWORD,
    UNKNOWN_PHONE,
    VIP_NAME,
    VIP_PHONE,
    Service,
    choose_disposition,
    screenshot,
    sign_in,
)
from tests.polling import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def _interaction(service: Service, call_id: str) -> Any:
    async with service.db.sessionmaker() as s:
        return await s.scalar(
            sa.select(models.Interaction).where(
                models.Interaction.call_id == call_id,
                models.Interaction.disposition_code.is_not(None),
            )
        )


async def _wrap_up(page: Any, code: str) -> None:
    await expect(page.locator("#wrapup-form")).to_be_visible(timeout=30_000)
    await choose_disposition(page, code)
    await page.get_by_role("button", name="Save wrap-up").click()
    await expect(page.locator("#wrapup-form")).to_be_hidden()


async def test_reload_mid_call_repeat_mark_and_linking_an_unknown_caller(
    service: Service, open_page: Any
) -> None:
    sim = service.sims[0]
    sim.set_device("PJSIP/1001", DeviceProfile(ring_s=1.0, talk_s=12.0, agent_hangs_up_prob=1.0))
    page, errors = await open_page()
    await sign_in(page, "/agent", "agent1001", AGENT_PASSWORD)
    await page.get_by_role("button", name="Log in to phone").click()
    await page.get_by_role("button", name="Ready", exact=True).click()
    badge = page.locator("#state-badge")
    await expect(badge).to_have_text("Ready")

    call_id = service.place_call("6000", VIP_PHONE)
    await expect(page.locator("#pop-name")).to_have_text(VIP_NAME)
    # One earlier contact (two days ago): this is the first in 24 h, one more in 7 days.
    repeat = page.locator("#pop-repeat")
    await expect(repeat).to_have_attribute("data-long", "1")
    await expect(repeat).to_have_text("1st contact in 24 h · 1 earlier in 7 days")
    await expect(page.locator("#offer-banner")).to_have_attribute("data-phase", "connected")

    await page.reload()
    await expect(badge).to_have_text("On call")
    await expect(page.locator("#offer-headline")).to_have_text(f"On call with {VIP_NAME}")
    await expect(page.locator("#pop-name")).to_have_text(VIP_NAME)
    await expect(page.locator("#call-timer")).to_have_text(re.compile(r"^0:\d\d$"))
    await screenshot(page, "agent-reloaded-mid-call")
    await _wrap_up(page, "resolved")
    row = await wait_for(lambda: _interaction(service, call_id), what="the call's interaction")
    assert row.result == "answered" and row.agent_id == 1001 and row.channel == "phone"

    # Saving the wrap-up makes the agent ready again; next, an unknown caller.
    await expect(badge).to_have_text("Ready")
    sim.set_device("PJSIP/1001", DeviceProfile(ring_s=1.0, talk_s=20.0, agent_hangs_up_prob=1.0))
    unknown_call = service.place_call("6000", UNKNOWN_PHONE)
    await expect(page.locator("#pop-unknown")).to_be_visible()
    await page.get_by_label("New customer name").fill("Chen Jie")
    await page.get_by_role("button", name="Create and link").click()
    await expect(page.locator("#pop-name")).to_have_text("Chen Jie")
    await screenshot(page, "agent-linked-unknown-caller")
    await _wrap_up(page, "callback")
    row = await wait_for(lambda: _interaction(service, unknown_call), what="linked interaction")
    async with service.db.sessionmaker() as s:
        owner = await s.scalar(
            sa.select(models.Customer.name).where(models.Customer.id == row.customer_id)
        )
    assert owner == "Chen Jie"
    assert errors.besides() == []
    await expect(badge).to_have_text("Ready")
    await page.get_by_role("button", name="Log out of phone").click()
    await expect(badge).to_have_text("Logged out")
