"""`SubscriberNotifier`: the status page's `StatusEventSink`. Each event becomes one outbox
entry per confirmed subscriber of its page (of the affected components, for those who chose
some), queued in one transaction; the outbox delivers them.

The Idempotency-Key is derived from the event (page, kind, subject, time) and the subscriber,
so publishing the same event again queues nothing new and each subscriber gets it once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from watchkeeper.core.clock import Clock
from watchkeeper.statuspage.events import StatusEvent
from watchkeeper.statuspage.subscriptions.messages import Links, event_mail, webhook_body
from watchkeeper.statuspage.subscriptions.pages import PageDirectory
from watchkeeper.statuspage.subscriptions.senders import EMAIL_CHANNEL, WEBHOOK_CHANNEL
from watchkeeper.statuspage.subscriptions.tokens import Signer
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import status_subscribers as store
from watchkeeper.store.database import Database
from watchkeeper.store.status_subscribers import Subscriber

log = logging.getLogger(__name__)


def event_key(event: StatusEvent) -> str:
    """What identifies one event however often it is published."""
    text = "\n".join((event.page, event.kind, event.subject_id, event.at.isoformat()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def idempotency_key(event: StatusEvent, subscriber: Subscriber) -> str:
    return f"status:{event_key(event)}:{subscriber.id}"


def follows(subscriber: Subscriber, event: StatusEvent) -> bool:
    """A subscriber without a component filter follows everything on its page; one with a
    filter, the events about one of its components."""
    if not subscriber.components:
        return True
    return not set(subscriber.components).isdisjoint(event.components)


class SubscriberNotifier:
    """Implements `watchkeeper.statuspage.events.StatusEventSink`."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        signer: Signer,
        links: Links,
        pages: PageDirectory,
        enabled: bool,
        subject_prefix: str = "",
        on_enqueued: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._signer = signer
        self._links = links
        self._pages = pages
        self._enabled = enabled
        self._prefix = subject_prefix
        self._on_enqueued = on_enqueued

    async def publish(self, event: StatusEvent) -> None:
        """Queue `event` for every confirmed subscriber who follows it (none when
        subscriptions are off). Safe to call again for the same event."""
        if not self._enabled:
            return
        now = self._clock.now()
        page = self._pages.get(event.page)
        title = page.title if page else event.page
        async with self._db.begin() as conn:
            subscribers = await store.confirmed(conn, event.page)
            entries = [self._entry(event, s, title) for s in subscribers if follows(s, event)]
            added = await outbox_store.enqueue_new(conn, entries, now)
        if added:
            log.info("status event %s queued for %d subscribers", event.kind, added)
            self._on_enqueued()

    def _entry(
        self, event: StatusEvent, subscriber: Subscriber, title: str
    ) -> outbox_store.OutboxEntry:
        unsubscribe = self._links.unsubscribe(self._signer.token("unsubscribe", subscriber))
        if subscriber.kind == "webhook":
            channel = WEBHOOK_CHANNEL
            payload = {
                "url": subscriber.address,
                "body": webhook_body(
                    event, unsubscribe_url=unsubscribe, page_title=title, now=self._clock.now()
                ),
            }
        else:
            channel = EMAIL_CHANNEL
            payload = event_mail(
                event,
                to=subscriber.address,
                page_title=title,
                unsubscribe_url=unsubscribe,
                prefix=self._prefix,
            )
        return outbox_store.OutboxEntry(
            channel, idempotency_key(event, subscriber), event.kind, payload
        )
