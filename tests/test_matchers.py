"""Label matchers: RE2 regexes anchored like Alertmanager's, so no pattern an operator or an
API client writes can backtrack on the event loop."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.servers import WebhookReceiver, wait_until
from tests.support.service import running
from watchkeeper.alerting.matchers import Matcher, parse_matcher
from watchkeeper.config.loader import Config, ConfigError, parse_config

REDOS = "(a|a)+c"
"""Exponential for a backtracking engine: 27 times `a` took Python's `re` 10 s, each `a` more
doubles it; RE2 runs it in time linear in the label."""


def test_regex_matchers_are_run_by_re2() -> None:
    matcher = parse_matcher(f"redos=~{REDOS}")
    assert type(matcher._regex).__module__.startswith("re2")
    # 24 times `a`: about a second of backtracking for Python's re, nothing for RE2.
    assert not matcher.matches({"redos": "a" * 24})
    assert matcher.matches({"redos": "a" * 24 + "c"})


def test_regexes_have_alertmanagers_semantics_not_pythons() -> None:
    # RE2 (and Go) classes are ASCII: `\d` is [0-9], where Python's re takes any digit.
    assert not parse_matcher(r"n=~\d+").matches({"n": "٣"})
    assert parse_matcher(r"n=~\d+").matches({"n": "42"})
    # Anchored at both ends, as `^(?:pattern)$`: an alternation does not escape the anchors.
    alternation = parse_matcher("severity=~critical|high")
    assert alternation.matches({"severity": "high"})
    assert not alternation.matches({"severity": "highest"})
    assert not alternation.matches({"severity": "not critical"})
    assert not parse_matcher("x=~a").matches({"x": "a\n"})
    # An absent label is the empty string, as in Alertmanager.
    assert parse_matcher("team=~|ops").matches({})
    assert parse_matcher("team!~.+").matches({})


@pytest.mark.parametrize(
    "pattern", ["(?=look)ahead", r"(a)\1", "(?<!b)a", "x**", "a{1001}", "(unclosed"]
)
def test_a_pattern_re2_cannot_compile_is_a_value_error_naming_it(pattern: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"invalid regex {pattern!r} for x")):
        parse_matcher(f"x=~{pattern}")
    with pytest.raises(ValueError, match="RE2"):
        parse_matcher({"name": "x", "value": pattern, "isRegex": True})


def test_validate_names_the_file_and_line_of_a_pattern_re2_refuses() -> None:
    text = (
        "notifications:\n"  # 1
        "  - {name: ops, type: webhook, url: 'http://127.0.0.1:9/hook'}\n"  # 2
        "alerting:\n"  # 3
        "  routes:\n"  # 4
        "    - matchers: ['team=~(?=ops)']\n"  # 5
        "      notify: [ops]\n"  # 6
        "  inhibit_rules:\n"  # 7
        "    - source_match: ['check=db']\n"  # 8
        "      target_match: ['severity=~(a)\\1']\n"  # 9
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "wk.yaml")
    issues = [str(i) for i in caught.value.issues]
    assert len(issues) == 2, issues
    assert issues[0].startswith("wk.yaml:5: alerting.routes[0].matchers")
    assert "(?=ops)" in issues[0] and "RE2" in issues[0]
    assert issues[1].startswith("wk.yaml:9: alerting.inhibit_rules[0].target_match")


# --- properties ----------------------------------------------------------------------------

_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_PLAIN = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=20
)


def _atom() -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "b", "c", ".", "[ab]", "[^a]", r"\d", "x"])


def _simple_pattern() -> st.SearchStrategy[str]:
    """Patterns both engines read alike: literals, classes, groups, alternation and the
    plain quantifiers (no anchors, no Unicode classes, no look-arounds)."""
    return st.recursive(
        _atom(),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map(lambda p: f"{p[0]}|{p[1]}"),
            inner.map(lambda p: f"({p})"),
            st.tuples(inner.map(lambda p: f"(?:{p})"), st.sampled_from("*+?")).map("".join),
        ),
        max_leaves=6,
    )


@st.composite
def _matchers(draw: st.DrawFn) -> Matcher:
    is_regex = draw(st.booleans())
    value = draw(_simple_pattern() if is_regex else _PLAIN)
    return Matcher(draw(_NAMES), value, is_regex, draw(st.booleans()))


@settings(deadline=None)  # a loaded CI machine is no failure of the property
@given(_matchers())
def test_a_matcher_reads_back_as_itself_from_its_text(matcher: Matcher) -> None:
    # Quoted values lose their quotes on parsing (amtool's `name="value"`).
    if len(matcher.value) >= 2 and matcher.value[0] == matcher.value[-1] in "\"'":
        return
    assert parse_matcher(str(matcher)) == matcher
    assert parse_matcher(matcher.as_dict()) == matcher


@settings(deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda n, op, v: f"{n}{op}{v}", _NAMES, st.sampled_from(["=~", "!~"]), st.text()),
        st.dictionaries(
            st.sampled_from(["name", "value", "isRegex", "isEqual", "other"]),
            st.one_of(st.text(max_size=20), st.booleans(), st.none(), st.integers()),
        ),
    )
)
def test_parsing_anything_raises_nothing_but_value_error(item: str | dict[str, object]) -> None:
    try:
        matcher = parse_matcher(item)
    except ValueError:
        return
    matcher.matches({matcher.name: "x\ud800y"})


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_simple_pattern(), st.text(alphabet="abcx1", max_size=10))
def test_re2_agrees_with_pythons_re_on_simple_patterns(pattern: str, value: str) -> None:
    expected = re.fullmatch(pattern, value) is not None
    assert parse_matcher({"name": "l", "value": pattern, "isRegex": True}).matches(
        {"l": value}
    ) is (expected)


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture
async def client(tmp_path: Path, receiver: WebhookReceiver) -> AsyncIterator[httpx.AsyncClient]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
        }
    )
    async with running(config) as service:
        yield service.client


async def test_a_backtracking_silence_neither_stalls_nor_stops_paging(
    client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    silence = await client.post(
        "/api/v1/silences", json={"matchers": [f"redos=~{REDOS}"], "ends_at": ends}
    )
    assert silence.status_code == 201, silence.text
    # Each pass of the dispatcher matches the silence against the label: with Python's re,
    # 26 times `a` held the event loop for seconds per alert and per pass.
    posted = await client.post(
        "/api/v1/alerts",
        json=[
            {"name": "loud", "labels": {"redos": "a" * 26}},
            {"name": "quiet", "labels": {"redos": "a" * 26 + "c"}},
        ],
    )
    assert posted.status_code == 200, posted.text
    (paged,) = await receiver.wait_for(lambda r: r.accepted("alert.firing"), 10, "a page")
    assert paged.payload["alert"]["name"] == "loud"
    quiet = next(a for a in posted.json() if a["name"] == "quiet")

    async def silenced_by() -> object:
        return (await client.get(f"/api/v1/alerts/{quiet['id']}")).json()["silenced_by"]

    assert await wait_until(silenced_by, 10, "the silence applied") == silence.json()["id"]


async def test_the_api_answers_422_naming_a_pattern_re2_refuses(
    client: httpx.AsyncClient,
) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    refused = await client.post(
        "/api/v1/silences", json={"matchers": ["team=~(?!ops)"], "ends_at": ends}
    )
    assert refused.status_code == 422, refused.text
    assert "(?!ops)" in refused.text and "RE2" in refused.text
    routed = await client.post(
        "/api/v1/maintenances",
        json={
            "name": "m",
            "starts_at": "2030-01-01T00:00:00Z",
            "ends_at": "2030-01-02T00:00:00Z",
            "matchers": [r"host=~(a)\1"],
        },
    )
    assert routed.status_code == 422, routed.text
    (error,) = routed.json()["errors"]
    assert "invalid regex '(a)\\\\1' for host" in error["msg"], error
