"""The `depends_on` graph: who blocks whom, transitively."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping


class DependencyGraph:
    """Edges point from a check to what it depends on. The config loader rejects cycles."""

    def __init__(self, depends_on: Mapping[str, list[str]]) -> None:
        self._deps = {name: list(deps) for name, deps in depends_on.items()}
        self._dependents: dict[str, set[str]] = {}
        for name, deps in self._deps.items():
            for dep in deps:
                self._dependents.setdefault(dep, set()).add(name)

    def first_blocker(self, name: str, is_down: Callable[[str], bool]) -> str | None:
        """The nearest dependency of `name` (breadth-first, transitively) that is down."""
        seen = {name}
        queue = deque(self._deps.get(name, ()))
        while queue:
            dep = queue.popleft()
            if dep in seen:
                continue
            seen.add(dep)
            if is_down(dep):
                return dep
            queue.extend(self._deps.get(dep, ()))
        return None

    def dependents_of(self, name: str) -> set[str]:
        """Every check that depends on `name`, directly or through others."""
        found: set[str] = set()
        queue = deque(self._dependents.get(name, ()))
        while queue:
            dependent = queue.popleft()
            if dependent not in found:
                found.add(dependent)
                queue.extend(self._dependents.get(dependent, ()))
        return found
