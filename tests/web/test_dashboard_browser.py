"""The dashboard in a real browser (Debian's Chromium via Playwright) against `watchkeeper run`:
log in, watch a check turn red live when its target fails, acknowledge its alert."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMIUM_ARGS, artifact, require_chromium
from tests.support.process import WatchkeeperProcess
from tests.support.servers import FlippingTarget

PASSWORD = "correct horse battery staple"


async def create_user(config: Path, username: str, role: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "watchkeeper",
        "user",
        "create",
        "--username",
        username,
        "--role",
        role,
        "--password-stdin",
        "--config",
        str(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(f"{PASSWORD}\n".encode()), 60)
    assert proc.returncode == 0, err.decode(errors="replace")


def csp_violations(page: Any) -> list[str]:
    """What the page's Content Security Policy blocks, as the browser reports it."""
    blocked: list[str] = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return blocked


async def test_login_then_a_failing_target_turns_red_live_and_is_acknowledged_from_the_ui(
    tmp_path: Path, target: FlippingTarget
) -> None:
    chromium = require_chromium()
    from playwright.async_api import async_playwright, expect

    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n"
        "checks:\n"
        f"  - {{name: api, type: http, url: '{target.url}/health', interval: 1s,"
        " timeout: 1s, component: API}\n"
        # A second check that stays up whatever /health answers.
        f"  - {{name: web, type: tcp, host: 127.0.0.1, port: {target.url.rsplit(':', 1)[1]},"
        " interval: 30s}\n"
    )
    await create_user(config, "alice", "operator")
    wk = await WatchkeeperProcess(config, tmp_path).start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            blocked = csp_violations(page)

            await page.goto(f"{wk.url}/dashboard")
            await expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
            await page.get_by_label("Username").fill("alice")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page).to_have_url(f"{wk.url}/dashboard")
            await expect(page.get_by_test_id("current-user")).to_contain_text("alice")

            row = page.locator("#check-api")
            await expect(row).to_have_attribute("data-status", "up", timeout=10_000)
            await expect(page.locator("#live")).to_have_text("\u25cf live")
            await page.screenshot(path=artifact("dashboard-1-up.png"), full_page=True)

            # Live: the row must change without the page being loaded again.
            await page.evaluate("window.__sameDocument = true")
            target.status = 500
            await expect(row).to_have_attribute("data-status", "down", timeout=10_000)
            await expect(row).to_have_class(re.compile(r"\bst-down\b"))
            assert await page.evaluate("window.__sameDocument === true")
            red = await row.evaluate("el => getComputedStyle(el).backgroundColor")
            assert red == "rgb(253, 228, 228)", red  # --down-bg of the light theme
            await expect(page.locator("#summary")).to_contain_text("1 down")
            await page.screenshot(path=artifact("dashboard-2-down.png"), full_page=True)

            await page.get_by_role("link", name="Alerts", exact=True).click()
            alert = page.locator("tr[data-alert='api']")
            await expect(alert).to_have_attribute("data-status", "firing", timeout=5_000)
            await alert.get_by_role("button", name="Acknowledge").click()
            await expect(page.locator(".notice")).to_contain_text("acknowledged")

            await page.get_by_role("link", name=re.compile(r"^acknowledged")).click()
            alert = page.locator("tr[data-alert='api']")
            await expect(alert).to_have_attribute("data-status", "acknowledged")
            await expect(alert.locator(".ack-by")).to_have_text("by alice")
            await page.screenshot(path=artifact("dashboard-3-acknowledged.png"), full_page=True)

            await alert.get_by_role("link").first.click()
            await expect(page.locator("ol.events")).to_contain_text("acknowledged by alice")

            # A phone-sized screen, dark theme: the same page stays usable.
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.get_by_role("button", name=re.compile("theme")).click()
            await page.goto(f"{wk.url}/dashboard")
            theme = await page.evaluate("document.documentElement.dataset.theme")
            assert theme == "dark"
            await expect(page.locator("#check-api")).to_be_visible()
            await page.screenshot(path=artifact("dashboard-4-phone-dark.png"), full_page=True)

            # Stopping the service with a browser's event stream open still exits at once,
            # and the page says it is no longer live rather than showing stale figures.
            assert await wk.stop(timeout=10) == 0
            await expect(page.locator("#live")).to_contain_text("not live", timeout=10_000)
            await page.screenshot(path=artifact("dashboard-5-not-live.png"))
            await browser.close()
        assert blocked == []  # htmx, its SSE extension and uPlot all ran under the CSP
    finally:
        await wk.stop()


async def test_logging_out_from_the_dashboard_goes_to_the_login_page(tmp_path: Path) -> None:
    chromium = require_chromium()
    from playwright.async_api import async_playwright, expect

    config = tmp_path / "watchkeeper.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n")
    await create_user(config, "bob", "viewer")
    wk = await WatchkeeperProcess(config, tmp_path).start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page()
            blocked = csp_violations(page)
            await page.goto(f"{wk.url}/dashboard/login")
            await page.get_by_label("Username").fill("bob")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await expect(page.get_by_test_id("current-user")).to_contain_text("bob")
            await page.get_by_role("button", name="Log out").click()
            await expect(page).to_have_url(f"{wk.url}/dashboard/login")
            await page.goto(f"{wk.url}/dashboard")  # the session has really ended
            await expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
            await browser.close()
        assert blocked == []
    finally:
        await wk.stop()
