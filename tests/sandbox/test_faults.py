"""Fault injection per API and per user, including the timeout that hides a completed write."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from .conftest import APP_ID, OA2, PNG, USER, USER2, Harness


async def ready(sb: Harness) -> str:
    token = await sb.token()
    await sb.interact(USER)
    await sb.interact(USER2)
    return token


async def test_latency(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="latency", value=0.2, count=1)
    started = time.perf_counter()
    r = await sb.cs(token, {"text": "x"})
    assert time.perf_counter() - started >= 0.2
    assert r.json()["error"] == 0
    # count=1: the fault is spent, the next call is not delayed.
    assert (await sb.client.get("/sandbox/faults")).json() == []


async def test_http_500_sends_nothing(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="http_500", count=1)
    r = await sb.cs(token, {"text": "x"})
    assert r.status_code == 500
    assert "500 Internal Server Error" in r.text
    assert await sb.sent() == []
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_timeout_sends_nothing(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="timeout", value=5, count=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sb.cs(token, {"text": "x"}), 0.2)
    assert await sb.sent() == []


async def test_timeout_eventually_answers_504(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="timeout", value=0.05, count=1)
    r = await sb.cs(token, {"text": "x"})
    assert r.status_code == 504
    assert await sb.sent() == []


async def test_timeout_after_write_records_the_message(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="timeout_after_write", user_id=USER, value=5, count=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sb.cs(token, {"text": "Đã tiếp nhận PA-1"}), 0.2)
    [sent] = await sb.sent(user=USER)
    assert sent["text"] == "Đã tiếp nhận PA-1"
    assert sent["response_lost"] is True
    # the client can find it in the conversation history instead of sending twice
    data = f'{{"user_id":"{USER}","offset":0,"count":10}}'
    r = await sb.client.get(
        "/v2.0/oa/conversation", params={"data": data}, headers={"access_token": token}
    )
    entry = r.json()["data"][0]  # newest first; the user's own message follows
    assert entry["src"] == 0
    assert entry["message_id"] == sent["message_id"]
    assert entry["message"] == "Đã tiếp nhận PA-1"
    assert (await sb.client.get("/sandbox/faults")).json() == []


async def test_timeout_after_write_with_the_default_hang(make_sandbox: Any) -> None:
    async with make_sandbox(hang_s=0.05) as sb:
        token = await ready(sb)
        await sb.fault(api="message/cs", kind="timeout_after_write", count=1)
        r = await sb.cs(token, {"text": "x"})
        assert r.status_code == 504
        assert len(await sb.sent()) == 1


async def test_token_expired(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="token_expired", count=1)
    await sb.fault(api="message/cs", kind="token_expired", value=-220, count=1)
    assert (await sb.cs(token, {"text": "x"})).json() == {
        "error": -216,
        "message": "Access token is invalid",
    }
    assert (await sb.cs(token, {"text": "x"})).json() == {
        "error": -220,
        "message": "access_token is expired or removed",
    }
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_not_follower(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="not_follower", user_id=USER)
    assert (await sb.cs(token, {"text": "x"}, user=USER)).json() == {
        "error": -213,
        "message": "User has not followed OA",
    }
    assert (await sb.cs(token, {"text": "x"}, user=USER)).json()["error"] == -213  # permanent
    assert (await sb.cs(token, {"text": "x"}, user=USER2)).json()["error"] == 0  # per user


async def test_outside_window(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="message/cs", kind="outside_window", user_id=USER2, count=1)
    await sb.fault(api="message/cs", kind="outside_window", user_id=USER2, value=-232, count=1)
    assert (await sb.cs(token, {"text": "x"}, user=USER2)).json()["error"] == -230
    assert (await sb.cs(token, {"text": "x"}, user=USER2)).json()["error"] == -232
    assert (await sb.cs(token, {"text": "x"}, user=USER2)).json()["error"] == 0


async def test_rate_limited(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="*", kind="rate_limited", count=2)
    r = await sb.cs(token, {"text": "x"})
    assert r.json() == {"error": -32, "message": "Your application reached limit call api"}
    assert r.headers["X-RateLimit-Remain"] == "0"
    detail = await sb.client.get(
        "/v3.0/oa/user/detail",
        params={"data": f'{{"user_id":"{USER}"}}'},
        headers={"access_token": token},
    )
    assert detail.json()["error"] == -32
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_error_code(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="/v3.0/oa/message/cs", kind="error_code", value=-244, count=1)
    assert (await sb.cs(token, {"text": "x"})).json() == {
        "error": -244,
        "message": "User has restricted this message type from your OA",
    }
    await sb.fault(api="message/cs", kind="error_code", value=-9999, count=1)
    assert (await sb.cs(token, {"text": "x"})).json() == {
        "error": -9999,
        "message": "Unknown error",
    }


async def test_faults_are_per_api_and_per_oa(sb: Harness) -> None:
    token = await ready(sb)
    other = await sb.token(OA2)
    await sb.interact(USER, oa=OA2)
    await sb.fault(api="user/detail", kind="http_500")
    await sb.fault(api="message/cs", kind="error_code", value=-200, oa_id=OA2)
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0
    assert (await sb.cs(other, {"text": "x"})).json()["error"] == -200
    detail = await sb.client.get(
        "/v3.0/oa/user/detail",
        params={"data": f'{{"user_id":"{USER}"}}'},
        headers={"access_token": token},
    )
    assert detail.status_code == 500


async def test_fault_listing_counting_and_deletion(sb: Harness) -> None:
    token = await ready(sb)
    a = await sb.fault(api="message/cs", kind="http_500", count=2)
    b = await sb.fault(api="message", kind="http_500")
    assert a["remaining"] == 2 and b["remaining"] is None
    await sb.cs(token, {"text": "x"})
    listed = {f["id"]: f for f in (await sb.client.get("/sandbox/faults")).json()}
    assert listed[a["id"]]["remaining"] == 1 and listed[a["id"]]["fired"] == 1
    assert (await sb.client.delete(f"/sandbox/faults/{b['id']}")).json() == {"removed": 1}
    assert (await sb.client.delete(f"/sandbox/faults/{b['id']}")).status_code == 404
    assert (await sb.client.delete("/sandbox/faults")).json() == {"removed": 1}
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


@pytest.mark.parametrize(
    "spec",
    [
        {"api": "message/nope", "kind": "http_500"},
        {"api": "message/cs", "kind": "explode"},
        {"api": "message/cs", "kind": "latency"},
        {"api": "message/cs", "kind": "error_code"},
        {"api": "message/cs", "kind": "token_expired", "value": -1},
        {"api": "message/cs", "kind": "http_500", "count": 0},
        {"api": "oauth/access_token", "kind": "not_follower"},
        {"api": "message/cs", "kind": "http_500", "colour": "red"},
    ],
)
async def test_invalid_fault_specs(sb: Harness, spec: dict[str, Any]) -> None:
    r = await sb.client.post("/sandbox/faults", json=spec)
    assert r.status_code == 422


async def test_oauth_timeout_after_write_burns_the_refresh_token(sb: Harness) -> None:
    pair = await sb.tokens()
    await sb.fault(api="/v4/oa/access_token", kind="timeout_after_write", value=5, count=1)
    form = {"refresh_token": pair["refresh_token"], "app_id": APP_ID, "grant_type": "refresh_token"}
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sb.oauth(form), 0.2)
    tokens = (await sb.client.get("/sandbox/tokens")).json()
    assert [t["refresh_state"] for t in tokens] == ["used", "active"]
    assert (await sb.oauth(form)).json()["error"] == -14014


async def test_oauth_http_500_and_error_code(sb: Harness) -> None:
    pair = await sb.tokens()
    form = {"refresh_token": pair["refresh_token"], "app_id": APP_ID, "grant_type": "refresh_token"}
    await sb.fault(api="oauth/access_token", kind="http_500", count=1)
    await sb.fault(api="oauth/access_token", kind="error_code", value=-14002, count=1)
    assert (await sb.oauth(form)).status_code == 500
    assert (await sb.oauth(form)).json()["error"] == -14002
    assert "access_token" in (await sb.oauth(form)).json()


async def test_fault_on_upload(sb: Harness) -> None:
    token = await ready(sb)
    await sb.fault(api="upload/image", kind="error_code", value=-211, count=1)
    assert (await sb.upload(token, "image", PNG))["error"] == -211
    assert (await sb.upload(token, "image", PNG))["error"] == 0
