"""Who an alert pages first, and by which policy (alerting/dispatch/targets)."""

from __future__ import annotations

from datetime import timedelta

from tests.alerting.factory import T0, alert, policy, settings, targets
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.dispatch.targets import Routing, unusable_policies
from watchkeeper.alerting.routes import Route

ONCALL = policy("oncall", [{"notify": ["pager"]}, {"after": "10m", "notify": ["boss"]}])


def test_an_alert_escalates_by_its_own_policy_else_the_default_one() -> None:
    other = policy("other", [{"notify": ["chat"]}])
    plain = targets(settings(default_escalation="oncall"), [ONCALL, other])
    assert plain.policy(alert()) is ONCALL
    assert plain.policy(alert(escalation_policy="other")) is other
    assert targets(settings(), [ONCALL]).policy(alert()) is None
    assert plain.policy(alert(escalation_policy="gone")) is None


def test_an_unusable_policy_is_as_if_the_alert_named_none() -> None:
    unusable = targets(settings(default_escalation="oncall"), [ONCALL], unusable=["oncall"])
    assert unusable.policy(alert(escalation_policy="oncall")) is None
    assert unusable.first_channels(alert(escalation_policy="oncall")) == ["ops"]


def test_the_first_page_goes_to_the_policys_first_step_else_the_routing() -> None:
    routed = targets(settings(), [ONCALL], channels=["ops", "chat"])
    assert routed.first_channels(alert(escalation_policy="oncall")) == ["pager"]
    assert routed.first_channels(alert()) == ["ops", "chat"]


def test_a_checks_own_notify_comes_before_the_routes_and_the_routes_before_everyone() -> None:
    routing = Routing(
        ["ops", "chat"],
        by_check={"api": ["api-team"], "db": None},
        by_rule={"slow": ["perf"]},
        routes=[Route.model_validate({"matchers": ["team=web"], "notify": ["web-team"]})],
    )
    assert routing.channels_for(alert(check="api", labels={"team": "web"})) == ["api-team"]
    assert routing.channels_for(alert(check="db", labels={"team": "web"})) == ["web-team"]
    assert routing.channels_for(alert(rule="slow")) == ["perf"]
    assert routing.channels_for(alert(rule="fast", labels={"team": "web"})) == ["web-team"]
    assert routing.channels_for(alert(labels={"team": "db"})) == ["ops", "chat"]
    assert Routing(["ops"]).channels_for(alert(check="api")) == ["ops"]


def test_a_policy_whose_delays_overflow_is_reported_and_unusable() -> None:
    near_the_end = Pass(T0.max.replace(tzinfo=T0.tzinfo) - timedelta(minutes=5))
    repeating = policy("repeating", [{"notify": ["pager"]}], repeat="1h")
    fine = policy("fine", [{"notify": ["pager"]}])
    assert unusable_policies({p.name: p for p in [ONCALL, repeating, fine]}, near_the_end) == {
        "oncall",
        "repeating",
    }
    assert set(near_the_end.found) == {
        ("escalation_policy", "oncall"),
        ("escalation_policy", "repeating"),
    }
    # What is reported broken says why: the overflow itself.
    assert all(isinstance(e, OverflowError) for e in near_the_end.found.values())
    at = Pass(T0)
    assert unusable_policies({"oncall": ONCALL, "repeating": repeating}, at) == set()
    assert at.found == {}
