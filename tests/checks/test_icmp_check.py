"""The `icmp` check: real pings to loopback, socket permissions, loss and RTT grading.

Only loopback is ever pinged (no traffic may leave the machine); every 127.0.0.0/8 address
answers, so lost packets come from a stand-in for `icmplib.async_ping`.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

import icmplib
import pytest
from icmplib.exceptions import NameLookupError
from icmplib.sockets import ICMPv4Socket
from pydantic import ValidationError

from tests.support.required import unavailable
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.icmp import NOT_PERMITTED, IcmpCheck, IcmpCheckConfig
from watchkeeper.core.domain import Status


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., IcmpCheck]:
    def make(**fields: Any) -> IcmpCheck:
        config = IcmpCheckConfig.model_validate(
            {"name": "gw", "type": "icmp", "host": "127.0.0.1", **fields}
        )
        return IcmpCheck(config, context)

    return make


def fake_ping(
    rtts_ms: list[float], sent: int = 3, calls: list[dict[str, Any]] | None = None
) -> Any:
    """A stand-in for `icmplib.async_ping` returning a Host with these round-trip times."""

    async def ping(address: str, **kwargs: Any) -> icmplib.Host:
        if calls is not None:
            calls.append({"address": address, **kwargs})
        return icmplib.Host(address, sent, list(rtts_ms))

    return ping


def deny_sockets(monkeypatch: pytest.MonkeyPatch, *denied: int) -> list[int]:
    """Make creating ICMP sockets of the `denied` kinds fail as the kernel would (EPERM).

    Goes through icmplib's own error translation; returns the kinds asked for, in order.
    """
    requested: list[int] = []
    create = ICMPv4Socket._create_socket

    def create_socket(self: ICMPv4Socket, kind: int) -> socket.socket:
        requested.append(kind)
        if kind in denied:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return create(self, kind)  # type: ignore[no-any-return]

    monkeypatch.setattr(ICMPv4Socket, "_create_socket", create_socket)
    return requested


async def test_pinging_loopback_is_up_with_rtt_metrics(
    make_check: Callable[..., IcmpCheck],
) -> None:
    result = await make_check(count=2, packet_interval="10ms").run()

    if result.reason == NOT_PERMITTED:
        unavailable("this machine allows neither ping sockets nor raw sockets")
    assert result.status is Status.UP
    assert result.reason.startswith("2/2 replies from 127.0.0.1, rtt avg ")
    assert result.metrics["icmp.loss_percent"] == 0
    assert 0 < result.metrics["icmp.rtt_avg_seconds"] <= result.metrics["icmp.rtt_max_seconds"]
    assert result.response_time == result.metrics["icmp.rtt_avg_seconds"]
    assert result.details["received"] == 2


async def test_unprivileged_sockets_are_tried_first_then_raw_ones(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = deny_sockets(monkeypatch, socket.SOCK_DGRAM)

    result = await make_check(count=1).run()

    if result.reason == NOT_PERMITTED:
        unavailable("raw ICMP sockets need root or CAP_NET_RAW")
    assert requested == [socket.SOCK_DGRAM, socket.SOCK_RAW]
    assert result.status is Status.UP
    assert result.details["privileged"] is True


async def test_when_no_icmp_socket_is_permitted_the_result_is_unknown_and_says_what_to_enable(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    requested = deny_sockets(monkeypatch, socket.SOCK_DGRAM, socket.SOCK_RAW)

    result = await make_check().run()

    assert requested == [socket.SOCK_DGRAM, socket.SOCK_RAW]
    assert result.status is Status.UNKNOWN
    assert result.reason == (
        "ICMP not permitted: allow unprivileged ping with sysctl "
        'net.ipv4.ping_group_range="0 2147483647" or run with CAP_NET_RAW'
    )


async def test_unprivileged_ping_is_used_when_permitted(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([0.1, 0.1, 0.1], calls=calls))

    result = await make_check().run()

    assert [c["privileged"] for c in calls] == [False]
    assert result.details["privileged"] is False


async def test_total_loss_is_down(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([]))

    result = await make_check().run()

    assert result.status is Status.DOWN
    assert result.reason == "no reply from 127.0.0.1 (3/3 lost)"
    assert result.metrics == {"icmp.loss_percent": 100.0}


async def test_packets_that_could_not_be_sent_count_as_lost(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([], sent=0))

    result = await make_check().run()

    assert result.status is Status.DOWN
    assert result.reason == "could not send to 127.0.0.1 (3/3 lost)"


async def test_loss_at_the_warning_level_is_degraded(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([1.0, 3.0]))

    result = await make_check().run()

    assert result.status is Status.DEGRADED
    assert result.reason == (
        "33% loss ≥ 20%; 2/3 replies from 127.0.0.1, rtt avg 2.00 ms, max 3.00 ms"
    )
    assert result.metrics["icmp.loss_percent"] == pytest.approx(100 / 3)
    assert result.metrics["icmp.rtt_avg_seconds"] == pytest.approx(0.002)
    assert result.metrics["icmp.rtt_max_seconds"] == pytest.approx(0.003)


async def test_loss_at_the_critical_level_is_down(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([1.0]))

    result = await make_check(warn_loss=None, crit_loss=50).run()

    assert result.status is Status.DOWN
    assert result.reason.startswith("67% loss ≥ 50%; 1/3 replies")


@pytest.mark.parametrize(
    ("fields", "status", "problem"),
    [
        ({"warn_rtt": "40ms"}, Status.DEGRADED, "rtt avg 60 ms ≥ 40ms"),
        ({"warn_rtt": "40ms", "crit_rtt": "55ms"}, Status.DOWN, "rtt avg 60 ms ≥ 55ms"),
        ({"warn_rtt": "61ms"}, Status.UP, None),
    ],
)
async def test_the_average_rtt_is_graded_against_its_levels(
    make_check: Callable[..., IcmpCheck],
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, Any],
    status: Status,
    problem: str | None,
) -> None:
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([50.0, 60.0, 70.0]))

    result = await make_check(**fields).run()

    assert result.status is status
    if problem is None:
        assert result.reason.startswith("3/3 replies")
    else:
        assert result.reason.startswith(problem + "; 3/3 replies")


async def test_the_reply_wait_shares_the_timeout_out_over_the_packets(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(icmplib, "async_ping", fake_ping([1.0] * 4, sent=4, calls=calls))

    await make_check(count=4, packet_interval="100ms", timeout="2s", ip_version=6).run()

    (call,) = calls
    assert call["count"] == 4
    assert call["interval"] == pytest.approx(0.1)
    assert call["timeout"] == pytest.approx((2 * 0.9 - 3 * 0.1) / 4)
    assert call["family"] == 6


def test_an_explicit_packet_timeout_is_used_as_given(make_check: Callable[..., IcmpCheck]) -> None:
    assert make_check(packet_timeout="750ms").packet_timeout() == pytest.approx(0.75)


async def test_a_ping_that_outlives_the_timeout_is_down(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hanging_ping(address: str, **kwargs: Any) -> icmplib.Host:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(icmplib, "async_ping", hanging_ping)

    result = await make_check(timeout="100ms").run()

    assert result.status is Status.DOWN
    assert result.reason == "timed out after 100ms pinging 127.0.0.1"


async def test_a_host_name_that_does_not_resolve_is_down(
    make_check: Callable[..., IcmpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_lookup(address: str, **kwargs: Any) -> icmplib.Host:
        raise NameLookupError(address)

    monkeypatch.setattr(icmplib, "async_ping", failing_lookup)

    result = await make_check(host="nosuch.invalid").run()

    assert result.status is Status.DOWN
    assert result.reason == "cannot resolve nosuch.invalid"


@pytest.mark.parametrize(
    "fields",
    [
        {"count": 0},
        {"count": 101},
        {"warn_loss": 50, "crit_loss": 20},
        {"warn_loss": 0},
        {"crit_loss": 101},
        {"warn_rtt": "0s"},
        {"warn_rtt": "100ms", "crit_rtt": "50ms"},
        {"ip_version": 5},
        {"interval_ms": 200},
        {"host": ""},
    ],
)
def test_invalid_config_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IcmpCheckConfig.model_validate({"name": "gw", "type": "icmp", "host": "h", **fields})


def test_the_icmp_type_is_registered(context: CheckContext) -> None:
    config = IcmpCheckConfig.model_validate({"name": "gw", "type": "icmp", "host": "127.0.0.1"})

    assert isinstance(build_check(config, context), IcmpCheck)
