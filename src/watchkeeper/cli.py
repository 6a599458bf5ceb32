"""The `watchkeeper` command."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from watchkeeper.auth.principals import Role

if TYPE_CHECKING:
    # The config model pulls in nearly the whole package (every check, channel and store
    # module): commands import it when they load a config, so `--help` and `init` stay quick.
    from watchkeeper.config.loader import Config
    from watchkeeper.services.tokens import TokenService
    from watchkeeper.services.users import UserService
    from watchkeeper.store.database import Database

T = TypeVar("T")

app = typer.Typer(
    help="Watchkeeper: checks, heartbeats, alerting and notifications.", no_args_is_help=True
)
db_app = typer.Typer(help="Storage maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
token_app = typer.Typer(
    help="API tokens for scripts and integrations (stored hashed, shown once).",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")
user_app = typer.Typer(help="People who log in (browser sessions).", no_args_is_help=True)
app.add_typer(user_app, name="user")

DEFAULT_CONFIG = "watchkeeper.yaml"
EXAMPLE = Path(__file__).parent / "example.yaml"

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=f"Config file (default: ./{DEFAULT_CONFIG} if present)."),
]


def _print_version(value: bool) -> None:
    if value:
        from watchkeeper.core.version import __version__

        print(f"watchkeeper {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Watchkeeper: checks, heartbeats, alerting and notifications."""


def _load(path: Path | None, listen: str | None = None) -> tuple[Config, str]:
    """The config to use and where it came from; exits 1 with located errors if invalid."""
    from watchkeeper.config.builtin import builtin_config
    from watchkeeper.config.loader import ConfigError, load_config

    if path is None and Path(DEFAULT_CONFIG).exists():
        path = Path(DEFAULT_CONFIG)
    if path is None:
        return builtin_config(listen or "127.0.0.1:8080"), "built-in default"
    try:
        config = load_config(path)
    except FileNotFoundError:
        err.print(f"[red]error:[/] config file {path} not found")
        raise typer.Exit(1) from None
    except OSError as exc:  # a directory, a device that refuses reads, no permission
        err.print(f"error: config file {path}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        for issue in exc.issues:
            err.print(str(issue), markup=False, highlight=False)
        raise typer.Exit(1) from None
    if listen:
        config.server.listen = listen
    return config, str(path)


@app.command()
def run(
    config: ConfigOption = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT, overrides server.listen.")
    ] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json")] = "text",
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the service: scheduler, alerting, notifications and the HTTP server."""
    import uvicorn

    from watchkeeper.app import Runtime
    from watchkeeper.auth import passwords
    from watchkeeper.config.loader import ConfigFile, split_listen
    from watchkeeper.core.logs import setup_logging
    from watchkeeper.core.redact import Redactor, url_secrets
    from watchkeeper.http.edge.connections import bounded_protocol, connection_limits
    from watchkeeper.http.factory import create_app
    from watchkeeper.http.server import GracefulServer

    # The modules just imported live as long as the process, and made next to no garbage:
    # keep the collector's passes (the runtime's at its start, then the automatic ones) off
    # their objects.
    gc.freeze()
    if listen:
        try:
            split_listen(listen)
        except ValueError as exc:
            err.print(f"[red]error:[/] --listen: {exc}")
            raise typer.Exit(2) from None
    if log_format not in ("text", "json"):
        err.print("[red]error:[/] --log-format: expected text or json")
        raise typer.Exit(2)
    cfg, source = _load(config, listen)
    redactor = Redactor(url_secrets(cfg.storage.url))  # the banner and every log line
    setup_logging(log_format, log_level, redactor)
    if passwords.fast_hashing():
        logging.getLogger("watchkeeper").warning(
            "passwords are hashed with a test suite's weak parameters (%s is set); "
            "never set it on a real deployment",
            passwords.FAST_HASHING_ENV,
        )
    from_file = None if source == "built-in default" else ConfigFile(Path(source), listen)
    runtime = Runtime(cfg, redactor=redactor, on_setup_url=_print_setup_url, config_file=from_file)
    application = create_app(cfg, runtime=runtime)
    base = cfg.server.base_url()
    err.print(
        f"watchkeeper: config {source}, {len(cfg.checks)} checks, storage "
        f"{redactor(cfg.storage.url)}\n"
        f"  health   {base}/health\n  metrics  {base}/metrics\n  api      {base}/api/v1/checks\n"
        f"  docs     {base}/api/docs\n  dashboard {base}/dashboard",
        markup=False,
        highlight=False,
    )
    max_connections, backlog = connection_limits(cfg.server.max_connections)
    server = GracefulServer(
        uvicorn.Config(
            application,
            host=cfg.server.host,
            port=cfg.server.port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=3,
            access_log=False,
            # X-Forwarded-* only from server.trusted_proxies (uvicorn's own default trusts
            # 127.0.0.1, so any local process could pick its client address).
            proxy_headers=bool(cfg.server.trusted_proxies),
            forwarded_allow_ips=[str(n) for n in cfg.server.trusted_proxies],
            # Slow or idle clients are cut off and bounded in number (edge/connections.py).
            http=bounded_protocol(max_connections, cfg.server.request_read_timeout.total_seconds()),
            backlog=backlog,
        ),
        before_shutdown=runtime.changes.close,
        # SIGHUP reloads the config file (see README, "Reloading the config").
        on_hangup=lambda: runtime.services.reload.on_signal(),
        # The lifespan starts the runtime before uvicorn binds: the checks wait for the
        # socket, or the built-in self-probe could find nothing there and page at each start.
        on_listening=_then_collect(runtime.hold_checks_until_listening()),
    )
    # systemd's Type=notify and WatchdogSec= (nothing happens outside systemd).
    server.notify_systemd(
        lambda: f"watching {len(runtime.checks)} checks on {base}", runtime.stalled
    )
    server.run()
    if not server.started:
        raise typer.Exit(1)


SERVING_GC_THRESHOLDS = (10_000, 10, 100)
"""The cyclic collector's thresholds while `run` serves (the interpreter's: 700, 10, 10).

A young collection every 10,000 new container objects rather than 700: a request of 100
new alerts makes several thousand, and a collection in its middle promoted them all to the
older generations, to be walked again by the full collections. Those (every object the
start did not freeze) then came every 10 collections of the middle generation and took
~0.1 s each: in a burst of new alerts the collector was 15 % of the CPU (0.54-0.67 s in a
5-s run, against 0.25-0.31 s with these). Reference counting frees all but cycles at once
anyway; the cycles wait a little longer."""


def _then_collect(listening: Callable[[], None]) -> Callable[[], None]:
    """`listening`, then the cyclic collector back on (`main` turns it off for the start)."""

    def call() -> None:
        listening()
        gc.set_threshold(*SERVING_GC_THRESHOLDS)
        gc.enable()

    return call


def _print_setup_url(url: str) -> None:
    """The first-run setup URL, on stdout only: the log (stderr, often shipped and kept)
    says that it was printed, never the URL, whose token is a credential for an hour."""
    print(
        "watchkeeper: no dashboard user yet. Create the first admin account at this one-time"
        f" URL (it works once, for 1 hour; a new one is printed at each start):\n  setup    {url}",
        flush=True,
    )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the example.")] = Path(
        DEFAULT_CONFIG
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example config."""
    if path.exists() and not force:
        err.print(f"[red]error:[/] {path} exists; use --force to overwrite")
        raise typer.Exit(1)
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    out.print(f"wrote {path}; check it with: watchkeeper validate {path}")


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Config file to check.")]) -> None:
    """Check a config file; print every error as FILE:LINE: field: message."""
    cfg, _ = _load(file)
    out.print(
        f"{file}: OK ({len(cfg.checks)} checks, {len(cfg.notifications)} notification channels)",
        markup=False,
        highlight=False,
    )


_STYLE = {"up": "green", "degraded": "yellow", "down": "red", "unknown": "magenta"}


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="Config file.")],
    names: Annotated[list[str] | None, typer.Argument(help="Checks to run (default: all).")] = None,
) -> None:
    """Run checks once, print a table; exit 0 only if every one is up."""
    cfg, _ = _load(file)
    selected = [c for c in cfg.checks if not names or c.name in names]
    unknown = set(names or ()) - {c.name for c in cfg.checks}
    if unknown:
        err.print(f"[red]error:[/] no check named {', '.join(sorted(unknown))} in {file}")
        raise typer.Exit(1)
    pushed = [c for c in selected if c.push]
    results = asyncio.run(
        _run_checks([c for c in selected if not c.push], cfg.scheduler.max_concurrency)
    )
    table = Table(title=f"{len(selected)} checks from {file}")
    for column in ("check", "type", "status", "time", "reason"):
        table.add_column(column, overflow="fold")
    for config, result in results:
        rt = f"{result.response_time * 1000:.0f} ms" if result.response_time is not None else "-"
        style = _STYLE.get(result.status.value, "")
        table.add_row(
            config.name, config.type, f"[{style}]{result.status.value}[/]", rt, result.reason
        )
    for config in pushed:
        # Push checks cannot be run from here: the job reports to the running service.
        where = f"pinged at /ping/<uuid> or /ping/<ping key>/{config.name}"
        table.add_row(config.name, config.type, "push", "-", where)
    out.print(table)
    if any(r.status.value != "up" for _, r in results):
        raise typer.Exit(1)


async def _run_checks(configs: list[Any], concurrency: int) -> list[tuple[Any, Any]]:
    from watchkeeper.app import http_session
    from watchkeeper.checks import CheckContext, build_check
    from watchkeeper.engine.scheduler import run_once

    session = http_session(concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    checks = [build_check(c, CheckContext(session)) for c in configs]

    async def one(c: Any) -> Any:
        async with semaphore:
            return c.redacted(await run_once(c))

    try:
        results = await asyncio.gather(*(one(c) for c in checks))
    finally:
        for c in checks:
            await c.close()
        await session.close()
    return list(zip(configs, results, strict=True))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply pending schema migrations."""
    from watchkeeper.core.redact import redact_url
    from watchkeeper.store.database import Database

    cfg, _ = _load(config)

    async def go() -> str | None:
        db = Database(cfg.storage.url)
        try:
            await db.migrate()
            return await db.current_revision()
        finally:
            await db.close()

    revision = asyncio.run(go())
    out.print(f"{redact_url(cfg.storage.url)} is at revision {revision}", markup=False)


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy.")],
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy the SQLite database to FILE, consistently, while the service runs."""
    from watchkeeper.store.backup import BackupError, backup_sqlite, sqlite_path

    cfg, _ = _load(config)
    try:
        done = backup_sqlite(sqlite_path(cfg.storage.url), file, force=force)
    except BackupError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    out.print(
        f"backed up to {done.target}: {done.size / 1e6:.1f} MB, {done.pages} pages, "
        f"integrity ok, in {done.seconds:.1f} s",
        markup=False,
        highlight=False,
    )


def _with_db(cfg: Config, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on the configured database, migrated first."""
    from watchkeeper.store.database import Database

    async def go() -> T:
        db = Database(cfg.storage.url)
        try:
            await db.migrate()
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


@app.command("ping-key")
def ping_key(config: ConfigOption = None) -> None:
    """Print the heartbeat ping key (of `/ping/<ping key>/<check name>`) alone on stdout.

    It is `heartbeats.ping_key` if configured, else the one generated and kept in the
    database (made now if the service never ran). Treat it like a password."""
    from watchkeeper.engine.heartbeat.access import load_ping_key

    cfg, _ = _load(config)
    key, source = _with_db(cfg, lambda db: load_ping_key(db, cfg.heartbeats.ping_key))
    err.print(
        f"ping key ({source}); ping a heartbeat at "
        f"{cfg.server.base_url()}/ping/<ping key>/<check name>:",
        markup=False,
        highlight=False,
    )
    print(key, flush=True)


def _user_service(db: Database) -> UserService:
    """The users service the API uses, on the CLI's database (argon2 in a plain thread)."""
    from watchkeeper.core.clock import SystemClock
    from watchkeeper.services.users import UserService

    return UserService(db, SystemClock())


def _token_service(db: Database) -> TokenService:
    """The tokens service the API uses, on the CLI's database."""
    from watchkeeper.core.clock import SystemClock
    from watchkeeper.services.tokens import TokenService

    return TokenService(db, SystemClock())


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


RoleOption = Annotated[
    Role, typer.Option("--role", help="viewer (read), operator (act on alerts) or admin.")
]


@token_app.command("create")
def token_create(
    role: RoleOption,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime such as 30d or 12h (default: none).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Make an API token; it is printed alone on the last line of stdout, this once."""
    from watchkeeper.core.durations import TOKEN_LIFETIME
    from watchkeeper.core.errors import DomainError

    if not 1 <= len(name) <= 100:
        err.print("[red]error:[/] --name: 1 to 100 characters")
        raise typer.Exit(2)
    lifetime = None
    if expires is not None:
        try:
            lifetime = TOKEN_LIFETIME.parse(expires)
        except ValueError as exc:
            err.print(f"[red]error:[/] --expires: {exc}", markup=False)
            raise typer.Exit(2) from None
    cfg, _ = _load(config)
    try:
        token, secret = _with_db(
            cfg,
            lambda db: _token_service(db).create(
                name=name, role=role, expires_in=lifetime, created_by="cli"
            ),
        )
    except DomainError as exc:
        err.print(f"error: {exc.detail}", markup=False)
        raise typer.Exit(1) from None
    expiry = f"{_when(token.expires_at)} UTC" if token.expires_at else "never"
    err.print(
        f"created {role.value} token {name!r} (id {token.id}, expires {expiry}); "
        "it is shown only now:",
        markup=False,
        highlight=False,
    )
    print(secret, flush=True)


@token_app.command("list")
def token_list(config: ConfigOption = None) -> None:
    """List API tokens (never their secrets)."""
    from watchkeeper.core.clock import utcnow

    cfg, _ = _load(config)
    found = _with_db(cfg, lambda db: _token_service(db).list())
    now = utcnow()
    table = Table(title=f"{len(found)} API tokens (times in UTC)")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, for `token revoke ID`
    for column in ("name", "role", "prefix", "state", "expires", "last used"):
        table.add_column(column, overflow="fold")
    for t in found:
        table.add_row(
            t.id,
            t.name,
            t.role.value,
            t.prefix + "…",
            t.state(now),
            _when(t.expires_at),
            _when(t.last_used_at),
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="From `watchkeeper token list`.")],
    config: ConfigOption = None,
) -> None:
    """Revoke a token: it stops working at once."""
    from watchkeeper.core.errors import NotFound

    cfg, _ = _load(config)
    try:
        token = _with_db(cfg, lambda db: _token_service(db).revoke(token_id))
    except NotFound:
        err.print(f"error: no token with id {token_id}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"revoked token {token.name!r} ({token.id})", markup=False, highlight=False)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        err.print("[red]error:[/] no terminal to ask for the password on: use --password-stdin")
        raise typer.Exit(2)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option("--username", help="Login name.")],
    role: RoleOption,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Create a user; asks for the password twice (or reads it from stdin)."""
    from watchkeeper.auth import passwords, users
    from watchkeeper.core.errors import DomainError

    try:
        name = users.check_username(username)
    except ValueError as exc:
        err.print(f"error: --username: {exc}", markup=False)
        raise typer.Exit(2) from None
    cfg, _ = _load(config)
    password = _read_password(password_stdin)
    try:
        passwords.check_strength(password)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    try:
        user = _with_db(cfg, lambda db: _user_service(db).create(name, password, role))
    except DomainError as exc:  # the name is taken
        err.print(f"error: {exc.detail}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"created {user.role.value} user {user.username}", markup=False, highlight=False)


@user_app.command("passwd")
def user_passwd(
    username: Annotated[str, typer.Option("--username", help="Login name.")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Set a user's password (asks twice, or reads stdin); ends all their sessions."""
    from watchkeeper.auth import passwords, users
    from watchkeeper.core.errors import NotFound

    cfg, _ = _load(config)
    name = users.normalize_username(username)
    password = _read_password(password_stdin)
    try:
        passwords.check_strength(password)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    try:
        user, ended = _with_db(cfg, lambda db: _user_service(db).reset_password(name, password))
    except NotFound:
        err.print(f"error: no user named {name!r}", markup=False)
        raise typer.Exit(1) from None
    out.print(
        f"changed the password of {user.username}; {ended} sessions ended",
        markup=False,
        highlight=False,
    )


@user_app.command("list")
def user_list(config: ConfigOption = None) -> None:
    """List users."""
    cfg, _ = _load(config)
    found = _with_db(cfg, lambda db: _user_service(db).list())
    table = Table(title=f"{len(found)} users (times in UTC)")
    for column in ("username", "role", "created", "last login"):
        table.add_column(column, overflow="fold")
    for u in found:
        table.add_row(u.username, u.role.value, _when(u.created_at), _when(u.last_login_at))
    out.print(table)


@user_app.command("delete")
def user_delete(
    username: Annotated[str, typer.Argument(help="Login name.")], config: ConfigOption = None
) -> None:
    """Delete a user and end their sessions (never the last admin user)."""
    from watchkeeper.core.errors import Conflict, NotFound

    cfg, _ = _load(config)
    try:
        user = _with_db(cfg, lambda db: _user_service(db).delete(username))
    except Conflict as exc:  # the last admin user
        err.print(f"error: {exc.detail}", markup=False)
        raise typer.Exit(1) from None
    except NotFound:
        err.print(f"error: no user named {username!r}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"deleted user {user.username}", markup=False, highlight=False)


def main() -> None:
    # A command's start (imports, the config model, the app and its routes, migrations)
    # builds a few hundred thousand objects that live until it exits, and frees few cycles:
    # the collector's automatic full passes over them cost ~0.3 s of CPU per start and find
    # nearly nothing. `run` turns it back on once it listens (after the runtime's own
    # collect-and-freeze); the other commands are short.
    gc.disable()
    # Rich wraps long lines at the terminal width; scripts parsing our output want them whole.
    if not sys.stdout.isatty():
        os.environ.setdefault("COLUMNS", "200")
    try:
        app()
    finally:
        # The interpreter's exit collects every object once more before it tears the modules
        # down (~0.6 s of CPU after a `run`): whatever the command leaves is freed with the
        # process anyway. Its files, connections and log handlers are closed by now, and
        # atexit handlers still run.
        gc.freeze()
