"""With the database locked by another writer, the status page and its JSON still answer from
the last snapshot; with it unreachable (as PostgreSQL stopped) too, saying how old its data
is; component states stay live (from memory)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tests.support.servers import FlippingTarget
from tests.support.service import running
from watchkeeper.store.database import Database


def lock_for_writing(path: Path) -> sqlite3.Connection:
    # Opened and released from asyncio.to_thread, which may pick another pool thread.
    other = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO settings (name, value) VALUES ('lock-test', 'x')")
    return other


def release(other: sqlite3.Connection) -> None:
    other.execute("ROLLBACK")
    other.close()


async def test_a_locked_sqlite_file_leaves_the_page_answering_from_the_snapshot(
    tmp_path: Path, target: FlippingTarget
) -> None:
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "checks": [
            {
                "name": "api",
                "type": "http",
                "url": f"{target.url}/health",
                "interval": "1s",
                "timeout": "1s",
                "component": "API",
            }
        ],
        "status_page": {"title": "Example status", "components": [{"name": "API"}]},
    }
    async with running(config) as svc:
        client = svc.client
        pages = svc.runtime.status_pages
        pages.db_timeout = 0.3
        created = await client.post(
            "/api/v1/incidents", json={"name": "Slow logins", "impact": "minor"}
        )
        assert created.status_code == 201

        # Another process's writer holds the file's write lock: writes wait (and time out),
        # the page still answers.
        other = await asyncio.to_thread(lock_for_writing, tmp_path / "wk.db")
        try:
            for path in ("/status", "/status/summary.json"):
                response = await client.get(path)
                assert response.status_code == 200, path
            # Now the database cannot be reached at all (as with PostgreSQL stopped): the
            # rebuild's read fails fast and the pages keep their last data, marked stale.
            reachable = pages.db
            pages.db = Database("postgresql://wk@127.0.0.1:9/none")
            started = time.monotonic()
            await pages.refresh()
            assert time.monotonic() - started < 2
            for path in ("/status", "/status/summary.json"):
                response = await client.get(path)
                assert response.status_code == 200, path
                assert "x-status-data-as-of" in response.headers, path
            summary = (await client.get("/status/summary.json")).json()
            assert [i["name"] for i in summary["incidents"]] == ["Slow logins"]
            page = (await client.get("/status")).text
            assert "Live data is unavailable" in page and "Slow logins" in page

            # Component states come from memory: a failing check still shows.
            target.status = 500
            build = pages.builds
            for _ in range(20):
                doc = (await client.get("/status/components.json")).json()
                if doc["components"][0]["status"] != "operational":
                    break
                build = await pages.wait_built(build, timeout=3)
            assert doc["components"][0]["status"] == "major_outage"
            await pages.db.close()
            pages.db = reachable
        finally:
            await asyncio.to_thread(release, other)
        await pages.refresh()
        fresh = await client.get("/status/summary.json")
        assert "x-status-data-as-of" not in fresh.headers
        assert "Live data is unavailable" not in (await client.get("/status")).text
