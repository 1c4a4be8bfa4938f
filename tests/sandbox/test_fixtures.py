"""Every request fixture in shared/zalo/fixtures/api is accepted, and answered in the shape of
its paired response fixture; every error fixture is reproduced exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from ketnoi_sandbox import pkce_challenge

from .conftest import (
    APP_SECRET,
    FIXTURES,
    OA,
    PDF,
    PNG,
    USER,
    USER2,
    VERIFIER,
    Harness,
    MakeHarness,
    load_fixture,
)

REQUESTS = sorted(
    p.name.removesuffix(".request.json") for p in (FIXTURES / "api").glob("*.request.json")
)

#: Request fixtures without a response fixture of the same name, and the one that shows their shape.
RESPONSE_FOR = {
    "message_cs_file": "message_cs_text_after_2026-03",
    "message_cs_image_attachment_id": "message_cs_text_after_2026-03",
    "message_cs_image_url": "message_cs_text_after_2026-03",
    "message_cs_quote": "message_cs_text_after_2026-03",
    "message_cs_request_user_info": "message_cs_text_after_2026-03",
    "message_cs_text": "message_cs_text_after_2026-03",
    "oauth_code_exchange": "oauth_refresh",  # same endpoint, same answer
    "reaction": "broadcast_article",  # v2 /oa/message answer: {data: {message_id}}
}

FIXTURE_IMAGE_ID = "wESbL53O_shdvIPILC7iR_JpC552r_fjukKg"
FIXTURE_ARTICLE_TOKEN = "fvXiHxFn+7lOd2E1LxOxh3cs2cu0KqwwKCQhbSE06b4Xexample=="
FIXTURE_ARTICLE_ID = "0b5c34017c44951acc55"
FIXTURE_LAST_INTERACTION_MS = 1_767_225_600_123  # 2026-01-01 07:00 Vietnam time


def assert_shape(actual: Any, expected: Any, path: str = "$") -> None:
    """Same keys (recursively) and same JSON types as the fixture; list items like its first."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            assert_shape(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        if expected:
            assert actual, f"{path}: empty list"
            for i, item in enumerate(actual):
                assert_shape(item, expected[0], f"{path}[{i}]")
    else:
        assert type(actual) is type(expected), (
            f"{path}: {actual!r} is not a {type(expected).__name__}"
        )


def substitute(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: substitute(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, mapping) for v in value]
    if isinstance(value, str):
        return mapping.get(value, value)
    return value


async def prepare(sb: Harness) -> dict[str, str]:
    """World state the fixtures assume, and the values that replace their placeholders."""
    detail = load_fixture("user_detail.response.json")["data"]
    r = await sb.client.post(
        "/sandbox/users",
        json={
            "oa_id": OA,
            "user_id": USER,
            "display_name": detail["display_name"],
            "user_id_by_app": detail["user_id_by_app"],
            "avatar": detail["avatar"],
            "tag_names": detail["tags_and_notes_info"]["tag_names"],
            "shared_info": detail["shared_info"],
            "last_interaction": FIXTURE_LAST_INTERACTION_MS,
        },
    )
    assert r.status_code == 200
    await sb.interact(USER2, at_s=sb.clock() - 3 * 86_400)

    tokens = await sb.tokens()
    token = tokens["access_token"]
    image = await sb.upload(token, "image", PNG)
    file = await sb.upload(token, "file", PDF, "bien-ban.pdf", "application/pdf")
    article = load_fixture("article_create.request.json")["json"]
    created = await sb.client.post(
        "/v2.0/article/create", json=article, headers={"access_token": token}
    )
    article_token = created.json()["data"]["token"]
    verified = await sb.client.post(
        "/v2.0/article/verify", json={"token": article_token}, headers={"access_token": token}
    )
    refresh_pair = await sb.tokens()
    return {
        "<OA_ACCESS_TOKEN>": token,
        "<APP_SECRET_KEY>": APP_SECRET,
        "<FILE_TOKEN_FROM_UPLOAD_FILE>": file["data"]["token"],
        FIXTURE_IMAGE_ID: image["data"]["attachment_id"],
        FIXTURE_ARTICLE_TOKEN: article_token,
        FIXTURE_ARTICLE_ID: verified.json()["data"]["id"],
        "<AUTHORIZATION_CODE_FROM_CALLBACK>": await sb.code(),
        "<43_CHAR_PKCE_VERIFIER>": VERIFIER,
        "<CURRENT_REFRESH_TOKEN>": refresh_pair["refresh_token"],
    }


async def send_fixture(sb: Harness, name: str, mapping: dict[str, str]) -> Any:
    fixture = substitute(load_fixture(f"{name}.request.json"), mapping)
    url = urlsplit(fixture["url"])
    assert url.hostname in {"openapi.zalo.me", "oauth.zaloapp.com"}
    headers = dict(fixture["headers"])
    kwargs: dict[str, Any] = {}
    if "json" in fixture:
        kwargs["content"] = json.dumps(fixture["json"], ensure_ascii=False).encode()
    elif "form" in fixture:
        kwargs["content"] = urlencode(fixture["form"]).encode()
    elif "multipart" in fixture:
        headers.pop("Content-Type")  # the boundary is a placeholder; httpx writes the real one
        assert set(fixture["multipart"]) == {"file"}
        kwargs["files"] = {"file": ("bao-cao.png", PNG, "image/png")}
    if "query" in fixture:
        kwargs["params"] = fixture["query"]
    response = await sb.client.request(fixture["method"], url.path, headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("name", REQUESTS)
async def test_fixture_request_is_accepted_with_the_fixture_shape(
    make_sandbox: MakeHarness, name: str
) -> None:
    async with make_sandbox() as sb:
        mapping = await prepare(sb)
        body = await send_fixture(sb, name, mapping)
        assert body.get("error", 0) == 0, body
        expected = load_fixture(f"{RESPONSE_FOR.get(name, name)}.response.json")
        assert_shape(body, expected)


def test_every_request_fixture_is_covered() -> None:
    assert len(REQUESTS) >= 16
    for name in REQUESTS:
        assert (FIXTURES / "api" / f"{RESPONSE_FOR.get(name, name)}.response.json").exists()


async def test_user_detail_and_getlist_match_the_fixtures_exactly(sb: Harness) -> None:
    mapping = await prepare(sb)
    assert await send_fixture(sb, "user_detail", mapping) == load_fixture(
        "user_detail.response.json"
    )
    assert await send_fixture(sb, "user_getlist", mapping) == load_fixture(
        "user_getlist.response.json"
    )
    quota = await send_fixture(sb, "quota_message_user", mapping)
    assert quota["data"]["last_interaction"] == str(FIXTURE_LAST_INTERACTION_MS)
    assert quota["data"]["cs_reply"] == {"remain": 8, "total": 8}


async def test_cs_answer_with_quota_matches_the_pre_2026_03_fixture(
    make_sandbox: MakeHarness,
) -> None:
    async with make_sandbox(cs_response_quota=True) as sb:
        mapping = await prepare(sb)
        body = await send_fixture(sb, "message_cs_text", mapping)
        expected = load_fixture("message_cs_text.response.json")
        assert_shape(body, expected)
        assert list(body["data"]) == list(expected["data"])
        assert body["data"]["quota"] == expected["data"]["quota"]
        assert body["data"]["user_id"] == USER
        assert len(body["data"]["sent_time"]) == 13


async def test_oauth_callback_fixture_shape(sb: Harness) -> None:
    query = load_fixture("oauth_callback.query.json")["query"]
    r = await sb.client.get(
        "/v4/oa/permission",
        params={
            "app_id": sb.settings.app_id,
            "redirect_uri": "https://ketnoi.example/zalo/callback",
            "code_challenge": pkce_challenge(VERIFIER),
            "state": "s-123",
        },
    )
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "ketnoi.example",
        "/zalo/callback",
    )
    got = dict(parse_qsl(location.query))
    assert list(got) == list(query)
    assert got["oa_id"] == query["oa_id"] == OA
    assert got["state"] == "s-123"


# ------------------------------------------------------------------------- error fixtures


def error_fixture(name: str) -> dict[str, Any]:
    return load_fixture(f"{name}.response.json")


async def test_error_minus_216_unknown_token(sb: Harness) -> None:
    r = await sb.cs("not-a-token", {"text": "x"})
    assert r.status_code == 200
    assert r.json() == error_fixture("message_cs.error_-216")


async def test_error_minus_220_revoked_token(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    assert (
        await sb.client.post("/sandbox/tokens/revoke", json={"access_token": token})
    ).status_code == 200
    r = await sb.cs(token, {"text": "x"})
    assert r.json() == error_fixture("message_cs.error_-220")


async def test_error_minus_230_outside_window(sb: Harness) -> None:
    token = await sb.token()
    r = await sb.cs(token, {"text": "x"})
    assert r.json() == error_fixture("message_cs.error_-230")


async def test_error_minus_213_not_follower(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(cs_requires_follower=True) as sb:
        token = await sb.token()
        await sb.interact()
        await sb.interact(kind="unfollow")
        r = await sb.cs(token, {"text": "x"})
        assert r.json() == error_fixture("message_cs.error_-213")
        await sb.interact(kind="follow")
        assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_error_minus_240_v2_send(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    r = await sb.client.post(
        "/v2.0/oa/message",
        json={"recipient": {"user_id": USER}, "message": {"text": "x"}},
        headers={"access_token": token},
    )
    assert r.json() == error_fixture("message_v2.error_-240")
    assert await sb.sent() == []


async def test_error_minus_32_rate_limited(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(rate_limit_per_minute=2) as sb:
        token = await sb.token()
        await sb.interact()
        for _ in range(2):
            await sb.text(token)
        r = await sb.cs(token, {"text": "x"})
        assert r.json() == error_fixture("rate_limited.error_-32")


def test_fixture_dir_is_the_shared_one(fixtures_dir: Path) -> None:
    assert fixtures_dir.resolve() == FIXTURES.resolve()
