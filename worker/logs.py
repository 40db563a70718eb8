"""Logging setup, with a last line of defence against secrets in log output.

Code never logs secrets on purpose (they are ``SecretStr`` everywhere). As a second guard,
every handler billsync installs carries a filter that replaces any known secret value in a
formatted record with ``**********``, so even a third-party library's debug line cannot leak
a token into the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import SecretStr

MASK = "**********"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Rewrites records whose text contains one of the given secret values."""

    def __init__(self) -> None:
        super().__init__()
        self._values: set[str] = set()

    def add(self, secrets: Iterable[SecretStr]) -> None:
        # Very short values would mask ordinary words; real tokens are long.
        self._values |= {s.get_secret_value() for s in secrets if len(s.get_secret_value()) >= 6}

    def redact(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._values:
            message = record.getMessage()
            redacted = self.redact(message)
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


_redactor = RedactSecrets()


def configure_logging(
    level: int | None = None, *, secrets: Iterable[SecretStr] = ()
) -> RedactSecrets:
    """Install one stderr handler (once) with the redacting filter; add secrets to it."""
    root = logging.getLogger()
    if not any(getattr(h, "_billsync", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(_redactor)
        handler._billsync = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    _redactor.add(secrets)
    return _redactor
