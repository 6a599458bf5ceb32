"""The `server:` config section: where the HTTP server listens and what its edge refuses.

The HTTP layer sits above the config package (it serves the loaded config), so its section
lives here, in the package, rather than with its reader as the lower layers' sections do.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import ByteSize, Field, IPvAnyNetwork, field_validator

from watchkeeper.core.durations import ClientWait
from watchkeeper.core.model import StrictModel

_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[^:\s]+):(?P<port>\d{1,5})$")


def split_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8080` for IPv6) as host and port; ValueError saying what is expected."""
    match = _LISTEN.match(value)
    if not match or not 0 <= int(match.group("port")) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return match.group("host").strip("[]"), int(match.group("port"))


BodySize = Annotated[ByteSize, Field(ge=1024, le=1024**3)]
"""A request body limit: `1MiB`, `512KiB`, `10MB` or a number of bytes (1 KiB … 1 GiB)."""


class ServerConfig(StrictModel):
    """The `server:` section."""

    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list, max_length=1000)
    """Addresses or networks (`10.0.0.5`, `10.0.0.0/8`, `::1`) of reverse proxies whose
    `X-Forwarded-For`/`X-Forwarded-Proto` are believed: for the client address in the audit
    log and the login throttle, and for https cookies. Default: none, not even loopback."""
    # The HTTP edge (README "Request bodies and the HTTP edge"): refused before any work.
    max_body_size: BodySize = ByteSize(1024**2)
    """Largest request body; a larger one is a 413, refused before it is read."""
    max_alert_body_size: BodySize = ByteSize(10 * 1024**2)
    """Largest body of alert ingest (`POST /api/v1/alerts`): Alertmanager sends batches."""
    max_json_depth: int = Field(default=64, ge=2, le=512)
    """How deeply a JSON body may nest arrays and objects; deeper is a 400."""
    max_event_streams: int = Field(default=200, ge=1, le=100_000)
    """Open live-update streams (`/dashboard/events`) in all; past it a 503."""
    max_event_streams_per_user: int = Field(default=10, ge=1, le=10_000)
    """Open live-update streams of one user or token; past it a 429."""
    request_read_timeout: ClientWait = timedelta(seconds=30)
    """Time a client has to send a whole request (headers and body) once its connection is
    ready for one; then it is closed (408)."""
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """Open client connections (never more than half the open-file limit); a new one closes
    the one that has waited longest on its client, or is refused (503)."""

    health_details: Literal["public", "token"] = "token"
    """Who may read `/health/detailed`, `/health/database` and `/health/system`: `token`
    (a viewer token or session, the default) or `public` (anyone, e.g. a load balancer)."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @property
    def host(self) -> str:
        """The host part of `listen`."""
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of `listen`."""
        return split_listen(self.listen)[1]

    def base_url(self) -> str:
        """`public_url`, or the URL `listen` is reachable at from this host."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    api_ca_dir: str | None = None
    """The only directory whose files checks created over the API may name as `ca_file`;
    unset, such checks cannot name a file at all (a path probe of the server's disk)."""
