"""Logging setup: text or JSON lines, always through the secret redactor."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from watchkeeper.core.redact import RedactingFilter, Redactor


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(fmt: str, level: str, redactor: Redactor) -> None:
    """Send every log record (uvicorn's too) to stderr, masked by `redactor`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(redactor))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at debug level (session and token
    # hashes, CSRF tokens, stored definitions); SQLAlchemy's own echo hides parameters.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
