"""Time zone names are checked without touching the file system: a name that is a directory,
a data file or too long for a path is a clear error (422, `FILE:LINE`), never a 500 or a
traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.service import running

HOSTILE = ["America", "a" * 300, "zone.tab", "tzdata.zi", "__init__.py", "Etc/../UTC", " UTC"]
"""A directory of tzdata, a name too long for a path, data files that are not zones, paths."""


@pytest.mark.parametrize("tz", HOSTILE)
async def test_the_api_refuses_a_hostile_time_zone_with_a_422(tmp_path: Path, tz: str) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        body = {"name": "w", "schedule": "0 2 * * 0", "duration": "1h", "tz": tz, "checks": ["x"]}
        answer = await service.client.post("/api/v1/maintenances", json=body)
        assert answer.status_code == 422, answer.text
        assert "unknown time zone" in answer.text
        listed = await service.client.get("/api/v1/maintenances")
        assert listed.status_code == 200 and listed.json()["items"] == []


@pytest.mark.parametrize("tz", HOSTILE)
def test_validate_names_the_line_of_a_hostile_time_zone(tmp_path: Path, tz: str) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        "maintenance:\n"
        f"  - {{name: w, schedule: '0 2 * * 0', duration: 1h, tz: '{tz}', checks: [x]}}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "watchkeeper", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert f"{config}:2: maintenance[0].tz: " in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "Etc/GMT+12", "America/Port-au-Prince"])
async def test_real_time_zones_are_still_accepted(tmp_path: Path, tz: str) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        body = {"name": "w", "schedule": "0 2 * * 0", "duration": "1h", "tz": tz, "checks": ["x"]}
        answer = await service.client.post("/api/v1/maintenances", json=body)
        assert answer.status_code == 201, answer.text
