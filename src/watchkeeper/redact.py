"""Keep secrets out of logs, alerts and error messages."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# `scheme://user:password@` anywhere in a text. The greedy userinfo part backtracks to the
# last '@' of the authority, so passwords containing a raw '@' are fully covered too.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@:]*):[^\s/?#]*@")


def redact_url(text: str) -> str:
    """Replace the password of every `scheme://user:password@` in `text` with `***`."""
    return _URL_PASSWORD.sub(r"\1:***@", text)


class Redactor:
    """Masks known secret values and URL passwords in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            {*self._secrets, *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return redact_url(text)


class RedactingFilter(logging.Filter):
    """Logging filter that renders each record's message through a Redactor."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks carry exception text verbatim; render and mask them here.
            formatter = logging.Formatter()
            record.exc_text = self.redactor(formatter.formatException(record.exc_info))
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
            record.exc_text = None
        return True
