"""The email channel against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS, TLS."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.notify.payloads import alert, message
from tests.support.servers import free_port
from watchkeeper.notify.channels.base import ChannelContext
from watchkeeper.notify.channels.email import (
    EmailChannel,
    EmailChannelConfig,
    build_email,
    message_id,
    thread_id,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
USER, PASSWORD = "watchkeeper", "correct-horse-battery"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    authenticated: bool


class Inbox:
    """aiosmtpd handler: keeps what arrives; `replies` refuses chosen recipients."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: dict[str, str] = {}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        tls = server.transport is not None and bool(server.transport.get_extra_info("sslcontext"))
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                parsed,
                tls or session.ssl is not None,
                session.authenticated,
            )
        )
        return "250 Message accepted"


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any
) -> AuthResult:
    ok = isinstance(auth, LoginPassword) and auth == (USER.encode(), PASSWORD.encode())
    # handled=False: aiosmtpd then sends the standard 235/535 reply itself.
    return AuthResult(success=ok, handled=False)


@asynccontextmanager
async def smtp_server(
    inbox: Inbox, *, implicit_tls: ssl.SSLContext | None = None, **options: Any
) -> AsyncIterator[int]:
    """An aiosmtpd server in the test's own loop on an ephemeral port; yields the port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbox, hostname="smtp.test", **options), "127.0.0.1", 0, ssl=implicit_tls
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@dataclass
class Cert:
    server_context: ssl.SSLContext
    ca_file: Path


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1 (P-256: generated in microseconds)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return Cert(context, cert_file)


def config(**overrides: Any) -> EmailChannelConfig:
    base = {
        "name": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "security": "none",
        "from_addr": "Watchkeeper <wk@example.com>",
        "to": ["ops@example.com", "Oncall <oncall@example.com>"],
    }
    return EmailChannelConfig.model_validate({**base, **overrides})


def channel(
    http: aiohttp.ClientSession, port: int, timeout: float = 5.0, **overrides: Any
) -> EmailChannel:
    return EmailChannel(config(port=port, **overrides), ChannelContext(http, timeout, lambda: T0))


def parts(mail: EmailMessage) -> tuple[str, str]:
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_the_email_carries_subject_recipients_ids_and_both_parts() -> None:
    payload = {"alert": alert(), "links": {"alert": "https://wk.example/alerts/a-1"}}
    mail = build_email(config(), message("alert.firing", payload), T0)
    assert {k: str(v) for k, v in mail.items() if k != "Content-Type"} == {
        "Subject": "[watchkeeper] FIRING [critical] db: connection refused",
        "From": "Watchkeeper <wk@example.com>",
        "To": "ops@example.com, Oncall <oncall@example.com>",
        "Date": "Tue, 01 Jan 2030 12:00:00 +0000",
        "Message-ID": message_id("a-1:alert.firing", "example.com"),
        "References": thread_id("a-1", "example.com"),
        "X-Watchkeeper-Event": "alert.firing",
        "Auto-Submitted": "auto-generated",
        "MIME-Version": "1.0",
    }
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = parts(mail)
    assert plain.startswith("FIRING [critical] db: connection refused\n\nconnection refused\n\n")
    assert "Open alert: https://wk.example/alerts/a-1" in plain
    assert '<a href="https://wk.example/alerts/a-1">Open alert</a>' in html
    assert "border-left:6px solid #d00000" in html
    assert "src=" not in html and "<link" not in html, "no external assets"


def test_html_escapes_everything_that_comes_from_checks() -> None:
    evil = alert(summary='<script>alert("x")</script> & more', labels={"a": "<b>"})
    _, html = parts(build_email(config(), message("alert.firing", {"alert": evil}), T0))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html


def test_a_resent_notification_has_the_same_message_id_and_one_alert_one_thread() -> None:
    firing = build_email(config(), message("alert.firing", {"alert": alert()}), T0)
    again = build_email(config(), message("alert.firing", {"alert": alert()}), T0 + timedelta(1))
    resolved = build_email(config(), message("alert.resolved", {"alert": alert()}), T0)
    assert firing["Message-ID"] == again["Message-ID"] != resolved["Message-ID"]
    assert firing["References"] == resolved["References"]


def test_a_grouped_email_lists_a_bounded_number_of_alerts() -> None:
    alerts = [alert(id=f"a-{i}", name=f"svc{i}") for i in range(25)]
    payload = {"alert": alerts[0], "alerts": alerts, "group": {"key": "g", "labels": {"t": "x"}}}
    mail = build_email(config(subject_prefix=""), message("alert.firing", payload), T0)
    assert mail["Subject"] == "25 alerts firing [critical]: t=x"
    assert "References" not in mail
    plain, html = parts(mail)
    assert "… and 15 more" in plain
    assert html.count("<li>") == 11


async def test_a_plain_smtp_server_receives_the_message_for_every_recipient(
    http: aiohttp.ClientSession,
) -> None:
    inbox = Inbox()
    async with smtp_server(inbox) as port:
        outcome = await channel(http, port).send(message("alert.firing", {"alert": alert()}))
    assert outcome.delivered, outcome.error
    [got] = inbox.received
    assert (got.sender, got.recipients) == (
        "wk@example.com",
        ["ops@example.com", "oncall@example.com"],
    )
    assert got.message["Subject"] == "[watchkeeper] FIRING [critical] db: connection refused"
    assert got.message["Message-ID"] == message_id("a-1:alert.firing", "example.com")
    assert got.message["X-Watchkeeper-Event"] == "alert.firing"
    plain, html = parts(got.message)
    assert "connection refused" in plain and "connection refused" in html
    assert not got.tls


async def test_starttls_with_a_private_ca_and_a_login(
    http: aiohttp.ClientSession, cert: Cert
) -> None:
    inbox = Inbox()
    tls = {"tls_context": cert.server_context, "require_starttls": True}
    async with smtp_server(inbox, authenticator=authenticator, **tls) as port:
        mail = channel(
            http,
            port,
            security="starttls",
            ca_file=str(cert.ca_file),
            username=USER,
            password=PASSWORD,
        )
        outcome = await mail.send(message("alert.firing", {"alert": alert()}))
    assert outcome.delivered, outcome.error
    [got] = inbox.received
    assert (got.tls, got.authenticated) == (True, True)
    assert mail.secrets() == [PASSWORD]


async def test_implicit_tls(http: aiohttp.ClientSession, cert: Cert) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, implicit_tls=cert.server_context) as port:
        mail = channel(http, port, security="tls", ca_file=str(cert.ca_file))
        outcome = await mail.send(message("alert.resolved", {"alert": alert()}))
    assert outcome.delivered, outcome.error
    assert [r.tls for r in inbox.received] == [True]


async def test_a_certificate_we_cannot_verify_is_not_sent_to(
    http: aiohttp.ClientSession, cert: Cert
) -> None:
    inbox = Inbox()
    async with smtp_server(inbox, tls_context=cert.server_context) as port:
        outcome = await channel(http, port, security="starttls").send(
            message("alert.firing", {"alert": alert()})
        )
    # Temporary: an expired or replaced certificate gets fixed, then the mail should go out.
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.error is not None and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert inbox.received == []


async def test_a_wrong_password_is_permanent(http: aiohttp.ClientSession, cert: Cert) -> None:
    inbox = Inbox()
    tls = {"tls_context": cert.server_context}
    async with smtp_server(inbox, authenticator=authenticator, **tls) as port:
        outcome = await channel(
            http,
            port,
            security="starttls",
            ca_file=str(cert.ca_file),
            username=USER,
            password="nope",
        ).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, False)
    assert outcome.error is not None and outcome.error.startswith(f"SMTP 535 from 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("reply", "retry"),
    [("550 5.1.1 No such user", False), ("450 4.2.0 Greylisted, try again later", True)],
)
async def test_refused_recipients_decide_by_the_reply_code(
    http: aiohttp.ClientSession, reply: str, retry: bool
) -> None:
    inbox = Inbox()
    inbox.replies = {"ops@example.com": reply, "oncall@example.com": reply}
    async with smtp_server(inbox) as port:
        outcome = await channel(http, port).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, retry)
    assert outcome.error is not None and "ops@example.com: " + reply[:3] in outcome.error


async def test_one_unknown_recipient_does_not_hold_back_the_others(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    inbox.replies = {"oncall@example.com": "550 5.1.1 No such user"}
    with caplog.at_level(logging.WARNING, "watchkeeper.notify"):
        async with smtp_server(inbox) as port:
            outcome = await channel(http, port).send(message("alert.firing", {"alert": alert()}))
    assert outcome.delivered
    assert [r.recipients for r in inbox.received] == [["ops@example.com"]]
    assert "oncall@example.com: 550" in caplog.text


async def test_a_greylisted_recipient_makes_the_whole_message_retry(
    http: aiohttp.ClientSession,
) -> None:
    inbox = Inbox()
    inbox.replies = {"oncall@example.com": "451 4.7.1 Try again later"}
    async with smtp_server(inbox) as port:
        outcome = await channel(http, port).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, True)


async def test_connection_refused_is_temporary(http: aiohttp.ClientSession) -> None:
    outcome = await channel(http, free_port()).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, True)


async def test_a_server_that_never_answers_times_out_temporarily(
    http: aiohttp.ClientSession,
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, then never send the 220 greeting

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await channel(http, port, timeout=0.3).send(
            message("alert.firing", {"alert": alert()})
        )
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.error is not None and "timed out" in outcome.error


def test_config_checks_addresses_credentials_and_defaults_the_port() -> None:
    assert config(security="starttls").effective_port == 587
    assert config(security="tls").effective_port == 465
    assert config(port=2525).effective_port == 2525
    with pytest.raises(ValueError, match="username"):
        config(username="only-me")
    with pytest.raises(ValueError, match="email address"):
        config(to=["not-an-address"])
    with pytest.raises(ValueError, match="email address"):
        config(from_addr="wk@example.com\nBcc: victim@example.com")
    with pytest.raises(ValueError):
        config(to=[])
