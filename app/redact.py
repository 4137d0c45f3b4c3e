"""Secrets out of the server's log lines: ``token=`` query values become ``[redacted]``.

Websocket clients other than the pages may authenticate with ``?token=<jwt>``, and
uvicorn writes the request target of every request (``uvicorn.access``) and websocket
handshake (``uvicorn.error``) to the log as it came.  A bearer token in a log file is a
session anyone reading the logs can use, so the filter rewrites the record itself, before
any handler formats it.
"""

from __future__ import annotations

import logging
import re

# ``token=`` as a query parameter (after ``?`` or ``&``), up to the next separator.
_TOKEN = re.compile(r"([?&][A-Za-z_]*token=)[^&\s\"#]*", re.IGNORECASE)
REDACTED = "[redacted]"

# The loggers uvicorn writes request targets to.
REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter replaced."""
    return _TOKEN.sub(rf"\1{REDACTED}", text) if "token=" in text.lower() else text


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments with ``redact`` (never drops)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_token_redaction() -> None:
    """Put ``RedactTokens`` on uvicorn's request loggers, once (idempotent)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
