"""`server.trusted_proxies`: X-Forwarded-For is believed from those peers only, through the
real `watchkeeper run` (uvicorn), for the audit log and the login throttle alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.auth import cli_token
from tests.support.process import WatchkeeperProcess
from watchkeeper.config.loader import ConfigError, parse_config

SPOOFED = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]


def config(tmp_path: Path, trusted: list[str] | None) -> Path:
    path = tmp_path / "watchkeeper.yaml"
    server = f"server:\n  trusted_proxies: {trusted}\n" if trusted is not None else ""
    path.write_text(
        f"storage:\n  url: sqlite:///{tmp_path / 'wk.db'}\n"
        f"{server}"
        "auth:\n  login_throttle: {max_failures_per_ip: 2}\n"
        "checks: []\n",
        encoding="utf-8",
    )
    return path


async def failed_logins(wk: WatchkeeperProcess) -> tuple[list[int], list[Any]]:
    """One wrong password from each spoofed address; the statuses and their audit entries."""
    statuses = []
    async with aiohttp.ClientSession() as session:
        for address in SPOOFED:
            async with session.post(
                f"{wk.url}/auth/login",
                json={"username": f"user-{address}", "password": "wrong guess"},
                headers={"X-Forwarded-For": address},
                timeout=aiohttp.ClientTimeout(10),
            ) as response:
                statuses.append(response.status)
    page = await wk.get("/api/v1/audit?action=POST%20/auth/login")
    return statuses, page["items"]


async def test_a_spoofed_forwarded_for_from_loopback_is_ignored_by_default(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, None)
    wk = await WatchkeeperProcess(path, tmp_path, token=await cli_token(path)).start()
    try:
        statuses, entries = await failed_logins(wk)
    finally:
        assert await wk.stop() == 0
    # All three came from 127.0.0.1: the address's limit of 2 holds the third.
    assert statuses == [401, 401, 429]
    assert [e["source_ip"] for e in entries] == ["127.0.0.1"] * 3


async def test_forwarded_for_is_believed_from_a_configured_trusted_proxy(
    tmp_path: Path,
) -> None:
    path = config(tmp_path, ["127.0.0.1", "10.0.0.0/8"])
    wk = await WatchkeeperProcess(path, tmp_path, token=await cli_token(path)).start()
    try:
        statuses, entries = await failed_logins(wk)
    finally:
        assert await wk.stop() == 0
    assert statuses == [401, 401, 401]  # three clients behind the proxy, one failure each
    assert [e["source_ip"] for e in entries] == list(reversed(SPOOFED))  # newest first


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "server:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - proxy.local\n", "wk.yaml"
        )
    (issue,) = caught.value.issues
    assert str(issue).startswith("wk.yaml:4: server.trusted_proxies[1]: ")
