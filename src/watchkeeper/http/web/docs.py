"""The API's reference pages: Swagger UI at `/api/docs`, ReDoc at `/api/redoc`.

Both are served from /static (vendored by scripts/vendor-assets.sh: no CDN) under a CSP
whose scripts need this request's nonce; their renderers style elements inline and ReDoc
searches in a worker, which their policy allows and the dashboard's does not.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from watchkeeper.http.edge.headers import csp_nonce, policy

SWAGGER_UI = "/api/docs"
REDOC = "/api/redoc"


def _page(request: Request, template: str) -> HTMLResponse:
    nonce = csp_nonce(request)
    html = request.app.state.templates.get_template(template).render(
        nonce=nonce, openapi_url=request.app.openapi_url
    )
    return HTMLResponse(
        html,
        headers={"Content-Security-Policy": policy(nonce, inline_styles=True, workers=True)},
    )


async def swagger_ui(request: Request) -> HTMLResponse:
    return _page(request, "api_docs.html")


async def redoc(request: Request) -> HTMLResponse:
    return _page(request, "api_redoc.html")


def install(app: FastAPI) -> None:
    # Plain routes like FastAPI's own docs (public, outside the OpenAPI document).
    app.add_route(SWAGGER_UI, swagger_ui, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route(REDOC, redoc, methods=["GET", "HEAD"], include_in_schema=False)
