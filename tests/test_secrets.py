"""One secret policy: a marker planted in every secret-bearing field of every check and
channel type, config file and API alike, shows up on no output surface of a real service.

The service runs as a subprocess at debug log level against real loopback peers: an HTTP
target that fails (and echoes what it was sent, as a careless internal service would), the
local PostgreSQL, MySQL and Redis refusing the planted passwords, a command and a python
check echoing their secrets, webhook/Slack/PagerDuty/Apprise receivers (one failing) and an
SMTP server. Every check goes DOWN, pages, and every channel delivers or retries; then every
surface is read: the process output (banner and logs), the API (checks, results, alerts,
definitions, audit), the dashboard pages and every payload the receivers got.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.notify.test_email import Inbox, smtp_server
from tests.support.auth import cli_token
from tests.support.certs import make_ca
from tests.support.process import WatchkeeperProcess
from tests.support.required import require_local_services
from tests.support.servers import Server, free_port, wait_until
from tests.support.service import running

ROOT = Path(__file__).resolve().parent.parent
MARK = "SECRETMARKER"
PD_KEY = f"{MARK}pagerdutyroutingkey0"  # PagerDuty keys are 32 letters and digits
assert len(PD_KEY) == 32


def m(field_name: str) -> str:
    """The marker planted in one field."""
    return f"{MARK}-{field_name}"


def smtp_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any
) -> AuthResult:
    ok = isinstance(auth, LoginPassword) and auth == (b"bob", m("email-password").encode())
    return AuthResult(success=ok, handled=False)


class EchoTarget(Server):
    """A failing internal service that echoes the request: `/status/<code>` answers that
    code, anything else 200 with `{"ok": false, "echo": {...}}`."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        super().__init__(app)

    async def _any(self, request: web.Request) -> web.Response:
        if request.path.startswith("/status/"):
            return web.Response(status=int(request.path.rsplit("/", 1)[1]), text="failing")
        echo = {
            "query": request.query_string,
            "cookie": request.headers.get("Cookie", ""),
            "apikey": request.headers.get("X-Api-Key", ""),
            "authorization": request.headers.get("Authorization", ""),
            "body": (await request.read()).decode(errors="replace"),
        }
        return web.json_response({"ok": False, "echo": echo})


@dataclass
class Received:
    path: str
    body: bytes


@dataclass
class Sink(Server):
    """Receives every channel's deliveries: paths under `/fail/` answer 500, others 200/202."""

    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._arrived = asyncio.Event()
        Server.__init__(self, app)

    async def _any(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.path, await request.read()))
        if request.path.startswith("/fail/"):
            return web.Response(status=500, text="down for maintenance")
        if "/pd" in request.path:
            return web.json_response({"status": "success"}, status=202)
        return web.Response(text="ok")

    def at(self, prefix: str) -> list[Received]:
        return [r for r in self.received if r.path.startswith(prefix)]


@pytest.fixture
async def echo() -> AsyncIterator[EchoTarget]:
    server = EchoTarget()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = Sink()
    await server.start()
    yield server
    await server.close()


def http_secrets(prefix: str, echo: EchoTarget) -> dict[str, Any]:
    """An http check whose URL, headers and body carry secrets the target echoes back."""
    return {
        "name": f"{prefix}-http",
        "type": "http",
        "url": (
            f"http://bob:{m(prefix + '-userinfo')}@127.0.0.1:{echo.port}/any"
            f"?api_key={m(prefix + '-query')}&sig={m(prefix + '-sig')}"
            f"&sslpassword={m(prefix + '-sslpassword')}&page=1"
        ),
        "method": "POST",
        "headers": {
            "Cookie": f"session={m(prefix + '-cookie')}",
            "X-Api-Key": m(prefix + "-apikey"),
            "Content-Type": "application/json",
        },
        "body": json.dumps({"user": "bob", "password": m(prefix + "-body")}),
        "interval": "1s",
        "expect": {
            "json": {
                "$.echo.query": "none",
                "$.echo.cookie": "none",
                "$.echo.apikey": "none",
                "$.echo.body": "none",
            }
        },
    }


def config_checks(echo: EchoTarget, dead: int) -> list[dict[str, Any]]:
    return [
        http_secrets("cfg", echo),
        {
            "name": "cfg-basic",
            "type": "http",
            "url": f"http://127.0.0.1:{echo.port}/status/500?token={m('cfg-basic-query')}",
            "basic_auth": {"username": "bob", "password": m("cfg-basic-password")},
        },
        {
            "name": "cfg-bearer",
            "type": "http",
            "url": f"http://127.0.0.1:{echo.port}/any",
            "bearer_token": m("cfg-bearer"),
            "expect": {"json": {"$.echo.authorization": "none"}},
        },
        {
            "name": "cfg-form",
            "type": "http",
            "url": f"http://127.0.0.1:{echo.port}/any",
            "method": "POST",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": f"user=bob&passwd={m('cfg-formbody')}",
            "expect": {"json": {"$.echo.body": "none"}},
        },
        {
            "name": "cfg-dead",
            "type": "http",
            "url": f"http://127.0.0.1:{dead}/x?access_token={m('cfg-dead-query')}",
        },
        {
            "name": "cfg-pg",
            "type": "postgres",
            "dsn": (
                f"postgresql://nobody:{m('cfg-pg-password')}@127.0.0.1:5432/test"
                f"?sslpassword={m('cfg-pg-sslpassword')}"
            ),
        },
        {
            "name": "cfg-pg-query",
            "type": "postgres",
            "dsn": f"postgresql://nobody@127.0.0.1:{dead}/test?password={m('cfg-pg-qpassword')}",
        },
        {
            "name": "cfg-mysql",
            "type": "mysql",
            "dsn": f"mysql://root:{m('cfg-mysql-password')}@127.0.0.1:3306/test",
        },
        {
            "name": "cfg-redis",
            "type": "redis",
            "url": f"redis://:{m('cfg-redis-password')}@127.0.0.1:6379/0",
        },
        {
            "name": "cfg-redis-query",
            "type": "redis",
            "url": f"redis://127.0.0.1:{dead}/0?password={m('cfg-redis-qpassword')}",
        },
        {
            "name": "cfg-command",
            "type": "command",
            "command": [
                "sh",
                "-c",
                'echo "CRITICAL - token $API_TOKEN password $2"; exit 2',
                "plugin",
                "--password",
                m("cfg-command-arg"),
            ],
            "env": {"API_TOKEN": m("cfg-command-env")},
        },
        {
            "name": "cfg-python",
            "type": "python",
            "target": "tests.checks.pytargets:refused_with_token",
            "args": {"api_token": m("cfg-python-arg")},
        },
    ]


def api_checks(echo: EchoTarget, dead: int) -> list[dict[str, Any]]:
    return [
        http_secrets("api", echo),
        {
            "name": "api-pg",
            "type": "postgres",
            "dsn": (
                f"postgresql://nobody:{m('api-pg-password')}@127.0.0.1:{dead}/test"
                f"?sslpassword={m('api-pg-sslpassword')}"
            ),
            "interval": "1s",
        },
        {
            "name": "api-mysql",
            "type": "mysql",
            "dsn": f"mysql://root:{m('api-mysql-password')}@127.0.0.1:3306/test",
            "interval": "1s",
        },
        {
            "name": "api-redis",
            "type": "redis",
            "url": f"redis://:{m('api-redis-password')}@127.0.0.1:6379/0",
            "interval": "1s",
        },
    ]


def channels(sink: Sink, smtp_port: int) -> list[dict[str, Any]]:
    base = f"127.0.0.1:{sink.port}"
    return [
        {
            "name": "hook",
            "type": "webhook",
            "url": f"http://{base}/ok/hook?token={m('webhook-query')}",
            "secret": m("webhook-secret"),
            "headers": {
                "Authorization": f"Bearer {m('webhook-header')}",
                "X-Api-Key": m("webhook-apikey"),
            },
        },
        {
            "name": "hook-failing",
            "type": "webhook",
            "url": f"http://{base}/fail/hook?access_token={m('webhook-fail-query')}",
        },
        {
            "name": "chat",
            "type": "slack",
            "webhook_url": f"http://{base}/ok/slack/services/T0/B0/{m('slack-path')}",
        },
        {
            "name": "pager",
            "type": "pagerduty",
            "routing_key": PD_KEY,
            "url": f"http://{base}/ok/pd",
        },
        {
            "name": "mail",
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "username": "bob",
            "password": m("email-password"),
            "from_addr": "wk@example.com",
            "to": ["ops@example.com"],
        },
        {
            "name": "apprise",
            "type": "apprise",
            "url": f"json://bob:{m('apprise-password')}@{base}/ok/apprise",
        },
    ]


USER_PASSWORD = f"{MARK}-user-password-long-enough"


async def create_user(config: Path, username: str, password: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "watchkeeper", "user", "create", "--username", username, "--role", "viewer"),
        *("--password-stdin", "--config", str(config)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(password.encode() + b"\n"), 60)
    assert proc.returncode == 0, out.decode(errors="replace")


async def browse_as_user(url: str) -> list[str]:
    """Log in, read, log out as a browser would; the credentials that were in play."""
    # unsafe: keep cookies of an IP-address host (127.0.0.1), as browsers do.
    async with aiohttp.ClientSession(
        base_url=url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        async with http.post(
            "/auth/login", json={"username": "alice", "password": USER_PASSWORD}
        ) as resp:
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
            session_id = resp.cookies["wk_session"].value
        async with http.get("/auth/me") as resp:
            assert resp.status == 200
        async with http.post("/auth/logout", headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 204, await resp.text()
    return [USER_PASSWORD, session_id, csrf]


def leaks(surface: str, text: str) -> list[str]:
    """`surface: …excerpt…` for every marker in `text`."""
    found = []
    start = text.find(MARK)
    while start != -1:
        found.append(f"{surface}: …{text[max(0, start - 80) : start + 60]}…")
        start = text.find(MARK, start + 1)
    return found


async def test_no_planted_secret_reaches_any_output_surface(
    tmp_path: Path, echo: EchoTarget, sink: Sink
) -> None:
    require_local_services()
    dead = free_port()
    inbox = Inbox()
    async with smtp_server(inbox, authenticator=smtp_login, auth_require_tls=False) as smtp_port:
        config = tmp_path / "watchkeeper.yaml"
        config.write_text(
            json.dumps(
                {
                    "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
                    "delivery": {"backoff_initial": "200ms", "backoff_max": "1s"},
                    "defaults": {"interval": "1s", "timeout": "3s"},
                    "checks": config_checks(echo, dead),
                    "notifications": channels(sink, smtp_port),
                }
            ),
            encoding="utf-8",
        )
        token = await cli_token(config, cwd=ROOT)  # ROOT: the python check imports tests.
        wk = WatchkeeperProcess(
            config,
            tmp_path,
            token=token,
            args=("--log-level", "debug"),
            env={"PYTHONPATH": str(ROOT)},
        )
        await create_user(config, "alice", USER_PASSWORD)
        await wk.start()
        surfaces: dict[str, str] = {}
        session_secrets: list[str] = []
        try:
            session_secrets = await browse_as_user(wk.url)
            async with aiohttp.ClientSession(
                base_url=wk.url, headers={"Authorization": f"Bearer {token}"}
            ) as http:
                for body in api_checks(echo, dead):
                    async with http.post("/api/v1/checks", json=body) as resp:
                        text = await resp.text()
                        assert resp.status == 201, text
                        surfaces[f"POST /api/v1/checks {body['name']}"] = text
                names = [c["name"] for c in config_checks(echo, dead) + api_checks(echo, dead)]

                async def all_down() -> bool:
                    page = await wk.get("/api/v1/checks?limit=100")
                    states = {c["name"]: c["status"] for c in page["items"]}
                    return all(states.get(n) == "down" for n in names)

                await wait_until(all_down, 60, "every check down")
                await wait_until(
                    lambda: (
                        inbox.received
                        and sink.at("/ok/hook")
                        and sink.at("/ok/slack")
                        and sink.at("/ok/pd")
                        and sink.at("/ok/apprise")
                        and len(sink.at("/fail/hook")) >= 2
                    ),
                    60,
                    "every channel delivered (the failing one retried)",
                )

                async def fetch(path: str) -> str:
                    async with http.get(path, headers={"Accept": "text/html"}) as resp:
                        text = await resp.text()
                        assert resp.status == 200, f"{path}: {resp.status} {text[:300]}"
                        surfaces[f"GET {path}"] = text
                        return text

                await fetch("/api/v1/checks?limit=100")
                for name in names:
                    await fetch(f"/api/v1/checks/{name}")
                    await fetch(f"/api/v1/checks/{name}/results")
                    await fetch(f"/dashboard/checks/{name}")
                alerts = json.loads(await fetch("/api/v1/alerts?limit=100"))
                assert {a["check"] for a in alerts["items"]} >= set(names)
                for alert in alerts["items"]:
                    await fetch(f"/api/v1/alerts/{alert['id']}")
                    await fetch(f"/dashboard/alerts/{alert['id']}")
                for path in (
                    "/api/v1/audit",
                    "/api/v1/escalation-policies",
                    "/api/v1/status",
                    "/dashboard",
                    "/dashboard/alerts",
                    "/metrics",
                ):
                    await fetch(path)
        finally:
            await wk.stop()

    surfaces["process output (banner and debug log)"] = wk.log_text()
    for received in sink.received:
        body = received.body.decode(errors="replace")
        if received.path == "/ok/pd":
            # PagerDuty's protocol puts the routing key in the body: the one secret that
            # must be there, and only in its own channel's requests.
            body = body.replace(PD_KEY, "")
        surfaces[f"payload to {received.path}"] = body
    for n, mail in enumerate(inbox.received):
        assert mail.authenticated
        surfaces[f"e-mail {n}"] = mail.message.as_string()

    found = [leak for surface, text in surfaces.items() for leak in leaks(surface, text)]
    assert not found, "\n".join(found[:40])
    # The debug log also shows no credential of the API token used all along.
    log = surfaces["process output (banner and debug log)"]
    assert token not in log and hashlib.sha256(token.encode()).hexdigest() not in log
    for value in session_secrets:  # password, session cookie, CSRF token, and their hashes
        assert value not in log
        assert hashlib.sha256(value.encode()).hexdigest() not in log
    assert "***" in log, "the masked values still show where they were"


async def test_the_banner_masks_every_form_of_a_storage_password(tmp_path: Path) -> None:
    dead = free_port()
    for url in (
        f"postgresql://us@er:{m('raw-at-user')}@127.0.0.1:{dead}/wk",
        f"postgresql://wk@127.0.0.1:{dead}/wk?password={m('query')}&sslpassword={m('ssl')}",
    ):
        config = tmp_path / "watchkeeper.yaml"
        config.write_text(json.dumps({"storage": {"url": url}}), encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "watchkeeper", "run", "--config", str(config), "--log-level", "debug"),
            *("--listen", f"127.0.0.1:{free_port()}"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        text = out.decode(errors="replace")
        assert proc.returncode != 0, "the database is not there: start-up fails"
        assert "storage postgresql://" in text, text  # the banner was printed
        assert not leaks("output", text), "\n".join(leaks("output", text))


async def test_api_checks_may_name_a_ca_file_only_under_the_configured_directory(
    sqlite_url: str, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "cas"
    ca_dir.mkdir()
    inside = make_ca().write_cert(ca_dir / "internal.pem")
    outside = make_ca().write_cert(tmp_path / "elsewhere.pem")
    (ca_dir / "escape.pem").symlink_to(outside)

    def tls(name: str, ca_file: str) -> dict[str, Any]:
        return {"name": name, "type": "tls", "host": "127.0.0.1", "ca_file": ca_file}

    storage = {"storage": {"url": sqlite_url}}
    async with running(storage) as service:
        for path in (str(inside), "/etc/shadow", "/no/such/file"):
            refused = await service.client.post("/api/v1/checks", json=tls("t", path))
            assert refused.status_code == 422, refused.text
            problem = refused.json()
            assert problem["errors"][0]["loc"] == ["ca_file"]
            assert "server.api_ca_dir" in problem["detail"]
            # The same answer whatever the path: nothing tells whether a file exists.
            assert path not in refused.text
    async with running({**storage, "server": {"api_ca_dir": str(ca_dir)}}) as service:
        for path in (str(outside), "/etc/shadow", str(ca_dir / ".." / "elsewhere.pem")):
            refused = await service.client.post("/api/v1/checks", json=tls("t", path))
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["loc"] == ["ca_file"]
        escaped = await service.client.post(
            "/api/v1/checks", json=tls("t", str(ca_dir / "escape.pem"))
        )
        assert escaped.status_code == 422, "a symlink out of the directory is outside it"
        made = await service.client.post("/api/v1/checks", json=tls("t", str(inside)))
        assert made.status_code == 201, made.text


async def test_watchkeeper_check_prints_reasons_masked(tmp_path: Path) -> None:
    dead = free_port()
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        json.dumps(
            {
                "checks": [
                    {
                        "name": "api",
                        "type": "http",
                        "url": f"http://127.0.0.1:{dead}/x?api_key={m('cli-query')}&page=2",
                    },
                    {
                        "name": "plugin",
                        "type": "command",
                        "command": ["sh", "-c", 'echo "CRITICAL - $API_TOKEN"; exit 2'],
                        "env": {"API_TOKEN": m("cli-env")},
                    },
                ]
            }
        ),
        encoding="utf-8",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "watchkeeper", "check", str(config)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "250"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode(errors="replace")
    assert proc.returncode == 1, text
    assert "api_key=***&page=2" in text and "CRITICAL - ***" in text, text
    assert not leaks("output", text), text
