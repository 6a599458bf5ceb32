"""Heartbeat pings cannot be forged or used to fill the disk: names only when enabled, the
ping key's `/ping/<key>/<slug>` form, rate limits, the daily body cap, `/log` bodies kept."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import admin_headers
from tests.support.clock import FakeClock
from tests.test_config import watchkeeper
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config, ConfigError, parse_config
from watchkeeper.core.ratelimit import TokenBuckets, retry_after
from watchkeeper.engine.heartbeat.settings import PingRate
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.store.heartbeats import load_heartbeats

T0 = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
PING_KEY = "pk-0123456789abcdefXYZ"


@dataclass
class Pinged:
    runtime: Runtime
    anonymous: httpx.AsyncClient
    """No credentials at all, like a cron job (or an attacker)."""
    admin: dict[str, str]

    def uuid_path(self, name: str) -> str:
        assert self.runtime.heartbeats is not None
        record = self.runtime.heartbeats.record(name)
        assert record is not None
        return f"/ping/{record.uuid}"

    async def check(self, name: str) -> dict[str, Any]:
        response = await self.anonymous.get(f"/api/v1/checks/{name}", headers=self.admin)
        return dict(response.json())

    async def results(self, name: str) -> list[dict[str, Any]]:
        response = await self.anonymous.get(f"/api/v1/checks/{name}/results", headers=self.admin)
        return list(response.json())


@contextlib.asynccontextmanager
async def pinged(
    tmp_path: Path,
    heartbeats: dict[str, Any] | None = None,
    clock: FakeClock | None = None,
    url: str | None = None,
) -> AsyncIterator[Pinged]:
    config = Config.model_validate(
        {
            "storage": {"url": url or f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                {"name": name, "type": "heartbeat", "period": "1d", "grace": "1h"}
                for name in ("backup", "7", "start")
            ],
            **({"heartbeats": heartbeats} if heartbeats is not None else {}),
        }
    )
    runtime = Runtime(config, clock=clock)
    await runtime.start()
    try:
        app = create_app(config, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://wk"
        ) as anonymous:
            yield Pinged(runtime, anonymous, await admin_headers(runtime))
    finally:
        await runtime.stop()


# --- who may ping ---------------------------------------------------------------------------


async def test_an_anonymous_ping_by_name_is_the_unknown_key_404_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with pinged(tmp_path) as service:
        client = service.anonymous
        for path in ("/ping/backup", "/ping/backup/fail", "/ping/backup/0", "/ping/backup/log"):
            response = await client.post(path, content=b"forged")
            assert (response.status_code, response.text) == (404, "not found"), path
        assert (await service.check("backup"))["status"] == "unknown"  # nothing counted
        assert await service.results("backup") == []
        refused = [r for r in caplog.records if "ping by check name was refused" in r.message]
        assert len(refused) == 1  # once, for whoever upgraded with jobs pinging by name
        # The check's UUID URL always works.
        assert (await client.get(service.uuid_path("backup"))).status_code == 200
        assert (await service.check("backup"))["status"] == "up"


async def test_pings_by_name_work_when_enabled(tmp_path: Path) -> None:
    async with pinged(tmp_path, {"ping_by_name": True}) as service:
        assert (await service.anonymous.post("/ping/backup/fail")).text == "OK"
        assert (await service.check("backup"))["status"] == "down"
        assert (await service.anonymous.get("/ping/backup")).status_code == 200
        assert (await service.check("backup"))["status"] == "up"


async def test_the_ping_key_form_pings_by_slug_and_a_wrong_key_is_404(tmp_path: Path) -> None:
    async with pinged(tmp_path, {"ping_key": PING_KEY}) as service:
        client = service.anonymous
        assert (await client.post(f"/ping/{PING_KEY}/backup/fail")).status_code == 200
        assert (await service.check("backup"))["status"] == "down"
        assert (await client.get(f"/ping/{PING_KEY}/backup")).status_code == 200
        assert (await service.check("backup"))["status"] == "up"
        assert (await client.get(f"/ping/{PING_KEY}/backup/3")).status_code == 200
        assert (await service.check("backup"))["status"] == "down"
        assert (await client.get(f"/ping/{PING_KEY}/backup/start")).status_code == 200
        assert (await client.post(f"/ping/{PING_KEY}/backup/0")).status_code == 200
        assert (await service.check("backup"))["status"] == "up"
        assert (await client.get(f"/ping/{PING_KEY}/backup/256")).status_code == 400

        # After the ping key the next segment is always a slug: checks named like an
        # exit status or an action are reachable too.
        assert (await client.get(f"/ping/{PING_KEY}/7")).status_code == 200
        assert (await service.check("7"))["status"] == "up"
        assert (await client.get(f"/ping/{PING_KEY}/start/fail")).status_code == 200
        assert (await service.check("start"))["status"] == "down"

        wrong = PING_KEY[:-1] + "Q"
        for path in (
            f"/ping/{wrong}/backup",
            f"/ping/{wrong}/backup/fail",
            f"/ping/{PING_KEY}/nope",
            f"/ping/{PING_KEY}",
            f"/ping/{PING_KEY}/backup/nope",
            f"{service.uuid_path('backup')}/backup/fail",  # a UUID is no ping key
        ):
            response = await client.post(path)
            assert (response.status_code, response.text) == (404, "not found"), path
        assert (await service.check("backup"))["status"] == "up"


async def test_a_generated_ping_key_is_kept_and_shown_to_admins_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with pinged(tmp_path) as service:
        shown = await service.anonymous.get("/api/v1/heartbeats/ping-key", headers=service.admin)
        assert shown.status_code == 200
        key = shown.json()["ping_key"]
        assert shown.json()["source"] == "generated" and len(key) >= 16
        assert shown.json()["ping_url_template"].endswith(f"/ping/{key}/{{name}}")
        viewer = await admin_headers(service.runtime, Role.VIEWER)
        for headers in (viewer, await admin_headers(service.runtime, Role.OPERATOR), {}):
            refused = await service.anonymous.get("/api/v1/heartbeats/ping-key", headers=headers)
            assert refused.status_code in (401, 403) and key not in refused.text
        viewer_check = await service.anonymous.get("/api/v1/checks/backup", headers=viewer)
        assert key not in viewer_check.text
        assert (await service.anonymous.get(f"/ping/{key}/backup")).status_code == 200
    async with pinged(tmp_path) as again:  # a restart keeps the key
        assert (await again.anonymous.get(f"/ping/{key}/backup/fail")).status_code == 200
        assert (await again.check("backup"))["status"] == "down"
    # The service never logs it (httpx here is the test's own client, printing its URLs).
    assert [r.name for r in caplog.records if key in r.getMessage() and r.name != "httpx"] == []


def test_a_configured_ping_key_must_be_long_and_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("heartbeats:\n  ping_key: ${KEY}\n", environ={"KEY": "short-secret"})
    assert "heartbeats.ping_key" in str(caught.value)
    assert "short-secret" not in str(caught.value)
    config = parse_config("heartbeats:\n  ping_key: ${KEY}\n", environ={"KEY": PING_KEY})
    assert config.heartbeats.ping_key == PING_KEY
    assert parse_config("{}\n", environ={}).heartbeats.ping_by_name is False


# --- rate limits ----------------------------------------------------------------------------


async def test_pings_past_a_checks_rate_get_429_with_retry_after_and_are_counted(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    limits = {"per_check": {"rate": 0.5, "burst": 3}, "per_address": {"rate": 100, "burst": 100}}
    async with pinged(tmp_path, {"rate_limit": limits}, clock) as service:
        client, backup = service.anonymous, service.uuid_path("backup")
        for _ in range(3):
            assert (await client.get(backup)).status_code == 200
        refused = await client.post(f"{backup}/fail", content=b"x" * 1000)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "2"  # one token at 0.5/s
        assert (await service.check("backup"))["status"] == "up"  # the refused /fail did nothing
        assert len(await service.results("backup")) == 3
        # Another check has its own bucket.
        assert (await client.get(service.uuid_path("7"))).status_code == 200

        metrics = (await client.get("/metrics")).text
        assert 'watchkeeper_pings_rate_limited_total{limit="check"} 1.0' in metrics

        clock.advance(2)
        assert (await client.post(f"{backup}/fail")).status_code == 200
        assert (await service.check("backup"))["status"] == "down"


async def test_pings_past_an_addresss_rate_get_429_even_for_unknown_keys(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    limits = {"per_check": {"rate": 100, "burst": 100}, "per_address": {"rate": 1, "burst": 5}}
    async with pinged(tmp_path, {"rate_limit": limits}, clock) as service:
        client = service.anonymous
        for n in range(5):  # guessing keys costs the guesser
            assert (await client.get(f"/ping/guess-{n}")).status_code == 404
        refused = await client.get(service.uuid_path("backup"))
        assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
        metrics = (await client.get("/metrics")).text
        assert 'watchkeeper_pings_rate_limited_total{limit="address"} 1.0' in metrics
        clock.advance(1)
        assert (await client.get(service.uuid_path("backup"))).status_code == 200


def test_rate_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"heartbeats\.rate_limit\.per_check\.rate"):
        parse_config("heartbeats: {rate_limit: {per_check: {rate: 0, burst: 1}}}\n", environ={})


# --- stored bodies --------------------------------------------------------------------------


async def test_stored_bodies_are_capped_per_check_per_day_and_the_cap_resets_next_day(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)  # 22:00 UTC
    async with pinged(tmp_path, {"body_bytes_per_day": 25_000}, clock) as service:
        client, backup = service.anonymous, service.uuid_path("backup")
        for _ in range(2):
            assert (await client.post(backup, content=b"a" * 10_000)).status_code == 200
            clock.advance(60)
        # The third body would pass the cap: the ping counts, its body is not stored.
        assert (await client.post(f"{backup}/fail", content=b"b" * 10_000)).status_code == 200
        assert (await service.check("backup"))["status"] == "down"
        latest, *older = await service.results("backup")
        assert latest["details"]["ping"] == "fail"
        assert "log" not in latest["details"]
        assert "daily limit of 25000 bytes" in latest["details"]["log_not_stored"]
        assert [len(r["details"]["log"]) for r in older] == [10_000, 10_000]
        # A small body still fits under the cap.
        assert (await client.post(f"{backup}/log", content=b"c" * 5_000)).status_code == 200
        assert (await client.post(f"{backup}/log", content=b"d")).status_code == 200
        assert "log_not_stored" in (await service.results("backup"))[0]["details"]
        # The day's count is kept, so a restart does not reset it.
        assert (await load_heartbeats(service.runtime.db))["backup"].body_bytes == 25_000

        clock.set(datetime(2026, 6, 2, 0, 0, tzinfo=UTC))  # the next UTC day
        assert (await client.post(backup, content=b"e" * 10_000)).status_code == 200
        assert (await service.results("backup"))[0]["details"]["log"] == "e" * 10_000


async def test_log_bodies_are_stored_and_shown_with_the_results(
    tmp_path: Path, db_url: str
) -> None:
    async with pinged(tmp_path, url=db_url) as service:
        client, backup = service.anonymous, service.uuid_path("backup")
        assert (await client.get(backup)).status_code == 200
        body = "step 2 of 5 done \N{CHECK MARK}\n".encode()
        assert (await client.post(f"{backup}/log", content=body)).text == "OK"
        assert (await client.post(f"{backup}/start", content=b"\x00\xff")).text == "OK"
        started, latest, first = await service.results("backup")
        assert (started["reason"], started["details"]["log"]) == ("run started", "\ufffd\ufffd")
        assert latest["reason"] == "log received"
        assert latest["details"]["ping"] == "log"
        assert latest["details"]["log"] == body.decode()
        assert latest["status"] == "up"  # the check's status; a log changes nothing
        assert (await service.check("backup"))["last_result"]["reason"] == first["reason"]
        page = await client.get("/dashboard/checks/backup", headers=service.admin)
        assert page.status_code == 200 and "log received" in page.text


async def test_log_and_start_bodies_are_stored_with_secrets_masked(
    tmp_path: Path, db_url: str
) -> None:
    """A job's output may print a password or a token: the bodies of /log and /start are
    masked like every other result's details before they are stored and shown."""
    async with pinged(tmp_path, url=db_url) as service:
        client, backup = service.anonymous, service.uuid_path("backup")
        body = b"connecting to postgres://backup:hunter2@db/prod?sslpassword=swordfish\n"
        assert (await client.post(f"{backup}/log", content=body)).text == "OK"
        assert (await client.post(f"{backup}/start", content=b"token=abc123 go")).text == "OK"
        started, logged = await service.results("backup")
        assert (
            logged["details"]["log"]
            == "connecting to postgres://backup:***@db/prod?sslpassword=***\n"
        )
        assert started["details"]["log"] == "token=*** go"


async def test_the_cli_prints_the_key_the_service_accepts(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n", encoding="utf-8")
    printed = watchkeeper("ping-key", "--config", str(config))
    assert printed.returncode == 0, printed.stderr
    key = printed.stdout.strip()
    assert len(key) >= 16 and key not in printed.stderr
    async with pinged(tmp_path) as service:  # the same database
        assert (await service.anonymous.get(f"/ping/{key}/backup")).status_code == 200


def test_buckets_refill_at_their_rate_and_memory_is_bounded() -> None:
    clock = FakeClock(T0)
    buckets = TokenBuckets(PingRate(rate=2, burst=2), clock.monotonic, max_keys=2)
    assert [buckets.take("a"), buckets.take("a")] == [None, None]
    assert buckets.take("a") == 0.5
    clock.advance(0.5)
    assert buckets.take("a") is None
    buckets.take("b")
    buckets.take("c")  # the third key: "a", least recently used, is forgotten (full again)
    assert [buckets.take("a"), buckets.take("a")] == [None, None]
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"
