"""The pages in a real Chromium against the real service.

Scenarios (each on its own agents and queue, so they run in any order):
- an agent signs in, logs in to the phone, goes ready, gets an offered call: the screen
  pop (customer, VIP, entitlement with its end date, products, cases, interactions) is on
  screen while the phone still rings; the call connects (timer runs) and ends; the
  wrap-up needs a disposition before Ready; the outcome row holds the disposition;
- the wallboard's figures follow calls arriving, waiting and being answered;
- a lost wallboard delta (a sequence gap) makes the page resubscribe and resync;
- a supervisor filters the agent list, forces a pause, and the agent's page shows it;
(The pages losing and regaining the server are in ``test_reconnect.py``: that test stops
the service, so it has a service of its own.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import expect

from app import models
from cti.simulator import DeviceProfile
from tests.browser.conftest import (
    AGENT_PASSWORD,
    NEW_PHONE,
    PLAN_END,
    SUPERVISOR,
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


async def test_pages_are_served_without_third_party_assets(
    service: Service, open_page: Any
) -> None:
    page, errors = await open_page()
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    await page.goto("/")
    await expect(page.get_by_role("link", name=re.compile("Agent desktop"))).to_be_visible()
    await screenshot(page, "index")
    await page.goto("/signin")
    await expect(page.get_by_label("User name")).to_be_focused()
    await page.get_by_label("User name").fill(SUPERVISOR[0])
    await page.get_by_label("Password").fill("wrong-password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("User name or password is wrong.")
    await screenshot(page, "signin-error")
    assert requested and all(url.startswith(service.base_url) for url in requested), requested
    # The failed sign-in's 401 is the only console error a browser logs here.
    assert all("401" in e for e in errors.errors), errors.errors


@pytest.mark.parametrize(
    "hostile",
    [
        "/%5Cevil.example/x",
        "//evil.example/x",
        "/%5C%5Cevil.example",
        "/%09/evil.example",
        "https://evil.example/",
    ],
)
async def test_signin_never_redirects_off_site(
    service: Service, open_page: Any, hostile: str
) -> None:
    page, _ = await open_page()
    offsite: list[str] = []
    page.on(
        "request",
        lambda req: None if req.url.startswith(service.base_url) else offsite.append(req.url),
    )
    await page.goto(f"/signin?next={hostile}")
    await page.get_by_label("User name").fill(SUPERVISOR[0])
    await page.get_by_label("Password").fill(SUPERVISOR[1])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{service.base_url}/supervisor")
    assert offsite == []


# Every form control must have an accessible name; every page a banner and a main landmark.
A11Y_PROBLEMS_JS = """() => {
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden" || el.closest("[hidden]")) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby") || (el.tagName === "BUTTON" && el.textContent.trim());
    if (!named) problems.push(`unnamed ${el.tagName.toLowerCase()}#${el.id}`);
  }
  if (!document.querySelector("main")) problems.push("no main landmark");
  if (!document.querySelector("header")) problems.push("no banner landmark");
  if (!document.documentElement.lang) problems.push("no lang");
  return problems;
}"""


async def test_pages_have_names_landmarks_and_keyboard_use(
    service: Service, open_page: Any
) -> None:
    page, _ = await open_page()
    await sign_in(page, "/supervisor", *SUPERVISOR)
    await expect(page.locator("#conn")).to_have_text("Live")
    for path in ("/supervisor", "/wallboard", "/signin", "/"):
        await page.goto(path)
        await page.wait_for_load_state("networkidle")
        assert await page.evaluate(A11Y_PROBLEMS_JS) == [], path
    # Keyboard only: the skip link comes first and the force dialog opens, keeps focus
    # inside and closes with Escape.
    await service.callcenter.login("1022")
    await page.goto("/supervisor")
    await expect(page.locator('#agents-body tr[data-agent="1022"]')).to_have_attribute(
        "data-state", "paused"
    )
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.locator('#agents-body button[data-key="logout:1022"]').focus()
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Reason")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await service.callcenter.logout("1022")

    agent, _ = await open_page()
    await sign_in(agent, "/agent", "agent1022", AGENT_PASSWORD)
    await expect(agent.locator("#state-badge")).to_have_text("Logged out")
    assert await agent.evaluate(A11Y_PROBLEMS_JS) == []
    await agent.get_by_label("Phone device").focus()
    await agent.keyboard.press("Enter")  # submits the log-in form
    await expect(agent.locator("#state-badge")).to_have_text(re.compile("^Paused"))
    await expect(agent.get_by_role("button", name="Ready", exact=True)).to_be_focused()
    await agent.keyboard.press("Enter")
    await expect(agent.locator("#state-badge")).to_have_text("Ready")
    await agent.get_by_role("button", name="Log out of phone").click()
    await expect(agent.locator("#state-badge")).to_have_text("Logged out")


async def test_agent_call_with_screen_pop_wrapup_and_outcome(
    service: Service, open_page: Any
) -> None:
    sim = service.sims[0]
    sim.set_device("PJSIP/1001", DeviceProfile(ring_s=2.0, talk_s=2.5, agent_hangs_up_prob=1.0))
    page, errors = await open_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await sign_in(page, "/agent", "agent1001", AGENT_PASSWORD)
    await expect(page.locator("#conn")).to_have_text("Connected")
    # The token travels as the subprotocol, never in a URL (URLs end up in logs).
    assert sockets and not [url for url in sockets if "token" in url], sockets
    badge = page.locator("#state-badge")
    await expect(badge).to_have_text("Logged out")
    await screenshot(page, "agent-logged-out")

    await page.get_by_role("button", name="Log in to phone").click()
    await expect(badge).to_have_text(re.compile("^Paused"))
    await expect(page.locator("#device-shown")).to_have_text("PJSIP/1001")
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(badge).to_have_text("Ready")

    call_id = service.place_call("6000", VIP_PHONE)
    # The pop is rendered from the offer itself: on screen while the phone still rings.
    await expect(page.locator("#offer-banner")).to_have_attribute("data-phase", "offered")
    await expect(page.locator("#pop-name")).to_have_text(VIP_NAME)
    assert await page.locator("#offer-banner").get_attribute("data-phase") == "offered"
    await expect(page.locator("#offer-live")).to_have_attribute("aria-live", "assertive")
    await expect(page.locator("#offer-headline")).to_have_text(f"Incoming call from {VIP_NAME}")
    await expect(page.locator("#pop-vip")).to_have_text("VIP")
    await expect(page.locator("#pop-member")).to_be_visible()
    entitlement = page.locator("#pop-entitlement")
    await expect(entitlement).to_have_attribute("data-entitled", "yes")
    await expect(entitlement).to_contain_text(f"Protection plan runs until {PLAN_END.isoformat()}")
    products = page.locator("#pop-products tbody tr")
    await expect(products).to_have_count(2)
    await expect(page.locator('#pop-products tr[data-entitled="yes"]')).to_contain_text(
        "Fridge BCD-470"
    )
    await expect(page.locator('#pop-products tr[data-entitled="no"]')).to_contain_text(
        "Not entitled"
    )
    await expect(page.locator("#pop-cases")).to_contain_text("Compressor noise")
    await expect(page.locator("#pop-interactions")).to_contain_text("technician visit booked")
    await screenshot(page, "agent-offer-pop")

    await expect(page.locator("#offer-banner")).to_have_attribute("data-phase", "connected")
    await expect(badge).to_have_text("On call")
    await expect(page.locator("#call-timer")).to_have_text(re.compile(r"^0:0[1-9]$"))
    await screenshot(page, "agent-on-call")

    await expect(page.locator("#offer-banner")).to_have_attribute("data-phase", "ended")
    wrapup = page.locator("#wrapup-form")
    await expect(wrapup).to_be_visible()
    await expect(badge).to_have_text("Wrap-up")
    ready = page.get_by_role("button", name="Ready", exact=True)
    await expect(ready).to_be_disabled()
    # A wrap-up without a disposition is refused on the page; nothing is sent.
    await page.get_by_role("button", name="Save wrap-up").click()
    await expect(page.locator("#wrapup-error")).to_have_text("Choose a disposition.")
    await expect(page.get_by_label("Disposition")).to_be_focused()
    await screenshot(page, "agent-wrapup")

    await choose_disposition(page, "resolved")
    await page.get_by_label("Notes").fill("Booked a second technician visit")
    await page.get_by_role("button", name="Save wrap-up").click()
    await expect(wrapup).to_be_hidden()
    await expect(badge).to_have_text("Ready")
    await expect(ready).to_be_disabled()  # already ready
    await expect(page.locator("#pop")).to_be_hidden()

    async def written() -> Any:
        row = await service.call_row(call_id)
        return row if row is not None and row.disposition_code is not None else None

    row = await wait_for(written, what="outcome row with the disposition")
    assert row.disposition_code == "resolved"
    assert row.notes == "Booked a second technician visit"
    assert row.answered_by == 1001
    assert row.result.value == "answered"
    assert row.vip is True and row.entitled is True
    assert row.wrapup_ended_at is not None
    assert errors.besides() == []

    await page.get_by_role("button", name="Log out of phone").click()
    await expect(badge).to_have_text("Logged out")


async def test_agent_sees_entitlement_of_a_new_purchase_and_unknown_callers(
    service: Service, open_page: Any
) -> None:
    sim = service.sims[0]
    # Never answers: the offer stays ringing while we look, then times out (RONA).
    sim.set_device("PJSIP/1002", DeviceProfile(answer_prob=0.0))
    page, errors = await open_page(820, 1000)  # a narrow laptop window
    await sign_in(page, "/agent", "agent1002", AGENT_PASSWORD)
    await page.get_by_role("button", name="Log in to phone").click()
    await page.get_by_role("button", name="Ready", exact=True).click()
    await expect(page.locator("#state-badge")).to_have_text("Ready")

    service.place_call("6000", NEW_PHONE, patience_s=4.0)
    entitlement = page.locator("#pop-entitlement")
    await expect(entitlement).to_have_attribute("data-entitled", "yes")
    await expect(entitlement).to_contain_text("Within 90 days of purchase")

    await expect(page.locator("#pop-vip")).to_have_count(0)
    await screenshot(page, "agent-offer-narrow")
    # The caller gives up while it rings: the offer goes away, no wrap-up is asked for.
    await expect(page.locator("#offer-banner")).to_have_count(0, timeout=10_000)
    await expect(page.locator("#wrapup-form")).to_be_hidden()
    await expect(page.locator("#state-badge")).to_have_text("Ready")

    service.place_call("6000", UNKNOWN_PHONE, patience_s=4.0)
    await expect(page.locator("#pop-unknown")).to_have_text("No customer record for this number.")
    await expect(page.locator("#offer-headline")).to_contain_text(UNKNOWN_PHONE)
    await expect(page.locator("#offer-banner")).to_have_count(0, timeout=10_000)
    assert errors.besides() == []
    await page.get_by_role("button", name="Log out of phone").click()
    await expect(page.locator("#state-badge")).to_have_text("Logged out")


async def test_agent_desktop_lists_dispositions(service: Service, open_page: Any) -> None:
    page, errors = await open_page()
    await sign_in(page, "/agent", "agent1002", AGENT_PASSWORD)
    await expect(page.locator('select#disposition option[value="resolved"]')).to_have_count(
        1, timeout=3000
    )
    assert errors.errors == []


async def test_agent_pauses_with_the_configured_codes(service: Service, open_page: Any) -> None:
    """The pause reasons come from the server's pause codes, not from a fixed list."""
    async with service.db.sessionmaker() as s:
        await s.execute(
            sa.text(
                "INSERT INTO pause_codes (code, label, position) VALUES ('fire drill', 'Fire drill', 1)"
            )
        )
        await s.execute(sa.text("UPDATE pause_codes SET active = false WHERE code = 'coaching'"))
        await s.commit()
    try:
        page, errors = await open_page()
        await sign_in(page, "/agent", "agent1002", AGENT_PASSWORD)
        reason = page.get_by_label("Pause reason")
        await expect(reason.locator("option").first).to_have_text("Fire drill")
        await expect(reason.locator('option[value="coaching"]')).to_have_count(0)
        await expect(reason.locator('option[value="lunch"]')).to_have_count(1)
        await page.get_by_role("button", name="Log in to phone").click()
        await expect(page.locator("#state-badge")).to_have_text(re.compile("^Paused"))
        await reason.select_option("fire drill")
        await page.get_by_role("button", name="Pause", exact=True).click()
        await expect(page.locator("#state-badge")).to_have_text("Paused: fire drill")
        await page.get_by_role("button", name="Log out of phone").click()
        await expect(page.locator("#state-badge")).to_have_text("Logged out")
        assert errors.errors == []
    finally:
        async with service.db.sessionmaker() as s:
            await s.execute(sa.text("DELETE FROM pause_codes WHERE code = 'fire drill'"))
            await s.execute(sa.text("UPDATE pause_codes SET active = true WHERE code = 'coaching'"))
            await s.commit()


async def test_agent_picks_a_phone_from_its_devices(service: Service, open_page: Any) -> None:
    """No free-text device: the desktop lists the agent's own phone and the registered
    devices assigned to it, and logs in on the one picked (by id)."""
    async with service.db.sessionmaker() as s:
        desk = models.Device(
            technology="PJSIP", endpoint="desk-1002", label="Desk 2", agent_id=1002
        )
        s.add(desk)
        await s.commit()
    page, errors = await open_page()
    await sign_in(page, "/agent", "agent1002", AGENT_PASSWORD)
    picker = page.get_by_label("Phone device")
    await expect(picker.locator("option")).to_have_text(
        ["Your own phone (PJSIP/1002)", "Desk 2 (PJSIP/desk-1002)"]
    )
    await picker.select_option(str(desk.id))
    await page.get_by_role("button", name="Log in to phone").click()
    await expect(page.locator("#state-badge")).to_have_text(re.compile("^Paused"))
    await expect(page.locator("#device-shown")).to_have_text("PJSIP/desk-1002")
    await page.get_by_role("button", name="Log out of phone").click()
    await expect(page.locator("#state-badge")).to_have_text("Logged out")
    assert errors.errors == []


def tile_metric(page: Any, queue_id: str, metric: str) -> Any:
    return page.locator(f'.tile[data-queue="{queue_id}"] [data-metric="{metric}"] dd')


async def test_wallboard_follows_calls(service: Service, open_page: Any) -> None:
    sim = service.sims[0]
    sim.set_device("PJSIP/1011", DeviceProfile(ring_s=0.3, talk_s=1.0, agent_hangs_up_prob=1.0))
    page, errors = await open_page(1920, 1080)
    await sign_in(page, "/wallboard", *SUPERVISOR)
    await expect(page.locator("#conn")).to_have_text("Live")
    await expect(page.locator('.tile[data-queue="2"] h2')).to_contain_text("Wallboard line")
    waiting = tile_metric(page, "2", "waiting")
    offered = tile_metric(page, "2", "offered")
    answered = tile_metric(page, "2", "answered")
    await expect(waiting).to_have_text("0")
    await expect(offered).to_have_text("0")
    await expect(tile_metric(page, "2", "service_level")).to_have_text("—")

    # Nobody is ready in this queue: both callers wait.
    service.place_call("6001", UNKNOWN_PHONE)
    service.place_call("6001", NEW_PHONE)
    await expect(waiting).to_have_text("2")
    await expect(offered).to_have_text("2")
    await expect(tile_metric(page, "2", "longest_wait")).not_to_have_text("0:00")
    await expect(tile_metric(page, "overall", "waiting")).not_to_have_text("0")
    await expect(tile_metric(page, "2", "agents_ready")).to_have_text("0")
    await screenshot(page, "wallboard-waiting")

    # One agent comes: it answers both calls, one after the other.
    await service.callcenter.login("1011")
    await service.callcenter.ready("1011")
    await expect(answered).to_have_text("1")
    await expect(answered).to_have_text("2", timeout=15_000)
    await expect(waiting).to_have_text("0")
    await expect(tile_metric(page, "2", "service_level")).to_have_text(re.compile(r"^\d+%$"))
    await expect(tile_metric(page, "2", "asa")).not_to_have_text("—")
    await expect(page.locator('#chart-svg path[data-series="waiting"]')).to_have_count(1)

    await page.get_by_role("button", name="Today").click()
    await expect(page.get_by_role("button", name="Today")).to_have_attribute("aria-pressed", "true")
    await expect(tile_metric(page, "2", "offered")).to_have_text("2")
    await page.get_by_role("button", name="Last 15 min").click()
    await screenshot(page, "wallboard")
    await page.set_viewport_size({"width": 1366, "height": 768})
    await screenshot(page, "wallboard-laptop")
    await service.callcenter.logout("1011")
    assert errors.errors == []

    # A new screen (fresh browser, nothing stored) shows the last hour at once: the
    # history comes from the server with the snapshot, one point a minute, SL included.
    fresh, fresh_errors = await open_page(1600, 900)
    await sign_in(fresh, "/wallboard", *SUPERVISOR)
    await expect(fresh.locator("#conn")).to_have_text("Live")
    # 60 points or more at once (local samples would come one per 5 s).
    await expect(fresh.locator("body")).to_have_attribute(
        "data-history-points", re.compile(r"^([6-9]\d|\d{3,})$")
    )
    await expect(fresh.locator('#chart-svg path[data-series="sl"]')).to_have_count(1)
    assert (
        await fresh.evaluate("Object.keys(localStorage).filter(k => k.includes('history'))") == []
    )
    assert fresh_errors.errors == []


async def test_wallboard_resyncs_after_a_sequence_gap(service: Service, open_page: Any) -> None:
    """A delta lost on the way (a proxy drops one) must not leave wrong figures."""
    page, _ = await open_page(1600, 900)
    lost: list[int] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            data = json.loads(message)
            if data.get("type") == "delta" and not lost:
                lost.append(data["seq"])  # swallowed: the page sees seq n+1 after n-1
                return
            ws.send(message)

        server.on_message(from_server)
        ws.on_message(lambda message: server.send(message))

    await page.route_web_socket(re.compile(r"/ws/wallboard"), route)
    await sign_in(page, "/wallboard", *SUPERVISOR)
    await expect(page.locator("#conn")).to_have_text("Live")
    # Traffic so that deltas flow: a caller waits (nobody serves this queue) and then gives
    # up.  Its own queue: the wallboard test counts queue 2's calls from zero.
    service.place_call("6003", UNKNOWN_PHONE, patience_s=4.0)
    await wait_for(lambda: lost, what="a delta to drop")
    await expect(page.locator("body")).to_have_attribute("data-resyncs", "1")
    await expect(tile_metric(page, "4", "waiting")).to_have_text("1")
    await expect(tile_metric(page, "4", "waiting")).to_have_text("0", timeout=10_000)


async def test_supervisor_filters_and_forces_a_pause(service: Service, open_page: Any) -> None:
    agent_page, agent_errors = await open_page(1280, 800)
    await sign_in(agent_page, "/agent", "agent1021", AGENT_PASSWORD)
    await agent_page.get_by_role("button", name="Log in to phone").click()
    await agent_page.get_by_role("button", name="Ready", exact=True).click()
    await expect(agent_page.locator("#state-badge")).to_have_text("Ready")

    page, errors = await open_page(1440, 900)
    await sign_in(page, "/supervisor", *SUPERVISOR)
    await expect(page.locator("#conn")).to_have_text("Live")
    await expect(page.locator('.queue-card[data-queue="3"]')).to_contain_text("Supervision")
    await page.get_by_label("Team").select_option(label="VIP team")
    rows = page.locator("#agents-body tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator('#agents-body tr[data-agent="1021"]')).to_have_attribute(
        "data-state", "ready"
    )
    await page.get_by_label("State").select_option("ready")
    await expect(rows).to_have_count(1)
    await page.get_by_label("State").select_option("")
    await page.get_by_label("Team").select_option("")
    await page.get_by_label("Queue", exact=True).select_option(label="Supervision (3)")
    await expect(rows).to_have_count(2)
    assert "queue_id=3" in page.url

    await page.get_by_role("button", name="Force pause Agent 1021").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Reason").select_option("coaching")  # a configured pause code
    await screenshot(page, "supervisor-force-dialog", full_page=False)
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog).to_be_hidden()
    row = page.locator('#agents-body tr[data-agent="1021"]')
    await expect(row).to_have_attribute("data-state", "paused")
    await expect(row).to_contain_text("Paused: coaching")
    await expect(agent_page.locator("#state-badge")).to_have_text("Paused: coaching")
    await screenshot(page, "supervisor")
    await screenshot(agent_page, "agent-forced-pause")

    await page.get_by_role("button", name="Log out Agent 1021").click()
    await page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    await expect(row).to_have_attribute("data-state", "logged_out")
    await expect(agent_page.locator("#state-badge")).to_have_text("Logged out")
    assert errors.errors == []
    assert agent_errors.besides() == []


async def test_reports_page_shows_tables_chart_and_csv(service: Service, open_page: Any) -> None:
    """Supervisors read the interval rollups: a table per day, service level against the
    target per period, and the server's CSV."""
    from datetime import UTC, datetime, timedelta

    from app.reports.rollup import RollupMaintainer

    day = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
    rows = []
    for n in range(12):  # two days, six calls each; all within 15 s on the first day
        arrived = day + timedelta(days=n // 6, minutes=20 * (n % 6))
        wait = 3.0 if n < 6 else (3.0 if n % 2 else 40.0)
        rows.append(
            {
                "call_id": f"rp/{n}",
                "server": "rp",
                "uniqueid": str(n),
                "caller": "1",
                "queue_id": 1,
                "arrived_at": arrived,
                "answered_at": arrived + timedelta(seconds=wait),
                "ended_at": arrived + timedelta(seconds=wait + 100),
                "wait_s": wait,
                "talk_s": 100.0,
                "wrapup_s": 20.0,
                "answered_by": 1001,
                "result": "answered",
            }
        )
    async with service.db.sessionmaker() as s:
        await s.execute(sa.insert(models.Call), rows)
        await s.commit()
    await RollupMaintainer(service.db.sessionmaker).rebuild(day, day + timedelta(days=2))

    page, errors = await open_page(1440, 900)
    await sign_in(
        page,
        "/reports?kind=queues&from=2026-10-05&to=2026-10-06&group=day&tz=UTC",
        *SUPERVISOR,
    )
    table = page.locator("#report-table tbody tr")
    await expect(table).to_have_count(2)
    await expect(table.nth(0).locator('[data-col="answered"]')).to_have_text("6")
    await expect(table.nth(0).locator('[data-col="service_level"]')).to_have_text("100%")
    await expect(table.nth(1).locator('[data-col="service_level"]')).to_have_text("50%")
    await expect(table.nth(1).locator('[data-col="aht_s"]')).to_have_text("2:00")
    points = page.locator("#sl-chart-svg circle")
    await expect(points).to_have_count(2)
    await expect(points.nth(1)).to_have_attribute("data-sl", "0.5000")
    await expect(page.locator('#sl-chart-svg [data-series="target"]')).to_have_count(1)
    await screenshot(page, "reports")

    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download CSV").click()
    download = await info.value
    text = Path(await download.path()).read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    assert lines[0].startswith("period,id,name,offered,answered") and len(lines) == 3

    await page.get_by_label("Report", exact=True).select_option("agents")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#report-table thead")).to_contain_text("Occupancy")
    await expect(page.locator("#report-table thead")).to_contain_text("Pause by reason")
    await expect(page.locator("#chart-section")).to_be_hidden()
    assert errors.errors == []
