"""`icmp`: the host answers ICMP echo (ping), with acceptable loss and round-trip time.

Sending ICMP needs either unprivileged ICMP ("ping") sockets, which Linux allows to the groups in
`net.ipv4.ping_group_range`, or a raw socket, which needs root or CAP_NET_RAW. Every run tries
the unprivileged kind first and falls back to a raw socket; both attempts fail at socket
creation, before any packet is sent, so the fallback never doubles the traffic. When neither is
allowed the result is UNKNOWN with what to enable, not DOWN: the host may well be fine.

The check's timeout covers the whole run. Unless `packet_timeout` is set, the wait for each
reply is what remains of it after the pauses between packets, shared out over the packets, so
a host that never answers is reported as lost packets rather than as a timeout.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal, Self

import icmplib
from icmplib.exceptions import ICMPSocketError, NameLookupError, SocketPermissionError
from pydantic import Field, model_validator

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.durations import ProbeTime, format_duration

NOT_PERMITTED = (
    "ICMP not permitted: allow unprivileged ping with sysctl "
    'net.ipv4.ping_group_range="0 2147483647" or run with CAP_NET_RAW'
)

# Share of the timeout handed to the reply waits; the rest absorbs name resolution and
# scheduling so that a run in which every packet is lost still finishes inside the timeout.
_REPLY_BUDGET = 0.9
_MIN_PACKET_TIMEOUT = 0.05


class IcmpCheckConfig(CheckConfigBase):
    """Config of an `icmp` check. Loss and RTT levels trip when reached (at or above)."""

    type: Literal["icmp"]
    host: str = Field(min_length=1)
    """IP address or host name (resolved by the system resolver)."""
    count: int = Field(default=3, ge=1, le=100)
    packet_interval: ProbeTime = timedelta(milliseconds=200)
    """Pause between sending one packet's reply (or its loss) and the next packet."""
    packet_timeout: ProbeTime | None = None
    """How long to wait for each reply; None shares the check timeout out over the packets."""
    ip_version: Literal[4, 6] | None = None
    """Address family used when `host` is a name; None prefers IPv4."""
    warn_loss: float | None = Field(default=20, gt=0, le=100)
    """Packet loss percentage that makes the result DEGRADED."""
    crit_loss: float = Field(default=100, gt=0, le=100)
    """Packet loss percentage that makes the result DOWN (100% loss always does)."""
    warn_rtt: ProbeTime | None = None
    """Average round-trip time that makes the result DEGRADED."""
    crit_rtt: ProbeTime | None = None
    """Average round-trip time that makes the result DOWN."""

    @model_validator(mode="after")
    def _crit_not_below_warn(self) -> Self:
        if self.warn_loss is not None and self.crit_loss < self.warn_loss:
            raise ValueError(f"crit_loss ({self.crit_loss:g}) must be >= warn_loss")
        if (
            self.warn_rtt is not None
            and self.crit_rtt is not None
            and self.crit_rtt < self.warn_rtt
        ):
            raise ValueError("crit_rtt must be >= warn_rtt")
        return self


@register
class IcmpCheck(Check[IcmpCheckConfig]):
    """Pings `host` `count` times and grades loss and average round-trip time."""

    type = "icmp"
    config_model = IcmpCheckConfig

    def __init__(self, config: IcmpCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._timeout_text = format_duration(config.timeout)

    def packet_timeout(self) -> float:
        """Seconds to wait for each reply (see the module docstring)."""
        cfg = self.config
        if cfg.packet_timeout is not None:
            return cfg.packet_timeout.total_seconds()
        pauses = (cfg.count - 1) * cfg.packet_interval.total_seconds()
        budget = cfg.timeout.total_seconds() * _REPLY_BUDGET - pauses
        return max(budget / cfg.count, _MIN_PACKET_TIMEOUT)

    async def run(self) -> CheckResult:
        cfg = self.config
        ping_args: dict[str, Any] = {
            "count": cfg.count,
            "interval": cfg.packet_interval.total_seconds(),
            "timeout": self.packet_timeout(),
            "family": cfg.ip_version,
        }
        details: dict[str, Any] = {"host": cfg.host}
        deadline = asyncio.timeout(cfg.timeout.total_seconds())
        try:
            async with deadline:
                try:
                    host = await icmplib.async_ping(cfg.host, privileged=False, **ping_args)
                    details["privileged"] = False
                except SocketPermissionError:
                    # Ping sockets not granted to our group; a raw socket works as root or with
                    # CAP_NET_RAW, which is cheaper to try than to detect.
                    host = await icmplib.async_ping(cfg.host, privileged=True, **ping_args)
                    details["privileged"] = True
        except SocketPermissionError:
            return CheckResult.unknown(NOT_PERMITTED, details=details)
        except NameLookupError:
            return CheckResult.down(f"cannot resolve {cfg.host}", details=details)
        except ICMPSocketError as exc:
            return CheckResult.unknown(f"cannot open ICMP socket: {exc}", details=details)
        except TimeoutError:
            if not deadline.expired():
                raise
            return CheckResult.down(
                f"timed out after {self._timeout_text} pinging {cfg.host}", details=details
            )
        return self._grade(host, details)

    def _grade(self, host: Any, details: dict[str, Any]) -> CheckResult:
        cfg = self.config
        sent: int = host.packets_sent
        rtts: list[float] = [rtt / 1000 for rtt in host.rtts]  # icmplib measures in ms
        received = len(rtts)
        lost = cfg.count - received  # packets that could not even be sent are lost too
        loss = 100.0 * lost / cfg.count
        details.update(address=host.address, sent=sent, received=received)
        metrics = {"icmp.loss_percent": loss}
        if not rtts:
            if sent == 0:
                reason = f"could not send to {cfg.host} ({lost}/{cfg.count} lost)"
            else:
                reason = f"no reply from {cfg.host} ({lost}/{cfg.count} lost)"
            return CheckResult.down(reason, metrics=metrics, details=details)

        avg, peak = sum(rtts) / received, max(rtts)
        metrics.update({"icmp.rtt_avg_seconds": avg, "icmp.rtt_max_seconds": peak})
        details["rtts"] = rtts
        summary = (
            f"{received}/{cfg.count} replies from {cfg.host}, rtt avg {_ms(avg)}, max {_ms(peak)}"
        )
        status, problems = Status.UP, []
        if loss >= cfg.crit_loss:
            status = Status.DOWN
            problems.append(f"{loss:.0f}% loss ≥ {cfg.crit_loss:g}%")
        elif cfg.warn_loss is not None and loss >= cfg.warn_loss:
            status = Status.DEGRADED
            problems.append(f"{loss:.0f}% loss ≥ {cfg.warn_loss:g}%")
        if cfg.crit_rtt is not None and avg >= cfg.crit_rtt.total_seconds():
            status = Status.DOWN
            problems.append(f"rtt avg {_ms(avg)} ≥ {format_duration(cfg.crit_rtt)}")
        elif cfg.warn_rtt is not None and avg >= cfg.warn_rtt.total_seconds():
            if status is Status.UP:
                status = Status.DEGRADED
            problems.append(f"rtt avg {_ms(avg)} ≥ {format_duration(cfg.warn_rtt)}")
        reason = "; ".join([*problems, summary]) if problems else summary
        return CheckResult(status, reason, response_time=avg, metrics=metrics, details=details)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.0f} ms"


__all__ = ["NOT_PERMITTED", "IcmpCheck", "IcmpCheckConfig"]
