"""Schemathesis against the app's own OpenAPI document, as an admin.

For every operation, a bounded and reproducible set of generated requests (schema-valid ones
and invalid ones) must get no 5xx, and only responses the document declares: status code,
content type, headers and body schema.

In-process only: schemathesis drives the ASGI app on its own event-loop thread, and the app's
lifespan starts the runtime on that loop (so its database and background tasks live there).
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi

from tests.support.service import running
from watchkeeper.auth import tokens
from watchkeeper.config.loader import Config
from watchkeeper.core.clock import SystemClock
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.store.database import Database

MAX_EXAMPLES = int(os.environ.get("WATCHKEEPER_FUZZ_EXAMPLES", "12"))
"""Per operation, valid and invalid requests together: enough to meet odd input (NUL bytes,
huge numbers, wrong types) on each of the ~120 operations while the module stays under a
minute of CPU (generating the requests costs far more than answering them). Raise it for a
deeper local run: `WATCHKEEPER_FUZZ_EXAMPLES=500 pytest tests/test_api_fuzz.py`."""

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


def _config(storage_url: str) -> Config:
    quiet = [sys.executable, "-c", "print('OK')"]
    return Config.model_validate(
        {
            "storage": {"url": storage_url},
            "checks": [
                {"name": "job", "type": "command", "command": quiet, "interval": "1d"},
                {"name": "ssh", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1d"},
                {"name": "backup", "type": "heartbeat", "period": "1d", "grace": "1h"},
            ],
            # Port 9 (discard) on loopback: deliveries fail fast and never leave the machine.
            "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}],
            "escalation": [{"name": "default", "steps": [{"notify": ["ops"]}]}],
            "alerting": {"default_escalation": "default"},
            "rules": [{"name": "queue", "metric": "queue.depth", "threshold": 100, "for": "0s"}],
        }
    )


def _operations() -> list[str]:
    """`METHOD /path` of every documented operation, read from an app that is never started."""
    document = create_app(_config("sqlite:///unused.db")).openapi()
    methods = ("get", "head", "post", "put", "patch", "delete")
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    ]


async def _admin_token(config: Config) -> str:
    """Minted before the app starts (the app's own migrate then finds nothing to do)."""
    db = Database(config.storage.url)
    try:
        await db.migrate()
        _, secret = await tokens.create_token(
            db, name="fuzz", role=Role.ADMIN, now=SystemClock().now()
        )
    finally:
        await db.close()
    return secret


@dataclass(frozen=True)
class Api:
    schema: schemathesis.BaseSchema
    headers: dict[str, str]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    config = _config(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'wk.db'}")
    token = asyncio.run(_admin_token(config))
    app = create_app(config)
    try:
        # Loading the document starts the app's lifespan (the runtime) on schemathesis' loop.
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        yield Api(schema, {"Authorization": f"Bearer {token}"})
    finally:
        schemathesis_asgi.shutdown_lifespans()  # runtime.stop()


# Every operation, none excluded: the admin token survives all of them (`DELETE /tokens/{id}`
# cannot guess its id; `POST /auth/logout` ends sessions, not tokens), and the rest only add
# users, tokens, silences, alerts and maintenance windows the others may meet.
@pytest.mark.parametrize("label", _operations())
@pytest.mark.filterwarnings(
    # Schemathesis' own strategies (form bodies), not ours.
    "ignore:Do not use the `random` module inside strategies"
)
def test_operation_answers_as_documented(api: Api, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = api.schema[path][method]
    # Valid and invalid requests mixed, as schemathesis' own runner does: an operation with
    # nothing to make invalid simply gets valid ones.
    cases = st.one_of([operation.as_strategy(mode, headers=api.headers) for mode in GenerationMode])

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,  # the same requests on every run: CI failures reproduce locally
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    run()


def test_every_operation_has_its_own_operation_id() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns about duplicates
        document = create_app(_config("sqlite:///unused.db")).openapi()
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def _samples(**sample: Any) -> dict[str, Any]:
    return {"samples": [{"metric": "m", "value": 1, **sample}]}


# What the fuzzing found, pinned: each was a 500 (for metrics: a rule engine failing on every
# evaluation afterwards) and is now a 422 problem.
FOUND = [
    ("POST", "/api/v1/tokens", {"name": "t", "role": "viewer", "expires_at": "2030-01-01T00:00"}),
    ("POST", "/api/v1/tokens", {"name": "t", "role": "viewer", "expires_in": 8.64e13}),
    ("POST", "/api/v1/tokens", {"name": "t", "role": "viewer", "expires_in": "1000000000000s"}),
    ("POST", "/api/v1/tokens", {"name": "t\x00", "role": "viewer"}),
    ("POST", "/api/v1/silences", {"matchers": ["a=b"], "ends_at": "2030-01-01T00:00"}),
    ("POST", "/api/v1/metrics", _samples(timestamp="2030-01-01T00:00")),
    ("POST", "/api/v1/metrics", _samples(labels={"a": "\x00"})),
    ("POST", "/api/v1/maintenances", {"name": "m", "schedule": "0 2 * * 0", "duration": "1e9w"}),
    ("POST", "/api/v1/alerts/x/comment", {"comment": "c\x00"}),
    ("POST", "/api/v1/alerts", {"name": "a\x00"}),  # was stored on SQLite
    ("GET", "/api/v1/alerts?offset=9223372036854775808", None),
    ("GET", "/api/v1/audit?offset=9223372036854775808", None),
    ("POST", "/auth/login", {"username": "a\x00", "password": "p"}),
]
# PostgreSQL cannot store NUL in text at all: wherever one would reach it.
FOUND_ON_POSTGRES = [
    ("GET", "/api/v1/alerts/a%00b", None),
    ("GET", "/api/v1/alerts?check=a%00b", None),
    ("DELETE", "/api/v1/users/a%00b", None),
]


async def test_odd_input_found_by_fuzzing_is_a_422(db_url: str) -> None:
    async with running(_config(db_url)) as service:
        client = service.client
        found = FOUND + (FOUND_ON_POSTGRES if service.runtime.db.dialect == "postgresql" else [])
        for method, url, body in found:
            response = await client.request(method, url, json=body)
            assert response.status_code == 422, (method, url, body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
