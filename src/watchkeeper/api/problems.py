"""Errors as RFC 9457 problem details (`application/problem+json`), for every route.

Shape: `{"type": "about:blank", "title": "<HTTP reason>", "status": 403, "detail": "…",
"instance": "/api/v1/tokens"}`; request validation errors add `errors` (pydantic's list).
Headers the error carries (WWW-Authenticate, Retry-After) are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
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
        jsonable_encoder(body), status_code=status, headers=headers, media_type=PROBLEM_JSON
    )


def _location(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "body"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    extensions: dict[str, Any] = {}
    detail = exc.detail
    if not isinstance(detail, str):
        extensions["errors"] = detail
        detail = "the request is invalid"
    return problem(
        exc.status_code, detail, instance=request.url.path, headers=exc.headers, **extensions
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {k: v for k, v in error.items() if k in ("loc", "msg", "type")} for error in exc.errors()
    ]
    detail = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in errors)
    return problem(
        422, detail or "the request is invalid", instance=request.url.path, errors=errors
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
