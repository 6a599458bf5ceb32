"""What one dispatcher pass collects as it goes, shared by its stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from watchkeeper.alerting.broken import Key
from watchkeeper.store.errors import from_storage


@dataclass(slots=True)
class Pass:
    """One pass at the instant `now`: the stages add when they must be woken next
    (`wakeups`) and the objects they could not evaluate (`found`, for `BrokenObjects`)."""

    now: datetime
    wakeups: list[datetime] = field(default_factory=list)
    found: dict[Key, BaseException | str] = field(default_factory=dict)

    def is_broken(self, kind: str, name: str) -> bool:
        """Whether this pass already found that object broken (it is left out from then)."""
        return (kind, name) in self.found

    def next_wakeup(self) -> datetime | None:
        """The earliest instant something falls due (None: nothing)."""
        return min(self.wakeups) if self.wakeups else None


def refused_by_storage(exc: BaseException) -> bool:
    """Database errors stop the pass (retried whole) rather than marking an object broken."""
    return from_storage(exc) or isinstance(exc, OSError)
