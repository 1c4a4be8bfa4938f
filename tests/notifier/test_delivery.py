"""Delivery of notify requests on a real PostgreSQL, with respx standing in for Zalo."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import respx
import stamina

from ketnoi_notifier.delivery import Delivery, RetriesExhaustedError
from ketnoi_notifier.ratelimit import SharedRateLimiter
from ketnoi_notifier.tokens import TokenStore
from ketnoi_notifier.zalo import TokenPair, ZaloClient
from ketnoi_shared.contracts import (
    DeliveryStatus,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    NotifyResult,
)
from ketnoi_shared.identity import IdentityProtector

OA = "4123456789012345678"
USER = "8123456789012345678"
CS = "https://openapi.zalo.me/v3.0/oa/message/cs"
CONVERSATION = "https://openapi.zalo.me/v2.0/oa/conversation"
OAUTH = "https://oauth.zaloapp.com/v4/oa/access_token"
OK = {"error": 0, "message": "Success", "data": {"message_id": "zm1", "user_id": USER}}


@pytest.fixture(autouse=True)
def _no_backoff_waits():
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
async def delivery(pool: asyncpg.Pool, protector: IdentityProtector) -> Delivery:
    client = ZaloClient()
    tokens = TokenStore(pool=pool, client=client, protector=protector, app_id="1", app_secret="S")
    await tokens.save(OA, TokenPair("A0", "R0", 90000))
    return Delivery(pool=pool, client=client, tokens=tokens, protector=protector)


def request(
    protector: IdentityProtector,
    text: str = "Đã tiếp nhận tin báo LD-7K2Q9.",
    request_id: str = "ack:case-1",
) -> NotifyRequest:
    return NotifyRequest(
        event_id=request_id,
        occurred_at=datetime.now(UTC),
        correlation_id="c1",
        oa_id=OA,
        recipient=NotifyRecipient(
            pseudonym=protector.pseudonym(USER),
            sealed_user_id=protector.seal(USER, purpose="zalo_user_id"),
        ),
        kind=NotifyKind.ACK,
        text=text,
        case_id="case-1",
        reference="LD-7K2Q9",
    )


async def results(pool: asyncpg.Pool) -> list[NotifyResult]:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE topic = 'notify.results.v1' ORDER BY id"
    )
    return [NotifyResult.model_validate_json(bytes(r["value"])) for r in rows]


@respx.mock
async def test_sent_once_and_a_redelivery_sends_nothing(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    route = respx.post(CS).mock(return_value=httpx.Response(200, json=OK))
    req = request(protector)
    assert await delivery.deliver(req) is DeliveryStatus.SENT
    assert await delivery.deliver(req) is DeliveryStatus.SENT
    assert route.call_count == 1
    sent = json.loads(route.calls.last.request.content)
    assert sent["recipient"] == {"user_id": USER}, "unsealed only for Zalo"
    (result,) = await results(pool)
    assert result.status is DeliveryStatus.SENT
    assert result.zalo_message_ids == ("zm1",)
    assert USER not in result.model_dump_json()


@respx.mock
async def test_outside_the_window_fails_fast_without_calling_zalo(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    route = respx.post(CS).mock(return_value=httpx.Response(200, json=OK))
    await pool.execute(
        "INSERT INTO interaction_window VALUES ($1, $2, $3)",
        OA,
        protector.pseudonym(USER),
        datetime.now(UTC) - timedelta(days=8),
    )
    assert await delivery.deliver(request(protector)) is DeliveryStatus.FAILED
    assert route.call_count == 0
    (result,) = await results(pool)
    assert result.error_kind.value == "outside_window"
    assert "7 ngày" in result.error_message


@respx.mock
async def test_invalid_token_is_refreshed_once_and_the_send_retried(
    delivery: Delivery, protector: IdentityProtector
):
    cs = respx.post(CS).mock(
        side_effect=[
            httpx.Response(200, json={"error": -216, "message": "Access token is invalid"}),
            httpx.Response(200, json=OK),
        ]
    )
    refresh = respx.post(OAUTH).mock(
        return_value=httpx.Response(
            200, json={"access_token": "A1", "refresh_token": "R1", "expires_in": "90000"}
        )
    )
    assert await delivery.deliver(request(protector)) is DeliveryStatus.SENT
    assert refresh.call_count == 1
    assert [c.request.headers["access_token"] for c in cs.calls] == ["A0", "A1"]


@respx.mock
async def test_a_token_refreshed_by_another_replica_is_used_not_refreshed_again(
    delivery: Delivery, protector: IdentityProtector
):
    """Two replicas, token expiry: while this one's send with A0 was refused, the other
    replica refreshed to A1. Refreshing again would invalidate A1 under the other replica's
    feet (each then fails its resend): this one takes A1 as it is."""

    async def refuse_then_refresh_elsewhere(req: httpx.Request) -> httpx.Response:
        if req.headers["access_token"] == "A0":
            await delivery.tokens.save(OA, TokenPair("A1", "R1", 90000))  # the other replica
            return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})
        return httpx.Response(200, json=OK)

    cs = respx.post(CS).mock(side_effect=refuse_then_refresh_elsewhere)
    refresh = respx.post(OAUTH).mock(return_value=httpx.Response(500))
    assert await delivery.deliver(request(protector)) is DeliveryStatus.SENT
    assert refresh.call_count == 0
    assert [c.request.headers["access_token"] for c in cs.calls] == ["A0", "A1"]


@respx.mock
async def test_retryable_errors_are_retried_permanent_ones_are_not(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    flaky = respx.post(CS).mock(
        side_effect=[
            httpx.Response(502),
            httpx.Response(200, json={"error": -32, "message": "limit"}),
            httpx.Response(200, json=OK),
        ]
    )
    assert await delivery.deliver(request(protector, request_id="r1")) is DeliveryStatus.SENT
    assert flaky.call_count == 3
    blocked = respx.post(CS).mock(
        return_value=httpx.Response(200, json={"error": -213, "message": "not followed"})
    )
    before = blocked.call_count  # respx keeps one route per pattern: count from here
    assert await delivery.deliver(request(protector, request_id="r2")) is DeliveryStatus.FAILED
    assert blocked.call_count - before == 1, "a permanent error is not retried"
    last = (await results(pool))[-1]
    assert (last.error_code, last.error_kind.value) == (-213, "permanent")


@respx.mock
async def test_a_timeout_after_write_is_checked_in_the_conversation_not_resent(
    delivery: Delivery, protector: IdentityProtector
):
    req = request(protector)
    cs = respx.post(CS).mock(side_effect=httpx.ReadTimeout("no answer"))
    history = respx.get(url__startswith=CONVERSATION).mock(
        return_value=httpx.Response(
            200,
            json={
                "error": 0,
                "message": "Success",
                "data": [{"message_id": "zm9", "message": req.text, "src": 0}],
            },
        )
    )
    assert await delivery.deliver(req) is DeliveryStatus.SENT
    assert cs.call_count == 1, "not sent a second time"
    assert history.call_count == 1


@respx.mock
async def test_an_oa_needing_reauthorisation_parks_messages_until_it_is_fixed(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    await pool.execute("UPDATE oa_tokens SET needs_reauth = true")
    cs = respx.post(CS).mock(return_value=httpx.Response(200, json=OK))
    assert await delivery.deliver(request(protector)) is DeliveryStatus.WAITING_TOKEN
    assert await pool.fetchval("SELECT count(*) FROM notify_parked") == 1
    assert await delivery.resume_parked() == 0, "still waiting"
    await delivery.tokens.save(OA, TokenPair("B0", "S0", 90000))  # re-authorised
    assert await delivery.resume_parked() == 1
    assert cs.call_count == 1
    assert await pool.fetchval("SELECT count(*) FROM notify_parked") == 0


@respx.mock
async def test_a_token_refused_every_time_parks_the_request_it_is_not_failed(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    """Reliability finding 11: Zalo refused the token, and both fresh ones after it (two
    replicas refreshing at once); the acknowledgement was settled failed and never sent."""
    refusals = 3
    calls: list[str] = []

    async def refuse_three_times(req: httpx.Request) -> httpx.Response:
        nonlocal refusals
        calls.append(req.headers["access_token"])
        if refusals:
            refusals -= 1
            return httpx.Response(200, json={"error": -216, "message": "Access token is invalid"})
        return httpx.Response(200, json=OK)

    respx.post(CS).mock(side_effect=refuse_three_times)
    fresh = iter(range(1, 10))
    respx.post(OAUTH).mock(
        side_effect=lambda _: httpx.Response(
            200,
            json={
                "access_token": f"A{(n := next(fresh))}",
                "refresh_token": f"R{n}",
                "expires_in": "90000",
            },
        )
    )
    assert await delivery.deliver(request(protector)) is DeliveryStatus.WAITING_TOKEN
    assert len(calls) == 3 and len(set(calls)) == 3, "each resend with another token"
    assert await pool.fetchval("SELECT status FROM notify_ledger") == "waiting_token"
    assert await results(pool) == [], "nothing settled"
    history = respx.get(url__startswith=CONVERSATION).mock(
        return_value=httpx.Response(200, json={"error": 0, "message": "Success", "data": []})
    )
    assert await delivery.resume_parked() == 1
    assert history.call_count == 1, "looked before sending again"
    assert await pool.fetchval("SELECT status FROM notify_ledger") == "sent"
    assert len(calls) == 4
    assert await pool.fetchval("SELECT count(*) FROM notify_parked") == 0


@respx.mock
async def test_two_replicas_resuming_parked_requests_send_each_once(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    """Found by the harness (token_expiry, two notifiers): both replicas' resume_parked took
    the same parked acknowledgement and the citizen got it twice."""
    await pool.execute("UPDATE oa_tokens SET needs_reauth = true")
    for i in range(5):
        req = request(protector, request_id=f"ack:p{i}")
        assert await delivery.deliver(req) is DeliveryStatus.WAITING_TOKEN
    await delivery.tokens.save(OA, TokenPair("B0", "S0", 90000))  # re-authorised

    async def slow_ok(_: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # both replicas are in the loop at once
        return httpx.Response(200, json=OK)

    cs = respx.post(CS).mock(side_effect=slow_ok)
    other = Delivery(pool=pool, client=delivery.client, tokens=delivery.tokens, protector=protector)
    resumed = await asyncio.gather(delivery.resume_parked(), other.resume_parked())
    assert sum(resumed) == 5
    assert cs.call_count == 5, "each parked request sent once"
    statuses = await pool.fetch("SELECT status FROM notify_ledger WHERE request_id LIKE 'ack:p%'")
    assert [r["status"] for r in statuses] == ["sent"] * 5


async def test_the_shared_rate_limit_holds_across_replicas(
    pool: asyncpg.Pool, replica_pool: asyncpg.Pool
):
    a = SharedRateLimiter(pool, "app", per_minute=5)
    b = SharedRateLimiter(replica_pool, "app", per_minute=5)
    for limiter in (a, b, a, b, a):
        await asyncio.wait_for(limiter.acquire(), 1)
    with pytest.raises(TimeoutError):  # the sixth call this minute waits for the next
        await asyncio.wait_for(b.acquire(), 0.5)


async def test_the_rate_limit_is_taken_in_chunks_and_never_exceeded(
    pool: asyncpg.Pool, replica_pool: asyncpg.Pool
):
    a = SharedRateLimiter(pool, "app-chunks", per_minute=50, chunk=30)
    b = SharedRateLimiter(replica_pool, "app-chunks", per_minute=50, chunk=30)
    for _ in range(30):  # one chunk: one round trip for 30 permits
        await asyncio.wait_for(a.acquire(), 1)
    for _ in range(20):  # what is left of the minute's budget, not a whole chunk
        await asyncio.wait_for(b.acquire(), 1)
    for limiter in (a, b):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(limiter.acquire(), 0.3)
    calls = await pool.fetchval("SELECT max(calls) FROM zalo_rate WHERE app_id = 'app-chunks'")
    assert calls >= 50
    assert SharedRateLimiter(pool, "x").chunk == 20  # 1/200 of Zalo's 4,000 a minute


async def test_zalo_s_remaining_budget_bounds_every_replica(
    pool: asyncpg.Pool, replica_pool: asyncpg.Pool
):
    """X-RateLimit-Remain counts what Zalo counted (other tools of the app too): the limiter
    holds no more than that, and its next trip to the shared counter tells the others."""
    a = SharedRateLimiter(pool, "app-remain", per_minute=100, chunk=20)
    b = SharedRateLimiter(replica_pool, "app-remain", per_minute=100, chunk=20)
    await asyncio.wait_for(a.acquire(), 1)  # a holds 19 more permits of our own count
    a.observe(3)  # Zalo: 3 calls left this minute (other tools of the app spent the rest)
    for _ in range(3):
        await asyncio.wait_for(a.acquire(), 1)
    for limiter in (a, b):  # 97 + 3: spent, for both replicas
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(limiter.acquire(), 0.3)
    calls = await pool.fetchval("SELECT max(calls) FROM zalo_rate WHERE app_id = 'app-remain'")
    assert calls >= 100


@respx.mock
async def test_a_spent_retry_budget_settles_the_request_and_says_so(
    delivery: Delivery, pool: asyncpg.Pool, protector: IdentityProtector
):
    respx.post(CS).mock(return_value=httpx.Response(503))
    with pytest.raises(RetriesExhaustedError) as caught:
        await delivery.deliver(request(protector, request_id="r-503"))
    assert caught.value.history["attempts"] >= 1
    assert (
        await pool.fetchval("SELECT status FROM notify_ledger WHERE request_id = 'r-503'")
        == "failed"
    )
    last = (await results(pool))[-1]
    assert (last.status.value, last.error_kind.value) == ("failed", "retryable")
    # A redelivery of the same request does not start again.
    assert await delivery.deliver(request(protector, request_id="r-503")) is (DeliveryStatus.FAILED)


async def _fast_delivery(
    pool: asyncpg.Pool, protector: IdentityProtector, *, timeout_s: float
) -> Delivery:
    """Real backoff (stamina's test mode off), in milliseconds: 3 attempts, ``timeout_s``."""
    stamina.set_testing(False)
    client = ZaloClient()
    tokens = TokenStore(pool=pool, client=client, protector=protector, app_id="1", app_secret="S")
    await tokens.save(OA, TokenPair("A0", "R0", 90000))
    return Delivery(
        pool=pool,
        client=client,
        tokens=tokens,
        protector=protector,
        attempts=3,
        timeout_s=timeout_s,
        wait_initial_s=0.001,
        wait_max_s=0.005,
        wait_jitter_s=0,
    )


@respx.mock
async def test_a_burst_of_rate_limits_is_waited_out_not_counted_as_attempts(
    pool: asyncpg.Pool, protector: IdentityProtector
):
    """Found by the reliability harness: 15 answers -32 in a row spent the 5 attempts in about
    3 s and the citizen's acknowledgement was dead-lettered. Rate limits are bounded by the
    time budget only; other retryable errors still by the attempts."""
    fast = await _fast_delivery(pool, protector, timeout_s=10)
    limited = respx.post(CS).mock(
        side_effect=[httpx.Response(200, json={"error": -32, "message": "limit"})] * 8
        + [httpx.Response(200, json=OK)]
    )
    assert await fast.deliver(request(protector, request_id="burst")) is DeliveryStatus.SENT
    assert limited.call_count == 9, "more rate-limited answers than attempts, still sent"
    failing = respx.post(CS).mock(return_value=httpx.Response(500))
    before = failing.call_count
    with pytest.raises(RetriesExhaustedError):
        await fast.deliver(request(protector, request_id="down"))
    assert failing.call_count - before == 3, "5xx answers stay bounded by the attempts"


@respx.mock
async def test_zalo_unreachable_is_waited_out_within_the_time_budget(
    pool: asyncpg.Pool, protector: IdentityProtector
):
    """Found by the harness's zalo_down: 20 s of refused connections spent the attempts in
    about 3 s and dead-lettered the acknowledgements. Nothing was sent: wait, within the
    time budget; past it the request still ends in the DLQ."""
    fast = await _fast_delivery(pool, protector, timeout_s=1)
    refused = httpx.ConnectError("Connection refused")
    down = respx.post(CS).mock(side_effect=[refused] * 8 + [httpx.Response(200, json=OK)])
    assert await fast.deliver(request(protector, request_id="outage")) is DeliveryStatus.SENT
    assert down.call_count == 9, "more refused connections than attempts, still sent"
    gone = respx.post(CS).mock(side_effect=refused)
    with pytest.raises(RetriesExhaustedError):
        await fast.deliver(request(protector, request_id="long-outage"))
    assert gone.call_count > 3, "bounded by the time budget, not by the attempts"


@respx.mock
async def test_a_gateway_timeout_is_checked_in_the_conversation_not_resent(
    delivery: Delivery, protector: IdentityProtector
):
    """Found by the reliability harness: Zalo wrote the message, its gateway answered 504, the
    send was retried and the citizen got the acknowledgement twice."""
    req = request(protector, request_id="gw")
    cs = respx.post(CS).mock(return_value=httpx.Response(504, text="<html>504</html>"))
    history = respx.get(url__startswith=CONVERSATION).mock(
        return_value=httpx.Response(
            200,
            json={
                "error": 0,
                "message": "Success",
                "data": [{"message_id": "zm7", "message": req.text, "src": 0}],
            },
        )
    )
    assert await delivery.deliver(req) is DeliveryStatus.SENT
    assert cs.call_count == 1, "not sent a second time"
    assert history.call_count == 1
