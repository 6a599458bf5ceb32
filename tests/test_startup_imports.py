"""Optional client libraries load only when a configured check or channel needs them.

Every `watchkeeper` command imports all check and channel modules (the type registries load
them), so a module that imports its driver at the top makes every command pay for it: the
libraries below cost 0.05-0.2 s of CPU each to import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = (
    "aiomysql",
    "aiosmtplib",
    "alembic",
    "apprise",
    "asyncpg",
    "cryptography",
    "dns",
    "pymysql",
    "redis",
)

# Runs `watchkeeper validate FILE` in this interpreter, then prints which heavy top-level
# packages it imported (on the last line of stdout).
_PROBE = f"""
import gc, json, sys
from watchkeeper.cli import main
sys.argv = ["watchkeeper", "validate", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = set({HEAVY!r})
print()
imported = sorted({{m.split(".")[0] for m in sys.modules}} & heavy)
print(json.dumps([code, imported, gc.get_freeze_count()]))
"""

# Every built-in type that needs none of the heavy libraries, and a webhook channel.
_PLAIN = """\
checks:
  - {{name: host, type: system, cpu: {{warn: 90, crit: 98}}}}
  - {{name: web, type: http, url: "https://example.com/"}}
  - {{name: ssh, type: tcp, host: 127.0.0.1, port: 22}}
  - {{name: plugin, type: command, command: [sh, -c, "echo OK"]}}
  - {{name: nightly, type: heartbeat, period: 1d}}
{more}notifications:
  - {{name: ops, type: webhook, url: "http://127.0.0.1:9100/hook"}}
"""


def _validate_imports(tmp_path: Path, config: str) -> list[str]:
    path = tmp_path / "wk.yaml"
    path.write_text(config, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    code, imported, frozen = json.loads(result.stdout.splitlines()[-1])
    assert code in (0, None), result.stdout + result.stderr
    # The command left its objects to the process's end, not to the interpreter's exit
    # collection (~0.5 s of CPU per command, see cli.main).
    assert frozen > 100_000
    return list(imported)


def test_validate_of_a_config_without_drivers_imports_no_optional_client_library(
    tmp_path: Path,
) -> None:
    assert _validate_imports(tmp_path, _PLAIN.format(more="")) == []


def test_validate_of_a_redis_check_imports_only_redis_to_check_its_url(tmp_path: Path) -> None:
    # The probe does see a library the config needs (so the empty list above means something);
    # redis-py brings cryptography along itself (for OCSP), the other drivers stay out.
    more = "  - {name: cache, type: redis, url: 'redis://127.0.0.1:6379/0'}\n"
    imported = _validate_imports(tmp_path, _PLAIN.format(more=more))
    assert "redis" in imported
    assert set(imported) <= {"redis", "cryptography"}
