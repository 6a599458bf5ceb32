"""Reloading the config file under a running service (`POST /api/v1/reload`, `SIGHUP`):
checks, channels, rules and windows follow the file; a check that keeps its name keeps its
state and open alert; an invalid file is refused with its located errors and changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.auth import bearer, cli_token, token_for
from tests.support.process import WatchkeeperProcess
from tests.support.servers import FlippingTarget, WebhookReceiver, wait_until
from tests.support.service import Service, running
from watchkeeper.app import Runtime
from watchkeeper.config.loader import ConfigFile, load_config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.services.reload import ConfigChanges

MAINTENANCE = "/api/v1/maintenances"


HEARTBEAT = {"name": "job", "type": "heartbeat", "period": "1h", "grace": "1h"}


def http_check(name: str, target: FlippingTarget, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "http",
        "url": f"{target.url}/health",
        "interval": "1s",
        "timeout": "2s",
        **fields,
    }


def write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@contextlib.asynccontextmanager
async def running_from(path: Path) -> AsyncIterator[Service]:
    """A runtime started from the config file `path`, which a reload reads again."""
    runtime = Runtime(load_config(path), config_file=ConfigFile(path))
    await runtime.start()
    try:
        app = create_app(runtime.config, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers=bearer(await token_for(runtime, Role.ADMIN)),
        ) as client:
            yield Service(runtime, client)
    finally:
        await runtime.stop()


async def status(service: Service, name: str) -> str | None:
    found = await service.client.get(f"/api/v1/checks/{name}")
    return str(found.json()["status"]) if found.status_code == 200 else None


async def open_alerts(service: Service, check: str) -> list[dict[str, Any]]:
    found = await service.client.get("/api/v1/alerts", params={"status": "open", "check": check})
    return list(found.json()["items"])


async def is_status(service: Service, name: str, wanted: str) -> bool:
    return await status(service, name) == wanted


async def test_a_reload_adds_removes_and_changes_checks_channels_and_rules(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    healthy, failing = await FlippingTarget().start(), await FlippingTarget().start()
    failing.status = 500
    second = WebhookReceiver()
    await second.start()
    path = tmp_path / "watchkeeper.yaml"
    base: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    write(
        path,
        {
            **base,
            "checks": [http_check("keep", failing), http_check("gone", failing), HEARTBEAT],
            "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
            "rules": [{"name": "old-rule", "metric": "m", "op": ">", "threshold": 1}],
        },
    )
    try:
        async with running_from(path) as service:
            client = service.client
            (kept,) = await wait_until(lambda: open_alerts(service, "keep"), 15, "keep's alert")
            (removed,) = await wait_until(lambda: open_alerts(service, "gone"), 15, "gone's alert")

            write(
                path,
                {
                    **base,
                    "checks": [
                        http_check("keep", failing, timeout="3s", labels={"team": "web"}),
                        http_check("new", healthy),
                        {**HEARTBEAT, "grace": "2h"},
                    ],
                    "alerting": {"routes": [{"matchers": ["check=new"], "notify": ["second"]}]},
                    "notifications": [
                        {"name": "ops", "type": "webhook", "url": receiver.hook_url},
                        {"name": "second", "type": "webhook", "url": second.hook_url},
                    ],
                    "rules": [{"name": "new-rule", "metric": "m", "op": ">", "threshold": 2}],
                    "maintenance": [
                        {
                            "name": "patching",
                            "schedule": "0 2 * * 0",
                            "duration": "2h",
                            "checks": ["keep"],
                        }
                    ],
                },
            )
            reloaded = await client.post("/api/v1/reload")
            assert reloaded.status_code == 200, reloaded.text
            summary = reloaded.json()
            assert summary["changed"] is True
            assert summary["checks"] == {
                "added": ["new"],
                "removed": ["gone"],
                "changed": ["keep", "job"],
                "unchanged": 0,
            }
            assert summary["notifications"]["added"] == ["second"]
            assert summary["notifications"]["unchanged"] == 1
            assert summary["rules"]["added"] == ["new-rule"]
            assert summary["rules"]["removed"] == ["old-rule"]
            assert summary["maintenance"]["added"] == ["patching"]
            assert summary["settings"] == ["alerting.routes"]
            assert summary["needs_restart"] == []

            # Removed: gone from the API and the scheduler; its open alert resolved.
            assert await status(service, "gone") is None
            assert "gone" not in service.runtime.scheduler.scheduled
            detail = (await client.get(f"/api/v1/alerts/{removed['id']}")).json()
            assert detail["status"] == "resolved"
            assert detail["events"][-1]["comment"] == "check removed"

            # Changed: same state, same open alert, new definition running.
            assert await status(service, "keep") == "down"
            assert [a["id"] for a in await open_alerts(service, "keep")] == [kept["id"]]
            assert service.runtime.check_configs["keep"].timeout.total_seconds() == 3
            assert service.runtime.check_configs["keep"].labels == {"team": "web"}
            job = service.runtime.heartbeats.by_name("job")  # a push check: still watched
            assert job is not None and job.config.grace.total_seconds() == 7200

            # Rules and maintenance windows follow the file.
            rules = (await client.get("/api/v1/rules")).json()["items"]
            assert [r["name"] for r in rules] == ["new-rule"]
            windows = (await client.get(MAINTENANCE)).json()["items"]
            assert [w["name"] for w in windows] == ["patching"]

            # Added: it runs; when it fails, the new channel gets the page (by the new route).
            await wait_until(lambda: is_status(service, "new", "up"), 15, "new up")
            healthy.status = 500
            await second.wait_for(
                lambda r: any(
                    d.payload["alert"].get("check") == "new" for d in r.accepted("alert.firing")
                ),
                20,
                "the new channel paged for the new check",
            )
            # The kept alert is still the one it was, never resolved by the reload.
            assert [a["id"] for a in await open_alerts(service, "keep")] == [kept["id"]]
    finally:
        await second.close()
        await healthy.close()
        await failing.close()


INVALID = """\
storage:
  url: sqlite:///{db}
checks:
  - name: web
    type: http
    url: http://127.0.0.1:9/health
    intervall: 1s
"""


async def test_an_invalid_file_is_refused_with_its_lines_and_the_running_config_stays(
    tmp_path: Path,
) -> None:
    path = tmp_path / "watchkeeper.yaml"
    base: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    check = {"name": "cfg", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
    write(path, {**base, "checks": [check]})
    async with running_from(path) as service:
        path.write_text(INVALID.format(db=tmp_path / "wk.db"))
        refused = await service.client.post("/api/v1/reload")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert "running config stays" in problem["detail"]
        (error,) = problem["errors"]
        assert error["where"] == f"{path}:7"
        assert (error["file"], error["line"]) == (str(path), 7)
        assert error["loc"] == ["checks[0].intervall"]
        listed = (await service.client.get("/api/v1/checks")).json()["items"]
        assert [c["name"] for c in listed] == ["cfg"]
        assert service.runtime.config.checks[0].name == "cfg"

        # Settings read only at start are kept and reported; nothing else changed.
        write(path, {**base, "checks": [check], "scheduler": {"max_concurrency": 7}})
        reloaded = (await service.client.post("/api/v1/reload")).json()
        assert reloaded["changed"] is False
        assert reloaded["needs_restart"] == ["scheduler.max_concurrency"]
        assert service.runtime.config.scheduler.max_concurrency != 7


async def test_concurrent_reloads_run_one_after_the_other(tmp_path: Path) -> None:
    path = tmp_path / "watchkeeper.yaml"
    base: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    check = {"name": "a", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
    write(path, {**base, "checks": [check]})
    async with running_from(path) as service:
        reload = service.runtime.services.reload
        apply, gate = reload.apply, asyncio.Event()
        applying: list[ConfigChanges] = []

        async def held(changes: ConfigChanges) -> None:
            applying.append(changes)
            await gate.wait()  # the first reload stays in the middle of applying
            await apply(changes)

        reload.apply = held
        write(path, {**base, "checks": [check, {**check, "name": "b"}]})
        first = asyncio.create_task(service.client.post("/api/v1/reload"))
        await wait_until(lambda: applying, 5, "the first reload applying")
        second = asyncio.create_task(service.client.post("/api/v1/reload"))
        done, _ = await asyncio.wait({second}, timeout=0.5)
        assert not done and len(applying) == 1  # the second waits for the first
        gate.set()
        answers = [await first, await second]
        assert [a.status_code for a in answers] == [200, 200]
        assert [a.json()["checks"]["added"] for a in answers] == [["b"], []]
        assert sorted(service.runtime.scheduler.scheduled) == ["a", "b"]


async def test_a_file_clashing_with_an_api_managed_check_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "watchkeeper.yaml"
    base: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    check = {"name": "api", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
    write(path, base)
    async with running_from(path) as service:
        created = await service.client.post("/api/v1/checks", json=check)
        assert created.status_code == 201, created.text
        write(path, {**base, "checks": [check]})
        refused = await service.client.post("/api/v1/reload")
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert "managed over the API" in error["msg"]
        assert error["where"] == f"{path}:4" and error["loc"] == ["checks[0].name"]
        # The API-managed check is untouched, and a file without the clash reloads.
        write(path, {**base, "checks": [{**check, "name": "file"}]})
        reloaded = await service.client.post("/api/v1/reload")
        assert reloaded.status_code == 200, reloaded.text
        listed = (await service.client.get("/api/v1/checks")).json()["items"]
        assert sorted((c["name"], c["source"]) for c in listed) == [
            ("api", "api"),
            ("file", "config"),
        ]
        audit = await service.client.get("/api/v1/audit", params={"action": "POST /api/v1/reload"})
        (entry,) = audit.json()["items"]  # the refused reload changed nothing: not recorded
        assert entry["detail"]["checks"] == {"added": ["file"]}


async def test_a_service_on_the_built_in_config_has_no_file_to_reload(sqlite_url: str) -> None:
    async with running({"storage": {"url": sqlite_url}}) as service:
        refused = await service.client.post("/api/v1/reload")
        assert refused.status_code == 409, refused.text
        assert "no file to reload" in refused.json()["detail"]


async def test_sighup_reloads_the_config_file_of_a_running_process(tmp_path: Path) -> None:
    path = tmp_path / "watchkeeper.yaml"
    base: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    check = {"name": "first", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
    write(path, {**base, "checks": [check]})
    token = await cli_token(path)
    wk = await WatchkeeperProcess(path, tmp_path, token=token).start()
    try:

        async def names() -> list[str]:
            return sorted(c["name"] for c in (await wk.get("/api/v1/checks"))["items"])

        assert await names() == ["first"]
        # An invalid file: refused, located in the log, and the service runs on.
        path.write_text(INVALID.format(db=tmp_path / "wk.db"))
        assert wk.proc is not None
        wk.send_signal(signal.SIGHUP)
        refused = f"{path}:7: checks[0].intervall"
        await wait_until(lambda: refused in wk.log_text(), 15, "the refusal in the log")
        assert await names() == ["first"]

        write(path, {**base, "checks": [check, {**check, "name": "second"}]})
        wk.send_signal(signal.SIGHUP)
        await wait_until(lambda: _equal(names(), ["first", "second"]), 15, "the new check")
        assert wk.proc.returncode is None  # SIGHUP reloads; it does not end the service
        assert "config reloaded by SIGHUP" in wk.log_text()
    finally:
        assert await wk.stop() == 0


async def _equal(value: Any, wanted: Any) -> bool:
    return bool(await value == wanted)
