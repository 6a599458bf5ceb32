"""An Alertmanager-style routing tree: which notification channels an alert goes to.

Routes are tried in order. A route matches when all of its `matchers` match the alert's
labels (no matchers: it matches everything). A matching route first offers the alert to its
child `routes`, by the same rules; if no child matched, the route's own `notify` channels
are used. Among siblings the first matching route wins, unless it sets `continue: true`,
in which case the following siblings are tried as well and their channels added.

A matching route whose `notify` is empty (and whose children do not match) routes the
alert to no channel at all: that is how to drop alerts on purpose. When no route matches,
`route_channels` returns None and the caller falls back to its default (every channel).

Pure: config models and functions over label dicts.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, PrivateAttr

from watchkeeper.alerting.matchers import Matcher, matches_all, parse_matcher
from watchkeeper.core.model import Name, StrictModel


def _valid_matcher(value: str) -> str:
    parse_matcher(value)  # raises ValueError saying what is wrong
    return value


MatcherText = Annotated[str, AfterValidator(_valid_matcher)]


class Route(StrictModel):
    """One node of the routing tree; `continue` is the YAML key for `continue_`."""

    model_config = ConfigDict(populate_by_name=True)

    matchers: list[MatcherText] = []
    notify: list[Name] = []
    # Separate validation/serialization aliases (not `alias=`) keep `continue_` as the
    # keyword type checkers see, so `Route(continue_=True)` type-checks too.
    continue_: bool = Field(False, validation_alias="continue", serialization_alias="continue")
    routes: list[Route] = []

    _matchers: list[Matcher] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any, /) -> None:
        self._matchers = [parse_matcher(m) for m in self.matchers]

    def matches(self, labels: dict[str, str]) -> bool:
        return matches_all(self._matchers, labels)


def route_channels(routes: list[Route], labels: dict[str, str]) -> list[str] | None:
    """The channels an alert with `labels` goes to, deduplicated in order of first mention.

    None when no route matched (the caller's default applies); [] when a matching route
    names no channel.
    """
    channels = _walk(routes, labels)
    return None if channels is None else list(dict.fromkeys(channels))


def _walk(routes: list[Route], labels: dict[str, str]) -> list[str] | None:
    matched = False
    channels: list[str] = []
    for route in routes:
        if not route.matches(labels):
            continue
        matched = True
        below = _walk(route.routes, labels)
        channels.extend(route.notify if below is None else below)
        if not route.continue_:
            break
    return channels if matched else None


def validate_channels(routes: list[Route], known: set[str], *, path: str = "routes") -> list[str]:
    """One error per channel name in the tree that is not in `known`, with where it is.

    E.g. `routes[1].routes[0].notify: unknown channel 'pager'`; `path` names the list.
    """
    errors: list[str] = []
    for i, route in enumerate(routes):
        here = f"{path}[{i}]"
        errors.extend(
            f"{here}.notify: unknown channel {channel!r}"
            for channel in route.notify
            if channel not in known
        )
        errors.extend(validate_channels(route.routes, known, path=f"{here}.routes"))
    return errors
