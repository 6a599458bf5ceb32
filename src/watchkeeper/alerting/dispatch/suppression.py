"""Suppression: whether nobody is to hear about an alert now, and why.

One stage per reason, each deciding for one alert at the pass's instant, composed in order
by `Suppression`: dependency → flapping → maintenance → inhibition. The first reason found
wins and the stages after it are not asked (so a broken maintenance window is only noticed
on an alert nothing else suppresses). Silences are asked on their own, whatever the reason:
an alert can be both suppressed and silenced, and shows both.

Fail-open: a maintenance window or silence that raises is reported on the pass and left
out of the rest of it, so it suppresses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.inhibition import InhibitRule, inhibited_by
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.silences import Silence
from watchkeeper.core.domain import Alert
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database


class Stage(Protocol):
    """One reason to suppress an alert."""

    def decide(self, alert: Alert, at: Pass) -> str | None:
        """The reason `alert` is suppressed at `at.now` (None: not for this reason)."""
        ...


class DependencyStage:
    """A check alert not yet paged waits while a check it depends on is down."""

    def __init__(self, graph: DependencyGraph, is_down: Callable[[str], bool]) -> None:
        self._graph = graph
        self._is_down = is_down

    def decide(self, alert: Alert, at: Pass) -> str | None:
        """`suppressed: <nearest blocker> down`, or None."""
        if not alert.check or alert.notified_at is not None:
            return None
        blocker = self._graph.first_blocker(alert.check, self._is_down)
        return f"suppressed: {blocker} down" if blocker else None


class FlappingStage:
    """A check alert not yet paged waits while its check flaps."""

    def __init__(self, is_flapping: Callable[[str], bool]) -> None:
        self._is_flapping = is_flapping

    def decide(self, alert: Alert, at: Pass) -> str | None:
        """`suppressed: flapping`, or None."""
        if not alert.check or alert.notified_at is not None:
            return None
        return "suppressed: flapping" if self._is_flapping(alert.check) else None


class MaintenanceStage:
    """An alert in the scope of a maintenance window active now is suppressed."""

    def __init__(self, active: Sequence[MaintenanceWindow]) -> None:
        """`active`: the windows active at the pass's instant (see `active_windows`)."""
        self._active = list(active)

    @classmethod
    def for_pass(cls, windows: Iterable[MaintenanceWindow], at: Pass) -> MaintenanceStage:
        """The stage over the windows active at `at.now`, each evaluated once, on its own."""
        return cls(active_windows(windows, at))

    def decide(self, alert: Alert, at: Pass) -> str | None:
        """`suppressed: maintenance <first covering window>`, or None."""
        labels = alert.match_labels
        for window in self._active:
            if at.is_broken("maintenance", window.name):
                continue
            try:
                if window.covers(labels):
                    return f"suppressed: maintenance {window.name}"
            except Exception as exc:
                at.found[("maintenance", window.name)] = exc
        return None


def active_windows(windows: Iterable[MaintenanceWindow], at: Pass) -> list[MaintenanceWindow]:
    """The windows active at `at.now`; the pass wakes when any of them opens or closes.

    A window that raises is reported on the pass and left out."""
    active = []
    for window in windows:
        try:
            change = window.next_change(at.now)
            is_active = window.active_at(at.now)
        except Exception as exc:
            at.found[("maintenance", window.name)] = exc
            continue
        if change is not None:
            at.wakeups.append(change)
        if is_active:
            active.append(window)
    return active


class InhibitionStage:
    """An alert muted by an inhibit rule while a matching source alert fires."""

    def __init__(self, rules: Sequence[InhibitRule], firing: Sequence[dict[str, str]]) -> None:
        """`firing`: the labels of the alerts firing at the start of the pass."""
        self._rules = list(rules)
        self._firing = firing

    def decide(self, alert: Alert, at: Pass) -> str | None:
        """`suppressed: inhibited by <source alertname>`, or None."""
        source = inhibited_by(self._rules, alert.match_labels, self._firing)
        if source is None:
            return None
        return f"suppressed: inhibited by {source.get('alertname', 'another alert')}"


class SilenceStage:
    """An alert matched by a silence active now is silenced (the silence's id)."""

    def __init__(self, silences: Sequence[Silence]) -> None:
        self._silences = list(silences)

    def decide(self, alert: Alert, at: Pass) -> str | None:
        """The id of the first silence silencing `alert`, or None.

        The pass wakes when that silence ends, and when each silence looked at before it
        starts (if it has not yet)."""
        labels = alert.match_labels
        for silence in self._silences:
            if at.is_broken("silence", silence.id):
                continue
            try:
                silences_it = silence.silences(labels, at.now)
            except Exception as exc:
                at.found[("silence", silence.id)] = exc
                continue
            if silences_it:
                at.wakeups.append(silence.ends_at)
                return silence.id
            if at.now < silence.starts_at:
                at.wakeups.append(silence.starts_at)
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why an alert is suppressed, and by which silence; both None: it may be paged."""

    reason: str | None = None
    silenced_by: str | None = None

    @property
    def quiet(self) -> bool:
        """Whether nobody is to hear about the alert now."""
        return bool(self.reason or self.silenced_by)


class Suppression:
    """The reason stages in order (the first reason wins), and the silences on their own."""

    def __init__(self, reasons: Sequence[Stage], silences: Stage) -> None:
        self._reasons = list(reasons)
        self._silences = silences

    def decide(self, alert: Alert, at: Pass) -> Verdict:
        """The verdict on `alert` at `at.now`."""
        reason = None
        for stage in self._reasons:
            reason = stage.decide(alert, at)
            if reason is not None:
                break
        return Verdict(reason, self._silences.decide(alert, at))

    async def apply(self, db: Database, alert: Alert, at: Pass) -> Verdict:
        """Decide, and record the verdict on the alert and in its own transaction when it
        changed (with a `silenced` event when it names a silence)."""
        verdict = self.decide(alert, at)
        if (verdict.reason, verdict.silenced_by) != (alert.suppressed_reason, alert.silenced_by):
            alert.suppressed_reason, alert.silenced_by = verdict.reason, verdict.silenced_by
            async with db.begin() as conn:
                await alert_store.set_suppression(
                    conn, alert.id, verdict.reason, verdict.silenced_by
                )
                if verdict.silenced_by:
                    await alert_store.add_event(
                        conn, alert.id, "silenced", at.now, comment=verdict.silenced_by
                    )
        return verdict
