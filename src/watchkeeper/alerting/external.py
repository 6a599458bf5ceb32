"""Alerts POSTed by other systems: Watchkeeper's own shape and Alertmanager's webhook.

What another system sends is untrusted, so both shapes take the same limits (the README's
Alerting section lists them): text must hold no NUL character (PostgreSQL cannot store one,
so no engine is given one), and labels, annotations and summaries have bounded sizes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from typing_extensions import TypedDict

from watchkeeper.alerting.lifecycle import AlertSpec
from watchkeeper.core.domain import Severity, severity_from
from watchkeeper.core.model import NUL_MESSAGE, nul_loc

MAX_ALERTS = 1000
"""Alerts in one request (a list in Watchkeeper's shape, or `alerts` in Alertmanager's)."""
MAX_LABELS = 64
"""Labels (and, separately, annotations) of one alert."""
MAX_LABEL_NAME = 256
MAX_LABEL_VALUE = 4096
MAX_TEXT = 16384
"""A summary, and each annotation value (description, runbook...)."""
MAX_NAME = 200
"""An alert's name (Alertmanager: its `alertname` label) and its fingerprint."""
MAX_ERRORS = 20
"""Problems listed in one 422: a body with thousands of them gets the first few."""


def _at_most(limit: int, what: str) -> Callable[[Any], Any]:
    """Refuse an oversized mapping before its items are looked at (10,000 labels are one
    error, not 10,000 validations)."""

    def check(value: Any) -> Any:
        if isinstance(value, dict | list) and len(value) > limit:
            raise ValueError(f"at most {limit} {what} (got {len(value)})")
        return value

    return check


LabelName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_NAME)]
Labels = Annotated[
    dict[LabelName, Annotated[str, Field(max_length=MAX_LABEL_VALUE)]],
    BeforeValidator(_at_most(MAX_LABELS, "labels")),
]
Annotations = Annotated[
    dict[LabelName, Annotated[str, Field(max_length=MAX_TEXT)]],
    BeforeValidator(_at_most(MAX_LABELS, "annotations")),
]


class InvalidAlerts(ValueError):
    """The body is not acceptable: `errors` says where and why (pydantic's `loc`/`msg`/`type`)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.errors = errors


def _label_hash(name: str, labels: dict[str, str]) -> str:
    text = name + "\0" + "\0".join([f"{k}={v}" for k, v in sorted(labels.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ExternalAlert(BaseModel):
    """Watchkeeper's own shape for `POST /api/v1/alerts`."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    status: Literal["firing", "resolved"] = "firing"
    severity: Severity = Severity.MEDIUM
    summary: str = Field(default="", max_length=MAX_TEXT)
    labels: Labels = Field(default_factory=dict)
    fingerprint: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    """Stable identity; default: a hash of name and labels."""
    escalation: str | None = Field(default=None, max_length=100)

    def spec(self) -> AlertSpec:
        fingerprint = f"ext:{self.fingerprint or _label_hash(self.name, self.labels)}"
        return AlertSpec(
            fingerprint=fingerprint,
            name=self.name,
            severity=self.severity,
            summary=self.summary or self.name,
            labels={**self.labels, "severity": self.severity.value},
            source="external",
            escalation_policy=self.escalation,
        )


class AlertmanagerAlert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    startsAt: str | None = Field(default=None, max_length=100)
    endsAt: str | None = Field(default=None, max_length=100)
    generatorURL: str | None = Field(default=None, max_length=MAX_TEXT)
    fingerprint: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)

    @field_validator("labels")
    @classmethod
    def _name_fits(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels.get("alertname", "")) > MAX_NAME:
            raise ValueError(f"alertname: at most {MAX_NAME} characters (it is the alert's name)")
        return labels

    def spec(self) -> AlertSpec:
        name = self.labels.get("alertname", "alertmanager")
        severity = severity_from(self.labels.get("severity"))
        summary = (
            self.annotations.get("summary")
            or self.annotations.get("description")
            or self.annotations.get("message")
            or name
        )
        key = self.fingerprint or _label_hash(name, self.labels)
        return AlertSpec(
            fingerprint=f"am:{key}",
            name=name,
            severity=severity,
            summary=summary,
            labels={**self.labels, "severity": severity.value},
            source="external",
            annotations=dict(self.annotations),
            generator_url=self.generatorURL or None,
        )


class AlertmanagerWebhook(BaseModel):
    """Prometheus Alertmanager's webhook payload (version 4)."""

    version: Literal["4"]
    status: str | None = None
    receiver: str | None = None
    groupKey: str | None = None
    alerts: Annotated[list[AlertmanagerAlert], BeforeValidator(_at_most(MAX_ALERTS, "alerts"))] = (
        Field(default_factory=list)
    )


_EXTERNAL_LIST = TypeAdapter(
    Annotated[list[ExternalAlert], BeforeValidator(_at_most(MAX_ALERTS, "alerts"))]
)


def parse_external(body: Any) -> list[tuple[AlertSpec, bool]]:
    """(spec, firing) for each alert in an own-shape or Alertmanager body; InvalidAlerts if
    it is neither, or breaks a limit."""
    if (where := nul_loc(body)) is not None:
        raise InvalidAlerts([{"loc": list(where), "msg": NUL_MESSAGE, "type": "value_error"}])
    try:
        if isinstance(body, dict) and body.get("version") == "4" and "alerts" in body:
            webhook = AlertmanagerWebhook.model_validate(body)
            return [(a.spec(), a.status == "firing") for a in webhook.alerts]
        if isinstance(body, list):
            items = _EXTERNAL_LIST.validate_python(body)
        else:
            items = [ExternalAlert.model_validate(body)]
    except ValidationError as exc:
        raise InvalidAlerts(_located(exc)) from None
    return [(item.spec(), item.status == "firing") for item in items]


def _located(exc: ValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        message = error["msg"].removeprefix("Value error, ")
        errors.append({"loc": list(error["loc"]), "msg": message, "type": error["type"]})
    if len(errors) > MAX_ERRORS:
        more = len(errors) - MAX_ERRORS
        errors = errors[:MAX_ERRORS]
        errors.append({"loc": [], "msg": f"and {more} more", "type": "too_many_errors"})
    return errors


# -- Alertmanager's v2 API: `POST /api/v2/alerts` (what Prometheus and amtool send) ----------

_UNSET_BEFORE = datetime(1970, 1, 2, tzinfo=UTC)
"""Go clients send an unset time as `0001-01-01T00:00:00Z`: anything this early is unset."""


def _alertname_fits(labels: dict[str, str]) -> dict[str, str]:
    if len(labels.get("alertname", "")) > MAX_NAME:
        raise ValueError(f"alertname: at most {MAX_NAME} characters (it is the alert's name)")
    return labels


def _text_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("a time is RFC 3339 text, e.g. 2030-01-01T12:00:00Z")
    return value


PostedTime = Annotated[datetime, BeforeValidator(_text_only)]
"""A time as text (RFC 3339), as Alertmanager takes it: a JSON number is refused, not read
as seconds since 1970 (which `endsAt: 5` made an alert with no end). (Not `Strict()`: the
list's own before-validator has the items validated as Python objects, where a strict
datetime refuses text too.)"""


class PostableAlert(TypedDict):
    """Alertmanager's `postableAlert`: labels (at least one), annotations, startsAt, endsAt,
    generatorURL. No status: an `endsAt` in the past says it resolved.

    A TypedDict, validated into plain dicts: a model instance per alert was a third of a
    burst's parsing (with `postable_spec`, 10.8 → 9.1 µs an alert)."""

    labels: Annotated[Labels, Field(min_length=1), AfterValidator(_alertname_fits)]
    annotations: NotRequired[Annotations]
    startsAt: NotRequired[PostedTime | None]
    endsAt: NotRequired[PostedTime | None]
    generatorURL: NotRequired[Annotated[str, Field(max_length=MAX_TEXT)] | None]


def postable_spec(alert: PostableAlert, now: datetime) -> tuple[AlertSpec, bool]:
    """(spec, firing) of a validated postable alert as of `now`: firing unless `endsAt`
    has passed."""
    ends = _set(alert.get("endsAt"))
    starts = _set(alert.get("startsAt"))
    labels = alert["labels"]
    name = labels.get("alertname", "alertmanager")
    severity = severity_from(labels.get("severity"))
    annotations = alert.get("annotations") or {}  # the alert's own: it is not kept after
    summary = (
        annotations.get("summary")
        or annotations.get("description")
        or annotations.get("message")
        or name
    )
    spec = AlertSpec(
        fingerprint="am:" + _label_hash(name, labels),
        name=name,
        severity=severity,
        summary=summary,
        labels={**labels, "severity": severity.value},
        source="external",
        annotations=annotations,
        generator_url=alert.get("generatorURL") or None,
        starts_at=starts if starts is not None and starts <= now else None,
        ends_at=ends,
    )
    return spec, ends is None or ends > now


def _set(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return None if at < _UNSET_BEFORE else at


_POSTABLE = TypeAdapter(
    Annotated[list[PostableAlert], BeforeValidator(_at_most(MAX_ALERTS, "alerts"))]
)


def parse_postable(raw: bytes, now: datetime) -> list[tuple[AlertSpec, bool]]:
    """(spec, firing) for each alert of a `POST /api/v2/alerts` body (JSON bytes, parsed and
    validated in one pass); InvalidAlerts naming every problem."""
    if b"\\u0000" in raw:  # JSON can only carry a NUL escaped
        try:
            where = nul_loc(json.loads(raw))
        except (ValueError, RecursionError):  # not JSON, or too deep: validate_json says so
            where = None
        if where is not None:
            raise InvalidAlerts([{"loc": list(where), "msg": NUL_MESSAGE, "type": "value_error"}])
    try:
        alerts = _POSTABLE.validate_json(raw)
    except ValidationError as exc:
        raise InvalidAlerts(_located(exc)) from None
    return [postable_spec(a, now) for a in alerts]
