from __future__ import annotations

import pytest

from ketnoi_shared.identity import (
    IdentityProtector,
    MissingKeyError,
    UnsealError,
    generate_pseudonym_key,
    generate_seal_key,
    is_pseudonym,
    is_sealed,
    is_sealed_bytes,
)

USER = "8123456789012345678"


def test_same_id_gives_same_pseudonym_and_different_ids_differ(protector: IdentityProtector):
    a = protector.pseudonym(USER)
    assert a == protector.pseudonym(USER)
    assert a != protector.pseudonym("8123456789012345679")
    assert is_pseudonym(a)
    assert USER not in a


def test_pseudonym_depends_on_key_and_purpose(protector: IdentityProtector):
    other = IdentityProtector.from_keys(
        pseudonym_key=generate_pseudonym_key(), seal_key=generate_seal_key()
    )
    assert protector.pseudonym(USER) != other.pseudonym(USER)
    assert protector.pseudonym(USER) != protector.pseudonym(USER, purpose="zalo-anon")


def test_seal_roundtrip_is_randomised(protector: IdentityProtector):
    a = protector.seal(USER, purpose="zalo_user_id")
    b = protector.seal(USER, purpose="zalo_user_id")
    assert a != b, "nonce must make every seal different"
    assert is_sealed(a) and USER not in a
    assert protector.unseal(a, purpose="zalo_user_id") == USER


def test_wrong_key_is_an_error(protector: IdentityProtector):
    token = protector.seal(USER, purpose="zalo_user_id")
    same_kid_other_key = IdentityProtector.from_keys(
        pseudonym_key=generate_pseudonym_key(), seal_key=generate_seal_key(protector.seal_kid)
    )
    with pytest.raises(UnsealError):
        same_kid_other_key.unseal(token, purpose="zalo_user_id")
    unknown_kid = IdentityProtector.from_keys(
        pseudonym_key=generate_pseudonym_key(), seal_key=generate_seal_key("zz")
    )
    with pytest.raises(UnsealError):
        unknown_kid.unseal(token, purpose="zalo_user_id")


def test_wrong_purpose_and_tampering_are_errors(protector: IdentityProtector):
    token = protector.seal("84901234567", purpose="phone")
    with pytest.raises(UnsealError):
        protector.unseal(token, purpose="zalo_user_id")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(UnsealError):
        protector.unseal(flipped, purpose="phone")
    with pytest.raises(UnsealError):
        protector.unseal("not-a-token", purpose="phone")


def test_rotation_keeps_old_tokens_readable(keys: dict[str, str]):
    old = IdentityProtector.from_keys(**keys)
    token = old.seal(USER, purpose="zalo_user_id")
    rotated = IdentityProtector.from_keys(
        pseudonym_key=keys["pseudonym_key"],
        seal_key=generate_seal_key("t2"),
        old_seal_keys=keys["seal_key"],
    )
    assert rotated.unseal(token, purpose="zalo_user_id") == USER
    assert rotated.seal(USER, purpose="x").startswith("sealed:v1:t2:")


@pytest.mark.parametrize(
    ("pseudonym_key", "seal_key"),
    [
        (None, generate_seal_key()),
        (generate_pseudonym_key(), None),
        ("c2hvcnQ=", generate_seal_key()),
        (generate_pseudonym_key(), "k1:c2hvcnQ="),
        (generate_pseudonym_key(), "no-kid"),
    ],
)
def test_missing_or_bad_keys_refused(pseudonym_key: str | None, seal_key: str | None):
    with pytest.raises(MissingKeyError):
        IdentityProtector.from_keys(pseudonym_key=pseudonym_key, seal_key=seal_key)


def test_seal_bytes_roundtrip_purpose_tampering_and_rotation(
    protector: IdentityProtector, keys: dict[str, str]
):
    data = bytes(range(256)) * 1000
    blob = protector.seal_bytes(data, purpose="media_original")
    assert is_sealed_bytes(blob)
    assert blob != protector.seal_bytes(data, purpose="media_original"), "random nonce"
    assert data[:64] not in blob
    assert protector.unseal_bytes(blob, purpose="media_original") == data
    assert protector.unseal_bytes(protector.seal_bytes(b"", purpose="p"), purpose="p") == b""
    with pytest.raises(UnsealError):
        protector.unseal_bytes(blob, purpose="zalo_user_id")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(UnsealError):
        protector.unseal_bytes(bytes(tampered), purpose="media_original")
    with pytest.raises(UnsealError):
        protector.unseal_bytes(b"not sealed", purpose="media_original")
    rotated = IdentityProtector.from_keys(
        pseudonym_key=keys["pseudonym_key"],
        seal_key=generate_seal_key("t2"),
        old_seal_keys=keys["seal_key"],
    )
    assert rotated.unseal_bytes(blob, purpose="media_original") == data
    stranger = IdentityProtector.from_keys(
        pseudonym_key=keys["pseudonym_key"], seal_key=generate_seal_key("t3")
    )
    with pytest.raises(UnsealError):
        stranger.unseal_bytes(blob, purpose="media_original")
