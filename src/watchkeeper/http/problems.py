"""Errors as RFC 9457 problem details (`application/problem+json`), for every route.

Shape: `{"type": "about:blank", "title": "<HTTP reason>", "status": 403, "detail": "…",
"instance": "/api/v1/tokens"}`; request validation errors add `errors` (pydantic's list).
Headers the error carries (WWW-Authenticate, Retry-After) are kept.

The OpenAPI document says so too (`install` post-processes it): every operation lists the
problem responses that can come back from any route of its kind (400, 413 and 422 with a
body, 422 with parameters, 401 and 403 behind a login, 404 with a path parameter); a route
declares the others it returns itself, with `responses=problems.responses(409)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchkeeper.auth.principals import CHALLENGE
from watchkeeper.core.errors import DomainError, Throttled, Unauthenticated
from watchkeeper.core.model import NUL_MESSAGE
from watchkeeper.store.errors import DriverError, StorageError, sqlstate

PROBLEM_JSON = "application/problem+json"


def _negotiated(accept: str | None) -> str:
    """problem+json, unless the client accepts only `application/json` (Alertmanager's
    clients, amtool and Grafana, built with go-swagger, cannot read anything else): then the
    same body is sent as that."""
    if not accept or "application/json" not in accept:
        return PROBLEM_JSON
    generic = ("problem+json", "*/*", "application/*")
    return PROBLEM_JSON if any(g in accept for g in generic) else "application/json"


class Problem(BaseModel):
    """An error (RFC 9457 problem details)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    """What is invalid, one entry per problem (`loc`, `msg`, `type`): 422 responses."""


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS = {
    400: "The request is malformed (e.g. its body is not valid JSON)",
    401: "No valid credentials: log in, or send an API token as `Authorization: Bearer`",
    403: "The caller's role does not allow this, or a session's write lacks its CSRF token",
    404: "No such resource",
    409: "Conflicts with the resource's current state",
    413: "The body is over its size limit (`server.max_body_size`; alert ingest:"
    " `server.max_alert_body_size`)",
    415: "The body's media type is not accepted",
    422: "The request is invalid: `errors` lists what and where",
    429: "Too many attempts: `Retry-After` says when to try again",
    503: "Not available now",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the problem responses a route returns beyond its kind's usual ones."""
    return {code: response(code) for code in codes}


def response(code: int, description: str | None = None) -> dict[str, Any]:
    """One problem response's OpenAPI entry (for `responses={409: response(409, "…")}`)."""
    return {
        "description": description or DESCRIPTIONS.get(code) or HTTPStatus(code).phrase,
        "content": {PROBLEM_JSON: {"schema": dict(_PROBLEM_REF)}},
    }


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    accept: str | None = None,
    **extensions: Any,
) -> JSONResponse:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if instance is not None:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(
        jsonable_encoder(body),
        status_code=status,
        headers=headers,
        media_type=_negotiated(accept),
    )


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    # Members an exception adds to its problem (e.g. a 413's `limit`).
    extensions: dict[str, Any] = dict(getattr(exc, "problem_extensions", {}))
    detail = exc.detail
    if not isinstance(detail, str):
        extensions["errors"] = detail
        detail = "the request is invalid"
    return problem(
        exc.status_code,
        detail,
        instance=request.url.path,
        accept=request.headers.get("accept"),
        headers=exc.headers,
        **extensions,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {k: v for k, v in error.items() if k in ("loc", "msg", "type")} for error in exc.errors()
    ]
    detail = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in errors)
    return problem(
        422,
        detail or "the request is invalid",
        instance=request.url.path,
        accept=request.headers.get("accept"),
        errors=errors,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    """The one mapping from a service's refusal to a problem: the class says the status."""
    assert isinstance(exc, DomainError)
    extensions: dict[str, Any] = {}
    if exc.errors is not None:
        extensions["errors"] = exc.errors
    elif exc.field is not None:
        extensions["errors"] = [{"loc": exc.field.split("."), "msg": exc.detail}]
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers.update(CHALLENGE)
    if isinstance(exc, Throttled):
        headers["Retry-After"] = str(exc.retry_after)
    return problem(
        exc.status,
        exc.detail,
        instance=request.url.path,
        accept=request.headers.get("accept"),
        headers=headers or None,
        **extensions,
    )


_TEXT_REFUSED = {"22021", "22P05"}
"""PostgreSQL's SQLSTATEs for text it cannot store: a NUL character (`\\u0000`)."""


async def _database_error(request: Request, exc: Exception) -> Response:
    """Text the database cannot store is the client's error (422); anything else is ours."""
    if sqlstate(exc) not in _TEXT_REFUSED:
        raise exc
    return problem(
        422, NUL_MESSAGE, instance=request.url.path, accept=request.headers.get("accept")
    )


def _uses(document: Any, ref: str) -> bool:
    if isinstance(document, dict):
        return document.get("$ref") == ref or any(_uses(v, ref) for v in document.values())
    if isinstance(document, list):
        return any(_uses(v, ref) for v in document)
    return False


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses each operation can return (see the module docstring)."""
    methods = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}
    for item in openapi.get("paths", {}).values():
        for method, operation in item.items():
            if method not in methods:
                continue
            answers = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            validated = "requestBody" in operation or bool(parameters)
            if "422" in answers and "application/json" in answers["422"].get("content", {}):
                del answers["422"]  # FastAPI's default: we answer with a problem instead
            codes = []
            if "requestBody" in operation:
                codes += [400, 413]
            if operation.get("security"):
                codes += [401, 403]
            if any(p.get("in") == "path" for p in parameters):
                codes.append(404)
            if validated:
                codes.append(422)
            for code in codes:
                answers.setdefault(str(code), response(code))
            operation["responses"] = dict(sorted(answers.items()))
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and not _uses(openapi, f"#/components/schemas/{unused}"):
            del schemas[unused]
    return openapi


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(DriverError, _database_error)
    app.add_exception_handler(StorageError, _database_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
