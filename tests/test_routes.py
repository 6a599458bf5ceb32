"""Routing tree: first match wins, `continue` goes on, children before their parent."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from watchkeeper.alerting.routes import Route, route_channels, validate_channels

CRITICAL_DB = {"alertname": "db down", "check": "db", "severity": "critical", "component": "db"}
CRITICAL_API = {"alertname": "api down", "check": "api", "severity": "critical"}
HIGH_API = {"alertname": "api slow", "check": "api", "severity": "high"}
INFO = {"alertname": "cert renewed", "check": "tls", "severity": "info"}


def tree(text: str) -> list[Route]:
    data: list[dict[str, Any]] = yaml.safe_load(text)
    return [Route.model_validate(item) for item in data]


def test_a_critical_alert_goes_to_the_pager_only_when_the_first_route_stops() -> None:
    routes = tree(
        """
        - matchers: [severity=critical]
          notify: [pager]
        - notify: [chat]
        """
    )
    assert route_channels(routes, CRITICAL_API) == ["pager"]
    assert route_channels(routes, HIGH_API) == ["chat"]


def test_continue_also_tries_the_following_routes() -> None:
    routes = tree(
        """
        - matchers: [severity=critical]
          notify: [pager]
          continue: true
        - matchers: ['severity=~critical|high']
          notify: [chat, pager]
        - notify: [email]
        """
    )
    assert routes[0].continue_ is True
    assert route_channels(routes, CRITICAL_API) == ["pager", "chat"]  # deduplicated, in order
    assert route_channels(routes, HIGH_API) == ["chat", "pager"]
    assert route_channels(routes, INFO) == ["email"]


def test_a_matching_child_route_replaces_its_parents_channels() -> None:
    routes = tree(
        """
        - matchers: [severity=critical]
          notify: [pager]
          routes:
            - matchers: [component=db]
              notify: [dba-pager]
            - matchers: [check=api]
              notify: [api-team]
              continue: true
            - matchers: ['check=~api|web']
              notify: [web-team]
        """
    )
    assert route_channels(routes, CRITICAL_DB) == ["dba-pager"]
    assert route_channels(routes, CRITICAL_API) == ["api-team", "web-team"]
    assert route_channels(routes, {**CRITICAL_API, "check": "tls"}) == ["pager"]
    assert route_channels(routes, HIGH_API) is None


def test_children_nest_to_any_depth() -> None:
    routes = tree(
        """
        - matchers: [severity=critical]
          notify: [pager]
          routes:
            - matchers: [check=db]
              notify: [dba]
              routes:
                - matchers: [component=db]
                  notify: [dba-oncall]
        """
    )
    assert route_channels(routes, CRITICAL_DB) == ["dba-oncall"]
    assert route_channels(routes, {**CRITICAL_DB, "component": "replica"}) == ["dba"]


def test_no_matching_route_means_none_so_the_default_applies() -> None:
    routes = tree(
        """
        - matchers: [severity=critical]
          notify: [pager]
        """
    )
    assert route_channels(routes, HIGH_API) is None
    assert route_channels([], HIGH_API) is None


def test_a_matching_route_without_channels_drops_the_alert() -> None:
    routes = tree(
        """
        - matchers: [severity=info]
        - notify: [chat]
        """
    )
    assert route_channels(routes, INFO) == []
    assert route_channels(routes, HIGH_API) == ["chat"]


def test_unknown_channels_are_reported_with_their_path() -> None:
    routes = tree(
        """
        - matchers: [severity=critical]
          notify: [chat]
        - matchers: [check=db]
          notify: [chat, email]
          routes:
            - notify: [pager]
            - notify: [chat, sms]
        """
    )
    assert validate_channels(routes, {"chat", "email"}) == [
        "routes[1].routes[0].notify: unknown channel 'pager'",
        "routes[1].routes[1].notify: unknown channel 'sms'",
    ]
    assert validate_channels(routes, {"chat", "email", "pager", "sms"}) == []
    assert validate_channels(routes[1:], {"chat"}, path="alerting.routes") == [
        "alerting.routes[0].notify: unknown channel 'email'",
        "alerting.routes[0].routes[0].notify: unknown channel 'pager'",
        "alerting.routes[0].routes[1].notify: unknown channel 'sms'",
    ]


def test_the_continue_key_parses_and_dumps_under_its_yaml_name() -> None:
    route = Route.model_validate({"notify": ["chat"], "continue": True})
    assert route.continue_ is True
    assert Route(notify=["chat"], continue_=True).continue_ is True
    assert Route.model_validate({"notify": ["chat"]}).continue_ is False
    assert route.model_dump(by_alias=True)["continue"] is True


def test_bad_routes_are_refused_at_load_time() -> None:
    with pytest.raises(ValidationError, match="expected a matcher like check=api"):
        Route.model_validate({"matchers": ["severity"], "notify": ["chat"]})
    with pytest.raises(ValidationError, match=r"routes\.0\.matchers\.0"):
        Route.model_validate({"routes": [{"matchers": ["check=~(db"]}]})
    with pytest.raises(ValidationError, match=r"notify\.0"):
        Route.model_validate({"notify": ["Pager Duty"]})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Route.model_validate({"notify": ["chat"], "receiver": "chat"})
