"""Status page subscriptions: subscribe (double opt-in), confirm, unsubscribe; and the
admins' list of subscribers, where webhook subscribers are added (never self-service: a
public form that makes the server POST to any URL would be an SSRF).

Subscribing answers the same whatever the address's state (new, waiting for confirmation,
confirmed), and does the same work for each (one read, one write, one mail queued): the
answer never tells whether an address is subscribed. Only its owner learns it, by mail.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Conflict, Invalid, NotFound, Throttled
from watchkeeper.core.ratelimit import TokenBuckets, retry_after
from watchkeeper.core.redact import redact_url
from watchkeeper.statuspage.subscriptions import messages
from watchkeeper.statuspage.subscriptions.config import StatusSubscriptionsConfig
from watchkeeper.statuspage.subscriptions.messages import Links
from watchkeeper.statuspage.subscriptions.pages import PageDirectory
from watchkeeper.statuspage.subscriptions.senders import EMAIL_CHANNEL
from watchkeeper.statuspage.subscriptions.tokens import Purpose, Signer, address_key, new_salt
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import status_subscribers as store
from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.status_subscribers import Subscriber

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$"
)
"""A plain ASCII address (what every SMTP server takes): no display name, comments, quotes,
control characters or list."""
MAX_COMPONENTS = 100
NOT_FOUND = "this link is not valid (it may have been used up or the subscription removed)"
DISABLED = "status page subscriptions are not enabled"


@dataclass(frozen=True, slots=True)
class SubscribeForm:
    """What the subscribe form offers for one page."""

    page: str
    title: str
    components: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscriber as admins see it (webhook URLs with their secrets masked)."""

    id: int
    page: str
    kind: str
    address: str
    components: list[str] | None
    created_at: datetime
    confirmed_at: datetime | None


def _view(subscriber: Subscriber) -> SubscriptionView:
    address = subscriber.address
    if subscriber.kind == "webhook":
        address = redact_url(address)
    return SubscriptionView(
        id=subscriber.id,
        page=subscriber.page,
        kind=subscriber.kind,
        address=address,
        components=subscriber.components,
        created_at=subscriber.created_at,
        confirmed_at=subscriber.confirmed_at,
    )


def valid_email(value: str) -> str:
    """The address, trimmed, if it is one plain address (no display name, no list)."""
    address = value.strip()
    if len(address) > 254 or not _EMAIL.fullmatch(address) or parseaddr(address)[1] != address:
        raise Invalid("enter one email address, such as you@example.com", field="email")
    return address


class StatusSubscriptionService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        config: StatusSubscriptionsConfig,
        signer: Signer,
        pages: PageDirectory,
        links: Links,
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._clock = clock
        self.config = config
        self._signer = signer
        self._pages = pages
        self._links = links
        self._on_enqueued = on_enqueued
        limits = config.rate_limit
        self._per_address = TokenBuckets(limits.per_address, clock.monotonic)
        self._per_client = TokenBuckets(limits.per_client, clock.monotonic)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def _page(self, slug: str | None) -> tuple[str, str, tuple[str, ...]]:
        if not self.config.enabled:
            raise NotFound(DISABLED)
        slug = slug if slug is not None else self._pages.default()
        page = self._pages.get(slug) if slug is not None else None
        if slug is None or page is None:
            raise NotFound("no such status page")
        return slug, page.title, page.components

    def form(self, slug: str | None) -> SubscribeForm:
        """The page's subscribe form (NotFound: no such page, or subscriptions are off)."""
        page, title, components = self._page(slug)
        return SubscribeForm(page, title, components)

    def _components(self, page: str, names: Sequence[str]) -> list[str] | None:
        chosen = list(dict.fromkeys(n.strip() for n in names if n.strip()))
        if len(chosen) > MAX_COMPONENTS:
            raise Invalid(f"at most {MAX_COMPONENTS} components", field="components")
        unknown = self._pages.unknown_components(page, chosen)
        if unknown:
            shown = ", ".join(repr(n[:100]) for n in unknown[:5])
            raise Invalid(f"no such component on this page: {shown}", field="components")
        return chosen or None

    def _throttle(self, buckets: TokenBuckets, key: str, what: str) -> None:
        wait = buckets.take(key)
        if wait is not None:
            raise Throttled(
                f"too many subscribe requests {what}; try again later",
                retry_after=int(retry_after(wait)),
            )

    async def subscribe(
        self, slug: str | None, email: str, components: Sequence[str], client: str
    ) -> SubscribeForm:
        """Queue a confirmation mail to `email` (or, when it is confirmed already, a mail
        saying so). Refuses with Throttled past the per-client or per-address limit."""
        page, title, offered = self._page(slug)
        address = valid_email(email)
        chosen = self._components(page, components)
        self._throttle(self._per_client, client, "from this address")
        key = address_key("email", address)
        self._throttle(self._per_address, key, "for this email address")
        now = self._clock.now()
        ttl_hours = max(1, round(self.config.unconfirmed_ttl.total_seconds() / 3600))
        async with translated(), self._db.begin() as conn:
            found = await store.find(conn, page, "email", key)
            if found is None:
                subscriber = await store.add(
                    conn,
                    page=page,
                    kind="email",
                    address=address,
                    address_key=key,
                    components=chosen,
                    salt=new_salt(),
                    now=now,
                    confirmed=False,
                )
            else:
                subscriber = found
                # A confirmed subscription keeps its choice: only its owner may change it.
                kept = chosen if found.confirmed_at is None else found.components
                await store.set_components(conn, found.id, kept)
            unsubscribe = self._links.unsubscribe(self._token("unsubscribe", subscriber))
            if subscriber.confirmed_at is None:
                payload = messages.confirmation_mail(
                    to=address,
                    page_title=title,
                    components=chosen,
                    confirm_url=self._links.confirm(self._token("confirm", subscriber)),
                    unsubscribe_url=unsubscribe,
                    ttl_hours=ttl_hours,
                    prefix=self.config.subject_prefix,
                )
                event = "subscription.confirm"
            else:
                payload = messages.already_subscribed_mail(
                    to=address,
                    page_title=title,
                    unsubscribe_url=unsubscribe,
                    prefix=self.config.subject_prefix,
                )
                event = "subscription.exists"
            # Each request is its own mail (the rate limits bound how many).
            key = f"status-subscribe:{subscriber.id}:{secrets.token_hex(8)}"
            entry = outbox_store.OutboxEntry(EMAIL_CHANNEL, key, event, payload)
            await outbox_store.enqueue_new(conn, [entry], now)
        self._on_enqueued()
        return SubscribeForm(page, title, offered)

    def _token(self, purpose: Purpose, subscriber: Subscriber) -> str:
        return self._signer.token(purpose, subscriber)

    async def _by_token(self, purpose: Purpose, token: str) -> Subscriber:
        if not self.config.enabled:
            raise NotFound(DISABLED)
        subscriber_id = self._signer.subscriber_id(token)
        subscriber = await store.get(self._db, subscriber_id) if subscriber_id else None
        if subscriber is None or not self._signer.matches(purpose, token, subscriber):
            raise NotFound(NOT_FOUND)
        return subscriber

    def _title(self, subscriber: Subscriber) -> str:
        page = self._pages.get(subscriber.page)
        return page.title if page else subscriber.page

    async def confirm(self, token: str) -> str:
        """Confirm the subscription the token names; the page's title. Confirming again is
        harmless; a token that is not ours, or whose subscriber is gone, is NotFound."""
        subscriber = await self._by_token("confirm", token)
        if not await store.confirm(self._db, subscriber.id, self._clock.now()):
            raise NotFound(NOT_FOUND)
        return self._title(subscriber)

    async def unsubscribe_target(self, token: str) -> str:
        """The title of the page the unsubscribe token's subscriber follows (for the page
        asking to confirm); NotFound when the token is not valid."""
        return self._title(await self._by_token("unsubscribe", token))

    async def unsubscribe(self, token: str) -> str:
        """Delete the subscriber the token names; the page's title."""
        subscriber = await self._by_token("unsubscribe", token)
        await store.remove(self._db, subscriber.id)
        return self._title(subscriber)

    # -- admins ---------------------------------------------------------------------------

    async def list(
        self, *, kind: str | None, page: str | None, limit: int, offset: int
    ) -> tuple[list[SubscriptionView], int]:
        found, total = await store.listing(
            self._db, kind=kind, page=page, limit=limit, offset=offset
        )
        return [_view(s) for s in found], total

    async def add_webhook(
        self, url: str, *, page: str | None, components: Sequence[str]
    ) -> SubscriptionView:
        """A webhook subscriber, confirmed at once (an admin added it)."""
        slug = page if page is not None else self._pages.default()
        if slug is None or self._pages.get(slug) is None:
            raise Invalid("no such status page", field="page")
        if not url.startswith(("https://", "http://")):
            raise Invalid("must be an http or https URL", field="url")
        chosen = self._components(slug, components)
        key = address_key("webhook", url)
        now = self._clock.now()
        async with translated(), self._db.begin() as conn:
            if await store.find(conn, slug, "webhook", key) is not None:
                raise Conflict("this URL already subscribes to this page", field="url")
            subscriber = await store.add(
                conn,
                page=slug,
                kind="webhook",
                address=url,
                address_key=key,
                components=chosen,
                salt=new_salt(),
                now=now,
                confirmed=True,
            )
        return _view(subscriber)

    async def remove(self, subscriber_id: int) -> None:
        if not await store.remove(self._db, subscriber_id):
            raise NotFound(f"no subscriber {subscriber_id}")
