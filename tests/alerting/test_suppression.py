"""Suppression, one stage per reason, and their composition (alerting/dispatch/suppression)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.alerting.factory import T0, alert, stored_alert
from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.dispatch.suppression import (
    DependencyStage,
    FlappingStage,
    InhibitionStage,
    MaintenanceStage,
    SilenceStage,
    Suppression,
    Verdict,
)
from watchkeeper.alerting.inhibition import InhibitRule
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.matchers import parse_matcher
from watchkeeper.alerting.silences import Silence
from watchkeeper.core.domain import Alert
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database

HOUR = timedelta(hours=1)


def silence(sid: str, *matchers: str, starts: datetime = T0, ends: datetime = T0 + HOUR) -> Silence:
    return Silence(sid, [parse_matcher(m) for m in matchers], starts, ends, "alice", "", T0)


class RaisingSilence(Silence):
    """A silence whose evaluation raises (as a stored one from an older release might)."""

    def silences(self, labels: dict[str, str], now: datetime) -> bool:
        raise RuntimeError("cannot evaluate")


def window(name: str = "deploy", **values: Any) -> MaintenanceWindow:
    spec: dict[str, Any] = {"starts_at": T0, "ends_at": T0 + HOUR, "checks": ["api"]}
    return MaintenanceWindow.model_validate({"name": name, **spec, **values})


class RaisingWindow(MaintenanceWindow):
    def covers(self, labels: dict[str, str]) -> bool:
        raise RuntimeError("cannot evaluate")


class Recording:
    """A reason stage that always gives `reason` and counts how often it was asked."""

    def __init__(self, reason: str | None) -> None:
        self.reason, self.asked = reason, 0

    def decide(self, alert: Alert, at: Pass) -> str | None:
        self.asked += 1
        return self.reason


# -- silences ---------------------------------------------------------------------------------


def test_a_silence_with_a_negative_matcher_spares_the_alerts_it_excludes() -> None:
    stage = SilenceStage([silence("s1", "service=api", "env!=prod")])
    at = Pass(T0)
    assert stage.decide(alert(labels={"service": "api", "env": "staging"}), at) == "s1"
    assert stage.decide(alert(labels={"service": "api", "env": "prod"}), at) is None
    assert stage.decide(alert(labels={"service": "web", "env": "staging"}), at) is None


def test_a_silence_matches_the_alertname_and_wakes_the_pass_when_it_ends() -> None:
    at = Pass(T0 + timedelta(minutes=5))
    assert SilenceStage([silence("s1", "alertname=ApiDown")]).decide(alert("ApiDown"), at) == "s1"
    assert at.wakeups == [T0 + HOUR]


def test_a_silence_starting_exactly_now_silences_and_one_ending_exactly_now_does_not() -> None:
    starting = SilenceStage([silence("s1", "alertname=ApiDown", starts=T0)])
    assert starting.decide(alert(), Pass(T0)) == "s1"
    ended = SilenceStage([silence("s1", "alertname=ApiDown", ends=T0)])
    at = Pass(T0)
    assert ended.decide(alert(), at) is None
    assert at.wakeups == []


def test_a_pending_silence_silences_nothing_yet_and_wakes_the_pass_when_it_starts() -> None:
    at = Pass(T0)
    later = silence("s1", "alertname=ApiDown", starts=T0 + HOUR, ends=T0 + 2 * HOUR)
    assert SilenceStage([later]).decide(alert(), at) is None
    assert at.wakeups == [T0 + HOUR]


def test_the_first_silencing_silence_wins_and_those_after_it_are_not_looked_at() -> None:
    at = Pass(T0)
    pending = silence("s0", "alertname=ApiDown", starts=T0 + HOUR, ends=T0 + 2 * HOUR)
    first = silence("s1", "alertname=ApiDown", ends=T0 + 2 * HOUR)
    second = silence("s2", "alertname=ApiDown", ends=T0 + 3 * HOUR)
    later = silence("s3", "alertname=ApiDown", starts=T0 + 5 * HOUR, ends=T0 + 6 * HOUR)
    assert SilenceStage([pending, first, second, later]).decide(alert(), at) == "s1"
    assert at.wakeups == [T0 + HOUR, T0 + 2 * HOUR]


def test_a_silence_that_raises_is_reported_and_left_out_of_the_rest_of_the_pass() -> None:
    broken = RaisingSilence("bad", [], T0, T0 + HOUR, "alice", "", T0)
    stage = SilenceStage([broken, silence("s1", "alertname=ApiDown")])
    at = Pass(T0)
    assert stage.decide(alert(), at) == "s1"  # the next silence still decides
    assert isinstance(at.found[("silence", "bad")], RuntimeError)
    assert stage.decide(alert("DbDown"), at) is None


def test_a_silence_already_found_broken_this_pass_silences_nothing() -> None:
    at = Pass(T0, found={("silence", "s1"): "invalid"})
    assert SilenceStage([silence("s1", "alertname=ApiDown")]).decide(alert(), at) is None
    assert at.wakeups == []


def test_a_silence_after_one_found_broken_this_pass_still_silences() -> None:
    at = Pass(T0, found={("silence", "s1"): "invalid"})
    stage = SilenceStage([silence("s1", "alertname=ApiDown"), silence("s2", "alertname=ApiDown")])
    assert stage.decide(alert(), at) == "s2"


# -- maintenance ------------------------------------------------------------------------------


def test_a_maintenance_window_ending_exactly_now_no_longer_suppresses() -> None:
    at = Pass(T0 + HOUR)
    stage = MaintenanceStage.for_pass([window()], at)
    assert stage.decide(alert(check="api", labels={"check": "api"}), at) is None
    assert at.wakeups == []  # over for good


def test_a_maintenance_window_suppresses_from_its_start_and_wakes_the_pass_at_its_end() -> None:
    at = Pass(T0)
    stage = MaintenanceStage.for_pass([window()], at)
    assert stage.decide(alert(labels={"check": "api"}), at) == "suppressed: maintenance deploy"
    assert stage.decide(alert(labels={"check": "db"}), at) is None
    assert at.wakeups == [T0 + HOUR]


def test_a_maintenance_window_not_started_suppresses_nothing_and_wakes_the_pass_at_its_start() -> (
    None
):
    at = Pass(T0 - timedelta(minutes=1))
    stage = MaintenanceStage.for_pass([window()], at)
    assert stage.decide(alert(labels={"check": "api"}), at) is None
    assert at.wakeups == [T0]


def test_the_first_covering_window_names_the_reason() -> None:
    at = Pass(T0)
    windows = [window("other", checks=["db"]), window("first"), window("second")]
    stage = MaintenanceStage.for_pass(windows, at)
    assert stage.decide(alert(labels={"check": "api"}), at) == "suppressed: maintenance first"


def test_a_window_that_raises_is_reported_and_left_out_of_the_rest_of_the_pass() -> None:
    at = Pass(T0)
    bad = RaisingWindow.model_validate(
        {"name": "bad", "starts_at": T0, "ends_at": T0 + HOUR, "checks": ["api"]}
    )
    stage = MaintenanceStage([bad, window("good")])
    assert stage.decide(alert(labels={"check": "api"}), at) == "suppressed: maintenance good"
    assert isinstance(at.found[("maintenance", "bad")], RuntimeError)
    assert MaintenanceStage([bad]).decide(alert(labels={"check": "api"}), at) is None


def test_a_window_already_found_broken_this_pass_suppresses_nothing() -> None:
    at = Pass(T0, found={("maintenance", "deploy"): "invalid"})
    assert MaintenanceStage([window()]).decide(alert(labels={"check": "api"}), at) is None


def test_a_window_after_one_found_broken_this_pass_still_suppresses() -> None:
    at = Pass(T0, found={("maintenance", "deploy"): "invalid"})
    stage = MaintenanceStage([window(), window("later")])
    assert stage.decide(alert(labels={"check": "api"}), at) == "suppressed: maintenance later"


def test_a_window_whose_schedule_cannot_be_evaluated_is_reported_and_not_active() -> None:
    class Unschedulable(MaintenanceWindow):
        def next_change(self, now: datetime) -> datetime | None:
            raise OverflowError("date value out of range")

    at = Pass(T0)
    bad = Unschedulable.model_validate(
        {"name": "bad", "starts_at": T0, "ends_at": T0 + HOUR, "checks": ["api"]}
    )
    stage = MaintenanceStage.for_pass(
        [bad, window("good", starts_at=T0 + HOUR, ends_at=T0 + 2 * HOUR)], at
    )
    assert stage.decide(alert(labels={"check": "api"}), at) is None
    assert isinstance(at.found[("maintenance", "bad")], OverflowError)
    assert at.wakeups == [T0 + HOUR]


# -- dependencies and flapping ----------------------------------------------------------------


GRAPH = DependencyGraph({"api": ["lb"], "lb": ["db"], "db": ["net"], "web": []})


def test_an_alert_waits_while_a_check_it_depends_on_transitively_is_down() -> None:
    stage = DependencyStage(GRAPH, lambda name: name == "db")
    assert stage.decide(alert(check="api"), Pass(T0)) == "suppressed: db down"
    assert stage.decide(alert(check="web"), Pass(T0)) is None
    assert DependencyStage(GRAPH, lambda _: False).decide(alert(check="api"), Pass(T0)) is None


def test_a_dependency_that_is_itself_suppressed_still_blocks_and_is_named_as_the_nearest() -> None:
    down = {"lb", "db", "net"}  # db waits on net; lb waits on db: each still blocks its own
    stage = DependencyStage(GRAPH, down.__contains__)
    assert stage.decide(alert(check="api"), Pass(T0)) == "suppressed: lb down"
    assert stage.decide(alert(check="lb"), Pass(T0)) == "suppressed: db down"


def test_an_alert_already_paged_or_without_a_check_is_not_held_back_by_dependencies() -> None:
    stage = DependencyStage(GRAPH, lambda _: True)
    assert stage.decide(alert(check="api", notified_at=T0), Pass(T0)) is None
    assert stage.decide(alert(rule="slow"), Pass(T0)) is None


def test_a_flapping_check_holds_back_its_alert_until_it_was_paged() -> None:
    stage = FlappingStage(lambda name: name == "api")
    assert stage.decide(alert(check="api"), Pass(T0)) == "suppressed: flapping"
    assert stage.decide(alert(check="db"), Pass(T0)) is None
    assert stage.decide(alert(check="api", notified_at=T0), Pass(T0)) is None
    assert FlappingStage(lambda _: True).decide(alert(rule="slow"), Pass(T0)) is None


# -- inhibition -------------------------------------------------------------------------------


RULE = InhibitRule.model_validate(
    {
        "source_match": ["alertname=NodeDown"],
        "target_match": ["severity=warning"],
        "equal": ["cluster"],
    }
)


def test_inhibition_needs_the_equal_labels_to_match_the_source() -> None:
    firing = [{"alertname": "NodeDown", "cluster": "a"}]
    stage = InhibitionStage([RULE], firing)
    same = alert("DiskFull", labels={"severity": "warning", "cluster": "a"})
    other = alert("DiskFull", labels={"severity": "warning", "cluster": "b"})
    assert stage.decide(same, Pass(T0)) == "suppressed: inhibited by NodeDown"
    assert stage.decide(other, Pass(T0)) is None


def test_inhibition_names_another_alert_when_the_source_has_no_alertname() -> None:
    stage = InhibitionStage([RULE.model_copy(update={"equal": []})], [{"alertname": "NodeDown"}])
    target = alert("DiskFull", labels={"severity": "warning"})
    assert stage.decide(target, Pass(T0)) == "suppressed: inhibited by NodeDown"
    rule = InhibitRule.model_validate(
        {"source_match": ["cluster=a"], "target_match": ["severity=warning"]}
    )
    nameless = InhibitionStage([rule], [{"cluster": "a"}])
    assert nameless.decide(target, Pass(T0)) == "suppressed: inhibited by another alert"


def test_without_rules_or_sources_nothing_is_inhibited() -> None:
    target = alert("DiskFull", labels={"severity": "warning", "cluster": "a"})
    assert (
        InhibitionStage([], [{"alertname": "NodeDown", "cluster": "a"}]).decide(target, Pass(T0))
        is None
    )
    assert InhibitionStage([RULE], []).decide(target, Pass(T0)) is None


# -- composition ------------------------------------------------------------------------------


def test_the_first_reason_wins_and_the_stages_after_it_are_not_asked() -> None:
    first, second, third = Recording(None), Recording("suppressed: two"), Recording("three")
    suppression = Suppression([first, second, third], Recording(None))
    assert suppression.decide(alert(), Pass(T0)) == Verdict("suppressed: two", None)
    assert (first.asked, second.asked, third.asked) == (1, 1, 0)


def test_silences_are_asked_whatever_the_reason() -> None:
    silences = Recording("s1")
    verdict = Suppression([Recording("suppressed: x")], silences).decide(alert(), Pass(T0))
    assert verdict == Verdict("suppressed: x", "s1") and silences.asked == 1
    assert Suppression([Recording(None)], Recording(None)).decide(alert(), Pass(T0)) == Verdict()


def test_an_alert_is_quiet_when_suppressed_or_silenced() -> None:
    assert Verdict("suppressed: x").quiet and Verdict(None, "s1").quiet
    assert not Verdict().quiet


async def test_a_changed_verdict_is_recorded_once_with_a_silenced_event(db: Database) -> None:
    stored = await stored_alert(db)
    at = Pass(T0)
    silenced = Suppression([Recording("suppressed: x")], Recording("s1"))
    assert await silenced.apply(db, stored, at) == Verdict("suppressed: x", "s1")
    assert (stored.suppressed_reason, stored.silenced_by) == ("suppressed: x", "s1")
    await silenced.apply(db, stored, at)  # unchanged: nothing written again
    found = await alert_store.get_alert(db, stored.id)
    assert found is not None
    row, events = found
    assert (row.suppressed_reason, row.silenced_by) == ("suppressed: x", "s1")
    assert [(e.kind, e.comment) for e in events if e.kind == "silenced"] == [("silenced", "s1")]

    free = Suppression([Recording(None)], Recording(None))
    assert await free.apply(db, stored, Pass(T0 + HOUR)) == Verdict()
    found = await alert_store.get_alert(db, stored.id)
    assert found is not None
    row, events = found
    assert (row.suppressed_reason, row.silenced_by) == (None, None)
    assert [e.kind for e in events].count("silenced") == 1


async def test_a_reason_alone_is_recorded_without_a_silenced_event(db: Database) -> None:
    stored = await stored_alert(db)
    await Suppression([Recording("suppressed: x")], Recording(None)).apply(db, stored, Pass(T0))
    found = await alert_store.get_alert(db, stored.id)
    assert found is not None
    row, events = found
    assert row.suppressed_reason == "suppressed: x" and row.silenced_by is None
    assert "silenced" not in [e.kind for e in events]
