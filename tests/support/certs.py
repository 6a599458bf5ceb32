"""Certificates made on the fly with `cryptography`, and TLS servers on loopback that present them.

Keys are P-256 (not RSA) because generating one takes microseconds, which keeps the TLS tests
fast. Every certificate carries the extensions a strict verifier (Python 3.13's default
VERIFY_X509_STRICT) requires, so the tests keep meaning the same on newer Pythons.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Expiry is judged in whole days (floored), so certificates "expiring in N days" get an hour of
# slack: the test then reads N days, not N-1, however long it takes to reach the check.
SLACK = timedelta(hours=1)


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write_cert(self, path: Path) -> Path:
        """Write the certificate as PEM (e.g. for a `ca_file`) and return the path."""
        path.write_bytes(self.cert_pem)
        return path


def make_cert(
    common_name: str,
    *,
    sans: Sequence[str] = (),
    expires_in: timedelta = timedelta(days=90),
    valid_since: timedelta = timedelta(days=1),
    issuer: Issued | None = None,
    is_ca: bool = False,
) -> Issued:
    """A certificate for `common_name` and `sans` (IP literals become IP SANs).

    `expires_in` may be negative for an already expired certificate. Without `issuer` the
    certificate is self-signed.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - valid_since)
        .not_valid_after(now + expires_in)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not is_ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer_key = issuer.key if issuer else key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
    )
    if not is_ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in sans]), critical=False
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_ca(common_name: str = "Watchkeeper Test CA") -> Issued:
    """A self-signed CA able to sign leaf certificates."""
    return make_cert(common_name, is_ca=True, expires_in=timedelta(days=3650))


def server_context(tmp_path: Path, leaf: Issued, chain: Sequence[Issued] = ()) -> ssl.SSLContext:
    """A server-side SSL context presenting `leaf` followed by the `chain` certificates."""
    stem = f"server-{leaf.cert.serial_number:x}"
    cert_file = tmp_path / f"{stem}.crt"
    key_file = tmp_path / f"{stem}.key"
    cert_file.write_bytes(leaf.cert_pem + b"".join(c.cert_pem for c in chain))
    key_file.write_bytes(leaf.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@asynccontextmanager
async def tls_server(ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 that completes handshakes and closes; yields its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Wait for the client to hang up so the handshake is never cut short by us.
        try:
            await reader.read()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
