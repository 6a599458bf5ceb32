"""Every dashboard form with hostile text (NUL, lone surrogates, bidi controls, huge values,
paths and ids that are not ids), on SQLite and PostgreSQL: an answer for the page (a redirect
with a notice, or 4xx), never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from tests.web.test_dashboard import HTML, PASSWORD, csrf_of, log_in
from watchkeeper.app import Runtime
from watchkeeper.auth.users import create_user
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

HOSTILE = ["\x00", "a\x00b", "\ud800", "\u202e\u200b", "x" * 5000, "../..", "%2F", "1e400", "-1"]


@pytest.fixture
async def browser(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    config = Config.model_validate(
        {
            "storage": {"url": db_url},
            "checks": [
                {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 1, "interval": "1h"}
            ],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    await create_user(runtime.db, "op", PASSWORD, Role.ADMIN, runtime.clock.now())
    app = create_app(config, runtime=runtime)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://wk"
        ) as client:
            done = await log_in(client, "op")
            assert done.status_code == 303, done.text
            yield client
    finally:
        await runtime.stop()


async def test_no_form_answers_500_for_hostile_text(browser: httpx.AsyncClient) -> None:
    csrf = csrf_of(await browser.get("/dashboard/silences", headers=HTML))
    alert = await browser.post(
        "/api/v1/alerts",
        json={"name": "x", "severity": "low"},
        headers={"X-CSRF-Token": csrf},
    )
    assert alert.status_code == 200, alert.text
    alert_id = alert.json()[0]["id"]
    failures = []
    for value in HOSTILE:
        encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
        posts = [
            (f"/dashboard/alerts/{alert_id}/comment", {"comment": value}),
            (f"/dashboard/alerts/{alert_id}/silence", {"duration": value}),
            ("/dashboard/alerts/" + encoded + "/ack", {}),
            ("/dashboard/alerts/" + encoded + "/comment", {"comment": "x"}),
            ("/dashboard/silences", {"matchers": f"a={value}", "comment": value}),
            ("/dashboard/silences", {"matchers": "a=b", "comment": value, "duration": value}),
            ("/dashboard/silences/" + encoded + "/expire", {}),
            ("/dashboard/maintenance", {"name": value, "comment": "c", "checks": "db"}),
            ("/dashboard/maintenance", {"name": "w", "comment": value, "checks": value}),
            ("/dashboard/maintenance/" + encoded + "/delete", {}),
            ("/dashboard/checks/" + encoded + "/pause", {}),
            ("/dashboard/checks/" + encoded + "/run", {}),
            ("/dashboard/account/password", {"current": value, "new": value, "confirm": value}),
        ]
        for path, form in posts:
            data = {k: v.encode("utf-8", "surrogatepass") for k, v in form.items()}
            answer = await browser.post(
                path, data={"csrf_token": csrf, **data}, follow_redirects=False
            )
            if answer.status_code >= 500:
                failures.append((path[:60], repr(form)[:60], answer.status_code))
            await browser.post("/dashboard/maintenance/w/delete", data={"csrf_token": csrf})
    assert failures == []
