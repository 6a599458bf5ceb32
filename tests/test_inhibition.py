"""Inhibit rules: a firing source alert mutes targets sharing its `equal` labels."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from watchkeeper.alerting.inhibition import InhibitRule, inhibited_by

DB_DOWN = {"alertname": "db down", "check": "db", "severity": "critical", "component": "storage"}
API_SLOW = {"alertname": "api slow", "check": "api", "severity": "high", "component": "storage"}
WEB_SLOW = {"alertname": "web slow", "check": "web", "severity": "high", "component": "frontend"}


def db_rule(equal: list[str] | None = None) -> InhibitRule:
    return InhibitRule.model_validate(
        {
            "source_match": ["check=db", "severity=critical"],
            "target_match": ["severity=high"],
            "equal": ["component"] if equal is None else equal,
        }
    )


def test_a_critical_db_alert_inhibits_high_alerts_of_the_same_component() -> None:
    assert inhibited_by([db_rule()], API_SLOW, [WEB_SLOW, DB_DOWN]) == DB_DOWN


def test_a_different_component_is_not_inhibited() -> None:
    assert inhibited_by([db_rule()], WEB_SLOW, [DB_DOWN, API_SLOW]) is None


def test_targets_and_sources_must_match_their_side() -> None:
    assert inhibited_by([db_rule()], {**API_SLOW, "severity": "low"}, [DB_DOWN]) is None
    assert inhibited_by([db_rule()], API_SLOW, [{**DB_DOWN, "severity": "high"}]) is None
    assert inhibited_by([db_rule()], API_SLOW, []) is None
    assert inhibited_by([], API_SLOW, [DB_DOWN]) is None


def test_a_label_missing_on_both_sides_counts_as_equal() -> None:
    source = {k: v for k, v in DB_DOWN.items() if k != "component"}
    target = {k: v for k, v in API_SLOW.items() if k != "component"}
    assert inhibited_by([db_rule()], target, [source]) == source
    # Missing on one side only is a difference.
    assert inhibited_by([db_rule()], API_SLOW, [source]) is None
    assert inhibited_by([db_rule()], target, [DB_DOWN]) is None


def test_without_equal_labels_any_matching_source_inhibits() -> None:
    assert inhibited_by([db_rule(equal=[])], WEB_SLOW, [DB_DOWN]) == DB_DOWN


def test_several_equal_labels_must_all_agree() -> None:
    rule = db_rule(equal=["component", "region"])
    source = {**DB_DOWN, "region": "eu"}
    assert inhibited_by([rule], {**API_SLOW, "region": "eu"}, [source]) == source
    assert inhibited_by([rule], {**API_SLOW, "region": "us"}, [source]) is None


def test_an_alert_never_inhibits_itself() -> None:
    rule = InhibitRule(source_match=["severity=~critical|high"], target_match=["severity=high"])
    assert inhibited_by([rule], API_SLOW, [API_SLOW]) is None
    assert inhibited_by([rule], API_SLOW, [dict(API_SLOW)]) is None


def test_alerts_matching_both_sides_do_not_inhibit_each_other() -> None:
    # As in Alertmanager: otherwise each would mute the other and nobody would be told.
    rule = InhibitRule(source_match=["severity=critical"], target_match=["severity=~critical|high"])
    other_critical = {**DB_DOWN, "check": "cache", "alertname": "cache down"}
    assert inhibited_by([rule], DB_DOWN, [other_critical]) is None
    assert inhibited_by([rule], other_critical, [DB_DOWN]) is None
    # A target matching only the target side is still inhibited by them.
    assert inhibited_by([rule], API_SLOW, [other_critical]) == other_critical


def test_the_first_inhibiting_source_is_returned_and_sources_are_read_once() -> None:
    second = {**DB_DOWN, "alertname": "db replica down"}
    seen: list[dict[str, str]] = []

    def firing() -> Iterator[dict[str, str]]:
        for labels in (WEB_SLOW, DB_DOWN, second):
            seen.append(labels)
            yield labels

    assert inhibited_by([db_rule()], API_SLOW, firing()) == DB_DOWN
    assert seen == [WEB_SLOW, DB_DOWN]


def test_rules_need_matchers_on_both_sides_and_valid_ones() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        InhibitRule(source_match=[], target_match=["severity=high"])
    with pytest.raises(ValidationError, match="expected a matcher like check=api"):
        InhibitRule(source_match=["critical"], target_match=["severity=high"])
    with pytest.raises(ValidationError, match=r"equal\.0"):
        InhibitRule(source_match=["check=db"], target_match=["severity=high"], equal=["a-b"])
