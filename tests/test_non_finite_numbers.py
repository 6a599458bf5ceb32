"""NaN and infinities are not numbers a threshold can hold: Python's JSON and YAML parsers
accept them (`NaN`, `Infinity`, `.nan`, `.inf`), and a rule `cpu > NaN` was stored (its
threshold shown as null) and could never fire. Every config model refuses them, so the API
answers 422 and `watchkeeper validate` names the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.service import running
from tests.test_config import watchkeeper


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["threshold", "thresholds"])
async def test_a_rule_with_a_non_finite_threshold_is_a_422(
    tmp_path: Path, number: str, field: str
) -> None:
    value = number if field == "threshold" else f'{{"critical": {number}}}'
    body = (
        '{"name": "cpu", "metric": "system.cpu.percent", "op": ">", '
        f'"{field}": {value}, "severity": "high"}}'
    )
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        answer = await service.client.post(
            "/api/v1/rules", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert field in answer.text
        listed = await service.client.get("/api/v1/rules")
        assert listed.json()["items"] == []


def test_validate_names_the_line_of_a_non_finite_number(tmp_path: Path) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        "rules:\n"
        "  - {name: cpu, metric: system.cpu.percent, threshold: .nan}\n"
        "checks:\n"
        "  - {name: host, type: system, cpu: {warn: .inf, crit: 98}}\n",
        encoding="utf-8",
    )
    done = watchkeeper("validate", str(config))
    assert done.returncode == 1, done.stdout
    assert f"{config}:2: rules[0].threshold: " in done.stderr, done.stderr
    assert f"{config}:4: checks[0].cpu.warn: " in done.stderr, done.stderr
