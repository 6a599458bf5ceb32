"""Assertions on a JSON document: a small JSONPath subset and comparison expressions.

Paths: `$` followed by any number of `.key`, `[index]` (negative counts from the end) and
`['key']` / `["key"]` steps, e.g. `$.db.latency_ms`, `$.items[0].name`, `$['key with space']`.
Wildcards, recursive descent and filters are not supported: each path names one value.

Expected values: a literal (string, number, boolean, null) must equal the value found, or a
string starting with an operator compares: `< 200`, `<= 1.5`, `> 0`, `>= 3`, `== ok`, `!= DOWN`.
`<`-style operators need a number on both sides; `==`/`!=` compare numbers numerically and
anything else by type and value. To match text that starts with an operator, write `== <text>`.

Everything here is parsed once, when the config is loaded; `evaluate` is what runs per request.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

JsonScalar = str | int | float | bool | None
"""A value an assertion may expect (what YAML can give for one config entry)."""

JsonPath = tuple[str | int, ...]
"""A parsed path: dict keys (str) and list indexes (int), applied from the document root."""

MISSING: Final = object()
"""What `resolve` returns for a path that leads nowhere (JSON null is a found None)."""

# Dot-notation keys: anything but the characters that delimit steps or belong to JSONPath
# features we do not support. Other keys go in brackets: $['a.b'].
_DOT_KEY = re.compile(r"[^.\[\]'\"\s*()?@,:]+")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED = re.compile(r"""\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]""")
_ESCAPE = re.compile(r"\\(.)")
_COMPARISON = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(.*?)\s*$", re.DOTALL)
# Characters that only occur in JSONPath features beyond our subset.
_UNSUPPORTED = frozenset("*?@:,()")
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$")

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def parse_path(text: str) -> JsonPath:
    """Parse a path like `$.items[0]['a b']`; raise ValueError saying what is wrong and where."""
    if not text.startswith("$"):
        raise ValueError(f"JSONPath {text!r} must start with '$'")
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        if text.startswith("..", pos):
            raise ValueError(f"JSONPath {text!r}: recursive descent '..' is not supported")
        if text[pos] == ".":
            match = _DOT_KEY.match(text, pos + 1)
            if match is None:
                raise ValueError(_unexpected(text, pos + 1, "a key name after '.'"))
            steps.append(match.group())
            pos = match.end()
        elif text[pos] == "[":
            if (match := _INDEX.match(text, pos)) is not None:
                steps.append(int(match.group(1)))
            elif (match := _QUOTED.match(text, pos)) is not None:
                raw = match.group(1) if match.group(1) is not None else match.group(2)
                steps.append(_ESCAPE.sub(r"\1", raw))
            else:
                end = text.find("]", pos)
                inner = text[pos + 1 : end if end >= 0 else len(text)]
                if any(ch in inner for ch in _UNSUPPORTED):
                    raise ValueError(_unsupported(text))
                raise ValueError(
                    _unexpected(text, pos + 1, "an index like [0] or a quoted key like ['a b']")
                )
            pos = match.end()
        else:
            raise ValueError(_unexpected(text, pos, "'.' or '['"))
    return tuple(steps)


def _unexpected(text: str, pos: int, expected: str) -> str:
    if pos < len(text) and text[pos] in _UNSUPPORTED:
        return _unsupported(text)
    found = repr(text[pos]) if pos < len(text) else "the end"
    return f"JSONPath {text!r}: expected {expected} at position {pos}, found {found}"


def _unsupported(text: str) -> str:
    return (
        f"JSONPath {text!r}: wildcards, filters, slices and unions are not supported;"
        " a path must name exactly one value"
    )


def resolve(document: Any, path: JsonPath) -> Any:
    """The value at `path` in `document`, or the `MISSING` sentinel when there is none."""
    value = document
    for step in path:
        if isinstance(step, str):
            if not isinstance(value, dict):
                return MISSING
            value = value.get(step, MISSING)
            if value is MISSING:
                return MISSING
        else:
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return MISSING
            value = value[step]
    return value


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a value must be: `op` is "literal" or a comparison operator."""

    op: str
    operand: JsonScalar
    text: str
    """How the expectation reads in a failure reason: `"UP"`, `< 200`."""


def parse_expectation(value: JsonScalar) -> Expectation:
    """Read an expected value from config; raise ValueError for a malformed comparison."""
    if not isinstance(value, str):
        return Expectation("literal", value, format_value(value))
    match = _COMPARISON.match(value)
    if match is None:
        return Expectation("literal", value, format_value(value))
    op, raw = match.groups()
    if not raw:
        raise ValueError(f"comparison {value!r} needs a value after {op!r}")
    operand = _parse_operand(raw, value)
    if op in _ORDERING and not _is_number(operand):
        raise ValueError(
            f"comparison {value!r}: {op!r} needs a number; to match text starting"
            f" with {op!r}, write '== {value.strip()}'"
        )
    return Expectation(op, operand, f"{op} {raw}")


def _parse_operand(raw: str, whole: str) -> JsonScalar:
    if raw.startswith('"'):
        try:
            text = json.loads(raw)
        except ValueError:
            text = None
        if not isinstance(text, str):
            raise ValueError(f"comparison {whole!r}: {raw} is not a valid quoted string")
        return text
    if _NUMBER.match(raw):
        return float(raw) if any(ch in raw for ch in ".eE") else int(raw)
    return {"true": True, "false": False, "null": None}.get(raw, raw)


def _is_number(value: Any) -> bool:
    # bool is an int in Python, but true is not 1 in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(actual: Any, expected: JsonScalar) -> bool:
    if _is_number(actual) and _is_number(expected):
        return bool(actual == expected)
    return type(actual) is type(expected) and actual == expected


def matches(expectation: Expectation, actual: Any) -> bool:
    """Whether `actual` (a value from a parsed JSON document) meets `expectation`."""
    op = expectation.op
    if op == "literal" or op == "==":
        return _same(actual, expectation.operand)
    if op == "!=":
        return not _same(actual, expectation.operand)
    return _is_number(actual) and _ORDERING[op](actual, expectation.operand)


def format_value(value: Any, limit: int = 60) -> str:
    """A JSON rendering of `value` for reasons: strings quoted, long values cut."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Assertion:
    """One `path: expected` entry of `expect.json`, parsed."""

    path_text: str
    path: JsonPath
    expectation: Expectation


def compile_assertions(spec: Mapping[str, JsonScalar]) -> tuple[Assertion, ...]:
    """Parse every `path: expected` pair; raise ValueError naming the first bad one."""
    assertions = []
    for path_text, expected in spec.items():
        assertions.append(Assertion(path_text, parse_path(path_text), parse_expectation(expected)))
    return tuple(assertions)


def failure(assertion: Assertion, document: Any) -> str | None:
    """Why `document` fails `assertion` (e.g. `$.status is "DOWN", expected "UP"`), or None."""
    actual = resolve(document, assertion.path)
    if actual is MISSING:
        return f"{assertion.path_text} not found"
    if matches(assertion.expectation, actual):
        return None
    return f"{assertion.path_text} is {format_value(actual)}, expected {assertion.expectation.text}"


def evaluate(assertions: tuple[Assertion, ...], document: Any) -> list[str]:
    """Failure reasons of every assertion `document` does not meet, in config order."""
    return [
        reason for assertion in assertions if (reason := failure(assertion, document)) is not None
    ]


__all__ = [
    "MISSING",
    "Assertion",
    "Expectation",
    "JsonPath",
    "JsonScalar",
    "compile_assertions",
    "evaluate",
    "failure",
    "format_value",
    "matches",
    "parse_expectation",
    "parse_path",
    "resolve",
]
