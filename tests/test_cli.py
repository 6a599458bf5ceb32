"""The CLI as a user types it."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from tests.support.auth import cli_token
from tests.support.process import WatchkeeperProcess
from tests.support.servers import wait_until
from tests.test_config import watchkeeper
from watchkeeper import cli
from watchkeeper.store.database import Database


def test_check_runs_each_check_once_and_exits_0_when_all_are_up(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text(
        "checks:\n"
        "  - {name: fine, type: command, command: [sh, -c, 'echo all good']}\n"
        "  - {name: broken, type: command, command: [sh, -c, 'echo CRITICAL - on fire; exit 2']}\n",
        encoding="utf-8",
    )
    one = watchkeeper("check", str(config), "fine")
    assert one.returncode == 0, one.stderr
    assert "fine" in one.stdout and "all good" in one.stdout and "broken" not in one.stdout

    both = watchkeeper("check", str(config))
    assert both.returncode == 1
    assert "CRITICAL - on fire" in both.stdout and "down" in both.stdout

    missing = watchkeeper("check", str(config), "nope")
    assert missing.returncode == 1 and "no check named nope" in missing.stderr


def test_db_upgrade_migrates_the_configured_database(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'x.db'}'}}\n", encoding="utf-8")
    result = watchkeeper("db", "upgrade", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"is at revision {Database.head_revision()}" in result.stdout
    assert (tmp_path / "x.db").exists()


def test_run_refuses_a_bad_listen_address(tmp_path: Path) -> None:
    result = watchkeeper("run", "--listen", "localhost", cwd=tmp_path)
    assert result.returncode == 2
    assert "--listen" in result.stderr and "HOST:PORT" in result.stderr


async def test_run_without_a_config_file_watches_this_host_on_local_sqlite(tmp_path: Path) -> None:
    token = await cli_token(None, cwd=tmp_path)  # the built-in default's ./watchkeeper.db
    wk = await WatchkeeperProcess(None, tmp_path, token=token).start()
    try:

        async def both_checked() -> dict[str, str] | None:
            items = (await wk.get("/api/v1/checks"))["items"]
            states = {c["name"]: c["status"] for c in items}
            return states if "unknown" not in states.values() else None

        # First runs come within 5 s of the server listening (never before: see
        # tests/test_startup_probe.py), so the self-probe's very first one finds it up.
        states = await wait_until(both_checked, 15, "the built-in checks to report")
        assert set(states) == {"host", "watchkeeper-api"}
        results = await wk.get("/api/v1/checks/watchkeeper-api/results")
        assert [r["status"] for r in results] == ["up"], results
        assert (await wk.get("/api/v1/alerts?check=watchkeeper-api"))["items"] == []
        assert (tmp_path / "watchkeeper.db").exists()
    finally:
        assert await wk.stop() == 0
    log = await asyncio.to_thread(wk.log_text)
    assert f"health   http://127.0.0.1:{wk.port}/health" in log
    assert "config built-in default" in log
    # The suite's weak password hashing (tests/conftest.py) is never silent in a real process.
    assert "weak parameters (WATCHKEEPER_INSECURE_FAST_PASSWORD_HASHING is set)" in log


def test_the_collector_is_back_with_the_serving_thresholds_once_the_server_listens() -> None:
    # `main` turns the collector off for the start; `run` hands uvicorn this callback.
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    listened: list[bool] = []
    gc.disable()
    try:
        cli._then_collect(lambda: listened.append(gc.isenabled()))()
        assert listened == [False]  # the listening callback first, still without it
        assert gc.isenabled() and gc.get_threshold() == cli.SERVING_GC_THRESHOLDS
    finally:
        gc.set_threshold(*threshold)
        if enabled:
            gc.enable()
        else:
            gc.disable()
