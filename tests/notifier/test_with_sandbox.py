"""The notifier's client, token store and delivery against the Zalo sandbox (which is strict
like Zalo): PKCE authorisation, sends recorded, expiry and single-use refresh, the window."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import stamina

from ketnoi_notifier.authorize import Pkce
from ketnoi_notifier.delivery import Delivery
from ketnoi_notifier.ratelimit import SharedRateLimiter
from ketnoi_notifier.tokens import TokenStore
from ketnoi_notifier.zalo import ZaloClient
from ketnoi_sandbox import ManualClock, SandboxSettings, create_sandbox_app
from ketnoi_shared.contracts import DeliveryStatus, NotifyKind, NotifyRecipient, NotifyRequest
from ketnoi_shared.identity import IdentityProtector

APP_ID = "1234567890123456789"
SECRET = "TESTAPPSECRETKEY0001"
OA = "4123456789012345678"
USER = "8123456789012345678"


@pytest.fixture(autouse=True)
def _no_backoff_waits():
    stamina.set_testing(True, attempts=2)
    yield
    stamina.set_testing(False)


@pytest.fixture
async def zalo():
    clock = ManualClock()
    app = create_sandbox_app(SandboxSettings(app_id=APP_ID, app_secret=SECRET, clock=clock))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = ZaloClient(
        openapi_url="http://openapi.sandbox", oauth_url="http://oauth.sandbox", http=http
    )
    yield client, http, clock
    await http.aclose()


def request(protector: IdentityProtector, request_id: str, text: str) -> NotifyRequest:
    return NotifyRequest(
        event_id=request_id,
        occurred_at=datetime.now(UTC),
        correlation_id="c",
        oa_id=OA,
        kind=NotifyKind.ACK,
        text=text,
        recipient=NotifyRecipient(
            pseudonym=protector.pseudonym(USER),
            sealed_user_id=protector.seal(USER, purpose="zalo_user_id"),
        ),
    )


async def authorised(
    client: ZaloClient, http: httpx.AsyncClient, pool: asyncpg.Pool, protector: IdentityProtector
) -> TokenStore:
    """The administrator's authorisation: PKCE code, exchanged for the first pair, stored."""
    pkce = Pkce.new()
    code = (
        await http.post(
            "http://oauth.sandbox/sandbox/oauth/codes",
            json={"oa_id": OA, "code_challenge": pkce.challenge},
        )
    ).json()["code"]
    pair = await client.exchange_code(
        app_id=APP_ID, secret_key=SECRET, code=code, code_verifier=pkce.verifier
    )
    tokens = TokenStore(
        pool=pool, client=client, protector=protector, app_id=APP_ID, app_secret=SECRET
    )
    await tokens.save(OA, pair)
    return tokens


async def citizen_writes(http: httpx.AsyncClient) -> None:
    await http.post(
        "http://openapi.sandbox/sandbox/interactions",
        json={"oa_id": OA, "user_id": USER, "kind": "message"},
    )


async def test_authorise_send_expire_refresh_and_window(
    zalo, pool: asyncpg.Pool, protector: IdentityProtector
):
    client, http, clock = zalo
    tokens = await authorised(client, http, pool, protector)
    delivery = Delivery(pool=pool, client=client, tokens=tokens, protector=protector)

    # The citizen wrote to the OA: the window is open.
    await citizen_writes(http)
    assert await delivery.deliver(request(protector, "r1", "Đã tiếp nhận.")) is (
        DeliveryStatus.SENT
    )
    recorded = (
        await http.get("http://openapi.sandbox/sandbox/messages", params={"user": USER, "oa": OA})
    ).json()
    texts = [
        m.get("text") for m in (recorded["messages"] if isinstance(recorded, dict) else recorded)
    ]
    assert texts == ["Đã tiếp nhận."]

    # 26 hours later the access token has expired: refreshed once (single-use), then sent.
    clock.advance(26 * 3600)
    await citizen_writes(http)
    assert await delivery.deliver(request(protector, "r2", "Cán bộ sẽ liên hệ.")) is (
        DeliveryStatus.SENT
    )
    assert await delivery.deliver(request(protector, "r3", "Cảm ơn bạn.")) is (DeliveryStatus.SENT)
    pairs = (await http.get("http://openapi.sandbox/sandbox/tokens")).json()
    assert len(pairs) == 2, "one refresh: the first pair and its replacement"

    # Eight days without an interaction: Zalo refuses (-230); nothing is resent.
    clock.advance(8 * 86400)
    assert await delivery.deliver(request(protector, "r4", "Còn đó không?")) is (
        DeliveryStatus.FAILED
    )
    reason = await pool.fetchval(
        "SELECT last_error_code FROM notify_ledger WHERE request_id = 'r4'"
    )
    assert reason == -230


async def test_a_budget_zalo_says_is_spent_is_waited_out_not_spent_on_minus_32(
    pool: asyncpg.Pool, protector: IdentityProtector, inside_a_minute: None
):
    """The sandbox allows 3 calls a minute; our limiter believes in 4,000. After Zalo's
    X-RateLimit-Remain reaches 0 the next send waits for the next minute (before: it was
    sent, answered -32, and retried into the same wall)."""
    app = create_sandbox_app(
        SandboxSettings(
            app_id=APP_ID, app_secret=SECRET, clock=ManualClock(), rate_limit_per_minute=3
        )
    )
    limiter = SharedRateLimiter(pool, f"app-{uuid.uuid4().hex[:8]}", per_minute=4000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        client = ZaloClient(
            openapi_url="http://openapi.sandbox",
            oauth_url="http://oauth.sandbox",
            http=http,
            on_rate_remain=limiter.observe,
        )
        tokens = await authorised(client, http, pool, protector)
        delivery = Delivery(
            pool=pool, client=client, tokens=tokens, protector=protector, limiter=limiter
        )
        await citizen_writes(http)
        for i in range(3):
            sent = await delivery.deliver(request(protector, f"rate-{i}", f"Tin {i}."))
            assert sent is DeliveryStatus.SENT
        with pytest.raises(TimeoutError):  # waiting for the next minute, not failing
            await asyncio.wait_for(delivery.deliver(request(protector, "rate-3", "Tin 3.")), 1)
        state = (await http.get("http://openapi.sandbox/sandbox/health")).json()
    assert state["rate_limit_remain"] == 0
    assert (
        await pool.fetchval("SELECT last_error_code FROM notify_ledger WHERE request_id = 'rate-3'")
        is None
    )  # no -32 was earned
