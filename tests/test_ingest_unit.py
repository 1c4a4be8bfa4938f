"""Ingest pieces without servers: signature vectors, normalisation of every fixture."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from ketnoi_ingest.normalize import BadShapeError, normalize, read_envelope
from ketnoi_ingest.signature import compute_signature, signature_matches
from ketnoi_shared.contracts import EventKind
from ketnoi_shared.identity import IdentityProtector

OA = "4123456789012345678"
USER = "8123456789012345678"
BY_APP = "5123456789012345678"


def vectors(fixtures_dir: Path) -> dict:
    return json.loads((fixtures_dir / "webhook_signature_vectors.json").read_text())


def test_signature_vectors_pass_in_both_header_forms(fixtures_dir: Path):
    data = vectors(fixtures_dir)
    assert len(data["vectors"]) == 3
    for v in data["vectors"]:
        digest = compute_signature(
            app_id=data["app_id"],
            raw_body=v["raw_body_utf8"].encode(),
            timestamp=v["timestamp_from_body"],
            secret=data["oa_secret_key"],
        )
        assert digest == v["expected_digest_hex"]
        for header in v["header_forms_to_accept"]:
            assert signature_matches(header, digest)


def test_reserialised_body_fails(fixtures_dir: Path):
    data = vectors(fixtures_dir)
    v = data["vectors"][1]
    reserialised = json.dumps(json.loads(v["raw_body_utf8"]), separators=(",", ":")).encode()
    digest = compute_signature(
        app_id=data["app_id"],
        raw_body=reserialised,
        timestamp=v["timestamp_from_body"],
        secret=data["oa_secret_key"],
    )
    assert digest == data["negative_example"]["digest_of_reserialised_body"]
    assert not signature_matches(v["expected_digest_hex"], digest)
    assert not signature_matches("mac=" + "0" * 64, v["expected_digest_hex"])


def load(fixtures_dir: Path, name: str) -> dict:
    return json.loads(
        (fixtures_dir / "webhook" / f"{name}.json").read_text(), parse_int=str, parse_float=str
    )


def norm(fixtures_dir: Path, name: str, protector: IdentityProtector):
    body = load(fixtures_dir, name)
    env = read_envelope(body)
    return normalize(body, env, oa_id=OA, protect=protector)


EXPECTED_KIND = {
    "user_send_text": EventKind.MESSAGE,
    "user_send_image": EventKind.MESSAGE,
    "user_send_gif": EventKind.MESSAGE,
    "user_send_link": EventKind.MESSAGE,
    "user_send_audio": EventKind.MESSAGE,
    "user_send_video": EventKind.MESSAGE,
    "user_send_sticker": EventKind.MESSAGE,
    "user_send_location": EventKind.MESSAGE,
    "user_send_file": EventKind.MESSAGE,
    "user_send_business_card": EventKind.MESSAGE,
    "anonymous_send_text": EventKind.MESSAGE,
    "follow": EventKind.FOLLOW,
    "unfollow": EventKind.UNFOLLOW,
    "user_submit_info": EventKind.SUBMIT_INFO,
    "user_click_chatnow": EventKind.CHAT_NOW,
    "user_reacted_message": EventKind.REACTION,
    "user_received_message": EventKind.RECEIVED,
    "user_seen_message": EventKind.SEEN,
    "oa_send_text": EventKind.OA_ECHO,
    "add_user_to_tag": EventKind.UNKNOWN,
}


def test_every_fixture_is_covered(fixtures_dir: Path):
    assert {p.stem for p in (fixtures_dir / "webhook").glob("*.json")} == set(EXPECTED_KIND)


@pytest.mark.parametrize("name", sorted(EXPECTED_KIND))
def test_fixture_normalises_without_clear_identity(
    name: str, fixtures_dir: Path, protector: IdentityProtector
):
    event = norm(fixtures_dir, name, protector)
    assert event is not None
    assert event.kind is EXPECTED_KIND[name]
    assert event.oa_id == OA
    wire = event.model_dump_json()
    for secret in (
        USER,
        BY_APP,
        "84901234567",
        "0901234567",
        "Nguyễn Văn An",
        "12 Lê Lợi",
        "6123456789012345678",
        "c0a1b2c3d4e5f6a7b8c9",
    ):
        assert secret not in wire, f"{secret} leaked from {name}"
    if name == "add_user_to_tag":
        assert event.event_name == "unknown" and event.original_event_name == name
    elif name not in ("add_user_to_tag",):
        assert event.citizen is not None
        expected_user = "6123456789012345678" if name.startswith("anonymous") else USER
        purpose = "zalo-anon" if name.startswith("anonymous") else "zalo-user"
        assert event.citizen.pseudonym == protector.pseudonym(expected_user, purpose=purpose)
        assert (
            protector.unseal(event.citizen.sealed_user_id, purpose="zalo_user_id") == expected_user
        )


def test_message_details(fixtures_dir: Path, protector: IdentityProtector):
    loc = norm(fixtures_dir, "user_send_location", protector)
    (att,) = loc.message.attachments
    assert att.location.latitude == pytest.approx(10.7769284)
    assert loc.event_id == "user_send_location:18293a4b5c6d7e8f9001"
    anon = norm(fixtures_dir, "anonymous_send_text", protector)
    assert anon.citizen.anonymous is True
    assert (
        protector.unseal(anon.citizen.sealed_conversation_id, purpose="zalo_conversation_id")
        == "c0a1b2c3d4e5f6a7b8c9"
    )
    info = norm(fixtures_dir, "user_submit_info", protector).submitted_info
    assert protector.unseal(info.sealed_phone, purpose="phone") == "84901234567"
    assert info.ward == "Phường Bến Thành"
    card = norm(fixtures_dir, "user_send_business_card", protector)
    assert "84901234567" in protector.unseal(
        card.message.attachments[0].sealed_card, purpose="card"
    )
    echo = norm(fixtures_dir, "oa_send_text", protector)
    assert echo.admin_id == "9123456789012345678"
    assert echo.citizen.pseudonym == protector.pseudonym(USER)
    follow = norm(fixtures_dir, "follow", protector)
    assert follow.event_id.startswith(f"follow:{OA}:psn_")
    assert follow.follow_source == "oa_profile"
    seen = norm(fixtures_dir, "user_seen_message", protector)
    assert seen.message.msg_ids == ("63ecf43f0df7dba892e6", "74fd054a1e08ecb9a3f7")


def test_same_msg_id_in_different_events_gives_different_ids(
    fixtures_dir: Path, protector: IdentityProtector
):
    sent = load(fixtures_dir, "user_send_text")
    reacted = dict(sent, event_name="user_reacted_message")
    a = normalize(sent, read_envelope(sent), oa_id=OA, protect=protector)
    b = normalize(reacted, read_envelope(reacted), oa_id=OA, protect=protector)
    assert a.message.msg_id == b.message.msg_id
    assert a.event_id != b.event_id


def test_echo_without_admin_is_dropped(fixtures_dir: Path, protector: IdentityProtector):
    body = load(fixtures_dir, "oa_send_text")
    del body["sender"]["admin_id"]
    assert normalize(body, read_envelope(body), oa_id=OA, protect=protector) is None


def test_third_party_location_variants(fixtures_dir: Path, protector: IdentityProtector):
    base = load(fixtures_dir, "user_send_location")
    variant = json.loads(json.dumps(base))
    variant["message"]["attachments"][0]["payload"]["coordinates"] = {
        "lat": "11.94",
        "long": "108.45",
    }
    loc = normalize(variant, read_envelope(variant), oa_id=OA, protect=protector)
    assert loc.message.attachments[0].location.longitude == pytest.approx(108.45)
    variant = json.loads(json.dumps(base))
    variant["message"] = {"msg_id": "m1", "location": {"latitude": 11.5, "longitude": "108.1"}}
    loc = normalize(variant, read_envelope(variant), oa_id=OA, protect=protector)
    assert loc.message.attachments[-1].location.latitude == pytest.approx(11.5)


def test_nfd_text_becomes_nfc(fixtures_dir: Path, protector: IdentityProtector):
    body = load(fixtures_dir, "user_send_text")
    body["message"]["text"] = unicodedata.normalize("NFD", "Có người đánh nhau ở chợ Đà Lạt")
    event = normalize(body, read_envelope(body), oa_id=OA, protect=protector)
    assert event.message.text == "Có người đánh nhau ở chợ Đà Lạt"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("event_name"),
        lambda b: b.pop("timestamp"),
        lambda b: b.update(timestamp="12:00"),
        lambda b: b.update(timestamp="9" * 5000),
        lambda b: b.update(app_id={"x": 1}),
        lambda b: b.update(sender="8123"),
        lambda b: b["message"].update(attachments="nope"),
    ],
)
def test_bad_shapes_are_refused(mutate, fixtures_dir: Path, protector: IdentityProtector):
    body = load(fixtures_dir, "user_send_text")
    mutate(body)
    with pytest.raises(BadShapeError):
        env = read_envelope(body)
        normalize(body, env, oa_id=OA, protect=protector)
