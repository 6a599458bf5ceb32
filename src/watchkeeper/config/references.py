"""Cross-references between configured objects, checked alike for the config file's objects
and those created over the API: each function returns what is wrong, or None."""

from __future__ import annotations

from collections.abc import Container, Iterable


def dependency_problem(name: str, depends_on: Iterable[str], checks: Container[str]) -> str | None:
    """What is wrong with the `depends_on` of the check `name`, given the checks that exist."""
    for dep in depends_on:
        if dep == name:
            return "a check cannot depend on itself"
        if dep not in checks:
            return f"no check named {dep!r}"
    return None


def unknown_channel(channels: Iterable[str], known: Container[str]) -> str | None:
    """The first of `channels` that is not a configured notification channel, as a message."""
    for channel in channels:
        if channel not in known:
            return f"no notification channel named {channel!r}"
    return None


def unknown_policy(name: str | None, known: Container[str]) -> str | None:
    """`name` (None: the default) when no escalation policy has it, as a message."""
    if name is not None and name not in known:
        return f"no escalation policy {name!r}"
    return None


def unknown_recovery(name: str | None, known: Container[str]) -> str | None:
    """`name` (a check's `recovery:`) when no recovery action has it, as a message."""
    if name is not None and name not in known:
        return f"no recovery action named {name!r}"
    return None
