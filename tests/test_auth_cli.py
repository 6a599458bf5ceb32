"""`watchkeeper token …` and `watchkeeper user …` as scripts run them, against a started
runtime on the same database."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.support.auth import bearer
from watchkeeper.app import Runtime
from watchkeeper.config.loader import load_config
from watchkeeper.http.factory import create_app


async def watchkeeper(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "watchkeeper", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "wk.yaml"
    path.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n", encoding="utf-8")
    return path


@asynccontextmanager
async def api(config: Path) -> AsyncIterator[httpx.AsyncClient]:
    cfg = load_config(config)
    runtime = Runtime(cfg)
    await runtime.start()
    try:
        app = create_app(cfg, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://wk"
        ) as client:
            yield client
    finally:
        await runtime.stop()


async def test_token_create_prints_the_token_alone_on_the_last_line_and_it_authenticates(
    tmp_path: Path,
) -> None:
    config = config_file(tmp_path)
    made = await watchkeeper(
        "token", "create", "--role", "operator", "--name", "ci", "--config", str(config)
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[-1]
    assert made.stdout == token + "\n"  # the human line went to stderr
    assert re.fullmatch(r"wk_[A-Za-z0-9_-]{43}", token)
    assert "created operator token 'ci'" in made.stderr

    async with api(config) as client:
        assert (await client.get("/api/v1/checks", headers=bearer(token))).status_code == 200
        tokens = await client.get("/api/v1/tokens", headers=bearer(token))
        assert tokens.status_code == 403  # operators do not manage tokens

    listed = await watchkeeper("token", "list", "--config", str(config))
    assert listed.returncode == 0 and "ci" in listed.stdout and token not in listed.stdout
    token_id = re.search(r"[0-9a-f]{8}-[0-9a-f-]{27}", listed.stdout)
    assert token_id is not None, listed.stdout
    revoked = await watchkeeper("token", "revoke", token_id.group(0), "--config", str(config))
    assert revoked.returncode == 0, revoked.stderr

    async with api(config) as client:
        assert (await client.get("/api/v1/checks", headers=bearer(token))).status_code == 401


async def test_token_create_with_expiry_and_bad_arguments(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    made = await watchkeeper(
        "token", "create", "--role", "viewer", "--expires", "30d", "--config", str(config)
    )
    assert made.returncode == 0 and "expires 20" in made.stderr
    bad_role = await watchkeeper("token", "create", "--role", "root", "--config", str(config))
    assert bad_role.returncode == 2 and "root" in bad_role.stderr
    bad_expiry = await watchkeeper(
        "token", "create", "--role", "viewer", "--expires", "soon", "--config", str(config)
    )
    assert bad_expiry.returncode == 2 and "--expires" in bad_expiry.stderr


async def test_user_create_reads_the_password_from_stdin_and_the_user_can_log_in(
    tmp_path: Path,
) -> None:
    config = config_file(tmp_path)
    args = ["user", "create", "--username", "Alice", "--role", "admin", "--config", str(config)]
    made = await watchkeeper(*args, "--password-stdin", stdin="s3cret passphrase\n")
    assert made.returncode == 0, made.stderr
    assert "created admin user alice" in made.stdout

    async with api(config) as client:
        login = await client.post(
            "/auth/login", json={"username": "alice", "password": "s3cret passphrase"}
        )
        assert login.status_code == 200, login.text
        assert login.json()["role"] == "admin"

    again = await watchkeeper(*args, "--password-stdin", stdin="another passphrase\n")
    assert again.returncode == 1 and "exists" in again.stderr
    short = await watchkeeper(
        "user", "create", "--username", "bob", "--role", "viewer", "--config", str(config),
        "--password-stdin", stdin="short\n",
    )  # fmt: skip
    assert short.returncode == 1 and "at least 8" in short.stderr
    no_terminal = await watchkeeper(
        "user", "create", "--username", "bob", "--role", "viewer", "--config", str(config)
    )
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr


async def test_user_passwd_sets_a_new_password_on_the_host_and_ends_the_users_sessions(
    tmp_path: Path,
) -> None:
    config = config_file(tmp_path)
    created = await watchkeeper(
        "user", "create", "--username", "alice", "--role", "admin", "--config", str(config),
        "--password-stdin", stdin="forgotten passphrase\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    async with api(config) as client:
        old = {"username": "alice", "password": "forgotten passphrase"}
        assert (await client.post("/auth/login", json=old)).status_code == 200
        session = client.cookies["wk_session"]

    passwd = ["user", "passwd", "--username", "Alice", "--config", str(config)]
    changed = await watchkeeper(*passwd, "--password-stdin", stdin="remembered passphrase\n")
    assert changed.returncode == 0, changed.stderr
    assert "changed the password of alice; 1 sessions ended" in changed.stdout

    async with api(config) as client:
        client.cookies.set("wk_session", session)
        assert (await client.get("/auth/me")).status_code == 401
        assert (await client.post("/auth/login", json=old)).status_code == 401
        new = {"username": "alice", "password": "remembered passphrase"}
        assert (await client.post("/auth/login", json=new)).status_code == 200

    short = await watchkeeper(*passwd, "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 8" in short.stderr
    nobody = await watchkeeper(
        "user", "passwd", "--username", "bob", "--config", str(config), "--password-stdin",
        stdin="long enough passphrase\n",
    )  # fmt: skip
    assert nobody.returncode == 1 and "no user named 'bob'" in nobody.stderr
    no_terminal = await watchkeeper(*passwd)
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr

    listed = await watchkeeper("user", "list", "--config", str(config))
    assert listed.returncode == 0 and "alice" in listed.stdout and "admin" in listed.stdout
    last = await watchkeeper("user", "delete", "alice", "--config", str(config))
    assert last.returncode == 1 and "last admin user" in last.stderr
