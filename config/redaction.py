"""Keeps credentials out of logs and stored errors: known secret values and the URL or JSON
fields that carry them (``corpsecret=``, ``access_token=``) become ``***``.

The WeCom client and the senders already store and raise errors without credentials; this is
the second line. `install` wraps logging's record factory, so every record of every logger
and handler (RQ's, gunicorn's, the demo's log file, pytest's) is cleaned as it is made,
message, traceback text (``exc_text``) and stack alike, before any formatter sees it.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Iterable

REDACTED = "***"
# Shorter values would garble ordinary words in the logs; real secrets are far longer.
MIN_SECRET_CHARS = 4
# Access tokens change every two hours; the newest few are the ones that can still be used.
RECENT_TOKENS = 8
_SECRET_FIELDS = r"access_token|corpsecret|secret|password|session_key"
_SECRET_PATTERNS = (
    re.compile(rf"((?:{_SECRET_FIELDS})=)[^&\s'\"]+", re.IGNORECASE),  # URL query, form
    re.compile(rf"(\"(?:{_SECRET_FIELDS})\"\s*:\s*\")[^\"]+", re.IGNORECASE),  # JSON
)
_FORMATTER = logging.Formatter()


class Redactor:
    """The secrets one process knows, and the cleaning of text and log records."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._tokens: deque[str] = deque(maxlen=RECENT_TOKENS)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Remember configured secrets (they live as long as the process)."""
        self._secrets.update(v for v in values if len(v) >= MIN_SECRET_CHARS)

    def add_token(self, token: str) -> None:
        """Remember a short-lived credential (an access token), forgetting the oldest."""
        if len(token) >= MIN_SECRET_CHARS and token not in self._tokens:
            self._tokens.append(token)

    def redact(self, text: str) -> str:
        """`text` with every known secret and every credential field's value replaced."""
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(rf"\1{REDACTED}", text)
        # Longest first, so a secret that contains another is replaced whole.
        for secret in sorted({*self._secrets, *self._tokens}, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def clean(self, record: logging.LogRecord) -> None:
        """Redact a log record in place: its message, its traceback text and its stack."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return  # a broken format string: logging reports it when a handler formats it
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so none formats the raw chain again.
            record.exc_text = self.redact(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)


_redactor = Redactor()
_installed = False


def redact(text: str) -> str:
    """`text` without the process's known secrets or any credential field's value."""
    return _redactor.redact(text)


def add_token(token: str) -> None:
    """Make a freshly fetched access token one of the secrets redacted everywhere."""
    _redactor.add_token(token)


def install(secrets: Iterable[str]) -> None:
    """Redact `secrets` (and access tokens, and credential fields) from every log record made
    in this process from now on; safe to call again with more secrets."""
    global _installed
    _redactor.add_secrets(secrets)
    if _installed:
        return
    make_record = logging.getLogRecordFactory()

    def make_clean_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _redactor.clean(record)
        return record

    logging.setLogRecordFactory(make_clean_record)
    _installed = True
