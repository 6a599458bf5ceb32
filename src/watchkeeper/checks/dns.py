"""`dns`: a name resolves (to expected values) within the timeout.

Queries go through dnspython's asyncio stub resolver, either to one configured nameserver or
to the system's (`/etc/resolv.conf`, re-read on every run so a changed resolver is picked up
without a restart). Names are always absolute: no search domains are appended, so a check means
the same thing on every host.

Answers are compared with `expect` in a normalised text form, the same one used in reasons:

- A / AAAA: the canonical address (`2001:db8::1`, never `2001:DB8:0::1`)
- CNAME / NS / PTR: the target name, lower-case, without the trailing dot
- MX: `"<preference> <exchange>"`, e.g. `10 mail.example.com`
- TXT: the character-strings of one record joined without separator, case kept (TXT values
  such as verification tokens and DKIM keys are case-sensitive)
- SOA: `"mname rname serial refresh retry expire minimum"`, names as above
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import timedelta
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.durations import format_duration

if TYPE_CHECKING:
    # dnspython is imported by the functions that use it: every `watchkeeper` command imports
    # this module (the registry loads all check types), and dns.asyncresolver with its
    # dependencies costs ~0.1 s of CPU to import.
    import dns.asyncresolver
    import dns.name
    import dns.rdata
    import dns.resolver

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR"]

RESOLV_CONF = "/etc/resolv.conf"
"""Where the system resolver's configuration is read from when no `nameserver` is set."""

# Values listed in a reason before the rest are summarised as "(+N more)"; long answers (TXT,
# big round-robin sets) stay in `details`.
_SHOWN_VALUES = 5
_REASON_LIMIT = 500


def parse_nameserver(text: str) -> tuple[str, int]:
    """Split `IP`, `IPv4:port`, `[IPv6]:port` or a bare IPv6 address into (address, port).

    Raises ValueError for anything else (host names included: the nameserver is what resolves
    names, so it has to be given as an address).
    """
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid nameserver {text!r}; expected IP, IP:port or [IPv6]:port")
        port_text = rest[1:]
        if rest and not port_text:
            raise ValueError(f"invalid nameserver {text!r}: empty port")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"nameserver must be an IP address (optionally with :port), got {text!r}"
        ) from None
    port = 53
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"invalid nameserver port in {text!r}; expected 1-65535")
        port = int(port_text)
    return address.compressed, port


def normalise_expected(record_type: str, value: str) -> str:
    """Bring a configured expected value into the form answers are compared in.

    Raises ValueError when the value cannot be an answer of that type (e.g. a non-IPv4 for A).
    """
    text = value.strip()
    if record_type in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        if (address.version == 4) != (record_type == "A"):
            family = "IPv4" if record_type == "A" else "IPv6"
            raise ValueError(f"{value!r} is not an {family} address, as {record_type} needs")
        return address.compressed
    if record_type in ("CNAME", "NS", "PTR"):
        return _name_text(text)
    if record_type == "MX":
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"MX values look like '10 mail.example.com', got {value!r}")
        return f"{int(parts[0])} {_name_text(parts[1])}"
    if record_type == "SOA":
        parts = text.split()
        if len(parts) != 7 or not all(p.isdigit() for p in parts[2:]):
            raise ValueError(
                "SOA values look like 'ns1.example.com hostmaster.example.com serial refresh "
                f"retry expire minimum', got {value!r}"
            )
        return " ".join(
            [_name_text(parts[0]), _name_text(parts[1]), *map(str, map(int, parts[2:]))]
        )
    return value  # TXT: compared exactly as written


def answer_text(rdata: dns.rdata.Rdata) -> str:
    """The normalised text of one answer record (see the module docstring)."""
    import dns.rdatatype  # lazy: startup cost (see the top)

    rdtype = rdata.rdtype
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return ipaddress.ip_address(rdata.address).compressed  # type: ignore[attr-defined]
    if rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
        return _name_text(rdata.target)  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.MX:
        return f"{rdata.preference} {_name_text(rdata.exchange)}"  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.TXT:
        return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.SOA:
        soa: Any = rdata
        names = f"{_name_text(soa.mname)} {_name_text(soa.rname)}"
        return f"{names} {soa.serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}"
    return rdata.to_text()


def _name_text(name: dns.name.Name | str) -> str:
    import dns.name  # lazy: startup cost (see the top)

    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.lower().rstrip(".") or "."


class DnsCheckConfig(CheckConfigBase):
    """Config of a `dns` check: one query, optionally with the values the answer must hold."""

    type: Literal["dns"]
    query: str = Field(min_length=1)
    """The name to resolve (for PTR an IP address is turned into its reverse name)."""
    record_type: RecordType = "A"
    nameserver: str | None = None
    """`IP`, `IP:port` or `[IPv6]:port`; None uses the system resolver."""
    expect: list[str] | None = Field(default=None, min_length=1)
    """Values that must all be in the answer (others may be there too)."""
    expect_rcode: Literal["NOERROR", "NXDOMAIN"] | None = None
    """NXDOMAIN: UP only if the name does not exist. NOERROR: the name exists; an empty answer
    for `record_type` is fine. None: the answer must hold at least one record."""
    tcp: bool = False

    @field_validator("query")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        # Lazy: startup cost (see the top); only a config with a dns check pays it.
        import dns.exception
        import dns.name

        try:
            dns.name.from_text(value)
        except dns.exception.DNSException as exc:
            raise ValueError(f"invalid DNS name {value!r}: {exc}") from None
        return value

    @field_validator("nameserver")
    @classmethod
    def _valid_nameserver(cls, value: str | None) -> str | None:
        if value is not None:
            parse_nameserver(value)
        return value

    @field_validator("expect")
    @classmethod
    def _answers_of_the_type(
        cls, value: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        record_type = info.data.get("record_type")  # absent when it failed validation itself
        if value is not None and record_type is not None:
            for item in value:
                normalise_expected(record_type, item)
        return value

    @model_validator(mode="after")
    def _consistent_expectations(self) -> Self:
        if self.expect is not None and self.expect_rcode == "NXDOMAIN":
            raise ValueError("expect cannot be combined with expect_rcode: NXDOMAIN")
        return self


@register
class DnsCheck(Check[DnsCheckConfig]):
    """Resolves `query` and compares the answer with the expectations."""

    type = "dns"
    config_model = DnsCheckConfig

    def __init__(self, config: DnsCheckConfig, context: CheckContext) -> None:
        # Lazy: startup cost (see the top); only a configured dns check pays it.
        import dns.asyncresolver
        import dns.nameserver

        super().__init__(config, context)
        self._qname = _query_name(config.query, config.record_type)
        self._shown_name = _name_text(self._qname)
        self._label = f"{config.record_type} {self._shown_name}"
        self._expected = (
            [normalise_expected(config.record_type, v) for v in config.expect]
            if config.expect is not None
            else []
        )
        self._resolver: dns.asyncresolver.Resolver | None = None
        self._server = ""  # only for an explicit nameserver; the system's are read per run
        if config.nameserver is not None:
            address, port = parse_nameserver(config.nameserver)
            self._server = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port)]

    async def run(self) -> CheckResult:
        import dns.exception  # loaded by `__init__` already; lazy for startup cost (see the top)
        import dns.rcode
        import dns.resolver

        cfg = self.config
        timeout: timedelta = cfg.timeout
        resolver, server = self._resolver, self._server
        if resolver is None:
            try:
                resolver = system_resolver()
            except dns.resolver.NoResolverConfiguration:
                return CheckResult.unknown(f"no system resolver configured in {RESOLV_CONF}")
            server = ", ".join(str(ns) for ns in resolver.nameservers)
        details: dict[str, Any] = {"query": self._label, "nameserver": server}
        started = perf_counter()
        try:
            answer = await resolver.resolve(
                self._qname,
                cfg.record_type,
                tcp=cfg.tcp,
                raise_on_no_answer=False,
                lifetime=timeout.total_seconds(),
            )
        except dns.resolver.NXDOMAIN:
            elapsed = perf_counter() - started
            details["rcode"] = "NXDOMAIN"
            metrics = {"dns.response_seconds": elapsed, "dns.answer_count": 0.0}
            kwargs: dict[str, Any] = {
                "response_time": elapsed,
                "metrics": metrics,
                "details": details,
            }
            if cfg.expect_rcode == "NXDOMAIN":
                reason = f"NXDOMAIN for {self._shown_name} as expected ({_ms(elapsed)})"
                return CheckResult.up(reason, **kwargs)
            return CheckResult.down(f"NXDOMAIN for {self._shown_name}", **kwargs)
        except dns.exception.Timeout:
            return CheckResult.down(
                f"timed out after {format_duration(timeout)} resolving {self._label}",
                details=details,
            )
        except dns.resolver.NoNameservers as exc:
            return CheckResult.down(_no_nameservers_reason(self._label, exc), details=details)
        except dns.resolver.YXDOMAIN:
            return CheckResult.down(f"YXDOMAIN for {self._shown_name}", details=details)
        except dns.exception.DNSException as exc:
            return CheckResult.down(f"{self._label}: {exc}", details=details)
        elapsed = perf_counter() - started

        values = [answer_text(rdata) for rdata in answer.rrset] if answer.rrset is not None else []
        # An RRset has no order (servers rotate it); sorting keeps reasons stable between runs.
        values.sort(key=_sort_key(cfg.record_type))
        details.update(
            rcode=dns.rcode.to_text(answer.response.rcode()),
            answers=values,
            canonical_name=_name_text(answer.canonical_name),
        )
        if answer.rrset is not None:
            details["ttl"] = answer.rrset.ttl
        metrics = {"dns.response_seconds": elapsed, "dns.answer_count": float(len(values))}
        result: dict[str, Any] = {"response_time": elapsed, "metrics": metrics, "details": details}

        if cfg.expect_rcode == "NXDOMAIN":
            got = _shown(values) if values else f"NOERROR, no {cfg.record_type} records"
            return CheckResult.down(
                f"expected NXDOMAIN for {self._shown_name}, got {got}", **result
            )
        if not values:
            reason = f"no {cfg.record_type} answer for {self._shown_name} ({_ms(elapsed)})"
            if cfg.expect_rcode == "NOERROR":
                return CheckResult.up(reason, **result)
            return CheckResult.down(reason, **result)
        present = set(values)
        missing = [v for v in self._expected if v not in present]
        if missing:
            return CheckResult.down(
                _cap(f"expected {_shown(missing)}, got {_shown(values)}"), **result
            )
        reason = f"{self._label} → {_shown(values)} ({_ms(elapsed)})"
        return CheckResult.up(_cap(reason), **result)


def system_resolver() -> dns.asyncresolver.Resolver:
    """A resolver configured from `RESOLV_CONF`, read now (raises NoResolverConfiguration)."""
    import dns.asyncresolver  # lazy: startup cost (see the top)

    return dns.asyncresolver.Resolver(filename=RESOLV_CONF)


def _query_name(query: str, record_type: str) -> dns.name.Name:
    import dns.name  # lazy: startup cost (see the top)
    import dns.reversename

    if record_type == "PTR":
        try:
            ipaddress.ip_address(query)
        except ValueError:
            pass
        else:
            return dns.reversename.from_address(query)
    return dns.name.from_text(query)


def _sort_key(record_type: str) -> Callable[[str], Any]:
    if record_type in ("A", "AAAA"):
        return lambda text: int(ipaddress.ip_address(text))
    if record_type == "MX":
        return lambda text: (int(text.split()[0]), text)
    return lambda text: text


def _no_nameservers_reason(label: str, exc: dns.resolver.NoNameservers) -> str:
    # Each error is (server, tcp, port, error-or-rcode, response); the rcode text (SERVFAIL,
    # REFUSED) or the exception is what tells the operator what went wrong.
    errors = exc.kwargs.get("errors") or []
    answers = [f"{server} answered {error}" for server, _tcp, _port, error, *_ in errors]
    if not answers:
        return f"no nameserver answered {label}"
    return _cap(f"no nameserver answered {label}: {'; '.join(answers)}")


def _shown(values: list[str]) -> str:
    if len(values) <= _SHOWN_VALUES:
        return ", ".join(values)
    return ", ".join(values[:_SHOWN_VALUES]) + f" (+{len(values) - _SHOWN_VALUES} more)"


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _cap(reason: str) -> str:
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


__all__ = [
    "RESOLV_CONF",
    "DnsCheck",
    "DnsCheckConfig",
    "answer_text",
    "normalise_expected",
    "parse_nameserver",
    "system_resolver",
]
