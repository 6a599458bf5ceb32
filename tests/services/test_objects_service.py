"""ObjectService over a runtime's managed objects: writes and reads, and every refusal of
`objects.managed` as the domain error of its status (its located `errors` kept)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.service import running
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from watchkeeper.objects.managed import ManagedError
from watchkeeper.services.objects import Kind, ObjectService, domain_error

POLICY = Kind.ESCALATION_POLICY


def config(db_url: str) -> dict[str, Any]:
    return {
        "storage": {"url": db_url},
        "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}],
        "escalation": [{"name": "default", "steps": [{"notify": ["ops"]}]}],
    }


@pytest.fixture
async def objects(sqlite_url: str) -> AsyncIterator[ObjectService]:
    async with running(config(sqlite_url)) as service:
        yield service.runtime.services.objects


async def test_a_created_policy_is_shown_as_stored_beside_the_config_files(
    objects: ObjectService,
) -> None:
    body = {"name": "oncall", "steps": [{"notify": ["ops"]}], "repeat": "30m"}
    record = await objects.create(POLICY, body, "alice")
    assert (record.name, record.version, record.created_by) == ("oncall", 1, "alice")
    view = objects.policy("oncall")
    assert (view.source, view.definition, view.broken) == ("api", body, None)
    assert view.record == record
    assert [(v.name, v.source) for v in objects.policies()] == [
        ("default", "config"),
        ("oncall", "api"),
    ]
    config_view = objects.policy("default")
    assert config_view.record is None
    assert config_view.definition == {"name": "default", "steps": [{"notify": ["ops"]}]}


async def test_replace_and_delete_an_api_policy(objects: ObjectService) -> None:
    await objects.create(POLICY, {"name": "oncall", "steps": [{"notify": ["ops"]}]}, "alice")
    steps = [{"after": "10m", "notify": ["ops"]}]
    replaced = await objects.replace(POLICY, "oncall", {"steps": steps, "repeat": "1h"}, "bob")
    assert (replaced.version, replaced.updated_by) == (2, "bob")
    assert objects.policy("oncall").definition == {
        "name": "oncall",
        "steps": steps,
        "repeat": "1h",
    }
    await objects.delete(POLICY, "oncall", "bob")
    with pytest.raises(NotFound) as gone:
        objects.policy("oncall")
    assert gone.value.detail == "no escalation policy named 'oncall'"


async def test_a_taken_name_and_the_config_files_objects_are_conflicts(
    objects: ObjectService,
) -> None:
    policy = {"name": "oncall", "steps": [{"notify": ["ops"]}]}
    await objects.create(POLICY, policy, "alice")
    with pytest.raises(Conflict) as taken:
        await objects.create(POLICY, policy, "alice")
    assert taken.value.detail == "a escalation policy named 'oncall' exists; PUT replaces it"
    read_only = "the escalation policy 'default' is defined in the config file; edit it there"
    with pytest.raises(Conflict, match=f"^{read_only}$"):
        await objects.replace(POLICY, "default", {"steps": policy["steps"]}, "alice")
    with pytest.raises(Conflict, match=f"^{read_only}$"):
        await objects.delete(POLICY, "default", "alice")


async def test_an_invalid_definition_keeps_its_located_errors(objects: ObjectService) -> None:
    body = {"name": "oncall", "steps": [{"notify": ["nope"]}]}
    with pytest.raises(Invalid) as refused:
        await objects.create(POLICY, body, "alice")
    message = "no notification channel named 'nope'"
    assert refused.value.detail == f"steps.0.notify: {message}"
    assert refused.value.errors == [
        {"loc": ["steps", "0", "notify"], "msg": message, "type": "value_error"}
    ]
    assert [v.name for v in objects.policies()] == ["default"]


async def test_unknown_objects_are_not_found(objects: ObjectService) -> None:
    with pytest.raises(NotFound, match=r"^no rule named 'nope'$"):
        objects.rule("nope")
    with pytest.raises(NotFound, match=r"^no escalation policy named 'nope'$"):
        await objects.replace(POLICY, "nope", {"steps": []}, "alice")
    with pytest.raises(NotFound, match=r"^no escalation policy named 'nope'$"):
        await objects.delete(POLICY, "nope", "alice")


async def test_a_check_before_the_runtime_started_is_unavailable(sqlite_url: str) -> None:
    runtime = Runtime(Config.model_validate(config(sqlite_url)))
    check = {"name": "web", "type": "tcp", "host": "127.0.0.1", "port": 9}
    with pytest.raises(Unavailable) as refused:
        await runtime.services.objects.create(Kind.CHECK, check, "alice")
    assert refused.value.detail == "the service is starting; try again shortly"
    assert refused.value.errors is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, NotFound), (409, Conflict), (422, Invalid), (503, Unavailable)],
)
def test_each_status_becomes_its_domain_error(status: int, kind: type[DomainError]) -> None:
    error = domain_error(ManagedError(status, "why", [{"loc": ["a"], "msg": "m"}]))
    assert type(error) is kind and error.status == status
    assert (error.detail, error.errors) == ("why", [{"loc": ["a"], "msg": "m"}])
    assert domain_error(ManagedError(status, "why", [])).errors is None
