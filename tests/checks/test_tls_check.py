"""The `tls` check against real TLS servers on loopback, with certificates made per test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.support.certs import (
    SLACK,
    Issued,
    make_ca,
    make_cert,
    server_context,
    tls_server,
)
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.tls import TlsCheck, TlsCheckConfig
from watchkeeper.core.domain import CheckResult, Status

Probe = Callable[..., Any]


def _config(**fields: Any) -> TlsCheckConfig:
    return TlsCheckConfig.model_validate(
        {"name": "cert", "type": "tls", "host": "127.0.0.1", **fields}
    )


@pytest.fixture
def probe(context: CheckContext, tmp_path: Path) -> Probe:
    """Serve `leaf` (plus `chain`) over TLS on loopback and run one tls check against it."""

    async def run(leaf: Issued, chain: tuple[Issued, ...] = (), **fields: Any) -> CheckResult:
        async with tls_server(server_context(tmp_path, leaf, chain)) as port:
            check = TlsCheck(_config(port=port, **fields), context)
            return await check.run()

    return run


@pytest.fixture
def ca() -> Issued:
    return make_ca()


@pytest.fixture
def ca_file(ca: Issued, tmp_path: Path) -> str:
    return str(ca.write_cert(tmp_path / "ca.pem"))


@pytest.fixture
def expiring_self_signed() -> Issued:
    """A self-signed certificate for 127.0.0.1 that expires in 5 days."""
    return make_cert("127.0.0.1", sans=["127.0.0.1"], expires_in=timedelta(days=5) + SLACK)


def _date(cert: Issued) -> str:
    return cert.cert.not_valid_after_utc.date().isoformat()


# --- the acceptance scenario: a self-signed certificate expiring in 5 days ---------------------


async def test_a_self_signed_cert_expiring_in_5_days_is_degraded_unverified_within_warn_days(
    probe: Probe, expiring_self_signed: Issued
) -> None:
    result = await probe(expiring_self_signed, verify=False, warn_days=14, crit_days=3)

    assert result.status is Status.DEGRADED
    assert result.reason == (
        f"certificate expires in 5 days (on {_date(expiring_self_signed)}; warning at 14 days)"
    )
    assert 5 < result.metrics["tls.days_left"] < 5.1
    assert result.details["self_signed"] is True
    assert result.details["verified"] is False
    assert result.details["verify_error"].endswith(" is self-signed")


async def test_a_self_signed_cert_expiring_in_5_days_is_down_unverified_within_crit_days(
    probe: Probe, expiring_self_signed: Issued
) -> None:
    result = await probe(expiring_self_signed, verify=False, warn_days=14, crit_days=7)

    assert result.status is Status.DOWN
    assert result.reason == (
        f"certificate expires in 5 days (on {_date(expiring_self_signed)}; critical at 7 days)"
    )


async def test_a_self_signed_cert_is_down_as_self_signed_when_verified(
    context: CheckContext, tmp_path: Path, expiring_self_signed: Issued
) -> None:
    async with tls_server(server_context(tmp_path, expiring_self_signed)) as port:
        result = await TlsCheck(_config(port=port, verify=True), context).run()

    assert result.status is Status.DOWN
    assert result.reason == f"certificate for 127.0.0.1:{port} is self-signed"
    # What the certificate is still shows, so the operator sees what to replace.
    assert result.details["subject"] == "CN=127.0.0.1"
    assert 5 < result.metrics["tls.days_left"] < 5.1


# --- verified chains ---------------------------------------------------------------------------


async def test_a_cert_from_the_ca_in_ca_file_is_up_with_days_left_and_details(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert(
        "localhost",
        sans=["localhost", "127.0.0.1"],
        issuer=ca,
        expires_in=timedelta(days=45) + SLACK,
    )

    result = await probe(leaf, (ca,), ca_file=ca_file)

    assert result.status is Status.UP, result.reason
    assert result.reason == f"certificate valid for 45 days (until {_date(leaf)})"
    assert 45 < result.metrics["tls.days_left"] < 45.1
    # The CA outlives the leaf, so the leaf is the earliest expiry of the chain.
    assert result.metrics["tls.chain_days_left"] == result.metrics["tls.days_left"]
    assert result.metrics["tls.handshake_seconds"] > 0
    assert result.response_time is not None
    assert result.response_time >= result.metrics["tls.handshake_seconds"]
    assert result.details == {
        "subject": "CN=localhost",
        "issuer": "CN=Watchkeeper Test CA",
        "not_before": leaf.cert.not_valid_before_utc.isoformat(),
        "not_after": leaf.cert.not_valid_after_utc.isoformat(),
        "sans": ["localhost", "127.0.0.1"],
        "self_signed": False,
        "verified": True,
        "chain_not_after": leaf.cert.not_valid_after_utc.isoformat(),
        "chain_length": 2,
        "chain_source": "verified",
    }


async def test_an_intermediate_expiring_first_sets_chain_days_left_and_the_status(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    intermediate = make_cert(
        "Test Intermediate", issuer=ca, is_ca=True, expires_in=timedelta(days=10) + SLACK
    )
    leaf = make_cert("127.0.0.1", sans=["127.0.0.1"], issuer=intermediate)

    result = await probe(leaf, (intermediate,), ca_file=ca_file)

    assert result.status is Status.DEGRADED
    assert result.reason == (
        f"chain certificate CN=Test Intermediate expires in 10 days"
        f" (on {_date(intermediate)}; warning at 14 days)"
    )
    assert 89 < result.metrics["tls.days_left"] < 91
    assert 10 < result.metrics["tls.chain_days_left"] < 10.1
    assert result.details["chain_length"] == 3


async def test_a_cert_for_another_name_is_down_as_a_hostname_mismatch(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert("example.org", sans=["example.org"], issuer=ca)

    result = await probe(leaf, ca_file=ca_file, server_name="api.local")

    assert result.status is Status.DOWN
    assert result.reason == "hostname mismatch: certificate is for example.org, not api.local"


async def test_the_host_is_the_name_verified_by_default(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert("example.org", sans=["example.org", "www.example.org"], issuer=ca)

    result = await probe(leaf, ca_file=ca_file)

    assert result.reason == (
        "hostname mismatch: certificate is for example.org, www.example.org, not 127.0.0.1"
    )


async def test_server_name_is_sent_and_verified_instead_of_the_host(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert("api.local", sans=["api.local"], issuer=ca)

    result = await probe(leaf, ca_file=ca_file, server_name="api.local")

    assert result.status is Status.UP, result.reason


async def test_an_expired_cert_is_down_with_how_long_ago_it_expired(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert(
        "127.0.0.1",
        sans=["127.0.0.1"],
        issuer=ca,
        valid_since=timedelta(days=90),
        expires_in=-(timedelta(days=3) + SLACK),
    )

    verified = await probe(leaf, ca_file=ca_file)
    unverified = await probe(leaf, verify=False)

    expected = f"certificate expired 3 days ago (on {_date(leaf)})"
    assert (verified.status, verified.reason) == (Status.DOWN, expected)
    assert (unverified.status, unverified.reason) == (Status.DOWN, expected)
    assert -3.1 < verified.metrics["tls.days_left"] < -3


@pytest.mark.parametrize("send_ca", [False, True], ids=["leaf-only", "with-root"])
async def test_a_cert_from_an_unknown_ca_is_down_naming_the_ca(
    probe: Probe, ca: Issued, send_ca: bool
) -> None:
    leaf = make_cert("127.0.0.1", sans=["127.0.0.1"], issuer=ca)

    # No ca_file: the system store does not know the test CA, sent along or not.
    result = await probe(leaf, (ca,) if send_ca else ())

    assert result.status is Status.DOWN
    assert result.reason.endswith(" is issued by an unknown CA (CN=Watchkeeper Test CA)")


async def test_a_cert_not_valid_yet_is_down_saying_from_when(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert("127.0.0.1", sans=["127.0.0.1"], issuer=ca, valid_since=-timedelta(days=2))

    result = await probe(leaf, ca_file=ca_file)

    assert result.status is Status.DOWN
    assert result.reason.endswith(
        f" is not valid before {leaf.cert.not_valid_before_utc.isoformat()}"
    )


async def test_verification_problems_are_details_not_failures_when_verify_is_false(
    probe: Probe, ca: Issued, ca_file: str
) -> None:
    leaf = make_cert("example.org", sans=["example.org"], issuer=ca)

    result = await probe(leaf, ca_file=ca_file, verify=False)

    assert result.status is Status.UP
    assert result.reason.startswith("certificate valid for 89 days")
    assert result.details["verified"] is False
    assert result.details["verify_error"] == (
        "hostname mismatch: certificate is for example.org, not 127.0.0.1"
    )


# --- failures before any certificate -----------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def plain_server() -> AsyncIterator[Callable[[bytes | None], Any]]:
    """Start a plain-TCP server that sends `greeting` (or stays silent) and holds the line."""
    servers: list[asyncio.Server] = []
    release = asyncio.Event()

    async def start(greeting: bytes | None) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if greeting is not None:
                writer.write(greeting)
                await writer.drain()
            await release.wait()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    release.set()
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_a_closed_port_is_down_as_a_connection_failure(
    context: CheckContext, closed_port: int
) -> None:
    result = await TlsCheck(_config(port=closed_port), context).run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"connect to 127.0.0.1:{closed_port} failed: ")


async def test_a_server_that_never_answers_the_handshake_times_out(
    context: CheckContext, plain_server: Callable[[bytes | None], Any]
) -> None:
    port = await plain_server(None)

    result = await TlsCheck(_config(port=port, timeout="200ms"), context).run()

    assert result.status is Status.DOWN
    assert result.reason == f"TLS handshake with 127.0.0.1:{port} timed out after 200ms"


async def test_a_server_not_speaking_tls_fails_the_handshake(
    context: CheckContext, plain_server: Callable[[bytes | None], Any]
) -> None:
    port = await plain_server(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    result = await TlsCheck(_config(port=port), context).run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"TLS handshake with 127.0.0.1:{port} failed: ")
    assert "_ssl.c" not in result.reason


# --- config ----------------------------------------------------------------------------------


def test_config_defaults_are_port_443_warn_14_crit_7_and_verification() -> None:
    config = _config()

    assert (config.port, config.warn_days, config.crit_days) == (443, 14, 7)
    assert config.verify is True
    assert config.server_name is None
    assert config.ca_file is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"warn_days": 5, "crit_days": 7}, "crit_days (7) must not be greater than warn_days (5)"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file '/nonexistent/ca.pem' does not exist"),
        ({"port": 0}, "greater than or equal to 1"),
        ({"host": ""}, "at least 1 character"),
        ({"server_name": "a b"}, "must not contain spaces"),
        ({"warn_days": -1}, "greater than or equal to 0"),
        ({"sni": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_config_is_rejected_with_a_clear_message(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _config(**fields)

    assert message in str(caught.value)


def test_a_ca_file_without_certificates_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")

    with pytest.raises(ValidationError, match="holds no usable PEM certificates"):
        _config(ca_file=str(bogus))


def test_the_tls_type_is_registered(context: CheckContext) -> None:
    assert isinstance(build_check(_config(), context), TlsCheck)
