"""`/api/v2/`: Alertmanager's v2 API, so Prometheus and amtool talk to Watchkeeper as to an
Alertmanager. Shapes follow Alertmanager's OpenAPI document (`postableAlert`,
`gettableAlert`, `postableSilence`, `gettableSilence`, `alertmanagerStatus`, `receiver`).

Viewer tokens read, operator tokens write. What maps how:
- an alert posted here is an external alert (fingerprint from its labels); an `endsAt` in the
  past resolves it at once, a future one resolves it then unless re-sent with a later one;
- `status.silencedBy` is the silence muting it; `status.inhibitedBy` is any other reason it
  is muted (an inhibit rule, maintenance, a failing dependency, flapping), as text;
- an alert's `receivers` are the channels it was paged to (none yet: an empty list);
- `GET /receivers` lists the notification channels.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from watchkeeper.alerting.external import InvalidAlerts
from watchkeeper.alerting.matchers import Matcher, compile_anchored, parse_matcher
from watchkeeper.alerting.silences import Silence
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import Alert
from watchkeeper.core.errors import Invalid
from watchkeeper.core.model import Text
from watchkeeper.core.version import __version__
from watchkeeper.http import problems
from watchkeeper.http.deps import config_dep, services_dep
from watchkeeper.http.roles import Principal, Role, require
from watchkeeper.services import Services

router = APIRouter(
    prefix="/api/v2", tags=["alertmanager"], dependencies=[Depends(require(Role.VIEWER))]
)
OPERATOR = Depends(require(Role.OPERATOR))

DEPTH_BOUNDED_BY_PARSER = frozenset({("POST", "/api/v2/alerts")})
"""Routes here whose body only pydantic-core's JSON parser reads (it refuses more than 200
levels with a ValidationError, our 400): the edge's depth measure is skipped for them."""


class AmMatcher(BaseModel):
    name: Text = Field(min_length=1, max_length=256)
    value: Text = Field(max_length=4096)
    isRegex: bool
    isEqual: bool = True


class AmStatus(BaseModel):
    state: Literal["unprocessed", "active", "suppressed"]
    silencedBy: list[str]
    inhibitedBy: list[str]


class AmReceiver(BaseModel):
    name: str


class GettableAlert(BaseModel):
    labels: dict[str, str]
    annotations: dict[str, str]
    receivers: list[AmReceiver]
    fingerprint: str
    startsAt: datetime
    updatedAt: datetime
    endsAt: datetime
    status: AmStatus
    generatorURL: str | None = None


class AlertGroup(BaseModel):
    labels: dict[str, str]
    receiver: AmReceiver
    alerts: list[GettableAlert]


class SilenceStatus(BaseModel):
    state: Literal["expired", "active", "pending"]


class GettableSilence(BaseModel):
    id: str
    status: SilenceStatus
    updatedAt: datetime
    matchers: list[AmMatcher]
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str


class PostableSilence(BaseModel):
    id: str | None = Field(default=None, max_length=64)
    """A silence to replace (it is expired; the answer names the new one)."""
    matchers: list[AmMatcher] = Field(min_length=1, max_length=50)
    startsAt: AwareDatetime
    endsAt: AwareDatetime
    createdBy: Text = Field(min_length=1, max_length=255)
    comment: Text = Field(max_length=4000)


class SilenceCreated(BaseModel):
    silenceID: str


class ClusterStatus(BaseModel):
    name: str = ""
    status: Literal["ready", "settling", "disabled"]
    peers: list[dict[str, str]] = Field(default_factory=list)


class VersionInfo(BaseModel):
    version: str
    revision: str
    branch: str
    buildUser: str
    buildDate: str
    goVersion: str


class AmConfig(BaseModel):
    original: str


class AlertmanagerStatus(BaseModel):
    cluster: ClusterStatus
    versionInfo: VersionInfo
    config: AmConfig
    uptime: datetime


# -- alerts ------------------------------------------------------------------------------------


@router.post(
    "/alerts",
    summary="Post alerts (Alertmanager's postableAlerts)",
    description=(
        "A list of `{labels, annotations, startsAt, endsAt, generatorURL}`. An `endsAt` in "
        "the past resolves the alert; a future one resolves it then unless it is re-sent. "
        "A bad alert is a 400 naming the field; nothing of the body is stored then."
    ),
    dependencies=[OPERATOR],
    response_class=Response,
    responses={200: {"description": "Taken in"}, **problems.responses(400)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": {}}}},
        }
    },
)
async def post_alerts(request: Request, services: Services = Depends(services_dep)) -> Response:
    raw = await request.body()
    try:
        await services.alerts.post_alertmanager(raw)
    except InvalidAlerts as exc:
        errors = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors]
        raise HTTPException(400, errors) from None
    return Response(status_code=200)


def _filters(filter: list[str]) -> list[Matcher]:
    try:
        return [parse_matcher(f.strip().removeprefix("{").removesuffix("}")) for f in filter]
    except ValueError as exc:
        raise HTTPException(400, f"filter: {exc}") from None


def _receiver_regex(receiver: str | None) -> Any:
    if not receiver:
        return None
    try:
        return compile_anchored(receiver)
    except ValueError as exc:
        raise HTTPException(400, f"receiver: {exc}") from None


def _gettable(alert: Alert) -> GettableAlert:
    silenced = [alert.silenced_by] if alert.silenced_by else []
    inhibited = [alert.suppressed_reason] if alert.suppressed_reason else []
    ends = alert.ends_at or alert.resolved_at or alert.updated_at or alert.started_at
    return GettableAlert(
        labels=alert.match_labels,
        annotations=alert.annotations or {"summary": alert.summary},
        receivers=[AmReceiver(name=c) for c in alert.paged_channels or []],
        fingerprint=alert.fingerprint,
        startsAt=alert.started_at,
        updatedAt=alert.updated_at or alert.started_at,
        endsAt=ends,
        status=AmStatus(
            state="suppressed" if silenced or inhibited else "active",
            silencedBy=silenced,
            inhibitedBy=inhibited,
        ),
        generatorURL=alert.generator_url,
    )


_BAD_FILTER = problems.responses(400)  # a filter that is no matcher, a bad receiver regex
Flag = Annotated[bool, Query()]
Filters = Annotated[list[str], Query(max_length=50)]


class AlertQuery:
    """The query both alert listings take (Alertmanager's names): which open alerts."""

    def __init__(
        self,
        active: Flag = True,
        silenced: Flag = True,
        inhibited: Flag = True,
        filter: Filters = [],  # noqa: B006 (Alertmanager's names; FastAPI copies defaults)
        receiver: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> None:
        self.active = active
        self.silenced = silenced
        self.inhibited = inhibited
        self.filter = filter
        self.receiver = receiver

    async def select(self, services: Services) -> list[GettableAlert]:
        """The open alerts that match; HTTP 400 for a bad filter or receiver regex."""
        matchers = _filters(self.filter)
        regex = _receiver_regex(self.receiver)
        out = []
        for alert in await services.alerts.open_alerts():
            item = _gettable(alert)
            if not self.active and item.status.state == "active":
                continue
            if not self.silenced and item.status.silencedBy:
                continue
            if not self.inhibited and item.status.inhibitedBy:
                continue
            if not all(m.matches(item.labels) for m in matchers):
                continue
            if regex is not None and not any(
                regex.search(r.name.encode()) is not None for r in item.receivers
            ):
                continue
            out.append(item)
        return out


@router.get(
    "/alerts",
    response_model=list[GettableAlert],
    response_model_exclude_none=True,
    responses=_BAD_FILTER,
    summary="Open alerts, filtered",
)
async def get_alerts(
    services: Services = Depends(services_dep),
    query: AlertQuery = Depends(),
    unprocessed: Flag = True,
) -> list[GettableAlert]:
    """`unprocessed` is accepted and changes nothing: every alert here was taken in."""
    return await query.select(services)


@router.get(
    "/alerts/groups",
    response_model=list[AlertGroup],
    response_model_exclude_none=True,
    responses=_BAD_FILTER,
    summary="Open alerts grouped by alertname and receiver",
)
async def get_alert_groups(
    services: Services = Depends(services_dep), query: AlertQuery = Depends()
) -> list[AlertGroup]:
    groups: dict[tuple[str, str], AlertGroup] = {}
    for item in await query.select(services):
        name = item.labels.get("alertname", "")
        for rcv in item.receivers or [AmReceiver(name="")]:
            group = groups.setdefault(
                (name, rcv.name),
                AlertGroup(labels={"alertname": name}, receiver=rcv, alerts=[]),
            )
            group.alerts.append(item)
    return list(groups.values())


# -- silences ----------------------------------------------------------------------------------


def _silence_out(silence: Silence, now: datetime) -> GettableSilence:
    return GettableSilence(
        id=silence.id,
        status=SilenceStatus(state=silence.state(now)),  # type: ignore[arg-type]
        updatedAt=silence.created_at,
        matchers=[AmMatcher.model_validate(m.as_dict()) for m in silence.matchers],
        startsAt=silence.starts_at,
        endsAt=silence.ends_at,
        createdBy=silence.created_by,
        comment=silence.comment,
    )


def _silence_labels(silence: Silence) -> dict[str, str]:
    return {m.name: m.value for m in silence.matchers if m.is_equal and not m.is_regex}


@router.get(
    "/silences",
    response_model=list[GettableSilence],
    responses=_BAD_FILTER,
    summary="Every silence",
)
async def get_silences(
    services: Services = Depends(services_dep),
    filter: Filters = [],  # noqa: B006
) -> list[GettableSilence]:
    """`filter`: matchers the silence's equality matchers must satisfy."""
    matchers = _filters(filter)
    now = services.silences.clock.now()
    found = [
        s
        for s in await services.silences.list_silences()
        if all(m.matches(_silence_labels(s)) for m in matchers)
    ]
    order = {"active": 0, "pending": 1, "expired": 2}
    found.sort(key=lambda s: (order[s.state(now)], s.ends_at))
    return [_silence_out(s, now) for s in found]


@router.post(
    "/silences",
    response_model=SilenceCreated,
    summary="Create a silence, or replace one (with `id`)",
    responses=problems.responses(400, 404),
)
async def post_silence(
    body: PostableSilence,
    principal: Principal = OPERATOR,
    services: Services = Depends(services_dep),
) -> SilenceCreated:
    silences = services.silences
    now = silences.clock.now()
    if body.id:
        await silences.get(body.id)  # 404 before anything changes
    try:
        silence = await silences.create(
            [m.model_dump() for m in body.matchers],
            starts_at=max(body.startsAt, now),
            ends_at=body.endsAt,
            created_by=principal.acting_as(body.createdBy),
            comment=body.comment,
        )
    except Invalid as exc:
        raise HTTPException(400, str(exc)) from None
    if body.id:
        await silences.expire(body.id)
    return SilenceCreated(silenceID=silence.id)


@router.get("/silence/{silence_id}", response_model=GettableSilence, summary="One silence")
async def get_silence(silence_id: str, services: Services = Depends(services_dep)) -> Any:
    silence = await services.silences.get(silence_id)
    return _silence_out(silence, services.silences.clock.now())


@router.delete(
    "/silence/{silence_id}",
    summary="Expire a silence now",
    dependencies=[OPERATOR],
    response_class=Response,
    responses={200: {"description": "Expired"}},
)
async def delete_silence(silence_id: str, services: Services = Depends(services_dep)) -> Response:
    await services.silences.expire(silence_id)
    return Response(status_code=200)


# -- status and receivers ------------------------------------------------------------------------


@router.get("/status", response_model=AlertmanagerStatus, summary="Version, uptime, receivers")
async def get_status(
    services: Services = Depends(services_dep), config: Config = Depends(config_dep)
) -> AlertmanagerStatus:
    started = services.status.started_at() or services.status.clock.now()
    receivers = "".join(f"- name: {c.name}\n" for c in config.notifications)
    return AlertmanagerStatus(
        cluster=ClusterStatus(status="disabled"),
        versionInfo=VersionInfo(
            version=__version__,
            revision="",
            branch="",
            buildUser="watchkeeper",
            buildDate="",
            goVersion="",
        ),
        config=AmConfig(original=f"# Watchkeeper {__version__}\nreceivers:\n{receivers}"),
        uptime=started,
    )


@router.get("/receivers", response_model=list[AmReceiver], summary="The notification channels")
async def get_receivers(config: Config = Depends(config_dep)) -> list[AmReceiver]:
    return [AmReceiver(name=c.name) for c in config.notifications]
