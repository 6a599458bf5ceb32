"""A flapping check gets one alert of its own ("api is flapping") instead of a page per flip.

While it flaps, the dispatcher holds back the check's own alerts; when it settles, the
flapping alert resolves and the check's alerts page normally again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.check_alerts import check_labels
from watchkeeper.alerting.config import FlappingConfig
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.domain import Status
from watchkeeper.core.flapping import FlapChange, FlapDetector
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import results as result_store
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

_OBSERVED = frozenset({Status.UP, Status.DEGRADED, Status.DOWN, Status.UNKNOWN})


def flapping_fingerprint(check: str) -> str:
    return f"flapping:{check}"


class FlapTracker:
    """One detector per check; knows which checks flap right now."""

    def __init__(
        self, db: Database, config: FlappingConfig, on_change: Callable[[], None] = lambda: None
    ) -> None:
        self._db = db
        self._config = config
        self._on_change = on_change
        self._detectors: dict[str, FlapDetector] = {}

    async def restore(self) -> None:
        """Rebuild each check's detector from its latest stored results, flapping when its
        flapping alert is open: after a restart a flapping check still holds its alerts back,
        and its flapping alert resolves when it settles (a fresh detector never would)."""
        if not self._config.enabled:
            return
        window = self._config.window
        async with self._db.connect() as conn:
            flapping = set(await alert_store.open_fingerprints(conn, "flapping"))
        recent = await result_store.recent_statuses(self._db, window)
        for fingerprint in flapping:  # an open flapping alert with no results left
            recent.setdefault(fingerprint.removeprefix(flapping_fingerprint("")), [])
        for check, statuses in recent.items():
            # What the pipeline observes: results, never a pause.
            history = [s for s in statuses if s in _OBSERVED]
            self._detectors[check] = FlapDetector.from_state(
                {"history": history, "flapping": flapping_fingerprint(check) in flapping},
                window=window,
                high=self._config.high,
                low=self._config.low,
            )

    def forget(self, check: str) -> None:
        self._detectors.pop(check, None)

    def is_flapping(self, check: str) -> bool:
        detector = self._detectors.get(check)
        return detector is not None and detector.flapping

    async def observe(self, config: CheckConfigBase, status: Status, at: datetime) -> None:
        if not self._config.enabled:
            return
        detector = self._detectors.get(config.name)
        if detector is None:
            detector = self._detectors[config.name] = FlapDetector(
                self._config.window, self._config.high, self._config.low
            )
        change = detector.observe(status)
        if change is None:
            return
        fingerprint = flapping_fingerprint(config.name)
        percent = detector.percent_change
        async with self._db.begin() as conn:
            if change is FlapChange.STARTED:
                spec = lifecycle.AlertSpec(
                    fingerprint=fingerprint,
                    name=config.name,
                    severity=config.severity,
                    summary=(
                        f"{config.name} is flapping: {percent:.0f}% state change over its "
                        f"last {detector.window} results; its alerts are held until it settles"
                    ),
                    labels={**check_labels(config), "flapping": "true"},
                    source="flapping",
                    escalation_policy=config.escalation,
                )
                await lifecycle.fire(conn, spec, at)
            else:
                await lifecycle.resolve(
                    conn, fingerprint, at, comment=f"settled: {percent:.0f}% state change"
                )
        log.warning("check %s flapping %s (%.0f%%)", config.name, change.value, percent)
        self._on_change()
