"""Cases in a real Chromium: an agent registers a complaint for the caller on the form
(pre-filled with the customer and the call), sees it in "my open cases" with its due
clock; the (injected) clock runs out and the supervisor's board shows it escalated and
overdue in red; the next level reaches the manager's (admin's) escalation queue.
(A module of its own: its own service and database.)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from playwright.async_api import expect

from app import models
from tests.browser.conftest import (
    AGENT_PASSWORD,
    NEW_NAME,
    NEW_PHONE,
    SUPERVISOR,
    Service,
    screenshot,
    sign_in,
)


async def test_complaint_climbs_the_ladder_on_the_pages(service: Service, open_page: Any) -> None:
    async with service.db.sessionmaker() as s:
        customer_id = await s.scalar(
            sa.select(models.CustomerPhone.customer_id).where(
                models.CustomerPhone.phone == NEW_PHONE
            )
        )
    # Thursday 10:00 UTC, inside the default working hours: due today at 18:00.
    now = [datetime(2026, 12, 3, 10, tzinfo=UTC)]
    service.app.state.case_clock = lambda: now[0]
    desk, errors = await open_page(1440, 900)
    await sign_in(desk, "/agent", "agent1001", AGENT_PASSWORD)
    await desk.get_by_role("button", name="Log in to phone").click()
    await desk.get_by_role("button", name="Ready", exact=True).click()
    await expect(desk.locator("#state-badge")).to_have_text("Ready")
    call_id = service.place_call("6000", NEW_PHONE)
    await expect(desk.locator("#pop-name")).to_have_text(NEW_NAME)
    await expect(desk.locator("#offer-banner")).to_have_attribute("data-phase", "connected")
    # The desktop opens the case form for the call in a tab of its own (the call stays).
    async with desk.context.expect_page() as info:
        await desk.locator("#pop-new-case").click()
    page = await info.value
    await page.wait_for_url("**/cases?*")
    await expect(page.get_by_label("Customer id")).to_have_value(str(customer_id))
    await expect(page.get_by_label("Call")).to_have_value(call_id)
    await page.get_by_label("Category", exact=True).first.select_option("product-quality")
    await page.get_by_label("Subject").fill("Washer leaks again")
    await page.get_by_label("Notes").fill("third call this week")
    await page.get_by_role("button", name="Create case").click()
    await expect(page.locator("#c-status")).to_contain_text("registered")
    row = page.locator("#case-table tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.first).to_have_attribute("data-overdue", "false")
    await expect(row.first.locator('[data-col="level"]')).to_have_text("owner")
    await screenshot(page, "cases-agent")

    # The clock runs out: the scheduler raises it to the supervisor.
    now[0] = datetime(2026, 12, 3, 18, 1, tzinfo=UTC)
    service.app.state.case_escalations.wake()
    sup, _ = await open_page(1440, 900)
    await sign_in(sup, "/cases?view=escalated", *SUPERVISOR)
    sup_row = sup.locator("#case-table tbody tr")
    await expect(sup_row).to_have_count(1, timeout=30_000)
    await expect(sup_row.first).to_have_attribute("data-overdue", "true")
    await expect(sup_row.first).to_have_class("overdue")
    await expect(sup_row.first.locator('[data-col="level"]')).to_have_text("supervisor")
    await screenshot(sup, "cases-supervisor")

    # Its span again (8 working hours: Friday 17:00) and it reaches the manager.
    now[0] = datetime(2026, 12, 4, 17, 1, tzinfo=UTC)
    service.app.state.case_escalations.wake()
    mgr, _ = await open_page(1440, 900)
    await sign_in(mgr, "/cases?view=escalated", "admin", "browser-tests-admin-password")
    mgr_row = mgr.locator("#case-table tbody tr")
    await expect(mgr_row).to_have_count(1, timeout=30_000)
    await expect(mgr_row.first.locator('[data-col="level"]')).to_have_text("manager")
    # And it left the supervisor's "escalated to me" list.
    await expect(sup_row).to_have_count(0, timeout=30_000)
    assert errors.besides() == []
