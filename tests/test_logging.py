from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from ketnoi_shared.logging import bind_context, configure_logging, scrub_text

CANARY_ID = "8123456789012345678"


@pytest.fixture
def json_log(monkeypatch: pytest.MonkeyPatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("testsvc", level="INFO", fmt="json")
    yield stream
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_line_has_service_and_correlation_id(json_log: io.StringIO):
    bind_context({"correlation_id": "corr-1", "event_id": "ev-1"})
    structlog.get_logger("x").info("handled", count=3)
    (line,) = lines(json_log)
    assert line["service"] == "testsvc"
    assert line["correlation_id"] == "corr-1"
    assert line["event_id"] == "ev-1"
    assert line["event"] == "handled"
    assert line["level"] == "info"


def test_identities_never_reach_a_line(json_log: io.StringIO):
    log = structlog.get_logger("x")
    log.info(
        "webhook",
        user_id=CANARY_ID,
        phone="0901234567",
        name="Nguyễn Văn An",
        sender={"id": CANARY_ID},
    )
    log.info(f"free text mentions {CANARY_ID} and +84 901 234 567")
    log.info("nested", detail={"info": {"name": "Nguyễn Văn An"}, "ids": [CANARY_ID]})
    logging.getLogger("aiokafka").warning("stdlib line about %s", CANARY_ID)
    out = json_log.getvalue()
    assert CANARY_ID not in out
    assert "0901234567" not in out and "901 234 567" not in out
    assert "Nguyễn Văn An" not in out
    assert len(lines(json_log)) == 4


def test_scrub_text_keeps_ordinary_numbers():
    assert scrub_text("mã LD-7K2Q9, 3 người, năm 2025") == "mã LD-7K2Q9, 3 người, năm 2025"
    assert "[phone]" in scrub_text("gọi 0987.654.321 nhé")
    assert "[id]" in scrub_text(f"id={CANARY_ID}")
