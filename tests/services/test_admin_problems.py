"""The refusals the admin services added, as problems: a 401 challenges, a 429 says when to
come back, and located `errors` are shown as they are."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from watchkeeper.core.errors import DomainError, Invalid, Throttled, Unauthenticated
from watchkeeper.http import problems


async def answer(error: DomainError) -> httpx.Response:
    app = FastAPI()
    problems.install(app)

    @app.get("/x")
    async def refuse() -> None:
        raise error

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wk") as client:
        return await client.get("/x")


async def test_unauthenticated_is_a_401_with_its_challenge() -> None:
    response = await answer(Unauthenticated("wrong username or password"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="watchkeeper"'
    assert response.json()["detail"] == "wrong username or password"
    assert "errors" not in response.json()


async def test_throttled_is_a_429_with_retry_after() -> None:
    response = await answer(Throttled("too many", retry_after=900))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "900"
    assert "www-authenticate" not in response.headers


async def test_errors_are_shown_as_given_rather_than_from_the_field() -> None:
    errors = [{"loc": ["steps", "0"], "msg": "bad", "type": "value_error"}]
    response = await answer(Invalid("steps.0: bad", field="steps", errors=errors))
    assert response.status_code == 422
    assert response.json()["errors"] == errors
    assert "retry-after" not in response.headers
