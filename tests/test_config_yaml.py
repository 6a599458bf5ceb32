"""The config file's YAML read strictly: duplicate keys, invalid UTF-8 and alias bombs are
FILE:LINE errors from `watchkeeper validate`, never a silent drop, a traceback or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.config.loader import ConfigError, load_config, parse_config
from watchkeeper.config.yaml_strict import MAX_EXPANDED_NODES


def issues(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "wk.yaml")
    return [str(i) for i in caught.value.issues]


def test_a_top_level_key_written_twice_is_refused_naming_both_lines() -> None:
    text = "server:\n  listen: 127.0.0.1:8080\nchecks: []\nserver:\n  listen: 0.0.0.0:80\n"
    assert issues(text) == [
        "wk.yaml:4: (yaml): key 'server' appears twice in this mapping, at line 1 and line 4; "
        "the first would be ignored"
    ]


def test_a_nested_key_written_twice_is_refused() -> None:
    text = "checks:\n  - name: api\n    type: tcp\n    host: a\n    port: 1\n    host: b\n"
    assert issues(text) == [
        "wk.yaml:6: (yaml): key 'host' appears twice in this mapping, at line 4 and line 6; "
        "the first would be ignored"
    ]


def test_merge_keys_may_still_override() -> None:
    text = "checks:\n  - <<: {name: api, type: tcp, host: a, port: 1}\n    port: 2\n"
    assert parse_config(text).checks[0].port == 2  # type: ignore[attr-defined]


def test_invalid_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_bytes(b"server:\n  listen: 127.0.0.1:8080\n# caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(i) for i in caught.value.issues] == [
        f"{path}:3: (yaml): not valid UTF-8 (byte 0xe9); save the file as UTF-8"
    ]
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and f"{path}:3:" in result.output


BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['x'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg", strict=True)
)


def test_an_alias_bomb_is_refused_not_expanded() -> None:
    # 9^7 ≈ 4.8 million values once expanded; today's loader walks every one of them.
    (issue,) = issues(BOMB)
    assert issue.startswith("wk.yaml:")
    assert f"aliases expand this document beyond {MAX_EXPANDED_NODES} values" in issue


def test_a_few_aliases_are_fine() -> None:
    text = (
        "notifications:\n"
        "  - &hook {name: ops, type: webhook, url: 'http://127.0.0.1:9/a'}\n"
        "  - {<<: *hook, name: pager}\n"
    )
    assert [c.name for c in parse_config(text).notifications] == ["ops", "pager"]


def test_a_recursive_alias_is_refused() -> None:
    (issue,) = issues("a: &a [1, *a]\n")
    assert "an alias refers to the node that contains it" in issue
