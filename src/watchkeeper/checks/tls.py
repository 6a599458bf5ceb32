"""`tls`: the endpoint's certificate verifies and does not expire soon.

The check handshakes with the target and judges the certificate it presents: verification
problems (self-signed, unknown CA, hostname mismatch, expired) are DOWN, and the days left
before the earliest expiry in the chain are compared with `warn_days` (DEGRADED) and
`crit_days` (DOWN). When the verifying handshake fails, a second, unverified one fetches the
certificates so the reason can say what is wrong with them.

This module also holds the TLS helpers the `http` check shares: CA-file contexts and the cached
expiry of a DER certificate.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field, field_validator, model_validator

from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.durations import format_duration
from watchkeeper.core.tls import CaFile, ca_file_problem, ssl_error_text

if TYPE_CHECKING:
    # cryptography is imported by the functions that parse certificates: every `watchkeeper`
    # command imports this module (the registry loads all check types), and x509 costs
    # ~0.06 s of CPU to import.
    from cryptography import x509

DAY = 86400.0

# OpenSSL X509_V_ERR_* codes carried by ssl.SSLCertVerificationError.verify_code.
_UNABLE_TO_GET_ISSUER_CERT = 2
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_SELF_SIGNED_CERT_IN_CHAIN = 19
_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
_HOSTNAME_MISMATCH = 62
_IP_ADDRESS_MISMATCH = 64
_UNKNOWN_ISSUER = frozenset(
    {
        _UNABLE_TO_GET_ISSUER_CERT,
        _SELF_SIGNED_CERT_IN_CHAIN,
        _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        _UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)
_ENCODING_DER = 2  # _ssl.ENCODING_DER, for the private chain API of Python < 3.13


# --- helpers shared with the http check -----------------------------------------------------


def verifying_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A client context verifying chain and hostname against `ca_file` (or the system CAs).

    Contexts are shared by every user of the same bundle (aiohttp pools connections per
    context) and rebuilt when the file changes, so a rotated CA is picked up without a restart.
    """
    if ca_file is None:
        return _context(None, 0, 0)
    try:
        stat = os.stat(ca_file)
    except OSError:
        stat = None
    # A vanished file keeps failing in create_default_context with the real error.
    return _context(ca_file, stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@functools.lru_cache(maxsize=64)
def _context(ca_file: str | None, mtime_ns: int, size: int) -> ssl.SSLContext:
    # Only cafile is loaded when given (like curl --cacert): the bundle replaces the system CAs.
    return ssl.create_default_context(cafile=ca_file)


@functools.lru_cache(maxsize=1)
def unverified_context() -> ssl.SSLContext:
    """A client context that accepts any certificate (to look at it, not to trust it)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class CertExpiry(NamedTuple):
    """When a certificate stops being valid."""

    timestamp: float
    """Seconds since the epoch."""
    iso: str


@functools.lru_cache(maxsize=1024)
def cert_expiry(der: bytes) -> CertExpiry:
    """Expiry of a DER certificate; cached by its bytes, since peers present the same cert
    for months. Raises ValueError for bytes that are not a certificate."""
    from cryptography import x509  # lazy: startup cost (see the top)

    not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
    return CertExpiry(not_after.timestamp(), not_after.isoformat())


# --- the tls check ----------------------------------------------------------------------------


class TlsCheckConfig(CheckConfigBase):
    """Config of a `tls` check."""

    type: Literal["tls"]
    host: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, min_length=1)
    """Name sent as SNI and verified against the certificate; defaults to `host`."""
    warn_days: int = Field(default=14, ge=0)
    crit_days: int = Field(default=7, ge=0)
    verify: bool = True
    """When false, verification problems are reported in details but do not fail the check."""
    ca_file: CaFile | None = None
    """PEM bundle of trusted CAs, replacing the system store."""

    @field_validator("host", "server_name")
    @classmethod
    def _no_spaces(cls, value: str | None) -> str | None:
        if value is not None and (value != value.strip() or " " in value):
            raise ValueError("must not contain spaces")
        return value

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> TlsCheckConfig:
        if self.crit_days > self.warn_days:
            raise ValueError(
                f"crit_days ({self.crit_days}) must not be greater than"
                f" warn_days ({self.warn_days})"
            )
        return self


class _Failed(Exception):
    """The probe could not get a certificate; the message is the check's reason."""


@dataclass(frozen=True, slots=True)
class _Handshake:
    presented: list[bytes]
    verified: list[bytes] | None
    seconds: float


@register
class TlsCheck(Check[TlsCheckConfig]):
    """Handshakes with `host:port` and judges the certificate chain and its expiry."""

    type = "tls"
    config_model = TlsCheckConfig

    async def run(self) -> CheckResult:
        cfg = self.config
        server_name = cfg.server_name or cfg.host
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.timeout.total_seconds()
        started = perf_counter()
        verify_error: ssl.SSLCertVerificationError | None = None
        try:
            try:
                shake = await self._handshake(verifying_context(cfg.ca_file), deadline)
            except ssl.SSLCertVerificationError as exc:
                verify_error = exc
                # Look again without verifying, to say what is wrong with the certificate.
                shake = await self._handshake(unverified_context(), deadline)
        except _Failed as exc:
            return CheckResult.down(str(exc))
        elapsed = perf_counter() - started
        from cryptography import x509  # lazy: startup cost (see the top)

        try:
            presented = [x509.load_der_x509_certificate(der) for der in shake.presented]
            verified = [x509.load_der_x509_certificate(der) for der in shake.verified or ()]
        except ValueError:
            return CheckResult.down(f"{self._target} presented a certificate that cannot be read")
        if not presented:
            return CheckResult.down(f"{self._target} presented no certificate")
        return self._judge(presented, verified, verify_error, server_name, elapsed, shake.seconds)

    @property
    def _target(self) -> str:
        host = self.config.host
        return f"[{host}]:{self.config.port}" if ":" in host else f"{host}:{self.config.port}"

    async def _handshake(self, ctx: ssl.SSLContext, deadline: float) -> _Handshake:
        cfg = self.config
        target = self._target
        timeout_text = format_duration(cfg.timeout)
        try:
            async with asyncio.timeout_at(deadline):
                _, writer = await asyncio.open_connection(cfg.host, cfg.port)
        except TimeoutError:
            raise _Failed(f"connect to {target} timed out after {timeout_text}") from None
        except OSError as exc:
            raise _Failed(f"connect to {target} failed: {exc.strerror or exc}") from None
        # TCP connect and TLS handshake are timed apart, so handshake_seconds means just that.
        shake_started = perf_counter()
        try:
            async with asyncio.timeout_at(deadline):
                await writer.start_tls(ctx, server_hostname=cfg.server_name or cfg.host)
        except BaseException as exc:
            # A failed or cancelled handshake leaves no session to close politely, and the
            # stream would not notice its socket closing: drop the socket at once.
            writer.transport.abort()
            if isinstance(exc, TimeoutError):
                raise _Failed(
                    f"TLS handshake with {target} timed out after {timeout_text}"
                ) from None
            if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLCertVerificationError):
                raise _Failed(
                    f"TLS handshake with {target} failed: {ssl_error_text(exc)}"
                ) from None
            raise
        seconds = perf_counter() - shake_started
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object is None:
                raise _Failed(f"TLS handshake with {target} failed: no TLS session")
            presented = _chain(ssl_object, "get_unverified_chain")
            if not presented:
                leaf = ssl_object.getpeercert(binary_form=True)
                presented = [leaf] if leaf else []
            verifying = ctx.verify_mode != ssl.CERT_NONE
            verified = _chain(ssl_object, "get_verified_chain") if verifying else None
            return _Handshake(presented, verified, seconds)
        finally:
            await _close(writer)

    def _judge(
        self,
        presented: list[x509.Certificate],
        verified: list[x509.Certificate],
        verify_error: ssl.SSLCertVerificationError | None,
        server_name: str,
        elapsed: float,
        handshake_seconds: float,
    ) -> CheckResult:
        cfg = self.config
        now = datetime.now(UTC)
        leaf = presented[0]
        # Clients judge the chain they built, not extras the server sends (like an expired
        # cross-signed root nobody uses), so prefer the verified chain when there is one.
        if verified:
            chain, chain_source = verified, "verified"
        elif len(presented) > 1:
            chain, chain_source = presented, "presented"
        else:
            chain, chain_source = presented, "leaf only"
        earliest = min(chain, key=lambda c: c.not_valid_after_utc)
        leaf_left = _days_left(leaf, now)
        chain_left = _days_left(earliest, now)
        self_signed = _is_self_signed(leaf)

        what = _which(earliest, leaf) if chain_left < leaf_left else "certificate"
        status, reason = _expiry_verdict(
            what, chain_left, earliest.not_valid_after_utc, cfg.warn_days, cfg.crit_days
        )
        if status is Status.UP:
            # Healthy: speak about the server's own certificate.
            _, reason = _expiry_verdict(
                "certificate", leaf_left, leaf.not_valid_after_utc, cfg.warn_days, cfg.crit_days
            )

        details: dict[str, Any] = {
            "subject": leaf.subject.rfc4514_string(),
            "issuer": leaf.issuer.rfc4514_string(),
            "not_before": leaf.not_valid_before_utc.isoformat(),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "sans": _sans(leaf),
            "self_signed": self_signed,
            "verified": verify_error is None,
            "chain_not_after": earliest.not_valid_after_utc.isoformat(),
            "chain_length": len(chain),
            "chain_source": chain_source,
        }
        if verify_error is not None:
            problem = self._verification_problem(verify_error, presented, server_name, now)
            details["verify_error"] = problem
            if cfg.verify:
                status = Status.DOWN
                # Expiry is a fact worth saying next to any other verification problem.
                expired = chain_left <= 0 and verify_error.verify_code != _CERT_HAS_EXPIRED
                reason = f"{problem}; {reason}" if expired else problem
        metrics = {
            "tls.days_left": round(leaf_left, 4),
            "tls.chain_days_left": round(chain_left, 4),
            "tls.handshake_seconds": handshake_seconds,
        }
        return CheckResult(status, reason, response_time=elapsed, metrics=metrics, details=details)

    def _verification_problem(
        self,
        exc: ssl.SSLCertVerificationError,
        presented: list[x509.Certificate],
        server_name: str,
        now: datetime,
    ) -> str:
        code = exc.verify_code
        leaf = presented[0]
        target = self._target
        if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH):
            return f"hostname mismatch: certificate is for {_names(leaf)}, not {server_name}"
        if code == _DEPTH_ZERO_SELF_SIGNED_CERT or (
            code in _UNKNOWN_ISSUER and len(presented) == 1 and _is_self_signed(leaf)
        ):
            return f"certificate for {target} is self-signed"
        if code in _UNKNOWN_ISSUER:
            top = presented[-1]
            issuer = top.subject if code == _SELF_SIGNED_CERT_IN_CHAIN else top.issuer
            return f"certificate for {target} is issued by an unknown CA ({_short_name(issuer)})"
        if code == _CERT_HAS_EXPIRED:
            earliest = min(presented, key=lambda c: c.not_valid_after_utc)
            left = _days_left(earliest, now)
            if left <= 0:
                what = _which(earliest, leaf)
                return _expiry_verdict(what, left, earliest.not_valid_after_utc, 0, 0)[1]
        if code == _CERT_NOT_YET_VALID:
            latest = max(presented, key=lambda c: c.not_valid_before_utc)
            if latest.not_valid_before_utc > now:
                return (
                    f"certificate for {target} is not valid before"
                    f" {latest.not_valid_before_utc.isoformat()}"
                )
        return f"certificate for {target} failed verification: {exc.verify_message}"


def _chain(ssl_object: Any, method: str) -> list[bytes]:
    """DER certificates from `get_unverified_chain`/`get_verified_chain`.

    Python 3.13 has these on SSLObject (returning DER bytes); 3.10-3.12 have them only on the
    private `_sslobj` (returning _ssl.Certificate). Without either, the caller falls back to
    the leaf alone.
    """
    getter = getattr(ssl_object, method, None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), method, None)
    if getter is None:
        return []
    try:
        chain = getter() or []
        return [c if isinstance(c, bytes) else c.public_bytes(_ENCODING_DER) for c in chain]
    except (AttributeError, TypeError, ValueError, ssl.SSLError):
        return []


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        # A polite TLS close (close_notify) usually takes one round trip; never wait long.
        async with asyncio.timeout(1):
            await writer.wait_closed()
    except (TimeoutError, OSError):  # ssl.SSLError is an OSError
        pass


def _which(cert: x509.Certificate, leaf: x509.Certificate) -> str:
    """How reasons name `cert`: the server's own, or one further up its chain."""
    return "certificate" if cert is leaf else f"chain certificate {_short_name(cert.subject)}"


def _days_left(cert: x509.Certificate, now: datetime) -> float:
    return (cert.not_valid_after_utc - now).total_seconds() / DAY


def _expiry_verdict(
    what: str, days_left: float, not_after: datetime, warn_days: int, crit_days: int
) -> tuple[Status, str]:
    # Thresholds apply to whole days left, the number the reason shows: "expires in 7 days"
    # is critical at crit_days 7 even with 7.9 days to go.
    date = not_after.date().isoformat()
    if days_left <= 0:
        ago = math.floor(-days_left)
        when = "less than a day ago" if ago == 0 else f"{_plural(ago, 'day')} ago"
        return Status.DOWN, f"{what} expired {when} (on {date})"
    days = math.floor(days_left)
    left = "less than a day" if days == 0 else _plural(days, "day")
    if days <= crit_days:
        return Status.DOWN, f"{what} expires in {left} (on {date}; critical at {crit_days} days)"
    if days <= warn_days:
        return (
            Status.DEGRADED,
            f"{what} expires in {left} (on {date}; warning at {warn_days} days)",
        )
    return Status.UP, f"{what} valid for {left} (until {date})"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _is_self_signed(cert: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature  # lazy: startup cost (see the top)

    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _sans(cert: x509.Certificate) -> list[str]:
    from cryptography import x509  # lazy: startup cost (see the top)

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return []
    names: list[str] = list(ext.value.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress))
    return names


def _common_name(name: x509.Name) -> str | None:
    from cryptography.x509.oid import NameOID  # lazy: startup cost (see the top)

    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _short_name(name: x509.Name) -> str:
    cn = _common_name(name)
    return f"CN={cn}" if cn else (name.rfc4514_string() or "(empty name)")


def _names(cert: x509.Certificate, limit: int = 3) -> str:
    # Clients ignore the CN when SANs exist; show what they actually match against.
    names = _sans(cert) or [cn for cn in [_common_name(cert.subject)] if cn]
    if not names:
        return "no host name"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} (+{len(names) - limit} more)"


__all__ = [
    "CertExpiry",
    "TlsCheck",
    "TlsCheckConfig",
    "ca_file_problem",
    "cert_expiry",
    "unverified_context",
    "verifying_context",
]
