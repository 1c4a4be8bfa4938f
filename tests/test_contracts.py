from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from ketnoi_shared.asyncapi import build_asyncapi
from ketnoi_shared.contracts import (
    TOPICS,
    ZALO_EVENTS,
    CitizenRef,
    EventKind,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    ZaloEvent,
    all_topics,
)
from ketnoi_shared.doctables import update_readme
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import envelope_headers

EXPECTED = {
    "zalo.events.v1",
    "reports.triaged.v1",
    "notify.requests.v1",
    "notify.results.v1",
    "news.items.v1",
}


def test_registry_has_every_topic_and_a_dlq_for_each_consumed_one():
    names = {t.name for t in all_topics()}
    assert names >= EXPECTED
    for name in EXPECTED:
        assert f"{name}.dlq" in names
        assert TOPICS[name].value_model is not None
        assert TOPICS[name].partitions >= 1 and TOPICS[name].retention_ms > 0


def _event(protector: IdentityProtector, **kw) -> ZaloEvent:
    return ZaloEvent(
        event_id="user_send_text:abc",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        correlation_id="user_send_text:abc",
        event_name="user_send_text",
        kind=EventKind.MESSAGE,
        app_id="1",
        oa_id="2",
        citizen=CitizenRef(
            pseudonym=protector.pseudonym("8123456789012345678"),
            sealed_user_id=protector.seal("8123456789012345678", purpose="u"),
        ),
        zalo_timestamp_ms=1,
        **kw,
    )


def test_event_roundtrips_and_keys_on_pseudonym(protector: IdentityProtector):
    event = _event(protector)
    again = ZaloEvent.model_validate_json(event.model_dump_json())
    assert again == event
    assert event.partition_key() == event.citizen.pseudonym
    headers = envelope_headers(event)
    assert headers["ketnoi-event-id"] == event.event_id
    assert headers["ketnoi-schema-version"] == "1"
    assert ZALO_EVENTS.value_model is ZaloEvent


def test_contract_refuses_clear_identity_in_identity_fields(protector: IdentityProtector):
    with pytest.raises(ValidationError):
        CitizenRef(pseudonym="8123456789012345678")
    with pytest.raises(ValidationError):
        CitizenRef(pseudonym=protector.pseudonym("x"), sealed_user_id="8123456789012345678")
    with pytest.raises(ValidationError):
        NotifyRecipient(pseudonym=protector.pseudonym("x"), sealed_user_id="8123456789012345678")


def test_unknown_fields_and_naive_times_are_refused(protector: IdentityProtector):
    with pytest.raises(ValidationError):
        _event(protector, phone="0901234567")
    with pytest.raises(ValidationError):
        NotifyRequest(
            event_id="r1",
            occurred_at=datetime(2026, 1, 1),
            correlation_id="c",
            oa_id="1",
            kind=NotifyKind.ACK,
            text="x",
            recipient=NotifyRecipient(
                pseudonym=protector.pseudonym("x"), sealed_user_id=protector.seal("x", purpose="u")
            ),
        )


def test_readme_tables_match_the_code():
    readme = Path(__file__).resolve().parent.parent / "README.md"
    assert update_readme(readme, check=True), "README tables are stale: run `make docs`"


def test_asyncapi_documents_every_topic():
    doc = build_asyncapi()
    channels = " ".join(doc["channels"])
    for spec in all_topics():
        assert spec.name in channels
    schemas = doc["components"]["schemas"]
    assert "ZaloEvent" in schemas
    assert "NotifyRequest" in schemas
