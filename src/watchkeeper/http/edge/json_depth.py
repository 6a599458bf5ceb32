"""JSON nesting depth, limited for every JSON body before anything parses it.

Python's JSON parser, pydantic and our own walkers recurse per level: a body of 100,000 `[`
would end in a RecursionError (a 500) wherever it is parsed. Here the body (already bounded
by the size limit and authenticated by the gate) is read whole, its depth measured without
parsing it, and a deeper one answered with a 400; the route then gets the body as it came.

Routes that parse their body with pydantic-core's JSON parser alone (`validate_json` on the
raw bytes) are left out (`exempt`): that parser refuses more than 200 levels itself, as a
ValidationError the route answers with a 400, so measuring first would only cost time (it
was a tenth of `POST /api/v2/alerts`, Prometheus' hottest route).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.http import problems

# A JSON string, possessively (linear time): to its closing quote, or to the end of an
# unterminated one, so brackets inside strings are not counted.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def json_depth(body: bytes) -> int:
    """How deeply `body` nests arrays and objects, measured without parsing it (for invalid
    JSON some number: its parser says later what is wrong)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def too_deep(body: bytes, limit: int) -> bool:
    # Most bodies hold fewer brackets than the limit: two counts settle those.
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    return json_depth(body) > limit


def is_json(scope: Scope) -> bool:
    content_type = Headers(scope=scope).get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonDepthLimit:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self, app: ASGIApp, max_depth: int, exempt: Collection[tuple[str, str]] = ()
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.exempt = frozenset(exempt)
        """(method, path) of routes whose own parser bounds the depth (module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or (scope["method"], scope["path"]) in self.exempt
            or not is_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if too_deep(body, self.max_depth):
            response = problems.problem(
                400,
                f"the JSON body nests arrays and objects deeper than {self.max_depth} levels "
                "(server.max_json_depth)",
                instance=scope["path"],
                max_depth=self.max_depth,
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
