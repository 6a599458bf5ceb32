"""Check types. Importing this package registers every built-in type: each module in this
folder that is not `base` or `registry` defines one type with `@register`."""

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import CHECK_TYPES, build_check, config_models, register
from watchkeeper.core.registry import autoload

autoload(__name__, __path__)

__all__ = [
    "CHECK_TYPES",
    "Check",
    "CheckConfigBase",
    "CheckContext",
    "build_check",
    "config_models",
    "register",
]
