"""The public status page in Debian's Chromium against a real uvicorn server (in-process, one
per test): uptime bars with 90 days of history and an incident, with and without JavaScript,
on a phone, in the dark."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

from tests.support.browser import CHROMIUM_ARGS, artifact, require_chromium
from tests.support.servers import FlippingTarget, free_port, wait_until
from watchkeeper.app import Runtime
from watchkeeper.auth import tokens
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.store import rollups
from watchkeeper.store.database import Database


async def seed(url: str) -> str:
    """90 days of hourly results for `api` (two bad days) and an operator token."""
    db = Database(url)
    await db.migrate()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    rows: list[dict[str, Any]] = []
    for hour in range(1, 90 * 24):
        at = now - timedelta(hours=hour)
        day = hour // 24
        status = "down" if (day == 12 and at.hour < 6) or (day == 40 and at.hour == 3) else "up"
        for name in ("api", "web"):
            rows.append(
                {"check_name": name, "started_at": at, "status": status, "response_time": 0.05}
            )
    async with db.begin() as conn:
        await rollups.add_results(conn, rows)
    _, secret = await tokens.create_token(db, name="ops", role=Role.OPERATOR, now=now)
    await db.close()
    return secret


async def test_status_page_in_chromium_with_and_without_javascript_and_on_a_phone(
    tmp_path: Path, target: FlippingTarget
) -> None:
    chromium = require_chromium()
    from playwright.async_api import async_playwright, expect

    db_url = f"sqlite:///{tmp_path / 'wk.db'}"
    port = int(target.url.rsplit(":", 1)[1])
    config = Config.model_validate(
        {
            "storage": {"url": db_url},
            "checks": [
                {
                    "name": "api",
                    "type": "http",
                    "url": f"{target.url}/health",
                    "interval": "1s",
                    "timeout": "1s",
                    "component": "API",
                },
                {
                    "name": "web",
                    "type": "tcp",
                    "host": "127.0.0.1",
                    "port": port,
                    "interval": "5s",
                    "component": "Website",
                },
            ],
            "status_page": {
                "title": "Example status",
                "components": [
                    {"name": "API", "description": "Public REST API", "group": "Platform"},
                    {"name": "Website", "group": "Platform"},
                ],
            },
        }
    )
    token = await seed(db_url)
    runtime = Runtime(config)
    await runtime.start()
    server_port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, runtime=runtime),
            host="127.0.0.1",
            port=server_port,
            lifespan="off",
            log_config=None,
        )
    )
    serving = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{server_port}"
    try:
        await wait_until(lambda: server.started, 10, "uvicorn serving")
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            created = await http.post(
                f"{base}/api/v1/incidents",
                json={
                    "name": "Elevated API error rates",
                    "impact": "major",
                    "status": "identified",
                    "components": {"API": "partial_outage"},
                    "body": "A bad deploy; **rolling back** now.",
                },
            )
            assert created.status == 201, await created.text()

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            blocked: list[str] = []
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await page.goto(f"{base}/status")
            await expect(page.get_by_role("heading", level=1)).to_have_text("Partial System Outage")
            api = page.locator("li.comp", has_text="Public REST API")
            await expect(api.locator("li.day")).to_have_count(90)
            await expect(api.locator("li.d-major_outage, li.d-partial_outage")).not_to_have_count(0)
            await expect(api).to_have_attribute("data-status", "partial_outage")
            tooltip = await api.locator("li.day").nth(89).get_attribute("title")
            assert tooltip and "uptime" in tooltip and "Elevated API error rates" in tooltip
            incident = page.get_by_role("article").filter(has_text="Elevated API error rates")
            await expect(incident.locator("strong", has_text="rolling back")).to_be_visible()
            await expect(page.get_by_role("main")).to_be_visible()
            await expect(page.get_by_role("link", name="Subscribe to updates")).to_have_attribute(
                "href", "/status/subscribe"
            )
            # Keyboard: the first Tab reaches the skip link, which leads to the content.
            await page.keyboard.press("Tab")
            focused = await page.evaluate("document.activeElement.textContent")
            assert focused == "Skip to content"
            await page.screenshot(path=artifact("status-page-desktop.png"), full_page=True)
            assert blocked == []

            # Without JavaScript: the same page, complete.
            nojs = await browser.new_context(
                java_script_enabled=False, viewport={"width": 1280, "height": 900}
            )
            plain = await nojs.new_page()
            await plain.goto(f"{base}/status")
            await expect(plain.locator("li.comp")).to_have_count(2)
            await expect(plain.locator("li.day")).to_have_count(180)
            await expect(plain.get_by_text("Elevated API error rates").first).to_be_visible()
            await plain.screenshot(path=artifact("status-page-nojs.png"), full_page=True)
            await nojs.close()

            # A phone, dark theme: nothing overflows sideways; the colours follow the system.
            phone = await browser.new_context(
                viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
            )
            small = await phone.new_page()
            await small.goto(f"{base}/status")
            await expect(small.locator("li.comp")).to_have_count(2)
            width = await small.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, width
            background = await small.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(18, 20, 24)", background
            await small.screenshot(path=artifact("status-page-phone-dark.png"), full_page=True)
            await phone.close()
            await browser.close()
    finally:
        runtime.changes.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        await runtime.stop()
