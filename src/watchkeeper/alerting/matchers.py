"""Label matchers as amtool writes them (`check=api`, `severity=~crit.*`, `!=`, `!~`).

Regexes have Alertmanager's semantics: RE2 syntax, anchored at both ends (`^(?:pattern)$`),
and matched by RE2 (`google-re2`), whose time is linear in the label's length. Python's `re`
backtracks: `(a|a)+c` against 27 times `a` took 10 s of the event loop, and a matcher is data
any operator (or API client) writes. A pattern RE2 cannot compile (look-arounds,
back-references) is a ValueError naming it, checked when the matcher is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import re2

_MATCHER = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>.*?)\s*$"
)

MAX_PATTERN = 4096
"""Characters in one regex matcher (RE2 also refuses programs over its 8 MB memory budget)."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is raised to the caller, who says it once
    return options


def compile_anchored(pattern: str) -> Any:
    """The RE2 program for `pattern`, anchored as Alertmanager anchors it; ValueError saying
    why RE2 cannot compile it."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"{len(pattern)} characters long; at most {MAX_PATTERN}")
    try:
        return re2.compile(_utf8(f"^(?:{pattern})$"), _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def _utf8(text: str) -> bytes:
    # JSON may carry lone surrogates (`\ud800`): RE2 gets them as invalid UTF-8 bytes
    # instead of the encoder raising in the middle of a dispatcher pass.
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _regex: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.is_regex:
            try:
                regex = compile_anchored(self.value)
            except ValueError as exc:
                raise ValueError(
                    f"invalid regex {self.value!r} for {self.name} (RE2 syntax): {exc}"
                ) from None
            object.__setattr__(self, "_regex", regex)

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        hit = (
            self._regex.search(_utf8(actual)) is not None if self.is_regex else actual == self.value
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
