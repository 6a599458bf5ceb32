"""The API docs in a real browser under their CSP: Swagger UI and ReDoc render the API from
Watchkeeper's own /static, nothing is loaded from elsewhere and nothing is blocked."""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import CHROMIUM_ARGS, artifact, require_chromium
from tests.support.process import WatchkeeperProcess


async def test_swagger_ui_and_redoc_render_from_static_under_the_csp(tmp_path: Path) -> None:
    chromium = require_chromium()
    from playwright.async_api import async_playwright, expect

    config = tmp_path / "watchkeeper.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n")
    wk = await WatchkeeperProcess(config, tmp_path).start()
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            blocked: list[str] = []
            elsewhere: list[str] = []
            page.on(
                "console",
                lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith((wk.url, "data:", "blob:"))
                    else elsewhere.append(r.url)
                ),
            )

            await page.goto(f"{wk.url}/api/docs")
            await expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=15_000)
            await expect(page.locator("#swagger-ui")).to_contain_text("/api/v1/alerts")
            await page.screenshot(path=artifact("docs-swagger-ui.png"))

            await page.goto(f"{wk.url}/api/redoc")
            await expect(page.locator("redoc h1")).to_contain_text("Watchkeeper", timeout=15_000)
            await expect(page.locator("redoc")).to_contain_text("/api/v1/alerts")
            await page.screenshot(path=artifact("docs-redoc.png"))
            await browser.close()
        # ReDoc's sidebar shows its maker's logo from their CDN: the policy stops it (the
        # link stays, without the image). Nothing else is blocked or asked of another origin.
        logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
        assert [m for m in blocked if logo not in m] == []
        assert set(elsewhere) <= {logo}
        assert all(any(url in m for m in blocked) for url in elsewhere)
    finally:
        await wk.stop()
