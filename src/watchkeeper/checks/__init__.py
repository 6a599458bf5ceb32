"""Check types. Importing this package registers every built-in type: each module in this
folder that is not `base` or `registry` defines one type with `@register`."""

import importlib
import pkgutil

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import CHECK_TYPES, build_check, config_models, register

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CHECK_TYPES",
    "Check",
    "CheckConfigBase",
    "CheckContext",
    "build_check",
    "config_models",
    "register",
]
