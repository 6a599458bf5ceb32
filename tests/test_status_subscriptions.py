"""Status page subscriptions end to end: the public pages in-process, mails through a real
SMTP server (aiosmtpd) on loopback, webhooks to a real HTTP receiver, all through the
runtime's durable outbox."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import httpx
import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.notify.test_email import Inbox, smtp_server
from tests.support.clock import FakeClock, run_until
from tests.support.servers import WebhookReceiver
from tests.support.service import Service, running
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.engine.housekeeping import Housekeeping
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.notify.channels.base import ChannelContext
from watchkeeper.notify.config import DeliveryConfig
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.statuspage.events import StatusEvent
from watchkeeper.statuspage.subscriptions.config import SmtpServer
from watchkeeper.statuspage.subscriptions.expiry import JOB_NAME, expiry_job
from watchkeeper.statuspage.subscriptions.messages import Links
from watchkeeper.statuspage.subscriptions.notifier import SubscriberNotifier
from watchkeeper.statuspage.subscriptions.pages import PageDirectory, PageInfo
from watchkeeper.statuspage.subscriptions.senders import (
    EMAIL_CHANNEL,
    WEBHOOK_CHANNEL,
    SubscriberMailer,
)
from watchkeeper.statuspage.subscriptions.tokens import Signer, address_key
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import status_subscribers as store
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
BASE = "https://status.example.com"
PAGES = {
    slug: PageInfo(title=title, components=("api", "db"))
    for slug, title in (
        ("acme", "Acme Cloud"),  # the first page: /status/subscribe
        ("known", "Known"),
        ("typos", "Typos"),
        ("limits", "Limits"),
        ("tokens", "Tokens"),
        ("hooks", "Hooks"),
    )
}
_LINK = re.compile(re.escape(BASE) + r"(/status/(?:confirm|unsubscribe)/[A-Za-z0-9._-]+)")


class Mailbox(Inbox):
    """The loopback SMTP server's inbox, which a test can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        async with self.arrived:
            self.arrived.notify_all()
        return answer

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.recipients]

    async def wait(self, address: str, count: int, timeout: float = 10) -> list[EmailMessage]:
        """The mails to `address` once there are `count` of them."""
        try:
            async with asyncio.timeout(timeout), self.arrived:
                await self.arrived.wait_for(lambda: len(self.to(address)) >= count)
        except TimeoutError:
            raise AssertionError(f"{address} got {len(self.to(address))} mails") from None
        return self.to(address)


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def link(mail: EmailMessage, kind: str) -> str:
    """The path of the mail's `confirm` or `unsubscribe` link."""
    found = [p for p in _LINK.findall(text_of(mail)) if p.startswith(f"/status/{kind}/")]
    assert found, text_of(mail)
    return str(found[0])


def event(kind: str = "incident.created", **changes: Any) -> StatusEvent:
    values: dict[str, Any] = {
        "kind": kind,
        "page": "acme",
        "subject_id": "inc-1",
        "title": "Database slow",
        "status": "investigating",
        "impact": "major",
        "body": "We are looking into **slow** queries. <script>x</script>",
        "components": ("db",),
        "url": f"{BASE}/status/incidents/inc-1",
        "at": T0,
    }
    values.update(changes)
    return StatusEvent(**values)


@dataclass
class Setup:
    service: Service
    mailbox: Mailbox
    public: httpx.AsyncClient
    """Anonymous, like a visitor of the status page (each test from its own address)."""
    page: str
    """The status page this test subscribes to (each test has its own)."""

    async def subscribe(
        self, email: str, *components: str, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        path = "/status/subscribe" if self.page == "acme" else f"/status/{self.page}/subscribe"
        return await (client or self.public).post(
            path, data={"email": email, "components": list(components)}
        )

    async def subscribed(self, email: str, *components: str) -> None:
        """Subscribe and confirm `email`."""
        before = len(self.mailbox.to(email))
        assert (await self.subscribe(email, *components)).status_code == 202
        [*_, confirmation] = await self.mailbox.wait(email, before + 1)
        assert (await self.public.get(link(confirmation, "confirm"))).status_code == 200

    async def publish(self, status_event: StatusEvent) -> None:
        await self.service.runtime.status_events.publish(status_event)

    def visitor(self, address: str) -> httpx.AsyncClient:
        """Another anonymous client, from `address`."""
        app = self.service.client._transport.app  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://wk")


def config(tmp_path: Path, smtp_port: int, **section: Any) -> dict[str, Any]:
    """`section` adds to `status_subscriptions:`; mails go through the `mail` channel's server."""
    return {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "notifications": [
            {
                "name": "mail",
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "from_addr": "status@example.com",
                "to": ["ops@example.com"],
            }
        ],
        "status_pages": [
            {
                "slug": slug,
                "title": info.title,
                "components": [{"name": name} for name in info.components],
            }
            for slug, info in PAGES.items()
        ],
        "status_subscriptions": {
            "enabled": True,
            "email_channel": "mail",
            "public_url": BASE,
            **section,
        },
    }


SHARED = pytest.mark.asyncio(loop_scope="module")
"""The tests on the module's one runtime run in its event loop."""
LIMITS = {
    "per_address": {"per_hour": 1, "burst": 2},
    "per_client": {"per_hour": 60, "burst": 3},
}
_clients = iter(range(1, 250))


@dataclass
class Shared:
    service: Service
    mailbox: Mailbox


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    """One runtime for the module's HTTP tests (each on its own page, from its own client
    address, with its own email addresses): starting one is the slow part."""
    mailbox = Mailbox()
    folder = tmp_path_factory.mktemp("subscriptions")
    async with (
        smtp_server(mailbox) as port,
        running(config(folder, port, rate_limit=LIMITS), clock=FakeClock(T0)) as service,
    ):
        yield Shared(service, mailbox)


@pytest.fixture
def page() -> str:
    """The page a test subscribes to (`acme`, the default page, unless parametrized)."""
    return "acme"


@pytest_asyncio.fixture(loop_scope="module")
async def setup(shared: Shared, page: str) -> AsyncIterator[Setup]:
    async with Setup(shared.service, shared.mailbox, httpx.AsyncClient(), page).visitor(
        f"10.0.0.{next(_clients)}"
    ) as public:
        yield Setup(shared.service, shared.mailbox, public, page)


@SHARED
async def test_a_confirmed_subscriber_gets_incidents_until_unsubscribing(setup: Setup) -> None:
    form = await setup.public.get("/status/subscribe")
    assert form.status_code == 200
    assert 'name="email"' in form.text and 'value="db"' in form.text and "<script" not in form.text

    answer = await setup.subscribe("ann@example.org")
    assert answer.status_code == 202, answer.text
    [confirmation] = await setup.mailbox.wait("ann@example.org", 1)
    assert confirmation["From"] == "status@example.com"  # the email channel's from_addr
    assert "Confirm your subscription" in confirmation["Subject"]
    unsubscribe = link(confirmation, "unsubscribe")
    # Folded (a long URL), as RFC 5322 allows: clients unfold it.
    assert confirmation["List-Unsubscribe"].strip() == f"<{BASE}{unsubscribe}>"
    assert confirmation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Another address subscribes and never confirms.
    assert (await setup.subscribe("bob@example.org")).status_code == 202
    await setup.mailbox.wait("bob@example.org", 1)

    confirmed = await setup.public.get(link(confirmation, "confirm"))
    assert confirmed.status_code == 200 and "Acme Cloud" in confirmed.text
    await setup.publish(event())
    [_, incident] = await setup.mailbox.wait("ann@example.org", 2)
    assert incident["Subject"] == "[Acme Cloud] New incident: Database slow"
    text = text_of(incident)
    assert "Status: investigating · Impact: major · Affected: db" in text
    assert f"Details: {BASE}/status/incidents/inc-1" in text
    assert link(incident, "unsubscribe") == unsubscribe
    html_part = incident.get_body(("html",))
    assert html_part is not None
    assert "<script>" not in str(html_part.get_content())  # type: ignore[attr-defined]
    mine = {"ann@example.org", "bob@example.org"}

    async def queued(kind: str) -> list[str]:
        entries = await outbox_store.list_entries(setup.service.runtime.db, limit=1000)
        return [e.payload["to"] for e in entries if e.event == kind and e.payload["to"] in mine]

    assert await queued("incident.created") == ["ann@example.org"], "bob never confirmed"

    shown = await setup.public.get(unsubscribe)
    assert shown.status_code == 200 and 'method="post"' in shown.text
    assert shown.headers["Referrer-Policy"] == "no-referrer"
    # A mail client's RFC 8058 one-click POST.
    done = await setup.public.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    assert (await setup.public.get(unsubscribe)).status_code == 404

    await setup.publish(event("incident.resolved", status="resolved", at=T0 + timedelta(hours=1)))
    assert await queued("incident.resolved") == []


@SHARED
@pytest.mark.parametrize("page", ["known"])
async def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(setup: Setup) -> None:
    await setup.subscribed("known@example.org")
    known = await setup.subscribe("known@example.org", "api")
    unknown = await setup.subscribe("new@example.org", "api")
    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)
    assert known.headers.keys() == unknown.headers.keys()
    # Only the owner of the known address learns that it is subscribed already; its choice
    # of components stays as it was.
    [_, again] = await setup.mailbox.wait("known@example.org", 2)
    assert "already subscribed" in again["Subject"]
    [first] = await setup.mailbox.wait("new@example.org", 1)
    assert "Confirm your subscription" in first["Subject"]
    views, _ = await setup.service.runtime.services.status_subscriptions.list(
        kind="email", page="known", limit=10, offset=0
    )
    assert {v.address: v.components for v in views} == {
        "known@example.org": None,
        "new@example.org": ["api"],
    }


@SHARED
@pytest.mark.parametrize("page", ["typos"])
async def test_bad_input_is_answered_with_the_form_naming_what_is_wrong(setup: Setup) -> None:
    for email in ("not an address", "a@example.org, b@example.org", "a@example.org\\nBcc: x@y.z"):
        answer = await setup.public.post("/status/typos/subscribe", data={"email": email})
        assert answer.status_code == 422 and "one email address" in answer.text
    answer = await setup.subscribe("a@example.org", "nope")
    assert answer.status_code == 422 and "no such component" in answer.text
    answer = await setup.public.post("/status/typos/subscribe", json={"email": "x"})
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (await setup.public.get("/status/elsewhere/subscribe")).status_code == 404


HOSTILE = ["\x00", "a\x00b@example.org", "\ud800", "\u202e\u200b", "x" * 5000, "../..", "%2F"]


@SHARED
@pytest.mark.parametrize("page", ["typos"])
async def test_hostile_text_is_never_answered_with_a_500(setup: Setup) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    failures = []
    for value in HOSTILE:
        encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
        requests = [
            ("POST", "/status/typos/subscribe", f"email={encoded}"),
            ("POST", "/status/typos/subscribe", f"email=ok%40example.org&components={encoded}"),
            ("GET", f"/status/{encoded}/subscribe", ""),
            ("GET", f"/status/confirm/{encoded}", ""),
            ("POST", f"/status/unsubscribe/{encoded}", ""),
        ]
        for method, path, body in requests:
            answer = await setup.public.request(method, path, content=body, headers=form)
            if answer.status_code >= 500 or answer.status_code == 202:
                failures.append((method, path[:60], body[:60], answer.status_code))
    assert failures == []


@SHARED
@pytest.mark.parametrize("page", ["limits"])
async def test_subscribing_is_rate_limited_per_address_with_retry_after(setup: Setup) -> None:
    # per_address: 2 at once, then 1 an hour, whoever asks.
    assert (await setup.subscribe("ann@limits.example")).status_code == 202
    assert (await setup.subscribe("ANN@limits.example")).status_code == 202
    async with setup.visitor("10.0.1.1") as elsewhere:
        refused = await setup.subscribe("Ann@Limits.example", client=elsewhere)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "3600"
        # The address is what is limited: another one from the same client still goes through.
        assert (await setup.subscribe("bob@limits.example", client=elsewhere)).status_code == 202
    setup.service.runtime.clock.advance(3600)  # type: ignore[attr-defined]
    assert (await setup.subscribe("ann@limits.example")).status_code == 202


@SHARED
@pytest.mark.parametrize("page", ["limits"])
async def test_subscribing_is_rate_limited_per_client(setup: Setup) -> None:
    # per_client: 3 at once, then 1 a minute, whichever the addresses.
    for n in range(3):
        assert (await setup.subscribe(f"user{n}@limits.example")).status_code == 202
    refused = await setup.public.post(
        "/status/limits/subscribe", json={"email": "u9@limits.example"}
    )
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert refused.headers["content-type"].startswith("application/problem+json")
    views, _ = await setup.service.runtime.services.status_subscriptions.list(
        kind="email", page="limits", limit=100, offset=0
    )
    assert "u9@limits.example" not in {v.address for v in views}, "a refusal stores nothing"


@SHARED
@pytest.mark.parametrize("page", ["tokens"])
async def test_tokens_cannot_be_forged_or_used_for_another_purpose_or_address(
    setup: Setup,
) -> None:
    await setup.subscribe("ann@tokens.example")
    await setup.subscribe("bob@tokens.example")
    [ann] = await setup.mailbox.wait("ann@tokens.example", 1)
    [bob] = await setup.mailbox.wait("bob@tokens.example", 1)
    ann_confirm, bob_confirm = link(ann, "confirm"), link(bob, "confirm")
    ann_id, ann_mac = ann_confirm.rsplit("/", 1)[1].split(".")
    bob_id, _ = bob_confirm.rsplit("/", 1)[1].split(".")
    flipped = ann_mac[:-1] + ("A" if ann_mac[-1] != "A" else "B")
    for path in (
        f"/status/confirm/{bob_id}.{ann_mac}",  # Ann's MAC on Bob's subscription
        f"/status/confirm/{ann_id}.{flipped}",  # forged
        "/status/confirm/" + link(ann, "unsubscribe").rsplit("/", 1)[1],  # another purpose
        "/status/confirm/999999.AAAAAAAAAAAAAAAAAAAAAAAA",
        "/status/confirm/garbage",
    ):
        answer = await setup.public.get(path)
        assert answer.status_code == 404, path
    assert (await setup.public.post(f"/status/unsubscribe/{bob_id}.{ann_mac}")).status_code == 404
    views, _ = await setup.service.runtime.services.status_subscriptions.list(
        kind=None, page="tokens", limit=10, offset=0
    )
    assert [v.confirmed_at for v in views] == [None, None]
    assert (await setup.public.get(bob_confirm)).status_code == 200


@SHARED
@pytest.mark.parametrize("page", ["hooks"])
async def test_webhook_subscribers_are_managed_by_admins_and_get_statuspage_bodies(
    setup: Setup,
) -> None:
    receiver = await WebhookReceiver().start()
    try:
        admin = setup.service.client
        url = receiver.hook_url + "?token=s3cret"
        spec = {"url": url, "page": "hooks", "components": ["db"]}
        added = await admin.post("/api/v1/status-subscribers", json=spec)
        assert added.status_code == 201, added.text
        view = added.json()
        assert (view["kind"], view["page"], view["components"]) == ("webhook", "hooks", ["db"])
        assert "s3cret" not in view["address"] and view["confirmed_at"] is not None
        again = await admin.post("/api/v1/status-subscribers", json=spec)
        assert again.status_code == 409
        operator = await setup.service.as_role(Role.OPERATOR)
        assert (await admin.get("/api/v1/status-subscribers", headers=operator)).status_code == 403
        assert (await setup.public.get("/api/v1/status-subscribers")).status_code == 401

        await setup.publish(event(page="hooks", components=("api",)))  # not one it follows
        await setup.publish(event(page="hooks", at=T0 + timedelta(minutes=5)))
        [delivery] = await receiver.wait_for(
            lambda r: r.accepted(), timeout=10, what="the incident"
        )
        body = delivery.payload
        assert set(body) == {"meta", "page", "incident"}
        assert body["meta"]["unsubscribe"].startswith(f"{BASE}/status/unsubscribe/")
        assert body["page"]["id"] == "hooks" and body["page"]["status_indicator"] == "major"
        incident = body["incident"]
        assert (incident["id"], incident["name"], incident["status"]) == (
            "inc-1",
            "Database slow",
            "investigating",
        )
        assert incident["incident_updates"][0]["body"].startswith("We are looking")
        assert incident["shortlink"] == f"{BASE}/status/incidents/inc-1"
        # The event about `api` was not queued for it at all.
        assert (incident["updated_at"], incident["components"]) == (
            "2030-01-01T12:05:00Z",
            [{"name": "db"}],
        )
        entries = await outbox_store.list_entries(setup.service.runtime.db, limit=1000)
        assert [e.channel for e in entries].count(WEBHOOK_CHANNEL) == 1
        assert delivery.key and delivery.key.startswith("status:")

        listed = (await admin.get("/api/v1/status-subscribers?kind=webhook&page=hooks")).json()
        assert [s["id"] for s in listed["items"]] == [view["id"]] and listed["total"] == 1
        assert (await admin.delete(f"/api/v1/status-subscribers/{view['id']}")).status_code == 204
        assert (await admin.delete(f"/api/v1/status-subscribers/{view['id']}")).status_code == 404
    finally:
        await receiver.close()


async def test_a_publish_repeated_sends_each_subscriber_one_mail(db: Database) -> None:
    """Exactly once through the outbox: the Idempotency-Key is the event's and the
    subscriber's, so the same event published again queues nothing (on SQLite and PostgreSQL)."""
    clock = FakeClock(T0)
    signer = Signer(b"k" * 32)
    pages = PageDirectory(dict(PAGES))
    mailbox = Mailbox()
    async with db.begin() as conn:
        for address, confirmed in (("ann@example.org", True), ("bob@example.org", False)):
            await store.add(
                conn,
                page="acme",
                kind="email",
                address=address,
                address_key=address_key("email", address),
                components=None,
                salt="00" * 16,
                now=T0,
                confirmed=confirmed,
            )
    notifier = SubscriberNotifier(
        db, clock, signer=signer, links=Links(BASE), pages=pages, enabled=True
    )
    async with smtp_server(mailbox) as port, aiohttp.ClientSession() as http:
        mailer = SubscriberMailer(
            SmtpServer(host="127.0.0.1", port=port, security="none"),
            "status@example.com",
            ChannelContext(http, 5, clock.now),
        )
        worker = OutboxWorker(db, {EMAIL_CHANNEL: mailer}, DeliveryConfig(), clock)
        await notifier.publish(event())
        await notifier.publish(event())  # e.g. the status page retrying after a timeout
        assert await worker.deliver_due() == 1
        await notifier.publish(event())  # after delivery too
        assert await worker.deliver_due() == 0
        await notifier.publish(event("incident.updated", at=T0 + timedelta(minutes=1)))
        assert await worker.deliver_due() == 1
    mails = mailbox.to("ann@example.org")
    assert [m["Subject"] for m in mails] == [
        "[Acme Cloud] New incident: Database slow",
        "[Acme Cloud] Incident update: Database slow",
    ]
    assert mails[0]["Message-ID"] != mails[1]["Message-ID"]
    assert mailbox.to("bob@example.org") == []


async def test_unconfirmed_addresses_are_deleted_after_the_ttl_by_housekeeping(
    sqlite_db: Database,
) -> None:
    clock = FakeClock(T0)

    async def add(address: str, at: datetime, confirmed: bool) -> None:
        async with sqlite_db.begin() as conn:
            await store.add(
                conn,
                page="acme",
                kind="email",
                address=address,
                address_key=address_key("email", address),
                components=None,
                salt="00" * 16,
                now=at,
                confirmed=confirmed,
            )

    await add("old@example.org", T0, False)
    await add("kept@example.org", T0, True)
    await add("late@example.org", T0 + timedelta(hours=47), False)
    housekeeping = Housekeeping([expiry_job(sqlite_db, clock, timedelta(hours=48))], clock)
    task = asyncio.create_task(housekeeping.run())

    async def addresses() -> set[str]:
        found, _ = await store.listing(sqlite_db, kind=None, page=None, limit=10, offset=0)
        return {s.address for s in found}

    try:
        await run_until(clock, T0 + timedelta(hours=47, minutes=59))
        assert await addresses() == {"old@example.org", "kept@example.org", "late@example.org"}
        # Checked hourly: gone within the hour after its 48 hours.
        await run_until(clock, T0 + timedelta(hours=49, minutes=1))
        assert await addresses() == {"kept@example.org", "late@example.org"}
        await run_until(clock, T0 + timedelta(hours=96))
        assert await addresses() == {"kept@example.org"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert housekeeping.last_runs[JOB_NAME].detail.endswith("unconfirmed deleted")


async def test_subscriptions_turned_off_answer_404_and_run_no_job(tmp_path: Path) -> None:
    settings = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    runtime = Runtime(settings)  # not started: the pages refuse before any database work
    transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://wk") as public:
        assert (await public.get("/status/subscribe")).status_code == 404
        answer = await public.post("/status/subscribe", data={"email": "a@example.org"})
        assert answer.status_code == 404
        assert (await public.get("/status/confirm/1.AAAAAAAAAAAAAAAAAAAAAAAA")).status_code == 404
    assert JOB_NAME not in runtime.housekeeping.jobs


async def test_the_sections_own_smtp_server_and_sender_send_the_mails(tmp_path: Path) -> None:
    smtp = {"host": "127.0.0.1", "port": 2626, "username": "u", "password": "pw-s3cret"}
    spec = config(tmp_path, 25, email_channel=None, smtp=smtp, **{"from": "Acme <s@acme.test>"})
    runtime = Runtime(Config.model_validate(spec))
    assert JOB_NAME in runtime.housekeeping.jobs
    async with aiohttp.ClientSession() as http:
        mailer = runtime._subscriber_channels(http)[EMAIL_CHANNEL]
    assert isinstance(mailer, SubscriberMailer)
    assert (mailer.smtp.host, mailer.smtp.effective_port) == ("127.0.0.1", 2626)
    assert mailer.sender == "Acme <s@acme.test>"
    assert mailer.secrets() == ["pw-s3cret"]


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"email_channel": "nope"}, "status_subscriptions.email_channel: unknown channel 'nope'"),
        ({"email_channel": "hook"}, "is of type 'webhook', not email"),
        ({"email_channel": None}, "needs `email_channel`"),
        ({"email_channel": None, "smtp": {"host": "mx"}, "from": None}, "from: required"),
        ({"from": "x\nBcc: y@example.org"}, "expected an email address"),
        ({"unconfirmed_ttl": "400d"}, "must be at most"),
    ],
)
def test_bad_config_names_the_field(section: dict[str, Any], error: str) -> None:
    spec = config(Path("/tmp"), 25, **section)
    spec["notifications"].append({"name": "hook", "type": "webhook", "url": "http://x/"})
    with pytest.raises(ValueError, match=re.escape(error)):
        Config.model_validate(spec)


def test_signer_binds_tokens_to_purpose_row_and_key() -> None:
    row = store.Subscriber(
        id=7,
        page="acme",
        kind="email",
        address="ann@example.org",
        address_key=address_key("email", "ann@example.org"),
        components=None,
        salt="ab" * 16,
        created_at=T0,
        confirmed_at=None,
    )
    signer = Signer(b"k" * 32)
    token = signer.token("confirm", row)
    assert Signer.subscriber_id(token) == 7
    assert signer.matches("confirm", token, row)
    assert not signer.matches("unsubscribe", token, row)
    assert not Signer(b"j" * 32).matches("confirm", token, row)
    for change in ({"salt": "cd" * 16}, {"page": "other"}, {"address_key": "0" * 64}):
        other = store.Subscriber(
            **{f: getattr(row, f) for f in row.__dataclass_fields__} | change  # type: ignore[arg-type]
        )
        assert not signer.matches("confirm", token, other), change
    assert Signer.subscriber_id("7.short") is None
