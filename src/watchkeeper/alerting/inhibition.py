"""Inhibit rules, as in Alertmanager: a firing source alert mutes matching target alerts.

A rule inhibits a target when some firing source alert matches `source_match`, the target
matches `target_match`, and every label named in `equal` has the same value on both (a
label missing on both sides counts as equal, as in Alertmanager, where a missing label and
an empty value are the same).

An alert never inhibits itself. Following Alertmanager, when the target also matches the
rule's source side, sources that also match the target side are skipped too; otherwise two
alerts that each match both sides (say two `severity=critical` alerts under a rule from
critical to `severity=~critical|high`) would inhibit each other and nobody would be told.

Pure: the caller passes the labels of the currently firing alerts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PrivateAttr, StringConstraints

from watchkeeper.alerting.matchers import Matcher, matches_all, parse_matcher
from watchkeeper.core.model import StrictModel


def _valid_matcher(value: str) -> str:
    parse_matcher(value)  # raises ValueError saying what is wrong
    return value


MatcherText = Annotated[str, AfterValidator(_valid_matcher)]
LabelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class InhibitRule(StrictModel):
    """While a source alert fires, mute target alerts sharing its `equal` labels."""

    source_match: list[MatcherText] = Field(min_length=1)
    target_match: list[MatcherText] = Field(min_length=1)
    equal: list[LabelName] = []

    _source: list[Matcher] = PrivateAttr(default_factory=list)
    _target: list[Matcher] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        self._source = [parse_matcher(m) for m in self.source_match]
        self._target = [parse_matcher(m) for m in self.target_match]

    def source_matches(self, labels: dict[str, str]) -> bool:
        return matches_all(self._source, labels)

    def target_matches(self, labels: dict[str, str]) -> bool:
        return matches_all(self._target, labels)

    def equal_labels(self, source: dict[str, str], target: dict[str, str]) -> bool:
        return all(source.get(name, "") == target.get(name, "") for name in self.equal)

    def inhibits(self, source: dict[str, str], target: dict[str, str]) -> bool:
        """Whether a firing alert with labels `source` mutes one with labels `target`."""
        if source == target or not self.target_matches(target):
            return False
        if not self.source_matches(source) or not self.equal_labels(source, target):
            return False
        # Two alerts that both match both sides never inhibit each other.
        return not (self.source_matches(target) and self.target_matches(source))


def inhibited_by(
    rules: Iterable[InhibitRule],
    target_labels: dict[str, str],
    firing_source_labels: Iterable[dict[str, str]],
) -> dict[str, str] | None:
    """The labels of the first firing alert that inhibits the target, or None.

    `firing_source_labels` is read once, in order; it may include the target itself.
    """
    candidates = [rule for rule in rules if rule.target_matches(target_labels)]
    if not candidates:
        return None
    for source in firing_source_labels:
        if any(rule.inhibits(source, target_labels) for rule in candidates):
            return source
    return None
