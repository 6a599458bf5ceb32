"""Password hashing parameters: RFC 9106's argon2id defaults unless a test suite opts out.

The suite itself runs with WATCHKEEPER_INSECURE_FAST_PASSWORD_HASHING=1 (tests/conftest.py),
so the real parameters are checked here in processes started without it."""

from __future__ import annotations

import os
import subprocess
import sys

from watchkeeper.auth import passwords

_SHOW = (
    "from watchkeeper.auth import passwords as p; h = p.hash_password('correct horse');"
    "print(h.split('$')[3]); print(p.verify_password(h, 'correct horse'))"
)


def _parameters(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _SHOW], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_deployment_hashes_with_rfc_9106_defaults() -> None:
    env = {k: v for k, v in os.environ.items() if k != passwords.FAST_HASHING_ENV}
    assert _parameters(env) == ["m=65536,t=3,p=4", "True"]


def test_only_the_exact_value_1_selects_the_test_parameters() -> None:
    env = {**os.environ, passwords.FAST_HASHING_ENV: "yes"}
    assert _parameters(env) == ["m=65536,t=3,p=4", "True"]
    env[passwords.FAST_HASHING_ENV] = "1"
    assert _parameters(env) == ["m=1024,t=1,p=1", "True"]


def test_a_hash_made_with_test_parameters_still_verifies_and_refuses() -> None:
    digest = passwords.hash_password("correct horse")
    assert digest.startswith("$argon2id$")
    assert passwords.verify_password(digest, "correct horse")
    assert not passwords.verify_password(digest, "correct horsf")
