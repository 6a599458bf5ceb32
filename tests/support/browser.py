"""Debian's Chromium driven by Playwright (no browser download: the system one is used)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("WK_CHROMIUM", "/usr/bin/chromium")
# As root in a sandbox: no setuid sandbox; the machine's network is closed, so Chromium's
# own background traffic (updates, sync, safe browsing) is turned off rather than refused.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(os.environ.get("WK_TEST_ARTIFACTS", "test-artifacts"))


def require_chromium() -> str:
    """The browser's path; skips (or fails under CI=true) when it is not installed."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def artifact(name: str) -> Path:
    """Where a test saves a screenshot (kept after the run; CI can collect the folder)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
