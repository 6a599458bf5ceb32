"""The JSONPath subset and comparison expressions behind `http` `expect.json`."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.checks._jsonpath import (
    MISSING,
    JsonScalar,
    compile_assertions,
    evaluate,
    format_value,
    matches,
    parse_expectation,
    parse_path,
    resolve,
)

DOC: dict[str, Any] = {
    "status": "UP",
    "db": {"latency_ms": 120, "ok": True, "replica": None},
    "items": [{"name": "first"}, {"name": "last"}],
    "key with space": 1.5,
    "a.b": "dotted",
    "it's": "quoted",
}


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$", ()),
        ("$.status", ("status",)),
        ("$.db.latency_ms", ("db", "latency_ms")),
        ("$.items[0].name", ("items", 0, "name")),
        ("$.items[-1]", ("items", -1)),
        ("$['key with space']", ("key with space",)),
        ('$["a.b"]', ("a.b",)),
        ("$['it\\'s']", ("it's",)),
        ("$.$ref", ("$ref",)),
        ("$.x-y[2]['z']", ("x-y", 2, "z")),
    ],
)
def test_supported_paths_parse_into_keys_and_indexes(text: str, steps: tuple[Any, ...]) -> None:
    assert parse_path(text) == steps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status", "must start with '$'"),
        ("$.", "expected a key name after '.' at position 2, found the end"),
        ("$.a b", "expected '.' or '[' at position 3, found ' '"),
        ("$..name", "recursive descent '..' is not supported"),
        ("$.items[*]", "wildcards, filters, slices and unions are not supported"),
        ("$.*", "wildcards, filters, slices and unions are not supported"),
        ("$.items[0:2]", "wildcards, filters, slices and unions are not supported"),
        ("$.items[?(@.x)]", "wildcards, filters, slices and unions are not supported"),
        ("$['open", "expected an index like [0] or a quoted key like ['a b'] at position 2"),
        ("$[x]", "expected an index like [0] or a quoted key like ['a b']"),
    ],
)
def test_unsupported_or_malformed_paths_are_rejected_with_a_clear_message(
    text: str, message: str
) -> None:
    with pytest.raises(ValueError, match="JSONPath") as caught:
        parse_path(text)

    assert message in str(caught.value)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("$.status", "UP"),
        ("$.db.latency_ms", 120),
        ("$.db.replica", None),
        ("$.items[1].name", "last"),
        ("$.items[-2].name", "first"),
        ("$['key with space']", 1.5),
        ("$['a.b']", "dotted"),
    ],
)
def test_paths_resolve_to_the_value_they_name(text: str, value: Any) -> None:
    assert resolve(DOC, parse_path(text)) == value


@pytest.mark.parametrize(
    "text", ["$.missing", "$.db.latency_ms.deeper", "$.items[2]", "$.items[-3]", "$.status[0]"]
)
def test_paths_that_lead_nowhere_resolve_to_missing_not_none(text: str) -> None:
    assert resolve(DOC, parse_path(text)) is MISSING


def test_an_index_does_not_look_up_a_string_key_nor_a_key_an_index() -> None:
    assert resolve({"0": "zero"}, parse_path("$[0]")) is MISSING
    assert resolve(["zero"], parse_path("$['0']")) is MISSING


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("UP", "UP", True),
        ("UP", "DOWN", False),
        (200, 200, True),
        (200, 200.0, True),
        (200, "200", False),
        ("200", 200, False),
        (True, True, True),
        (True, 1, False),
        (1, True, False),
        (None, None, True),
        (None, "null", False),
        ("< 200", 120, True),
        ("< 200", 200, False),
        ("<200", 199.9, True),
        ("<= 1.5", 1.5, True),
        ("> 0", 0, False),
        (">= 3", 3, True),
        (">= 3", "5", False),
        (">= 3", True, False),
        ("== ok", "ok", True),
        ("== 200", 200.0, True),
        ("== true", True, True),
        ('== "200"', "200", True),
        ('== "200"', 200, False),
        ("!= DOWN", "UP", True),
        ("!= DOWN", "DOWN", False),
        ("!= null", None, False),
        ("== <html>", "<html>", True),
    ],
)
def test_expected_values_match_by_equality_or_comparison(
    expected: JsonScalar, actual: Any, ok: bool
) -> None:
    assert matches(parse_expectation(expected), actual) is ok


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("<", "needs a value after '<'"),
        ("< fast", "'<' needs a number; to match text starting with '<', write '== < fast'"),
        (">= 1.2.3", "'>=' needs a number"),
        ('== "open', "is not a valid quoted string"),
    ],
)
def test_malformed_comparisons_are_rejected_with_a_clear_message(
    expected: str, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_expectation(expected)

    assert message in str(caught.value)


def test_failures_read_as_value_found_and_value_expected() -> None:
    assertions = compile_assertions(
        {
            "$.status": "DOWN",
            "$.db.latency_ms": "< 100",
            "$.db.missing": 1,
            "$.items[0].name": "first",
            "$.db.ok": False,
        }
    )

    assert evaluate(assertions, DOC) == [
        '$.status is "UP", expected "DOWN"',
        "$.db.latency_ms is 120, expected < 100",
        "$.db.missing not found",
        "$.db.ok is true, expected false",
    ]


def test_a_document_meeting_every_assertion_has_no_failures() -> None:
    assertions = compile_assertions({"$.status": "UP", "$['key with space']": "> 1"})

    assert evaluate(assertions, DOC) == []


def test_compiling_reports_the_first_bad_entry() -> None:
    with pytest.raises(ValueError, match=r"JSONPath '\$\.a\[': "):
        compile_assertions({"$.ok": True, "$.a[": 1})


def test_long_values_are_cut_in_reasons() -> None:
    text = format_value({"list": list(range(100))})

    assert len(text) == 60
    assert text.endswith("…")
    assert format_value("x") == '"x"'
    assert format_value(None) == "null"
