"""How JSON columns (labels, annotations, payloads) are written and read: by pydantic-core's
encoder and parser, the ones that validate the API's bodies.

The standard library's `json.dumps` took ~2.5 µs for an alert's five labels and `json.loads`
~2.2 µs to read them back, about five and three times pydantic-core's: a burst of new alerts
writes two such columns per alert, and the dispatcher's pass over every open alert reads
three. The text differs only in spacing and in characters beyond ASCII written as they are
(both are JSON, and nothing compares the stored text); NaN and the infinities are written
as `json.dumps` writes them (`NaN`), and read back."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import PydanticSerializationError, from_json, to_json


def json_text(value: Any) -> str:
    """`value` as compact JSON text. What pydantic-core cannot write (a lone surrogate in a
    text, which UTF-8 cannot carry) is written, or refused, as `json.dumps` does it."""
    try:
        return to_json(value).decode()
    except PydanticSerializationError:
        return json.dumps(value)


def parse_json_text(text: str | bytes) -> Any:
    """The value of JSON text (as `json.loads`, NaN and the infinities included). What
    pydantic-core refuses (a lone surrogate escaped, as `json.dumps` writes it) is read, or
    refused, by `json.loads`."""
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


JSON_CODEC: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": parse_json_text}
"""The engines' JSON settings (`create_engine(..., **JSON_CODEC)`)."""
