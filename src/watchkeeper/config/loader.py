"""The YAML config file: typed models, `${VAR}` expansion, errors mapped back to lines."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import (
    ByteSize,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from watchkeeper import checks as _checks
from watchkeeper.alerting.inhibition import InhibitRule
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.routes import Route, validate_channels
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.checks.base import MAX_THRESHOLD, CheckConfigBase
from watchkeeper.config import yaml_strict as config_yaml
from watchkeeper.config.references import dependency_problem, unknown_channel, unknown_policy
from watchkeeper.core.durations import (
    ClientWait,
    EscalationDelay,
    Interval,
    LongSpan,
    PositiveShort,
    Repeat,
    Retention,
    ShortWait,
    ShutdownGrace,
    Timeout,
)
from watchkeeper.core.model import Name, StrictModel
from watchkeeper.engine.heartbeat.settings import HeartbeatsConfig
from watchkeeper.notify import channels as _channels
from watchkeeper.notify.channels.base import ChannelConfigBase

_LISTEN = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[^:\s]+):(?P<port>\d{1,5})$")


def split_listen(value: str) -> tuple[str, int]:
    match = _LISTEN.match(value)
    if not match or not 0 <= int(match.group("port")) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return match.group("host").strip("[]"), int(match.group("port"))


BodySize = Annotated[ByteSize, Field(ge=1024, le=1024**3)]
"""A request body limit: `1MiB`, `512KiB`, `10MB` or a number of bytes (1 KiB … 1 GiB)."""


class ServerConfig(StrictModel):
    listen: str = "127.0.0.1:8080"
    public_url: str | None = None
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list, max_length=1000)
    """Addresses or networks (`10.0.0.5`, `10.0.0.0/8`, `::1`) of reverse proxies whose
    `X-Forwarded-For`/`X-Forwarded-Proto` are believed: for the client address in the audit
    log and the login throttle, and for https cookies. Default: none, not even loopback."""
    # The HTTP edge (README "Request bodies and the HTTP edge"): refused before any work.
    max_body_size: BodySize = ByteSize(1024**2)
    """Largest request body; a larger one is a 413, refused before it is read."""
    max_alert_body_size: BodySize = ByteSize(10 * 1024**2)
    """Largest body of alert ingest (`POST /api/v1/alerts`): Alertmanager sends batches."""
    max_json_depth: int = Field(default=64, ge=2, le=512)
    """How deeply a JSON body may nest arrays and objects; deeper is a 400."""
    max_event_streams: int = Field(default=200, ge=1, le=100_000)
    """Open live-update streams (`/dashboard/events`) in all; past it a 503."""
    max_event_streams_per_user: int = Field(default=10, ge=1, le=10_000)
    """Open live-update streams of one user or token; past it a 429."""
    request_read_timeout: ClientWait = timedelta(seconds=30)
    """Time a client has to send a whole request (headers and body) once its connection is
    ready for one; then it is closed (408)."""
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    """Open client connections (never more than half the open-file limit); a new one closes
    the one that has waited longest on its client, or is refused (503)."""

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    api_ca_dir: str | None = None
    """The only directory whose files checks created over the API may name as `ca_file`;
    unset, such checks cannot name a file at all (a path probe of the server's disk)."""


class RetentionConfig(StrictModel):
    results: Retention = timedelta(days=30)
    metrics: Retention = timedelta(days=30)
    alerts: Retention = timedelta(days=90)
    audit: Retention = timedelta(days=365)
    rollups_5m: Retention = timedelta(days=30)
    """5-minute rollups of check results (counts, availability, response times)."""
    rollups_1h: Retention = timedelta(days=400)
    """1-hour rollups: what charts and uptime read once raw results are gone."""

    @model_validator(mode="after")
    def _coarse_rollups_outlive_fine_ones(self) -> RetentionConfig:
        if self.rollups_1h < self.rollups_5m:
            raise ValueError(
                "rollups_1h must be at least rollups_5m: hourly rollups are what remains of "
                "older history"
            )
        return self


class StorageConfig(StrictModel):
    url: str = "sqlite:///watchkeeper.db"
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql)(\+\w+)?://", value):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return value


class DefaultsConfig(StrictModel):
    interval: Interval = timedelta(seconds=30)
    timeout: Timeout = timedelta(seconds=10)
    failure_threshold: int = Field(default=1, ge=1, le=MAX_THRESHOLD)
    success_threshold: int = Field(default=1, ge=1, le=MAX_THRESHOLD)


class SchedulerConfig(StrictModel):
    max_concurrency: int = Field(default=500, ge=1, le=100_000)
    """Checks running at once, across all checks."""
    shutdown_grace: ShutdownGrace = timedelta(seconds=5)
    """How long in-flight checks may finish on shutdown before they are cancelled."""


class DeliveryConfig(StrictModel):
    """How the outbox delivers notifications."""

    timeout: Timeout = timedelta(seconds=10)
    backoff_initial: PositiveShort = timedelta(seconds=1)
    backoff_max: PositiveShort = timedelta(minutes=5)
    max_age: Repeat = timedelta(hours=24)
    """A notification still undelivered this long after it was queued is marked failed."""


class EscalationStep(StrictModel):
    after: EscalationDelay = timedelta(0)
    """Delay after the alert's first page before this step pages."""
    notify: list[Name] = Field(min_length=1)


class EscalationPolicy(StrictModel):
    """Ordered steps, each paging more channels, until someone acknowledges."""

    name: Name
    steps: list[EscalationStep] = Field(min_length=1)
    repeat: Repeat | None = None
    """After the last step, page its channels again every `repeat` until acknowledged."""

    @model_validator(mode="after")
    def _ordered(self) -> EscalationPolicy:
        afters = [step.after for step in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        return self


class FlappingConfig(StrictModel):
    """Nagios-style flap detection over each check's recent results."""

    enabled: bool = True
    window: int = Field(default=21, ge=2, le=100)
    high: float = Field(default=50.0, gt=0, le=100)
    """Percent state change above which a check starts flapping."""
    low: float = Field(default=25.0, ge=0, lt=100)
    """Percent state change below which it stops flapping."""

    @model_validator(mode="after")
    def _hysteresis(self) -> FlappingConfig:
        if self.low >= self.high:
            raise ValueError("low must be below high")
        return self


class AlertingConfig(StrictModel):
    """How alerts become notifications (Alertmanager's grouping semantics)."""

    flapping: FlappingConfig = Field(default_factory=FlappingConfig)

    group_by: list[str] | None = None
    """Label names; alerts with equal values are notified together. None: each alert alone."""
    group_wait: ShortWait = timedelta(0)
    """How long a new group waits for more alerts before its first notification."""
    group_interval: ShortWait = timedelta(minutes=5)
    """Minimum time between notifications about new alerts in the same group."""
    repeat_interval: Repeat | None = None
    """Re-send a still-firing, unacknowledged alert this often (None: never)."""
    default_escalation: Name | None = None
    auto_resolve_after: LongSpan | None = None
    """Resolve alerts POSTed by other systems that were not re-sent for this long (for
    sources that never send a recovery)."""
    routes: list[Route] = Field(default_factory=list)
    """Alertmanager-style routing tree from alert labels to channels (checks' and rules'
    own `notify` wins; no matching route: every channel)."""
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)


class LoginThrottleConfig(StrictModel):
    """Brute-force protection: too many failed logins lock the account (or address) out until
    the oldest failure leaves the window; a correct password is refused meanwhile."""

    max_failures: int = Field(default=10, ge=1, le=10_000)
    """Failed logins for one account within `window` before it is throttled."""
    max_failures_per_ip: int = Field(default=50, ge=1, le=100_000)
    """Failed logins from one client address (any accounts) within `window`."""
    window: PositiveShort = timedelta(minutes=15)


class AuthConfig(StrictModel):
    """Who may use the API: users (browser sessions) and API tokens, each with a role."""

    enabled: bool = True
    """False turns every check off: anyone reaching the port is an admin. Only for a
    loopback-only or embedded setup."""
    metrics: Literal["open", "token", "off"] = "open"
    """`/metrics`: open to anyone, only with a (viewer or better) token or session, or off."""
    session_ttl: LongSpan = timedelta(hours=12)
    """How long a browser login lasts."""
    login_throttle: LoginThrottleConfig = Field(default_factory=LoginThrottleConfig)


_DEFAULTED_FIELDS = ("interval", "timeout", "failure_threshold", "success_threshold")


def apply_defaults(check: CheckConfigBase, defaults: DefaultsConfig) -> None:
    """Give a check's unset scheduling fields the `defaults:` values (push checks have none)."""
    for field in _DEFAULTED_FIELDS:
        if field not in check.model_fields_set and not check.push:
            setattr(check, field, getattr(defaults, field))


def _tagged_union(models: tuple[type[Any], ...]) -> Any:
    # The union is built from the registries so a new check or channel module needs no edit here.
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:
    CheckConfig = CheckConfigBase
    ChannelConfig = ChannelConfigBase
else:
    CheckConfig = _tagged_union(_checks.config_models())
    ChannelConfig = _tagged_union(_channels.config_models())


class Config(StrictModel):
    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    checks: list[CheckConfig] = Field(default_factory=list)
    notifications: list[ChannelConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    escalation: list[EscalationPolicy] = Field(default_factory=list)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    heartbeats: HeartbeatsConfig = Field(default_factory=HeartbeatsConfig)

    @model_validator(mode="after")
    def _apply_defaults_and_references(self) -> Config:
        for check in self.checks:
            apply_defaults(check, self.defaults)
        _unique("checks", [c.name for c in self.checks])
        _unique("notifications", [n.name for n in self.notifications])
        check_names = {c.name for c in self.checks}
        channel_names = {n.name for n in self.notifications}
        for i, check in enumerate(self.checks):
            if problem := dependency_problem(check.name, check.depends_on, check_names):
                raise ValueError(f"checks[{i}].depends_on: {problem}")
            if problem := unknown_channel(check.notify or (), channel_names):
                raise ValueError(f"checks[{i}].notify: {problem}")
        _unique("escalation", [p.name for p in self.escalation])
        policies = {p.name for p in self.escalation}
        for i, policy in enumerate(self.escalation):
            for j, step in enumerate(policy.steps):
                for channel in step.notify:
                    if channel not in channel_names:
                        raise ValueError(
                            f"escalation[{i}].steps: step {j} notifies unknown channel {channel!r}"
                        )
        for i, check in enumerate(self.checks):
            if problem := unknown_policy(check.escalation, policies):
                raise ValueError(f"checks[{i}].escalation: {problem}")
        _unique("rules", [r.name for r in self.rules])
        _unique("maintenance", [w.name for w in self.maintenance])
        route_errors = validate_channels(
            self.alerting.routes, channel_names, path="alerting.routes"
        )
        if route_errors:
            raise ValueError(route_errors[0])
        for i, rule in enumerate(self.rules):
            if problem := unknown_channel(rule.notify or (), channel_names):
                raise ValueError(f"rules[{i}].notify: {problem}")
            if problem := unknown_policy(rule.escalation, policies):
                raise ValueError(f"rules[{i}].escalation: {problem}")
        if problem := unknown_policy(self.alerting.default_escalation, policies):
            raise ValueError(f"alerting.default_escalation: {problem}")
        cycle = find_cycle({c.name: list(c.depends_on) for c in self.checks})
        if cycle:
            raise ValueError(f"checks: depends_on has a cycle: {' -> '.join(cycle)}")
        return self

    def check(self, name: str) -> CheckConfigBase:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def policy(self, name: str | None) -> EscalationPolicy | None:
        """The named escalation policy, or the default one when `name` is None."""
        wanted = name or self.alerting.default_escalation
        return next((p for p in self.escalation if p.name == wanted), None)

    def channel(self, name: str) -> ChannelConfigBase:
        for channel in self.notifications:
            if channel.name == name:
                return channel
        raise KeyError(name)


def _unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{section}[{i}].name: {name!r} is used twice; names must be unique")
        seen.add(name)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


# ---------------------------------------------------------------------------------------------
# Loading: YAML → env expansion → pydantic, with every error located by line.


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class ConfigError(Exception):
    """The config is invalid; `issues` holds every problem found, each with its line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_env(text: str, environ: dict[str, str] | os._Environ[str]) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; raise KeyError naming an unset VAR."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise KeyError(name)
            return default
        return value

    return _ENV.sub(substitute, text)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(root)"


def _walk(node: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[yaml.Node | None, list[str]]:
    """Follow a pydantic error location into the YAML node tree.

    Returns the deepest node found and the location parts that name real fields (pydantic
    adds union tags and validator names that the user never wrote).
    """
    shown: list[str] = []
    current = node
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            child = next((v for k, v in current.value if k.value == str(part)), None)
            if child is not None:
                shown.append(f".{part}" if shown else str(part))
                current = child
                continue
            type_node = next((v for k, v in current.value if k.value == "type"), None)
            if type_node is not None and type_node.value == part:
                continue  # discriminated-union tag
            if isinstance(part, str) and ("[" in part or "-" in part):
                continue  # validator wrapper such as function-after[...]
            shown.append(f".{part}" if shown else str(part))
            break
        if isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            shown.append(f"[{part}]")
            if 0 <= part < len(current.value):
                current = current.value[part]
                continue
            break
        shown.append(f".{part}" if shown else str(part))
        break
    return current, shown


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _expand_tree(
    data: Any,
    node: yaml.Node | None,
    loc: tuple[int | str, ...],
    environ: dict[str, str] | os._Environ[str],
    problems: list[tuple[yaml.Node | None, str, str]],
) -> Any:
    if isinstance(data, str):
        try:
            return expand_env(data, environ)
        except KeyError as exc:
            problems.append(
                (node, _format_loc(loc), f"environment variable {exc.args[0]} is not set")
            )
            return data
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            child = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if k.value == str(key)), None)
            out[key] = _expand_tree(value, child, (*loc, str(key)), environ, problems)
        return out
    if isinstance(data, list):
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        return [
            _expand_tree(
                v, children[i] if i < len(children) else None, (*loc, i), environ, problems
            )
            for i, v in enumerate(data)
        ]
    return data


def parse_config(
    text: str, filename: str = "<config>", environ: dict[str, str] | None = None
) -> Config:
    """Parse YAML text into a Config; raise ConfigError listing every problem with its line."""
    env = os.environ if environ is None else environ
    try:
        root, data = config_yaml.load(text)  # duplicate keys and alias bombs refused
    except config_yaml.YamlProblem as exc:
        raise ConfigError([ConfigIssue(filename, exc.line, "(yaml)", exc.message)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigIssue(filename, _line(root), "(root)", "expected a mapping of sections")]
        )
    problems: list[tuple[yaml.Node | None, str, str]] = []
    data = _expand_tree(data, root, (), env, problems)
    issues = [ConfigIssue(filename, _line(n), f, m) for n, f, m in problems]
    env_fields = {issue.field for issue in issues}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            message = error["msg"]
            if error["type"] == "value_error" and not loc:
                message, loc = _split_located_message(message)
            if error["type"] == "union_tag_invalid":
                ctx = error.get("ctx", {})
                loc = (*loc, "type")
                message = (
                    f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
                )
            elif error["type"] == "union_tag_not_found":
                loc = (*loc, "type")
                message = "required field is missing (the type of this entry)"
            node, shown = _walk(root, loc)
            message = message.removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required field is missing"
            elif error["type"] == "extra_forbidden":
                message = "unknown key (check its spelling and the config reference)"
            field = "".join(shown) or "(root)"
            if field not in env_fields:  # the unset variable is the real problem there
                issues.append(ConfigIssue(filename, _line(node), field, message))
        raise ConfigError(sorted(issues, key=lambda i: i.line)) from None
    if issues:
        raise ConfigError(issues)
    return config


_LOCATED = re.compile(
    r"^(?:Value error, )?(?P<loc>[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)?): (?P<msg>.*)$"
)


def _split_located_message(message: str) -> tuple[str, tuple[int | str, ...]]:
    """Cross-field validators say `checks[2].depends_on: ...`; turn that into a location."""
    match = _LOCATED.match(message)
    if not match:
        return message, ()
    loc: list[int | str] = []
    for part in re.findall(r"[a-z_]+|\[\d+\]", match.group("loc")):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return match.group("msg"), tuple(loc)


MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""Largest config file read (thousands of checks fit in far less): a device such as
`/dev/zero` or a runaway generated file is refused instead of read until memory runs out."""


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read and parse a config file; raise ConfigError, or OSError if it cannot be read
    (FileNotFoundError if absent, IsADirectoryError...)."""
    path = Path(path)
    with path.open("rb") as file:
        data = file.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            [ConfigIssue(str(path), 1, "(file)", "larger than 16 MiB; is this a config file?")]
        )
    try:
        text = config_yaml.decode(data)
    except config_yaml.YamlProblem as exc:
        raise ConfigError([ConfigIssue(str(path), exc.line, "(yaml)", exc.message)]) from None
    return parse_config(text, str(path), environ)
