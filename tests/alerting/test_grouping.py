"""Which never-paged alerts page together, and when (alerting/dispatch/grouping)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from tests.alerting.factory import T0, alert, policy, settings, targets
from watchkeeper.alerting.dispatch.grouping import Grouping

SLOW = policy("slow", [{"after": "2m", "notify": ["pager"]}])


def stored_group(last_notified_at: datetime | None) -> SimpleNamespace:
    return SimpleNamespace(last_notified_at=last_notified_at)


def test_without_group_by_each_alert_is_its_own_group() -> None:
    grouping = Grouping(targets(settings()))
    assert grouping.key(alert("A", id="1")) == "alert:1"
    assert grouping.key(alert("B", id="2")) == "alert:2"


def test_alerts_group_by_their_first_channels_and_group_by_values() -> None:
    grouping = Grouping(
        targets(settings(group_by=["severity", "zone"]), [SLOW], channels=["ops", "chat"])
    )
    a = alert("A", labels={"severity": "critical", "zone": "eu"})
    assert grouping.key(a) == "group:chat,ops|severity=critical,zone=eu"
    b = alert("B", labels={"severity": "critical"})
    assert grouping.key(b) == "group:chat,ops|severity=critical,zone="
    paged = alert("C", labels={"severity": "critical", "zone": "eu"}, escalation_policy="slow")
    assert grouping.key(paged) == "group:pager|severity=critical,zone=eu"
    assert Grouping(targets(settings(group_by=["alertname"]))).key(a) == "group:ops|alertname=A"


def test_a_group_key_is_cut_to_what_is_stored() -> None:
    grouping = Grouping(targets(settings(group_by=["zone"])))
    key = grouping.key(alert(labels={"zone": "z" * 400}))
    assert len(key) == 255 and key.startswith("group:ops|zone=zzz")


def test_a_new_group_is_due_group_wait_after_its_first_member_started() -> None:
    grouping = Grouping(targets(settings(group_wait="30s")))
    members = [alert("A", started_at=T0 + timedelta(seconds=10)), alert("B", started_at=T0)]
    assert grouping.due(members, None) == T0 + timedelta(seconds=30)
    assert grouping.due(members, stored_group(None)) == T0 + timedelta(seconds=30)


def test_a_group_waits_for_the_latest_first_policy_step_of_its_members() -> None:
    grouping = Grouping(targets(settings(group_wait="30s"), [SLOW]))
    members = [
        alert("A", started_at=T0),
        alert("B", started_at=T0 + timedelta(minutes=1), escalation_policy="slow"),
    ]
    assert grouping.due(members, None) == T0 + timedelta(minutes=3)


def test_a_group_paged_before_waits_group_interval_after_its_last_page() -> None:
    grouping = Grouping(targets(settings(group_wait="30s", group_interval="5m")))
    members = [alert("A", started_at=T0 + timedelta(minutes=10))]
    assert grouping.due(members, stored_group(T0 + timedelta(minutes=8))) == T0 + timedelta(
        minutes=13
    )
    long_ago = stored_group(T0)
    assert grouping.due(members, long_ago) == T0 + timedelta(minutes=10, seconds=30)
