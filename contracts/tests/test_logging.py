"""LOG_FORMAT: text lines for people, one JSON object per line for collectors."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from gatehouse_contracts.config import SettingsError, configure_logging


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _captured(log_format: str) -> io.StringIO:
    configure_logging("INFO", "gateway", log_format)
    out = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    return out


def test_json_lines_carry_time_level_service_logger_message() -> None:
    out = _captured("json")
    logging.getLogger("gatehouse.test").info("hello %s", "there", extra={"trace_id": "ab" * 16})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("gatehouse.test").exception("failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "INFO" and first["service"] == "gateway" and first["logger"] == "gatehouse.test"
    assert first["message"] == "hello there" and first["traceId"] == "ab" * 16
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]
    assert "traceId" not in second


def test_text_stays_the_default_and_a_bad_format_is_refused() -> None:
    out = _captured("text")
    logging.getLogger("gatehouse.test").warning("plain")
    assert " gateway WARNING gatehouse.test: plain" in out.getvalue()
    with pytest.raises(SettingsError, match="LOG_FORMAT must be text or json"):
        configure_logging("INFO", "gateway", "xml")
