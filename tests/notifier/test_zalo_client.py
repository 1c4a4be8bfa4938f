"""The Zalo OA client against Zalo's documented request and response shapes (fixtures),
with respx standing in for Zalo's servers."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import httpx
import pytest
import respx

from ketnoi_notifier.zalo import (
    NeedsTokenError,
    OutsideWindowError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    ZaloClient,
    split_text,
)

OPENAPI = "https://openapi.zalo.me"
OAUTH = "https://oauth.zaloapp.com"
USER = "8123456789012345678"


def fixture(fixtures_dir: Path, name: str) -> dict:
    return json.loads((fixtures_dir / "api" / f"{name}.json").read_text())


@pytest.fixture
async def client():
    c = ZaloClient(openapi_url=OPENAPI, oauth_url=OAUTH)
    yield c
    await c.aclose()


@respx.mock
async def test_text_message_matches_the_documented_request(client, fixtures_dir: Path):
    expected = fixture(fixtures_dir, "message_cs_text.request")
    route = respx.post(expected["url"]).mock(
        return_value=httpx.Response(200, json=fixture(fixtures_dir, "message_cs_text.response"))
    )
    (sent,) = await client.send_text(
        "TOKEN", user_id=USER, text=expected["json"]["message"]["text"]
    )
    request = route.calls.last.request
    assert json.loads(request.content) == expected["json"]
    assert request.headers["access_token"] == "TOKEN"
    assert "authorization" not in request.headers
    assert sent.message_id == "63ecf43f0df7dba892e6"
    assert sent.sent_time_ms == 1767226680123


@respx.mock
async def test_quote_and_image_requests(client, fixtures_dir: Path):
    ok = httpx.Response(200, json=fixture(fixtures_dir, "message_cs_text_after_2026-03.response"))
    route = respx.post(f"{OPENAPI}/v3.0/oa/message/cs").mock(return_value=ok)
    quote = fixture(fixtures_dir, "message_cs_quote.request")["json"]
    await client.send_text(
        "T",
        user_id=USER,
        text=quote["message"]["text"],
        quote_message_id=quote["message"]["quote_message_id"],
    )
    assert json.loads(route.calls.last.request.content) == quote
    image = fixture(fixtures_dir, "message_cs_image_url.request")["json"]
    element = image["message"]["attachment"]["payload"]["elements"][0]
    await client.send_image("T", user_id=USER, url=element["url"], text=image["message"]["text"])
    assert json.loads(route.calls.last.request.content) == image


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("message_cs.error_-213.response", PermanentError),
        ("message_cs.error_-216.response", NeedsTokenError),
        ("message_cs.error_-220.response", NeedsTokenError),
        ("message_cs.error_-230.response", OutsideWindowError),
        ("message_v2.error_-240.response", PermanentError),
        ("rate_limited.error_-32.response", RateLimitedError),
    ],
)
@respx.mock
async def test_errors_arrive_with_http_200_and_are_translated(
    client, fixtures_dir: Path, name: str, error: type
):
    body = fixture(fixtures_dir, name)
    respx.post(f"{OPENAPI}/v3.0/oa/message/cs").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(error) as caught:
        await client.send_text("T", user_id=USER, text="xin chào")
    assert caught.value.code == body["error"]
    assert caught.value.message_vi  # plain Vietnamese for the officer


@respx.mock
async def test_transport_failures_are_retryable(client):
    route = respx.post(f"{OPENAPI}/v3.0/oa/message/cs")
    for outcome in (
        httpx.Response(502),
        httpx.Response(429),
        httpx.ConnectTimeout("x"),
        httpx.ConnectError("refused"),
        httpx.Response(200, text="<html>"),
    ):
        route.mock(
            side_effect=[outcome] if isinstance(outcome, Exception) else None,
            return_value=outcome if not isinstance(outcome, Exception) else None,
        )
        with pytest.raises(RetryableError):
            await client.send_text("T", user_id=USER, text="x")


def test_long_nfd_text_is_split_on_sentences_after_nfc():
    sentence = "Công an phường đã tiếp nhận thông tin của bạn và sẽ xác minh sớm nhất. "
    text = unicodedata.normalize("NFD", sentence * 40)
    nfc = unicodedata.normalize("NFC", text).strip()
    assert len(text) > 2000 > len(unicodedata.normalize("NFC", sentence * 27))
    pieces = split_text(text)
    assert len(pieces) == 2
    assert all(len(p) <= 2000 for p in pieces)
    assert all(p.endswith(".") for p in pieces), "cut after a sentence"
    assert " ".join(pieces) == nfc
    exactly = unicodedata.normalize("NFD", "ạ" * 2000)
    assert len(exactly) == 4000
    assert split_text(exactly) == ["ạ" * 2000], "the limit counts NFC characters"
    assert [len(p) for p in split_text("x" * 2001)] == [2000, 1]


@respx.mock
async def test_long_text_goes_out_in_order(client):
    route = respx.post(f"{OPENAPI}/v3.0/oa/message/cs").mock(
        return_value=httpx.Response(
            200, json={"error": 0, "message": "Success", "data": {"message_id": "m"}}
        )
    )
    text = "Câu một. " * 300
    sent = await client.send_text("T", user_id=USER, text=text, quote_message_id="q1")
    bodies = [json.loads(c.request.content)["message"] for c in route.calls]
    assert len(sent) == len(bodies) == len(split_text(text))
    assert "quote_message_id" in bodies[0]
    assert all("quote_message_id" not in b for b in bodies[1:])


@respx.mock
async def test_refresh_token_request_and_string_expiry(client, fixtures_dir: Path):
    expected = fixture(fixtures_dir, "oauth_refresh.request")
    route = respx.post(expected["url"]).mock(
        return_value=httpx.Response(200, json=fixture(fixtures_dir, "oauth_refresh.response"))
    )
    pair = await client.refresh(
        app_id=expected["form"]["app_id"], secret_key="APPSECRET", refresh_token="R1"
    )
    request = route.calls.last.request
    assert request.headers["secret_key"] == "APPSECRET"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == expected["form"] | {"refresh_token": "R1"}
    assert pair.expires_in_s == 90000
    assert pair.refresh_token.startswith("DCcF")


@respx.mock
async def test_user_detail_uses_a_json_data_parameter(client, fixtures_dir: Path):
    route = respx.get(f"{OPENAPI}/v3.0/oa/user/detail").mock(
        return_value=httpx.Response(200, json=fixture(fixtures_dir, "user_detail.response"))
    )
    detail = await client.user_detail("T", user_id=USER)
    assert json.loads(route.calls.last.request.url.params["data"]) == {"user_id": USER}
    assert detail["user_id"] == USER


@respx.mock
async def test_the_remaining_rate_budget_of_successful_answers_is_reported(
    fixtures_dir: Path,
):
    seen: list[int] = []
    client = ZaloClient(openapi_url=OPENAPI, oauth_url=OAUTH, on_rate_remain=seen.append)
    route = respx.post(f"{OPENAPI}/v3.0/oa/message/cs")
    route.side_effect = [
        httpx.Response(
            200,
            json=fixture(fixtures_dir, "message_cs_text.response"),
            headers={"X-RateLimit-Limit": "4000", "X-RateLimit-Remain": "1"},
        ),
        httpx.Response(
            200,
            json=fixture(fixtures_dir, "rate_limited.error_-32.response"),
            headers={"X-RateLimit-Remain": "0"},
        ),
        httpx.Response(200, json=fixture(fixtures_dir, "message_cs_text.response")),
    ]
    try:
        await client.send_text("T", user_id=USER, text="một")
        with pytest.raises(RateLimitedError):
            await client.send_text("T", user_id=USER, text="hai")
        await client.send_text("T", user_id=USER, text="ba")  # no header: nothing reported
    finally:
        await client.aclose()
    assert seen == [1]  # a -32 is retried with backoff, not read as the end of the minute
