"""Check types by their config `type`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.core.registry import Registry

CHECKS: Registry[Check[Any]] = Registry("check")
"""Every check type; filled by `@register` when `watchkeeper.checks` imports its modules."""

CHECK_TYPES = CHECKS.types
register = CHECKS.register


def config_models() -> tuple[type[CheckConfigBase], ...]:
    """The config model of every check type (the members of the config's tagged union)."""
    return CHECKS.models()


def build_check(config: CheckConfigBase, context: CheckContext) -> Check[Any]:
    """The check that `config` describes."""
    return CHECKS.get(config.type)(config, context)


CheckFactory = Callable[[CheckConfigBase, CheckContext], Check[Any]]
