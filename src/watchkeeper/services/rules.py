"""Rules on pushed metrics: their state per series, and the samples that feed them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.core.clock import Clock


@dataclass(frozen=True, slots=True)
class Sample:
    """One pushed reading; `at` None means now."""

    metric: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(slots=True)
class RuleService:
    """The rule engine's view for the API, and its intake of pushed samples."""

    engine: RuleEngine
    clock: Clock
    is_managed: Callable[[str], bool] = field(default=lambda _name: False)
    """Whether a rule was made over the API (else it comes from the config file)."""

    def list_rules(self) -> list[dict[str, Any]]:
        """Every rule with the state of each of its series, and its `source`."""
        return [
            {**rule, "source": "api" if self.is_managed(rule["name"]) else "config"}
            for rule in self.engine.snapshot()
        ]

    def push(self, samples: Iterable[Sample]) -> tuple[int, int]:
        """Feed samples to the rules that watch their metric: (accepted, watched)."""
        now = self.clock.now()
        accepted = watched = 0
        names = self.engine.metrics
        for sample in samples:
            accepted += 1
            if sample.metric in names:
                watched += 1
                self.engine.observe(
                    sample.metric, dict(sample.labels), sample.value, sample.at or now
                )
        return accepted, watched
