"""Check types. Importing this package registers every built-in type."""

from watchkeeper.checks import command, http, system, tcp
from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import CHECK_TYPES, build_check, config_models, register

__all__ = [
    "CHECK_TYPES",
    "Check",
    "CheckConfigBase",
    "CheckContext",
    "build_check",
    "command",
    "config_models",
    "http",
    "register",
    "system",
    "tcp",
]
