"""RuleService: rules with their series, and pushed samples."""

from __future__ import annotations

from datetime import timedelta

from watchkeeper.app import Runtime
from watchkeeper.services.rules import Sample


async def test_push_counts_what_was_accepted_and_what_a_rule_watches(runtime: Runtime) -> None:
    rules = runtime.services.rules
    at = runtime.clock.now() - timedelta(seconds=5)
    accepted, watched = rules.push(
        [
            Sample("queue.depth", 250, {"queue": "mail"}),
            Sample("queue.depth", 3, {"queue": "web"}, at),
            Sample("cpu", 0.5),
        ]
    )
    assert (accepted, watched) == (3, 2)
    await runtime.rules.evaluate()
    [queue] = rules.list_rules()
    assert queue["source"] == "config"
    states = {tuple(s["labels"].items()): s["state"] for s in queue["series"]}
    assert states == {(("queue", "mail"),): "firing", (("queue", "web"),): "inactive"}
    by_labels = {s["labels"]["queue"]: s for s in queue["series"]}
    assert by_labels["web"]["sampled_at"] == at
    assert by_labels["mail"]["sampled_at"] == runtime.clock.now()


async def test_a_rule_made_over_the_api_is_listed_as_such(runtime: Runtime) -> None:
    runtime.services.rules.is_managed = lambda name: name == "queue"
    assert [r["source"] for r in runtime.services.rules.list_rules()] == ["api"]
