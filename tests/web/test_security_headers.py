"""Security headers: a nonce-based CSP and frame-ancestors on every HTML page, nosniff and
Referrer-Policy everywhere, HSTS over https; the API docs served from /static."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.support.service import Service, running
from watchkeeper.http.factory import create_app

SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
NONCE = re.compile(r"""\bnonce=["']([^"']+)["']""")


@pytest_asyncio.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    config = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    async with running(config) as service:
        yield service


def anonymous(service: Service, base_url: str = "http://wk") -> httpx.AsyncClient:
    app = create_app(service.runtime.config, runtime=service.runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def directives(response: httpx.Response) -> dict[str, str]:
    csp = response.headers["content-security-policy"]
    return {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}


def assert_page_is_locked_down(response: httpx.Response) -> str:
    """The page's headers are right and every script carries the header's nonce; the nonce."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    policy = directives(response)
    script_src = policy["script-src"]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    found = re.fullmatch(r"script-src 'nonce-([A-Za-z0-9_-]{16,})'", script_src)
    assert found, script_src
    nonce = found.group(1)
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["object-src"] == "object-src 'none'"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in response.headers  # plain http
    scripts = SCRIPT.findall(response.text)
    assert scripts, "the page has scripts"
    for attributes in scripts:
        assert NONCE.search(attributes), f"<script{attributes}> has no nonce"
        assert NONCE.search(attributes).group(1) == nonce  # type: ignore[union-attr]
    # Nothing on the page needs eval or inline handlers, which the policy would block.
    assert "hx-on" not in response.text
    assert not re.search(r"\son[a-z]+=", response.text)
    return nonce


async def test_the_login_page_has_a_nonce_csp_matching_its_scripts(service: Service) -> None:
    async with anonymous(service) as client:
        first = assert_page_is_locked_down(await client.get("/dashboard/login"))
        second = assert_page_is_locked_down(await client.get("/dashboard/login"))
    assert first != second  # a nonce per response, never reused


async def test_dashboard_pages_have_the_csp_and_htmx_runs_without_eval(service: Service) -> None:
    for path in ("/dashboard", "/dashboard/alerts", "/dashboard/silences", "/dashboard/account"):
        response = await service.client.get(path, headers={"Accept": "text/html"})
        assert_page_is_locked_down(response)
        config = re.search(r"""<meta name="htmx-config" content='([^']+)'>""", response.text)
        assert config, "htmx is configured for the CSP"
        assert '"allowEval": false' in config.group(1)
        assert '"includeIndicatorStyles": false' in config.group(1)
        assert directives(response)["style-src"] == "style-src 'self'"


async def test_api_responses_are_nosniff_and_only_html_gets_a_csp(service: Service) -> None:
    response = await service.client.get("/api/v1/checks")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" not in response.headers
    async with anonymous(service) as client:
        refused = await client.get("/api/v1/checks")
    assert refused.status_code == 401
    assert refused.headers["x-content-type-options"] == "nosniff"
    static = await service.client.get("/static/app.js")
    assert static.headers["x-content-type-options"] == "nosniff"


async def test_hsts_is_sent_when_the_request_came_over_https(service: Service) -> None:
    async with anonymous(service, base_url="https://wk") as client:
        page = await client.get("/dashboard/login")
        probe = await client.get("/health/live")
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    assert probe.headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize(
    ("path", "assets"),
    [
        ("/api/docs", ["vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css"]),
        ("/api/redoc", ["vendor/redoc.standalone.js"]),
    ],
)
async def test_the_api_docs_are_served_from_static_under_the_csp(
    service: Service, path: str, assets: list[str]
) -> None:
    async with anonymous(service) as client:
        response = await client.get(path)
        nonce = assert_page_is_locked_down(response)
        for asset in assets:
            assert f'"/static/{asset}?v=' in response.text
            served = await client.get(f"/static/{asset}")
            assert served.status_code == 200
            assert len(served.content) > 100_000
    # No third-party origin anywhere on the page: every asset is ours.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)
    # (The random nonce is left out: one in a few thousand spells "cdn".)
    assert "cdn" not in response.text.replace(nonce, "").lower()
    policy = directives(response)
    assert policy["script-src"] == f"script-src 'nonce-{nonce}'"
    assert policy["connect-src"] == "connect-src 'self'"
