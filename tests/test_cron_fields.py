"""A cron schedule is the standard five fields wherever it is written. croniter also reads a
sixth (seconds) and a seventh (year) field: a heartbeat with `0 0 1 1 * 0 2005-2026` was
accepted, and once its years were past it could not be evaluated (broken, its missing pings
no longer paged); `* * * * * */5` expected a ping every 5 seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.service import running
from tests.test_config import watchkeeper

NOT_FIVE_FIELDS = ["0 0 1 1 * 0 2005-2026", "* * * * * 0 2026", "* * * * * */5", "0 3 * *"]


@pytest.mark.parametrize("schedule", NOT_FIVE_FIELDS)
async def test_a_heartbeat_schedule_must_have_five_fields(tmp_path: Path, schedule: str) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        body = {"name": "backup", "type": "heartbeat", "schedule": schedule, "grace": "5m"}
        answer = await service.client.post("/api/v1/checks", json=body)
        assert answer.status_code == 422, answer.text
        assert "5 fields" in answer.text


def test_validate_names_the_line_of_a_seven_field_heartbeat_schedule(tmp_path: Path) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        "checks:\n"
        "  - {name: backup, type: heartbeat, schedule: '0 0 1 1 * 0 2005-2026', grace: 5m}\n",
        encoding="utf-8",
    )
    done = watchkeeper("validate", str(config))
    assert done.returncode == 1, done.stdout
    assert f"{config}:2: checks[0].schedule: not a valid cron expression" in done.stderr
