"""TLS values in config: a CA bundle file (`ca_file`) checked when the config loads."""

from __future__ import annotations

import ssl
from typing import Annotated

from pydantic import AfterValidator


def ssl_error_text(exc: BaseException) -> str:
    """The readable part of an SSL or OS error (OpenSSL's reason, without the source line)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        # "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" -> the middle part.
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        text = text.split("] ", 1)[-1].split(" (_ssl.c:", 1)[0]
        return text or exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def ca_file_problem(path: str) -> str | None:
    """Why `path` cannot serve as a CA bundle (missing, unreadable, no PEM certs), or None."""
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        return f"ca_file {path!r} does not exist"
    except IsADirectoryError:
        return f"ca_file {path!r} is a directory, not a PEM file"
    except PermissionError:
        return f"ca_file {path!r} is not readable"
    except (ssl.SSLError, OSError, ValueError) as exc:
        return f"ca_file {path!r} holds no usable PEM certificates ({ssl_error_text(exc)})"
    return None


def _usable_ca_file(value: str) -> str:
    if problem := ca_file_problem(value):
        raise ValueError(problem)
    return value


CaFile = Annotated[str, AfterValidator(_usable_ca_file)]
"""A PEM bundle of trusted CAs (replacing the system store): it must exist and hold
certificates when the config loads, not fail at the first probe."""
