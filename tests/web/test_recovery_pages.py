"""The dashboard's recovery: the Recovery page (actions, pending approvals with approve and
reject for operators), the check page's recovery section with its runs, and the forms
(CSRF as every form, refused to viewers, audited naming who)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import wait_until
from tests.web.test_dashboard import HTML, PASSWORD, csrf_of, log_in
from watchkeeper.app import Runtime
from watchkeeper.auth.users import create_user
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.services.audit import list_entries

PY = sys.executable


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[Runtime, object]]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                {
                    "name": "db",
                    "type": "tcp",
                    "host": "127.0.0.1",
                    "port": 1,
                    "interval": "1h",
                    "recovery": "restart-db",
                }
            ],
            "recovery": [
                {
                    "name": "restart-db",
                    "type": "command",
                    "command": [PY, "-c", "print('db <restarted>')"],
                    "max_attempts": 50,
                    "cooldown": "0s",
                },
                {
                    "name": "db-runbook",
                    "type": "runbook",
                    "approval": "required",
                    "steps": [{"action": "restart-db"}],
                },
            ],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    for role in (Role.VIEWER, Role.OPERATOR):
        await create_user(runtime.db, role.value, PASSWORD, role, runtime.clock.now())
    try:
        yield runtime, create_app(config, runtime=runtime)
    finally:
        await runtime.stop()


def browser(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk")  # type: ignore[arg-type]


async def test_the_recovery_pages_and_forms(app: tuple[Runtime, object]) -> None:
    runtime, asgi = app
    async with browser(asgi) as viewer:
        await log_in(viewer, "viewer")
        page = await viewer.get("/dashboard/recovery", headers=HTML)
        assert page.status_code == 200
        assert "restart-db" in page.text and "db-runbook" in page.text
        assert "Nothing is waiting for approval" in page.text
        assert "/run" not in page.text, "no buttons for a viewer"
        token = csrf_of(await viewer.get("/dashboard/account", headers=HTML))
        refused = await viewer.post(
            "/dashboard/recovery/restart-db/run", data={"csrf_token": token}, headers=HTML
        )
        assert refused.status_code == 403

    async with browser(asgi) as operator:
        await log_in(operator, "operator")
        page = await operator.get("/dashboard/recovery", headers=HTML)
        assert 'action="/dashboard/recovery/db-runbook/run"' in page.text
        token = csrf_of(page)
        no_csrf = await operator.post("/dashboard/recovery/db-runbook/run", headers=HTML)
        assert no_csrf.status_code in (400, 403)

        asked = await operator.post(
            "/dashboard/recovery/db-runbook/run", data={"csrf_token": token}, headers=HTML
        )
        assert asked.status_code == 303
        assert "waiting+for+approval" in asked.headers["location"].replace("%20", "+")
        page = await operator.get("/dashboard/recovery", headers=HTML)
        (pending,) = await runtime.services.recovery.pending()
        assert f'id="run-{pending["id"]}"' in page.text
        assert f'action="/dashboard/recovery/runs/{pending["id"]}/approve"' in page.text

        approved = await operator.post(
            f"/dashboard/recovery/runs/{pending['id']}/approve",
            data={"csrf_token": token, "comment": "ok by me"},
            headers=HTML,
        )
        assert approved.status_code == 303 and "approved" in approved.headers["location"]

        async def done() -> bool:
            run = await runtime.services.recovery.run(pending["id"])
            return bool(run["finished_at"])

        await wait_until(done, 15, "the approved runbook done")
        run = await runtime.services.recovery.run(pending["id"])
        assert run["status"] == "succeeded" and "approved by operator: ok by me" in run["output"]

        # The check page: the action with its buttons, and the runs for this check, escaped.
        async def automatic() -> list[dict[str, Any]]:
            runs, _ = await runtime.services.recovery.runs(
                action=None, check="db", limit=10, offset=0
            )
            return [r for r in runs if r["finished_at"]]

        (auto,) = await wait_until(automatic, 15, "the run for db's DOWN")
        assert auto["trigger"] == "check" and auto["action"] == "restart-db"
        check = await operator.get("/dashboard/checks/db", headers=HTML)
        assert check.status_code == 200
        assert 'action="/dashboard/recovery/restart-db/reset"' in check.text
        assert "db &lt;restarted&gt;" in check.text and "<restarted>" not in check.text
        partial = await operator.get("/dashboard/recovery/runs?check=db", headers=HTML)
        assert partial.status_code == 200 and f'id="run-{auto["id"]}"' in partial.text
        assert f'id="run-{pending["id"]}"' not in partial.text, "a run for no check"

        audit, _ = await list_entries(runtime.db, limit=50)
        entry = next(e for e in audit if e.action.endswith("/approve"))
        assert entry.actor == "operator" and entry.detail is not None
        assert entry.detail["comment"] == "ok by me" and entry.detail["decision"] == "approved"
