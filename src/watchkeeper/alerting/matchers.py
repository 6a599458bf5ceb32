"""Label matchers as amtool writes them (`check=api`, `severity=~crit.*`, `!=`, `!~`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_MATCHER = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$"
)


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def __post_init__(self) -> None:
        if self.is_regex:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.value!r} for {self.name}: {exc}") from None

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        # Regexes are anchored, as in Prometheus and Alertmanager.
        hit = (
            re.fullmatch(self.value, actual) is not None if self.is_regex else actual == self.value
        )
        return hit if self.is_equal else not hit

    def __str__(self) -> str:
        op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
        return f"{self.name}{op[self.is_regex, self.is_equal]}{self.value}"

    def as_dict(self) -> dict[str, Any]:
        """Alertmanager's shape."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


def parse_matcher(item: str | dict[str, Any]) -> Matcher:
    """`"check=api"` or Alertmanager's `{"name", "value", "isRegex", "isEqual"}`."""
    if isinstance(item, dict):
        try:
            return Matcher(
                name=str(item["name"]),
                value=str(item["value"]),
                is_regex=bool(item.get("isRegex", False)),
                is_equal=bool(item.get("isEqual", True)),
            )
        except KeyError as exc:
            raise ValueError(f"matcher object needs {exc.args[0]!r}") from None
    match = _MATCHER.match(item)
    if not match:
        raise ValueError(f"expected a matcher like check=api or severity=~crit.*, got {item!r}")
    op, value = match.group("op"), match.group("value")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return Matcher(match.group("name"), value, is_regex="~" in op, is_equal=op[0] == "=")


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
