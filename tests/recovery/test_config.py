"""The `recovery:` section: every action type of the contract loads; mistakes name the field."""

from __future__ import annotations

import signal
from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from watchkeeper.recovery.config import (
    CommandAction,
    HttpAction,
    HttpSpec,
    IfFailedStep,
    NotifyStep,
    ProcessAction,
    RecoveryConfig,
    RunbookAction,
    RunStep,
    VerifyStep,
    WaitStep,
)

CONTRACT = """
- {name: restart-web, type: command, command: [systemctl, restart, web], timeout: 60s,
   max_attempts: 3, within: 15m, cooldown: 1m}
- {name: api, type: process, command: [/usr/bin/api, --port, "9000"], cwd: /srv/api,
   env: {MODE: prod}, startsecs: 1s, stop_signal: TERM, stop_timeout: 10s, max_attempts: 5,
   within: 5m}
- {name: failover, type: http, url: "http://lb.internal/pool/web/drain", method: POST,
   on_resolved: {type: http, url: "http://lb.internal/pool/web/undrain", method: POST}}
- {name: restart-db, type: systemd, unit: postgresql.service}
- {name: web-container, type: docker, container: web}
- {name: flush, type: python, callable: "myapp.ops:flush_cache", kwargs: {region: eu}}
- {name: tell, type: notify, message: "web is being restarted"}
- name: db-runbook
  type: runbook
  approval: required
  steps:
    - {action: notify, message: "restarting the database"}
    - {action: restart-db}
    - {wait: 10s}
    - {verify: database, timeout: 2m}
    - {if_failed: escalate}
"""


def load(text_or_value: Any) -> RecoveryConfig:
    value = yaml.safe_load(text_or_value) if isinstance(text_or_value, str) else text_or_value
    return RecoveryConfig.model_validate(value)


def error_of(value: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        load(value)
    return str(caught.value)


def test_the_contracts_example_loads_with_every_action_type() -> None:
    config = load(CONTRACT)
    assert [a.type for a in config.actions] == [
        "command",
        "process",
        "http",
        "systemd",
        "docker",
        "python",
        "notify",
        "runbook",
    ]
    assert config.max_concurrent == 4
    web = config.get("restart-web")
    assert isinstance(web, CommandAction)
    assert (web.max_attempts, web.within, web.cooldown) == (
        3,
        timedelta(minutes=15),
        timedelta(minutes=1),
    )
    api = config.get("api")
    assert isinstance(api, ProcessAction)
    assert api.stop_signum is signal.SIGTERM and api.env == {"MODE": "prod"}
    failover = config.get("failover")
    assert isinstance(failover, HttpAction) and isinstance(failover.on_resolved, HttpSpec)
    assert failover.on_resolved.url.endswith("/undrain")
    runbook = config.get("db-runbook")
    assert isinstance(runbook, RunbookAction) and runbook.approval == "required"
    assert [type(s) for s in runbook.steps] == [
        NotifyStep,
        RunStep,
        WaitStep,
        VerifyStep,
        IfFailedStep,
    ]


def test_the_section_round_trips_through_its_json_form() -> None:
    config = load(CONTRACT)
    again = RecoveryConfig.model_validate(config.model_dump(mode="json"))
    assert again == config


def test_the_section_may_be_a_mapping_with_max_concurrent() -> None:
    config = load(
        {"max_concurrent": 2, "actions": [{"name": "a", "type": "notify", "message": "x"}]}
    )
    assert config.max_concurrent == 2 and config.actions[0].name == "a"


def one(kind: str, **fields: Any) -> list[dict[str, Any]]:
    """A section with one action `x` of type `kind`."""
    return [{"name": "x", "type": kind, **fields}]


NOTE = {"type": "notify", "message": "m"}
RUNBOOK = {"type": "runbook", "steps": [{"wait": "1s"}]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (one("shell", command="rm -rf /"), "does not match any of the expected tags"),
        (one("command", command=[]), "actions.0.command.command"),
        (one("command", command=["a"], timeout="soon"), "actions.0.command.timeout"),
        (one("command", command=["a"], max_attempts=0), "actions.0.command.max_attempts"),
        (one("command", command=["a"], shell=True), "actions.0.command.shell"),
        (one("process", command=["a"], stop_signal="STOP"), "actions.0.process.stop_signal"),
        (
            one("process", command=["a"], backoff="10s", max_backoff="1s"),
            "max_backoff must not be less than backoff",
        ),
        (
            one("process", command=["a"], on_resolved=NOTE),
            "on_resolved does not apply to a supervised process",
        ),
        (one("http", url="ftp://x/"), "actions.0.http.url"),
        (one("systemd", unit="--force"), "actions.0.systemd.unit"),
        (one("python", callable="os.system; rm"), "actions.0.python.callable"),
        (one("runbook", steps=[{"sleep": 1}]), "a step needs one of the keys"),
        (one("runbook", steps=[{"action": "nope"}]), "unknown action 'nope'"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ([{"name": "x", **NOTE}, {"name": "x", **NOTE}], "duplicate recovery action name 'x'"),
        (one("http", url="http://h/", on_resolved=RUNBOOK), "actions.0.http.on_resolved"),
    ],
)
def test_mistakes_are_refused_naming_the_field(value: Any, expected: str) -> None:
    assert expected in error_of(value)


def test_a_runbook_cannot_run_a_runbook_or_a_process() -> None:
    nested = [
        {"name": "inner", "type": "runbook", "steps": [{"wait": "1s"}]},
        {"name": "outer", "type": "runbook", "steps": [{"action": "inner"}]},
    ]
    assert "a runbook cannot run a runbook" in error_of(nested)
    proc = [
        {"name": "api", "type": "process", "command": ["a"]},
        {"name": "rb", "type": "runbook", "steps": [{"action": "api"}]},
    ]
    assert "'api' is a supervised process" in error_of(proc)


def test_stop_signal_may_be_written_with_or_without_sig() -> None:
    action = load([{"name": "p", "type": "process", "command": ["a"], "stop_signal": "sigint"}])
    process = action.actions[0]
    assert isinstance(process, ProcessAction) and process.stop_signum is signal.SIGINT
