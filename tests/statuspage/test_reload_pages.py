"""A reloaded config file changes the status pages without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.auth import bearer, token_for
from watchkeeper.app import Runtime
from watchkeeper.config.loader import ConfigFile, load_config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role


def write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


async def test_a_reload_renames_a_page_and_adds_another(tmp_path: Path) -> None:
    path = tmp_path / "watchkeeper.yaml"
    base: dict[str, Any] = {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}
    write(path, {**base, "status_page": {"title": "Before", "components": [{"name": "API"}]}})
    runtime = Runtime(load_config(path), config_file=ConfigFile(path))
    await runtime.start()
    try:
        app = create_app(runtime.config, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers=bearer(await token_for(runtime, Role.ADMIN)),
        ) as client:
            page = (await client.get("/status/status.json")).json()["page"]
            assert page["name"] == "Before"
            write(
                path,
                {
                    **base,
                    "status_pages": [
                        {"slug": "main", "title": "After", "components": [{"name": "API"}]},
                        {"slug": "team", "title": "Team", "components": [{"name": "CI"}]},
                    ],
                },
            )
            build = runtime.status_pages.builds
            assert (await client.post("/api/v1/reload")).status_code == 200
            await runtime.status_pages.wait_built(build, timeout=5)
            page = (await client.get("/status/status.json")).json()["page"]
            assert page["name"] == "After"
            team = await client.get("/status/team/components.json")
            assert [c["name"] for c in team.json()["components"]] == ["CI"]
    finally:
        await runtime.stop()
