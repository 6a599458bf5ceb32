"""Recovery action types by their config `type`.

Deliberately the same surface as `core/registry.py` (being added on another branch:
`Registry(what)`, `register`, `get`, `types`, `models`, `autoload`), so switching to it is
an import change.
"""

from __future__ import annotations

import builtins
import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class Pluggable(Protocol):
    """What a registered class declares: its config `type` and the model of its config."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[Any]]


T = TypeVar("T", bound=Pluggable)


class Registry(Generic[T]):
    """Classes of one kind (`what`, for messages) by their `type` name."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._classes: dict[str, type[T]] = {}
        self.types: Mapping[str, type[T]] = MappingProxyType(self._classes)
        """Read-only view of the registered classes by type name."""

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator adding `cls` under `cls.type`."""
        self._classes[cls.type] = cls
        return cls

    def get(self, name: str) -> type[T]:
        """The class registered as `name`; KeyError if there is none."""
        return self._classes[name]

    def models(self) -> tuple[type[Any], ...]:
        """The config model of every registered class, in registration order."""
        return tuple(cls.config_model for cls in self._classes.values())


def autoload(package: str, path: Iterable[str], skip: Iterable[str] = ("base", "registry")) -> None:
    """Import every public module of `package` (found on its `__path__`) except `skip`."""
    skipped = set(skip)
    for module in pkgutil.iter_modules(path):
        if not module.name.startswith("_") and module.name not in skipped:
            importlib.import_module(f"{package}.{module.name}")
