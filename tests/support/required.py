"""What a test needs from the machine: skip, saying why, locally; fail under CI=true."""

from __future__ import annotations

import os
import socket
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI") == "true"


def unavailable(message: str) -> NoReturn:
    """Skip the test with `message`, except under CI=true where it must fail instead: .ci/run
    installs and allows everything the suite needs, so a skip there hides a broken setup."""
    if IN_CI:
        pytest.fail(f"{message} (required under CI=true)")
    pytest.skip(message)


LOCAL_SERVICES = {"postgres": 5432, "mysql": 3306, "redis": 6379}


def reachable(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:`port` (within a second)."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def require_local_services() -> None:
    """Skip (fail under CI=true) unless PostgreSQL, MariaDB and Redis answer on loopback."""
    missing = [name for name, port in LOCAL_SERVICES.items() if not reachable(port)]
    if missing:
        unavailable(f"local services not reachable: {', '.join(missing)}")
