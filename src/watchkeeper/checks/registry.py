"""Check types by their config `type`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext

CHECK_TYPES: dict[str, type[Check[Any]]] = {}


def register(cls: type[Check[Any]]) -> type[Check[Any]]:
    """Class decorator adding a check type to the registry under `cls.type`."""
    CHECK_TYPES[cls.type] = cls
    return cls


def config_models() -> tuple[type[CheckConfigBase], ...]:
    return tuple(cls.config_model for cls in CHECK_TYPES.values())


def build_check(config: CheckConfigBase, context: CheckContext) -> Check[Any]:
    return CHECK_TYPES[config.type](config, context)


CheckFactory = Callable[[CheckConfigBase, CheckContext], Check[Any]]
