"""The status page's public subscription pages: the subscribe form (no JavaScript), the
confirm link and the unsubscribe link (a button, or RFC 8058 one-click POST from a mail
client). Server-rendered, every value escaped; tokens in URLs are kept out of Referer."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from watchkeeper.auth.credentials import client_ip
from watchkeeper.core.errors import DomainError, Throttled
from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import PUBLIC
from watchkeeper.services import Services
from watchkeeper.services.status_subscriptions import SubscribeForm

router = APIRouter(prefix="/status", include_in_schema=False, dependencies=[Depends(PUBLIC)])

SENT = (
    "Thank you. If this address can receive mail from us, a message is on its way: follow "
    "the link in it to confirm the subscription."
)
_HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: never send it on to another site in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def _page(title: str, body: str, status: int = 200, retry: int | None = None) -> HTMLResponse:
    e = html.escape
    headers = dict(_HEADERS)
    if retry is not None:
        headers["Retry-After"] = str(retry)
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{e(title)}</title></head><body><main>"
        f"<h1>{e(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=headers)


def _error(exc: DomainError) -> HTMLResponse:
    retry = exc.retry_after if isinstance(exc, Throttled) else None
    title = "Too many requests" if retry is not None else "Not possible"
    return _page(title, f"<p>{html.escape(exc.detail)}</p>", exc.status, retry)


def _form_html(form: SubscribeForm, action: str, error: str | None = None) -> str:
    e = html.escape
    parts = [f"<p>Get an email when {e(form.title)} reports an incident or maintenance.</p>"]
    if error:
        parts.append(f'<p role="alert"><strong>{e(error)}</strong></p>')
    parts.append(f'<form method="post" action="{e(action)}">')
    parts.append(
        '<p><label for="email">Email address</label><br>'
        '<input id="email" name="email" type="email" required maxlength="254" '
        'autocomplete="email"></p>'
    )
    if form.components:
        boxes = "".join(
            f'<li><label><input type="checkbox" name="components" value="{e(c)}"> {e(c)}'
            "</label></li>"
            for c in form.components
        )
        parts.append(
            "<fieldset><legend>Only these components (none checked: all of them)</legend>"
            f"<ul>{boxes}</ul></fieldset>"
        )
    parts.append('<p><button type="submit">Subscribe</button></p></form>')
    return "".join(parts)


def _subscribe_path(slug: str | None) -> str:
    return "/status/subscribe" if slug is None else f"/status/{slug}/subscribe"


async def _show_form(services: Services, slug: str | None) -> Response:
    try:
        form = services.status_subscriptions.form(slug)
    except DomainError as exc:
        return _error(exc)
    return _page(f"Subscribe to {form.title}", _form_html(form, _subscribe_path(slug)))


async def _subscribe(request: Request, services: Services, slug: str | None) -> Response:
    service = services.status_subscriptions
    wants_json = request.headers.get("content-type", "").startswith("application/json")
    email: str = ""
    components: Sequence[str] = ()
    if wants_json:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            value = body.get("email")
            email = value if isinstance(value, str) else ""
            given = body.get("components") or []
            components = [c for c in given if isinstance(c, str)] if isinstance(given, list) else []
    else:
        data = await request.form()
        field = data.get("email")
        email = field if isinstance(field, str) else ""
        components = [c for c in data.getlist("components") if isinstance(c, str)]
    try:
        form = await service.subscribe(slug, email, components, client_ip(request))
    except DomainError as exc:
        if wants_json:
            raise
        if exc.status == 422:  # a typo: the form again, with what is wrong
            try:
                again = service.form(slug)
            except DomainError as other:
                return _error(other)
            return _page(
                f"Subscribe to {again.title}",
                _form_html(again, _subscribe_path(slug), exc.detail),
                422,
            )
        return _error(exc)
    if wants_json:
        return JSONResponse({"detail": SENT}, status_code=202, headers=_HEADERS)
    return _page(f"Subscribe to {form.title}", f"<p>{html.escape(SENT)}</p>", 202)


@router.get("/subscribe", response_class=HTMLResponse)
async def subscribe_form(services: Services = Depends(get_services)) -> Response:
    return await _show_form(services, None)


@router.post("/subscribe", response_class=HTMLResponse)
async def subscribe(request: Request, services: Services = Depends(get_services)) -> Response:
    return await _subscribe(request, services, None)


async def _token_page(lookup: Awaitable[str], title: str, body: Callable[[str], str]) -> Response:
    """The page of a mailed link: `body` of the subscribed page's escaped title once
    `lookup` (of the link's token) gives it, or the error (unknown, expired or used)."""
    try:
        page_title = await lookup
    except DomainError as exc:
        return _error(exc)
    return _page(title, body(html.escape(page_title)))


@router.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm(token: str, services: Services = Depends(get_services)) -> Response:
    return await _token_page(
        services.status_subscriptions.confirm(token),
        "Subscription confirmed",
        lambda page: (
            f"<p>You will get an email when {page} reports an incident or "
            "maintenance. Every mail has a link to unsubscribe.</p>"
        ),
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_form(token: str, services: Services = Depends(get_services)) -> Response:
    # A button, not an action on GET: mail scanners follow links; people press buttons.
    return await _token_page(
        services.status_subscriptions.unsubscribe_target(token),
        "Unsubscribe",
        lambda page: (
            f"<p>Stop the status updates of {page} to this address?</p>"
            f'<form method="post" action="/status/unsubscribe/{html.escape(token)}">'
            '<p><button type="submit">Unsubscribe</button></p></form>'
        ),
    )


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe(token: str, services: Services = Depends(get_services)) -> Response:
    """The button's POST, and RFC 8058's one-click POST (`List-Unsubscribe=One-Click`)."""
    return await _token_page(
        services.status_subscriptions.unsubscribe(token),
        "Unsubscribed",
        lambda page: f"<p>This address gets no more status updates of {page}.</p>",
    )


# Last: `/status/{slug}/subscribe` must not shadow the fixed paths above.
@router.get("/{slug}/subscribe", response_class=HTMLResponse)
async def page_subscribe_form(slug: str, services: Services = Depends(get_services)) -> Response:
    return await _show_form(services, slug)


@router.post("/{slug}/subscribe", response_class=HTMLResponse)
async def page_subscribe(
    slug: str, request: Request, services: Services = Depends(get_services)
) -> Response:
    return await _subscribe(request, services, slug)
