"""Checks created, replaced and deleted over the API: validated like the config file, run at
once, kept across restarts; config-file checks stay read-only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import FlippingTarget, WebhookReceiver, wait_until
from tests.support.service import Service, running
from watchkeeper.http.roles import Role
from watchkeeper.store import tables


def config(db_url: str, hook: str = "http://127.0.0.1:9/hook") -> dict[str, Any]:
    return {
        "storage": {"url": db_url},
        "checks": [
            {"name": "cfg", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
        ],
        "notifications": [{"name": "ops", "type": "webhook", "url": hook}],
    }


def http_check(target: FlippingTarget, **fields: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "type": "http",
        "url": f"{target.url}/health",
        "interval": "1s",  # the shortest a check may have
        "timeout": "2s",
        **fields,
    }


@pytest.fixture
async def service(sqlite_url: str) -> AsyncIterator[Service]:
    async with running(config(sqlite_url)) as started:
        yield started


async def status(service: Service, name: str) -> str:
    return str((await service.client.get(f"/api/v1/checks/{name}")).json()["status"])


async def open_alerts(service: Service, check: str) -> list[dict[str, Any]]:
    found = await service.client.get("/api/v1/alerts", params={"status": "open", "check": check})
    return list(found.json()["items"])


async def test_a_created_check_runs_goes_down_is_updated_and_deleted_with_its_alert(
    db_url: str, target: FlippingTarget, receiver: WebhookReceiver
) -> None:
    other = await FlippingTarget().start()
    try:
        async with running(config(db_url, receiver.hook_url)) as service:
            client = service.client
            created = await client.post("/api/v1/checks", json=http_check(target))
            assert created.status_code == 201, created.text
            body = created.json()
            assert body["source"] == "api" and body["version"] == 1
            assert body["interval_seconds"] == 1.0 and body["created_by"] == "tests"
            assert body["definition"]["url"] == f"{target.url}/health"

            await wait_until(lambda: _is(status(service, "web"), "up"), 10, "web up")
            assert (await client.get("/api/v1/checks/web/results")).json()[0]["status"] == "up"
            listed = (await client.get("/api/v1/checks")).json()["items"]
            assert {c["name"]: c["source"] for c in listed} == {"cfg": "config", "web": "api"}

            target.status = 500
            await wait_until(lambda: _is(status(service, "web"), "down"), 10, "web down")
            (alert,) = await wait_until(lambda: open_alerts(service, "web"), 10, "an alert")
            await receiver.wait_for(lambda r: r.accepted("alert.firing"), 10, "the page")

            # Replace: another URL (healthy) and interval; the open alert resolves on recovery.
            replaced = await client.put("/api/v1/checks/web", json=http_check(other, interval="2s"))
            assert replaced.status_code == 200, replaced.text
            assert replaced.json()["version"] == 2 and replaced.json()["interval_seconds"] == 2.0
            assert replaced.json()["definition"]["url"] == f"{other.url}/health"
            await wait_until(lambda: _is(status(service, "web"), "up"), 10, "web up again")
            await wait_until(lambda: other.hits > 0, 10, "the new URL probed")
            await wait_until(lambda: _no(open_alerts(service, "web")), 10, "alert resolved")

            other.status = 500
            (alert,) = await wait_until(lambda: open_alerts(service, "web"), 10, "a new alert")
            # Paged first: only who was paged is told of the resolution.
            await receiver.wait_for(
                lambda r: any(
                    d.payload["alert"]["id"] == alert["id"] for d in r.accepted("alert.firing")
                ),
                10,
                "the second page",
            )
            deleted = await client.delete("/api/v1/checks/web")
            assert deleted.status_code == 204, deleted.text

            assert (await client.get("/api/v1/checks/web")).status_code == 404
            assert "web" not in service.runtime.scheduler.scheduled  # type: ignore[union-attr]
            hits = other.hits
            detail = (await client.get(f"/api/v1/alerts/{alert['id']}")).json()
            assert detail["status"] == "resolved"
            assert detail["events"][-1]["comment"] == "check deleted"
            await receiver.wait_for(
                lambda r: any(
                    d.payload["alert"]["id"] == alert["id"] for d in r.accepted("alert.resolved")
                ),
                10,
                "the resolution sent to who was paged",
            )
            # Its results stay (until retention); its state is gone.
            async with service.runtime.db.connect() as conn:
                states = (await conn.execute(tables.check_states.select())).all()
                results = (await conn.execute(tables.check_results.select())).all()
            assert "web" not in {s.check_name for s in states}
            assert any(r.check_name == "web" for r in results)
            assert other.hits == hits  # no run after the delete returned

            audit = (await client.get("/api/v1/audit")).json()["items"]
            actions = [(e["action"], e["status"]) for e in reversed(audit)]
            assert actions[-3:] == [
                ("POST /api/v1/checks", 201),
                ("PUT /api/v1/checks/{name}", 200),
                ("DELETE /api/v1/checks/{name}", 204),
            ]
            assert audit[-1]["detail"]["name"] == "web"
    finally:
        await other.close()


async def _is(value: Any, wanted: str) -> bool:
    return bool(await value == wanted)


async def _no(value: Any) -> bool:
    return not await value


async def test_config_file_checks_are_read_only(service: Service) -> None:
    client = service.client
    for response in (
        await client.put("/api/v1/checks/cfg", json={"type": "tcp", "host": "h", "port": 1}),
        await client.delete("/api/v1/checks/cfg"),
        await client.post(
            "/api/v1/checks", json={"name": "cfg", "type": "tcp", "host": "h", "port": 1}
        ),
    ):
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "defined in the config file; edit it there" in response.json()["detail"]
    assert (await client.get("/api/v1/checks/cfg")).json()["source"] == "config"
    assert (await client.put("/api/v1/checks/nope", json={})).status_code == 404
    assert (await client.delete("/api/v1/checks/nope")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "x", "type": "http"}, "url", "Field required"),
        ({"name": "x", "type": "tcp", "host": "h", "port": 1, "interval": "soon"}, "interval", ""),
        ({"name": "X!", "type": "tcp", "host": "h", "port": 1}, "name", "pattern"),
        ({"name": "x", "type": "tcp", "host": "h", "port": 1, "colour": 1}, "colour", "Extra"),
        ({"name": "x", "type": "nope"}, "type", "does not match"),
        ({"name": "x"}, "type", ""),
        ({"name": "x", "type": "command", "command": ["true"]}, "type", "config file"),
        ({"name": "x", "type": "python", "target": "os:getcwd"}, "type", "config file"),
        ({"name": "x", "type": "tcp", "host": "h", "port": 1, "notify": ["pager"]}, "notify", ""),
        ({"name": "x", "type": "tcp", "host": "h", "port": 1, "escalation": "p"}, "escalation", ""),
        (
            {"name": "x", "type": "tcp", "host": "h", "port": 1, "depends_on": ["y"]},
            "depends_on",
            "",
        ),
        (
            {"name": "x", "type": "tcp", "host": "h", "port": 1, "depends_on": ["x"]},
            "depends_on",
            "",
        ),
    ],
)
async def test_an_invalid_check_is_a_422_naming_the_field_and_stores_nothing(
    service: Service, body: dict[str, Any], field: str, message: str
) -> None:
    response = await service.client.post("/api/v1/checks", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"].startswith(f"{field}: "), problem
    assert message in problem["detail"]
    assert [e["loc"][0] for e in problem["errors"]] == [field]
    assert set(service.runtime.check_configs) == {"cfg"}
    async with service.runtime.db.connect() as conn:
        assert (await conn.execute(tables.managed_objects.select())).all() == []


async def test_a_failed_replacement_leaves_the_check_as_it_was(
    service: Service, target: FlippingTarget
) -> None:
    client = service.client
    assert (await client.post("/api/v1/checks", json=http_check(target))).status_code == 201
    bad = await client.put("/api/v1/checks/web", json=http_check(target, timeout="never"))
    assert bad.status_code == 422 and bad.json()["detail"].startswith("timeout: ")
    renamed = await client.put("/api/v1/checks/web", json=http_check(target, name="other"))
    assert renamed.status_code == 422 and renamed.json()["detail"].startswith("name: ")
    check = (await client.get("/api/v1/checks/web")).json()
    assert check["timeout_seconds"] == 2.0
    assert "web" in service.runtime.scheduler.scheduled  # type: ignore[union-attr]
    async with service.runtime.db.connect() as conn:
        (row,) = (await conn.execute(tables.managed_objects.select())).all()
    assert row.version == 1 and row.definition["timeout"] == "2s"


async def test_dependencies_between_managed_checks_are_validated_and_protected(
    service: Service,
) -> None:
    client = service.client
    base = {"type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
    assert (await client.post("/api/v1/checks", json={"name": "db", **base})).status_code == 201
    app = {"name": "app", **base, "depends_on": ["db", "cfg"]}
    assert (await client.post("/api/v1/checks", json=app)).status_code == 201
    cycle = await client.put("/api/v1/checks/db", json={**base, "depends_on": ["app"]})
    assert cycle.status_code == 422 and "cycle" in cycle.json()["detail"]
    in_use = await client.delete("/api/v1/checks/db")
    assert in_use.status_code == 409 and "check app" in in_use.json()["detail"]
    assert (await client.delete("/api/v1/checks/app")).status_code == 204
    assert (await client.delete("/api/v1/checks/db")).status_code == 204


async def test_only_admins_write_checks(service: Service, target: FlippingTarget) -> None:
    client = service.client
    for role in (Role.VIEWER, Role.OPERATOR):
        headers = await service.as_role(role)
        for method, url in (
            ("POST", "/api/v1/checks"),
            ("PUT", "/api/v1/checks/web"),
            ("DELETE", "/api/v1/checks/cfg"),
        ):
            response = await client.request(method, url, json=http_check(target), headers=headers)
            assert response.status_code == 403, (role, method, response.text)
    viewer = await service.as_role(Role.VIEWER)
    assert (await client.get("/api/v1/checks/cfg", headers=viewer)).status_code == 200
    assert set(service.runtime.check_configs) == {"cfg"}


async def test_secrets_are_masked_in_responses_and_logs(
    service: Service, target: FlippingTarget
) -> None:
    body = http_check(target, bearer_token="tok-4f9a-secret", headers={"X-Api-Key": "k-77c1e"})
    created = await service.client.post("/api/v1/checks", json=body)
    assert created.status_code == 201, created.text
    assert "tok-4f9a-secret" not in created.text and "k-77c1e" not in created.text
    assert created.json()["definition"]["bearer_token"] == "***"
    assert service.runtime.redactor("sent tok-4f9a-secret") == "sent ***"


async def test_a_heartbeat_created_over_the_api_takes_pings_until_deleted(
    service: Service,
) -> None:
    client = service.client
    body = {"name": "nightly", "type": "heartbeat", "period": "1d", "grace": "1h"}
    created = await client.post("/api/v1/checks", json=body)
    assert created.status_code == 201, created.text
    ping_url = created.json()["ping_url"]
    assert ping_url.startswith("http://127.0.0.1:8080/ping/")
    path = ping_url.removeprefix("http://127.0.0.1:8080")
    assert (await client.get(path)).status_code == 200
    assert await status(service, "nightly") == "up"
    assert (await client.delete("/api/v1/checks/nightly")).status_code == 204
    assert (await client.get(path)).status_code == 404


async def test_managed_checks_survive_a_restart(db_url: str, target: FlippingTarget) -> None:
    async with running(config(db_url)) as service:
        body = http_check(target, interval="1h", labels={"team": "web"})
        assert (await service.client.post("/api/v1/checks", json=body)).status_code == 201

    async with running(config(db_url)) as service:
        check = (await service.client.get("/api/v1/checks/web")).json()
        assert check["source"] == "api" and check["labels"] == {"team": "web"}
        assert service.runtime.scheduler.scheduled == {"cfg", "web"}  # type: ignore[union-attr]
        assert (await service.client.post("/api/v1/checks/web/run")).status_code == 202
        await wait_until(lambda: target.hits > 0, 10, "the restored check to run")


async def test_a_stored_check_that_no_longer_validates_is_skipped_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    async with running(config(url)) as service:
        body = {"name": "edge", "type": "tcp", "host": "127.0.0.1", "port": 9, "notify": ["ops"]}
        assert (await service.client.post("/api/v1/checks", json=body)).status_code == 201
        ok = {"name": "core", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
        assert (await service.client.post("/api/v1/checks", json=ok)).status_code == 201

    without_ops = {**config(url), "notifications": []}
    with caplog.at_level(logging.ERROR, logger="watchkeeper.objects.managed"):
        async with running(without_ops) as service:
            assert set(service.runtime.check_configs) == {"cfg", "core"}
            assert (await service.client.get("/api/v1/checks/edge")).status_code == 404
    (message,) = [r.getMessage() for r in caplog.records if "edge" in r.getMessage()]
    assert "check 'edge'" in message and "no notification channel named 'ops'" in message


@pytest.mark.empty_database
async def test_the_migration_creates_the_table_the_code_declares(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from watchkeeper.store.database import Database

    db = Database(db_url)
    try:
        await db.migrate()
        async with db.connect() as conn:
            diffs = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), tables.metadata)
            )
    finally:
        await db.close()
    assert [d for d in diffs if "managed_objects" in repr(d)] == []


async def test_nul_characters_are_refused_before_anything_is_stored(db_url: str) -> None:
    async with running(config(db_url)) as service:
        client = service.client
        check = {"name": "n", "type": "tcp", "host": "h", "port": 1, "labels": {"a": "b\x00"}}
        rule = {"name": "r", "metric": "m", "threshold": 1, "summary": "x\x00"}
        for url, body, field in (
            ("/api/v1/checks", check, "labels.a"),
            ("/api/v1/rules", rule, "summary"),
        ):
            response = await client.post(url, json=body)
            assert response.status_code == 422, response.text
            assert response.json()["detail"].startswith(f"{field}: text must not contain NUL")
        assert (await client.put("/api/v1/rules/a%00b", json={})).status_code == 404
        async with service.runtime.db.connect() as conn:
            assert (await conn.execute(tables.managed_objects.select())).all() == []


async def test_a_change_the_running_service_cannot_apply_is_not_stored(
    service: Service, target: FlippingTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = service.client
    assert (await client.post("/api/v1/checks", json=http_check(target))).status_code == 201
    scheduler = service.runtime.scheduler
    assert scheduler is not None
    real_add = scheduler.add

    def refuse(check: Any) -> None:
        if check.name == "more" or check.config.timeout.total_seconds() == 3:
            raise RuntimeError("scheduler refuses")
        real_add(check)

    monkeypatch.setattr(scheduler, "add", refuse)
    created = await client.post("/api/v1/checks", json=http_check(target, name="more"))
    assert created.status_code == 503 and "nothing changed" in created.json()["detail"]
    replaced = await client.put("/api/v1/checks/web", json=http_check(target, timeout="3s"))
    assert replaced.status_code == 503 and "left as it was" in replaced.json()["detail"]
    monkeypatch.setattr(scheduler, "add", real_add)

    # The old definition runs and is stored; the new one is nowhere.
    assert set(service.runtime.check_configs) == {"cfg", "web"}
    assert scheduler.scheduled == {"cfg", "web"}
    assert (await client.get("/api/v1/checks/web")).json()["timeout_seconds"] == 2.0
    async with service.runtime.db.connect() as conn:
        rows = (await conn.execute(tables.managed_objects.select())).all()
    assert [(r.name, r.version, r.definition["timeout"]) for r in rows] == [("web", 1, "2s")]


async def test_a_stored_check_skipped_at_start_can_be_fixed_with_put(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wk.db'}"
    body = {"name": "edge", "type": "tcp", "host": "127.0.0.1", "port": 9, "notify": ["ops"]}
    async with running(config(url)) as service:
        assert (await service.client.post("/api/v1/checks", json=body)).status_code == 201

    async with running({**config(url), "notifications": []}) as service:
        client = service.client
        again = await client.post("/api/v1/checks", json={**body, "notify": []})
        assert again.status_code == 409 and "did not validate at start" in again.json()["detail"]
        fixed = await client.put("/api/v1/checks/edge", json={**body, "notify": []})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["version"] == 2 and "edge" in service.runtime.check_configs
