"""Loading the YAML config file: `${VAR}` expansion, then the models, errors mapped back to lines.

The models live with the subsystems that read them (`store/config.py`, `alerting/config.py`,
...) and the root in `config/model.py`; they are re-exported here so that callers can keep
importing them from the loader.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from watchkeeper.alerting.config import (
    AlertingConfig,
    EscalationPolicy,
    EscalationStep,
    FlappingConfig,
)
from watchkeeper.auth.config import AuthConfig, LoginThrottleConfig
from watchkeeper.config import yaml_strict as config_yaml
from watchkeeper.config.model import ChannelConfig, CheckConfig, Config, find_cycle
from watchkeeper.config.server import ServerConfig, split_listen
from watchkeeper.engine.config import DefaultsConfig, SchedulerConfig, apply_defaults
from watchkeeper.notify.config import DeliveryConfig
from watchkeeper.store.config import RetentionConfig, StorageConfig

__all__ = [
    "MAX_CONFIG_BYTES",
    "AlertingConfig",
    "AuthConfig",
    "ChannelConfig",
    "CheckConfig",
    "Config",
    "ConfigError",
    "ConfigFile",
    "ConfigIssue",
    "DefaultsConfig",
    "DeliveryConfig",
    "EscalationPolicy",
    "EscalationStep",
    "FlappingConfig",
    "LoginThrottleConfig",
    "RetentionConfig",
    "SchedulerConfig",
    "ServerConfig",
    "StorageConfig",
    "apply_defaults",
    "expand_env",
    "find_cycle",
    "load_config",
    "parse_config",
    "split_listen",
]


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


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The config file a service runs from, to read again when it reloads."""

    path: Path
    listen: str | None = None
    """`--listen`, which overrides `server.listen` each time the file is read."""

    def load(self) -> Config:
        """Read and validate the file as `load_config` does (ConfigError, OSError)."""
        config = load_config(self.path)
        if self.listen:
            config.server.listen = self.listen
        return config

    def issue(self, loc: tuple[int | str, ...], message: str) -> ConfigIssue:
        """`message` located at `loc` (`("checks", 2, "name")`) in the file as it is now: at
        the deepest part of `loc` the file has (its first line if it cannot be read)."""
        try:
            root, _data = config_yaml.load(config_yaml.decode(self.path.read_bytes()))
        except (OSError, config_yaml.YamlProblem):
            return ConfigIssue(str(self.path), 1, _format_loc(loc), message)
        node, shown = _walk(root, loc)
        return ConfigIssue(str(self.path), _line(node), "".join(shown) or "(root)", message)
