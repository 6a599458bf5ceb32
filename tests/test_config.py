"""The config file: every error located by line, env expansion, defaults, references."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from watchkeeper.config.loader import ConfigError, parse_config
from watchkeeper.core.durations import parse_duration

VALID = """
server:
  listen: "127.0.0.1:8080"
defaults:
  interval: 15s
  failure_threshold: 3
checks:
  - name: api
    type: http
    url: http://127.0.0.1:9000/health
    interval: 5s
  - name: port
    type: tcp
    host: 127.0.0.1
    port: 5432
    depends_on: [api]
notifications:
  - name: ops
    type: webhook
    url: http://127.0.0.1:9100/hook
    secret: "${HOOK_SECRET:-fallback}"
"""


def watchkeeper(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watchkeeper", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_validate_prints_both_mistakes_with_their_lines_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "checks:\n"  # 1
        "  - name: api\n"  # 2
        "    type: http\n"  # 3
        "    url: http://127.0.0.1:9000/health\n"  # 4
        "    interval: soon\n"  # 5  mistake: not a duration
        "    timeout: 2s\n"  # 6
        "    failure_threshold: 0\n",  # 7  mistake: must be >= 1
        encoding="utf-8",
    )
    result = watchkeeper("validate", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"{path}:5: checks[0].interval: ")
    assert "duration" in lines[0]
    assert lines[1].startswith(f"{path}:7: checks[0].failure_threshold: ")


def test_thresholds_are_bounded_so_a_check_cannot_be_made_never_to_alert(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "defaults:\n"  # 1
        "  success_threshold: 101\n"  # 2  mistake: a hundred at most
        "checks:\n"  # 3
        "  - {name: api, type: tcp, host: 127.0.0.1, port: 1, failure_threshold: 100}\n"  # 4
        "  - {name: db, type: tcp, host: 127.0.0.1, port: 2, failure_threshold: 1e38}\n",  # 5
        encoding="utf-8",
    )
    result = watchkeeper("validate", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"{path}:2: defaults.success_threshold: ")
    assert lines[1].startswith(f"{path}:5: checks[1].failure_threshold: ")


def test_validate_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(VALID, encoding="utf-8")
    result = watchkeeper("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK (2 checks, 1 notification channels)" in result.stdout


def test_init_writes_an_example_that_validates(tmp_path: Path) -> None:
    assert watchkeeper("init", cwd=tmp_path).returncode == 0
    result = watchkeeper("validate", "watchkeeper.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert watchkeeper("init", cwd=tmp_path).returncode == 1  # refuses to overwrite


def test_defaults_fill_only_fields_a_check_leaves_unset() -> None:
    config = parse_config(VALID, environ={})
    api, port = config.checks
    assert api.interval == timedelta(seconds=5)
    assert port.interval == timedelta(seconds=15)
    assert api.failure_threshold == port.failure_threshold == 3
    assert api.timeout == timedelta(seconds=10)


def test_env_vars_expand_with_defaults() -> None:
    assert parse_config(VALID, environ={}).notifications[0].secret == "fallback"
    config = parse_config(VALID, environ={"HOOK_SECRET": "from-env"})
    assert config.notifications[0].secret == "from-env"


def test_an_unset_env_var_without_default_names_its_line() -> None:
    text = "notifications:\n  - name: ops\n    type: webhook\n    url: ${HOOK_URL}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "wk.yaml", environ={})
    (issue,) = info.value.issues
    assert str(issue) == "wk.yaml:4: notifications[0].url: environment variable HOOK_URL is not set"


def test_unknown_keys_and_types_are_errors_at_their_line() -> None:
    text = "checks:\n  - name: a\n    type: htp\nsevers: {}\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, "wk.yaml", environ={})
    messages = [str(i) for i in info.value.issues]
    assert any(m.startswith("wk.yaml:3: checks[0].type: unknown type 'htp'") for m in messages)
    assert any(m.startswith("wk.yaml:4: severs: unknown key") for m in messages)


def test_depends_on_must_name_a_check_and_have_no_cycle() -> None:
    base = "checks:\n  - {name: a, type: tcp, host: h, port: 1, depends_on: [%s]}\n"
    with pytest.raises(ConfigError, match="no check named 'nope'"):
        parse_config(base % "nope", environ={})
    cyclic = base % "b" + "  - {name: b, type: tcp, host: h, port: 1, depends_on: [a]}\n"
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        parse_config(cyclic, environ={})


def test_duplicate_names_and_unknown_channels_are_refused() -> None:
    entry = "  - {name: a, type: tcp, host: h, port: 1}\n"
    dup = "checks:\n" + entry + entry
    with pytest.raises(ConfigError, match="'a' is used twice"):
        parse_config(dup, environ={})
    routed = "checks:\n  - {name: a, type: tcp, host: h, port: 1, notify: [pager]}\n"
    with pytest.raises(ConfigError, match="no notification channel named 'pager'"):
        parse_config(routed, environ={})


def test_yaml_syntax_errors_name_their_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("checks:\n  - name: a\n   type: [\n", "wk.yaml", environ={})
    assert info.value.issues[0].file == "wk.yaml"
    assert info.value.issues[0].line >= 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("7d", 604800),
        ("1h30m", 5400),
        (2, 2),
    ],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "5", "soon", "5 minutes", "-1s", True])
def test_bad_durations_say_what_is_expected(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)
