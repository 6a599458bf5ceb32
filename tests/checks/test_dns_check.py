"""The `dns` check against a tiny authoritative server for `test.example` on loopback."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from pydantic import ValidationError

from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks import dns as dns_check
from watchkeeper.checks.dns import DnsCheck, DnsCheckConfig, parse_nameserver, system_resolver
from watchkeeper.core.domain import Status

# (owner, type) → records in zone-file syntax.
ZONE: dict[tuple[str, str], list[str]] = {
    ("test.example.", "MX"): ["10 mail.test.example.", "20 backup.test.example."],
    ("test.example.", "TXT"): ['"v=spf1 " "-all"', '"site-verification=AbC123"'],
    ("test.example.", "NS"): ["ns1.test.example."],
    ("test.example.", "SOA"): ["ns1.test.example. hostmaster.test.example. 2024 3600 600 86400 60"],
    ("www.test.example.", "A"): ["10.0.0.1", "10.0.0.2"],
    ("www.test.example.", "AAAA"): ["2001:db8::1"],
    ("alias.test.example.", "CNAME"): ["www.test.example."],
    ("1.0.0.10.in-addr.arpa.", "PTR"): ["www.test.example."],
}
SERVFAIL_NAME = "broken.test.example."


def answer(query: dns.message.Message) -> dns.message.Message:
    """Answer like an authoritative server: follow in-zone CNAMEs, NXDOMAIN for unknown names."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    name, rdtype = question.name, dns.rdatatype.to_text(question.rdtype)
    if name.to_text() == SERVFAIL_NAME:
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    while True:
        owner = name.to_text()
        if not any(key[0] == owner for key in ZONE):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        if (owner, rdtype) in ZONE:
            response.answer.append(
                dns.rrset.from_text(owner, 300, "IN", rdtype, *ZONE[owner, rdtype])
            )
            return response
        cname = ZONE.get((owner, "CNAME"))
        if cname is None:
            return response  # NOERROR, no records of that type
        response.answer.append(dns.rrset.from_text(owner, 300, "IN", "CNAME", *cname))
        name = dns.name.from_text(cname[0])


class Authority(asyncio.DatagramProtocol):
    """UDP side of the test server; `silent` makes it drop every query."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.queries: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.queries.append(query.question[0].to_text())
        if not self.silent and self.transport is not None:
            self.transport.sendto(answer(query).to_wire(), addr)


async def serve_udp(*, silent: bool = False) -> tuple[asyncio.DatagramTransport, Authority]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Authority(silent=silent), local_addr=("127.0.0.1", 0)
    )
    return transport, protocol


@pytest.fixture
async def authority() -> AsyncIterator[tuple[int, Authority]]:
    transport, protocol = await serve_udp()
    yield transport.get_extra_info("sockname")[1], protocol
    transport.close()


@pytest.fixture
async def port(authority: tuple[int, Authority]) -> int:
    return authority[0]


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    transport, _ = await serve_udp(silent=True)
    yield transport.get_extra_info("sockname")[1]
    transport.close()


@pytest.fixture
async def tcp_port() -> AsyncIterator[int]:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # DNS over TCP: each message is preceded by its length as two bytes.
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        wire = answer(dns.message.from_wire(await reader.readexactly(size))).to_wire()
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., DnsCheck]:
    def make(**fields: Any) -> DnsCheck:
        # A short timeout so that a failing test fails fast.
        config = DnsCheckConfig.model_validate(
            {"name": "dns", "type": "dns", "timeout": "2s", **fields}
        )
        return DnsCheck(config, context)

    return make


async def test_a_name_that_resolves_is_up_with_its_answer_in_the_reason(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    result = await make_check(query="www.test.example", nameserver=f"127.0.0.1:{port}").run()

    assert result.status is Status.UP
    assert re.fullmatch(
        r"A www\.test\.example → 10\.0\.0\.1, 10\.0\.0\.2 \(\d+(\.\d)? ms\)", result.reason
    )
    assert result.metrics["dns.answer_count"] == 2
    assert result.metrics["dns.response_seconds"] == result.response_time
    assert result.details["answers"] == ["10.0.0.1", "10.0.0.2"]
    assert result.details["ttl"] == 300
    assert result.details["nameserver"] == f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("query", "record_type", "expect"),
    [
        ("www.test.example", "A", ["10.0.0.2"]),
        ("www.test.example", "AAAA", ["2001:DB8:0::1"]),
        ("test.example", "MX", ["10 MAIL.test.example.", "20 backup.test.example"]),
        ("test.example", "TXT", ["v=spf1 -all", "site-verification=AbC123"]),
        ("test.example", "NS", ["NS1.Test.Example."]),
        (
            "test.example",
            "SOA",
            ["ns1.test.example hostmaster.test.example. 2024 3600 600 86400 60"],
        ),
        ("alias.test.example", "CNAME", ["www.test.example."]),
        ("alias.test.example", "A", ["10.0.0.1"]),
        ("10.0.0.1", "PTR", ["www.test.example"]),
        ("1.0.0.10.in-addr.arpa", "PTR", ["www.test.example"]),
    ],
)
async def test_expected_values_are_compared_in_normalised_form(
    make_check: Callable[..., DnsCheck],
    port: int,
    query: str,
    record_type: str,
    expect: list[str],
) -> None:
    check = make_check(
        query=query, record_type=record_type, expect=expect, nameserver=f"127.0.0.1:{port}"
    )

    result = await check.run()

    assert result.status is Status.UP, result.reason


async def test_mx_and_txt_answers_read_as_documented_in_a_stable_order(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    ns = f"127.0.0.1:{port}"

    mx = await make_check(query="test.example", record_type="MX", nameserver=ns).run()
    txt = await make_check(query="test.example", record_type="TXT", nameserver=ns).run()

    assert mx.details["answers"] == ["10 mail.test.example", "20 backup.test.example"]
    assert txt.details["answers"] == ["site-verification=AbC123", "v=spf1 -all"]


async def test_a_missing_expected_value_is_down_showing_what_was_got(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    check = make_check(
        query="www.test.example", expect=["10.0.0.1", "10.0.0.9"], nameserver=f"127.0.0.1:{port}"
    )

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "expected 10.0.0.9, got 10.0.0.1, 10.0.0.2"


async def test_txt_values_are_compared_case_sensitively(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    check = make_check(
        query="test.example",
        record_type="TXT",
        expect=["site-verification=abc123"],
        nameserver=f"127.0.0.1:{port}",
    )

    assert (await check.run()).status is Status.DOWN


async def test_a_name_that_does_not_exist_is_down_with_nxdomain(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    result = await make_check(query="nope.test.example", nameserver=f"127.0.0.1:{port}").run()

    assert result.status is Status.DOWN
    assert result.reason == "NXDOMAIN for nope.test.example"
    assert result.metrics["dns.answer_count"] == 0


async def test_a_name_without_records_of_the_type_is_down_with_no_answer(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    check = make_check(query="www.test.example", record_type="MX", nameserver=f"127.0.0.1:{port}")

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason.startswith("no MX answer for www.test.example (")


async def test_expect_rcode_nxdomain_is_up_when_the_name_is_gone(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    check = make_check(
        query="old.test.example", expect_rcode="NXDOMAIN", nameserver=f"127.0.0.1:{port}"
    )

    result = await check.run()

    assert result.status is Status.UP
    assert result.reason.startswith("NXDOMAIN for old.test.example as expected")


async def test_expect_rcode_nxdomain_is_down_when_the_name_still_exists(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    check = make_check(
        query="www.test.example", expect_rcode="NXDOMAIN", nameserver=f"127.0.0.1:{port}"
    )

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "expected NXDOMAIN for www.test.example, got 10.0.0.1, 10.0.0.2"


async def test_expect_rcode_noerror_accepts_an_existing_name_without_records_of_the_type(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    check = make_check(
        query="www.test.example",
        record_type="TXT",
        expect_rcode="NOERROR",
        nameserver=f"127.0.0.1:{port}",
    )

    assert (await check.run()).status is Status.UP


async def test_a_server_failure_is_down_saying_what_the_server_answered(
    make_check: Callable[..., DnsCheck], port: int
) -> None:
    result = await make_check(query=SERVFAIL_NAME, nameserver=f"127.0.0.1:{port}").run()

    assert result.status is Status.DOWN
    assert result.reason.startswith("no nameserver answered A broken.test.example: ")
    assert "SERVFAIL" in result.reason


async def test_a_nameserver_that_never_answers_times_out(
    make_check: Callable[..., DnsCheck], silent_port: int
) -> None:
    check = make_check(
        query="www.test.example", nameserver=f"127.0.0.1:{silent_port}", timeout="200ms"
    )

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "timed out after 200ms resolving A www.test.example"


async def test_queries_can_go_over_tcp(make_check: Callable[..., DnsCheck], tcp_port: int) -> None:
    check = make_check(
        query="www.test.example", expect=["10.0.0.1"], tcp=True, nameserver=f"127.0.0.1:{tcp_port}"
    )

    result = await check.run()

    assert result.status is Status.UP, result.reason


async def test_the_query_name_is_absolute_and_asked_once(
    make_check: Callable[..., DnsCheck], authority: tuple[int, Authority]
) -> None:
    port, server = authority

    await make_check(query="www.test.example", nameserver=f"127.0.0.1:{port}").run()

    assert server.queries == ["www.test.example. IN A"]


async def test_without_a_system_resolver_configuration_the_result_is_unknown(
    make_check: Callable[..., DnsCheck], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "resolv.conf"
    monkeypatch.setattr(dns_check, "RESOLV_CONF", str(missing))

    result = await make_check(query="www.test.example").run()

    assert result.status is Status.UNKNOWN
    assert result.reason == f"no system resolver configured in {missing}"


def test_the_system_resolver_is_read_from_resolv_conf(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.9\nnameserver ::1\n")
    monkeypatch.setattr(dns_check, "RESOLV_CONF", str(conf))

    assert [str(ns) for ns in system_resolver().nameservers] == ["127.0.0.9", "::1"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("2001:DB8::53", ("2001:db8::53", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
    ],
)
def test_nameservers_are_ip_with_an_optional_port(text: str, parsed: tuple[str, int]) -> None:
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize(
    "fields",
    [
        {"nameserver": "dns.google"},
        {"nameserver": "127.0.0.1:0"},
        {"nameserver": "127.0.0.1:dns"},
        {"nameserver": "[::1]:"},
        {"nameserver": "[::1"},
        {"record_type": "SRV"},
        {"expect": []},
        {"expect": ["2001:db8::1"]},
        {"expect": ["not-an-ip"]},
        {"record_type": "AAAA", "expect": ["10.0.0.1"]},
        {"record_type": "MX", "expect": ["mail.test.example"]},
        {"record_type": "SOA", "expect": ["ns1.test.example"]},
        {"expect": ["10.0.0.1"], "expect_rcode": "NXDOMAIN"},
        {"expect_rcode": "SERVFAIL"},
        {"query": "a..b"},
        {"query": "x" * 64 + ".example"},
        {"lifetime": "5s"},
    ],
)
def test_invalid_config_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DnsCheckConfig.model_validate(
            {"name": "dns", "type": "dns", "query": "www.test.example", **fields}
        )


def test_the_dns_type_is_registered(context: CheckContext) -> None:
    config = DnsCheckConfig.model_validate({"name": "dns", "type": "dns", "query": "example.com"})

    assert isinstance(build_check(config, context), DnsCheck)
