"""The last line of defence: secret values never reach a log line, even by accident."""

import logging

import pytest
from pydantic import SecretStr

from worker.logs import MASK, RedactSecrets


@pytest.fixture
def capture() -> tuple[logging.Logger, list[str]]:
    redactor = RedactSecrets()
    redactor.add([SecretStr("tok-abcdef-123"), SecretStr("abc")])  # "abc": too short to mask
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = ListHandler()
    handler.addFilter(redactor)
    logger = logging.getLogger("billsync.test.redact")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, lines


def test_secret_in_message_and_args_is_masked(capture: tuple[logging.Logger, list[str]]) -> None:
    logger, lines = capture
    logger.info("header was Bearer %s for %s", "tok-abcdef-123", "abc")
    assert lines == [f"header was Bearer {MASK} for abc"]


def test_secret_in_a_traceback_is_masked(capture: tuple[logging.Logger, list[str]]) -> None:
    logger, lines = capture
    try:
        raise RuntimeError("library said: token tok-abcdef-123 refused")
    except RuntimeError:
        logger.exception("call failed")
    assert "tok-abcdef-123" not in lines[0]
    assert f"token {MASK} refused" in lines[0]
