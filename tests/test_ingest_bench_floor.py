"""The benchmark's floor server must do the work it claims to do: the same contract event as
ingest for the bench's webhook, and a refusal for a bad signature. Otherwise its rate would
not bound ingest's."""

from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata
from pathlib import Path
from types import ModuleType

import pytest

from ketnoi_ingest.app import parse_body
from ketnoi_ingest.normalize import normalize, read_envelope
from ketnoi_ingest.zalo_tools import sign_body
from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.identity import IdentityProtector, generate_pseudonym_key, generate_seal_key
from ketnoi_shared.messaging import encode_for

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SECRET = "FLOORTESTSECRET00001"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def servers() -> ModuleType:
    return _load("baseline_servers")


@pytest.fixture(scope="module")
def protector() -> IdentityProtector:
    return IdentityProtector.from_keys(
        pseudonym_key=generate_pseudonym_key(), seal_key=generate_seal_key()
    )


def _bench_body() -> bytes:
    body = {
        "app_id": "1234567890123456789",
        "sender": {"id": "8100000000000000042"},
        "user_id_by_app": "5100000000000000042",
        "recipient": {"id": "4123456789012345678"},
        "event_name": "user_send_text",
        # NFD on purpose: the contract carries NFC text.
        "message": {
            "text": unicodedata.normalize("NFD", "Có đua xe ở phường 1 Đà Lạt"),
            "msg_id": "floor000000000001",
        },
        "timestamp": "1767225600042",
    }
    return json.dumps(body, ensure_ascii=False).encode()


def test_the_floor_produces_what_ingest_produces(servers, protector):
    raw = _bench_body()
    record = servers.floor_record(
        raw, sign_body(raw, secret=SECRET), secret=SECRET, protector=protector
    )
    assert record is not None
    key, value, headers = record

    body = parse_body(raw)
    env = read_envelope(body)
    ingest = normalize(body, env, oa_id="4123456789012345678", protect=protector)
    assert ingest is not None
    expected = encode_for(ZALO_EVENTS, ingest)

    floor = ZaloEvent.model_validate_json(value)  # a valid contract event
    assert key == expected.key
    assert floor.citizen is not None and ingest.citizen is not None
    # Sealed tokens differ by their random nonces; both open to the clear ids.
    for field, purpose in (
        ("sealed_user_id", "zalo_user_id"),
        ("sealed_user_id_by_app", "zalo_user_id_by_app"),
    ):
        assert protector.unseal(getattr(floor.citizen, field), purpose=purpose) == (
            protector.unseal(getattr(ingest.citizen, field), purpose=purpose)
        )
    same = {"produced_at": True, "citizen": {"sealed_user_id", "sealed_user_id_by_app"}}
    assert floor.model_dump(exclude=same) == ingest.model_dump(exclude=same)
    assert sorted(name for name, _ in headers) == sorted(expected.headers)
    assert b"8100000000000000042" not in value and b"5100000000000000042" not in value


def test_the_floor_refuses_a_bad_signature(servers, protector):
    raw = _bench_body()
    assert servers.floor_record(raw, "0" * 64, secret=SECRET, protector=protector) is None
    wrong = sign_body(raw, secret="ANOTHERSECRET0000001")
    assert servers.floor_record(raw, wrong, secret=SECRET, protector=protector) is None
