"""What a test needs from the machine: skip, saying why, locally; fail under CI=true."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI") == "true"


def unavailable(message: str) -> NoReturn:
    """Skip the test with `message`, except under CI=true where it must fail instead: .ci/run
    installs and allows everything the suite needs, so a skip there hides a broken setup."""
    if IN_CI:
        pytest.fail(f"{message} (required under CI=true)")
    pytest.skip(message)
