"""What deploy/ ships agrees with the service: the version, the probes, the config, the unit."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import watchkeeper
from tests.support.service import running
from tests.test_config import watchkeeper as run_cli
from watchkeeper.config.loader import load_config

DEPLOY = Path(__file__).parent.parent / "deploy"


def manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[doc["kind"]] = doc
    return found


def test_version_flag_prints_the_installed_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"watchkeeper {importlib.metadata.version('watchkeeper')}\n"
    assert importlib.metadata.version("watchkeeper") == watchkeeper.__version__


def test_the_kubernetes_config_map_holds_a_valid_config(tmp_path: Path) -> None:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(manifests()["ConfigMap"]["data"]["watchkeeper.yaml"], encoding="utf-8")
    loaded = load_config(config)
    assert loaded.server.listen == "0.0.0.0:8080"
    assert loaded.storage.url == "sqlite:////var/lib/watchkeeper/watchkeeper.db"


async def test_every_probe_in_deploy_is_served(tmp_path: Path) -> None:
    container = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    probes = {
        kind: container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"] == "/health/live"
    assert probes["readinessProbe"] == "/health/ready"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    healthcheck = re.search(r"HEALTHCHECK .*?http://127\.0\.0\.1:8080(/[\w/]+)", dockerfile, re.S)
    assert healthcheck is not None and healthcheck.group(1) == "/health/live"
    assert 'CMD ["run", "--listen", "0.0.0.0:8080"]' in dockerfile

    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        for path in {*probes.values(), healthcheck.group(1)}:
            answer = await service.client.get(path, headers={"Authorization": ""})
            assert answer.status_code == 200, (path, answer.text)


def test_the_systemd_unit_verifies_and_asks_for_notify_and_a_watchdog(tmp_path: Path) -> None:
    unit = (DEPLOY / "watchkeeper.service").read_text(encoding="utf-8")
    for line in ("Type=notify", "WatchdogSec=30s", "ProtectSystem=strict", "User=watchkeeper"):
        assert f"\n{line}\n" in unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify wants the ExecStart program to exist: point it at this environment's.
    here = Path(sys.executable).parent / "watchkeeper"
    (tmp_path / "watchkeeper.service").write_text(
        unit.replace("/opt/watchkeeper/bin/watchkeeper", str(here)), encoding="utf-8"
    )
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "watchkeeper.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # An unknown or misspelt setting is only a warning ("ignoring"), with exit code 0.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
