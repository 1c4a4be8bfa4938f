"""OA tokens on a real PostgreSQL: sealed, refreshed once across replicas, the grant never
burnt twice, a refused refresh flags the OA."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import httpx
import pytest
import respx

from ketnoi_notifier.tokens import NeedsReauthorisationError, TokenStore
from ketnoi_notifier.zalo import TokenPair, ZaloClient
from ketnoi_shared.identity import IdentityProtector

OAUTH = "https://oauth.zaloapp.com/v4/oa/access_token"
OA = "4123456789012345678"


class SingleUseRefresh:
    """Zalo's token endpoint as the README describes it: each refresh token works once."""

    def __init__(self) -> None:
        self.valid = {"R0"}
        self.counter = itertools.count(1)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        form = dict(httpx.QueryParams(request.content.decode()))
        if form.get("refresh_token") not in self.valid:
            return httpx.Response(200, json={"error": -14014, "message": "Invalid refresh token"})
        self.valid.discard(form["refresh_token"])
        n = next(self.counter)
        self.valid.add(f"R{n}")
        return httpx.Response(
            200, json={"access_token": f"A{n}", "refresh_token": f"R{n}", "expires_in": "90000"}
        )


def store(pool: asyncpg.Pool, protector: IdentityProtector, cache_s: float = 0) -> TokenStore:
    """A store that reads the database every time (tests change the rows under it), unless
    ``cache_s`` says otherwise."""
    return TokenStore(
        pool=pool,
        client=ZaloClient(),
        protector=protector,
        app_id="1",
        app_secret="S",
        cache_s=cache_s,
    )


async def expire(pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE oa_tokens SET access_expires_at = now() - interval '1 minute'")


@respx.mock
async def test_tokens_are_sealed_and_reused_until_near_expiry(
    pool: asyncpg.Pool, protector: IdentityProtector
):
    zalo = SingleUseRefresh()
    respx.post(OAUTH).mock(side_effect=zalo)
    tokens = store(pool, protector)
    await tokens.save(OA, TokenPair("A0", "R0", 90000))
    assert await tokens.access_token(OA) == "A0"
    # Sealed at rest: long, distinctive tokens cannot appear in the ciphertext by chance.
    await tokens.save("other-oa", TokenPair("access-token-canary-1", "refresh-token-canary-1", 9))
    row = await pool.fetchrow("SELECT * FROM oa_tokens WHERE oa_id = 'other-oa'")
    assert "access-token-canary-1" not in row["sealed_access"]
    assert "refresh-token-canary-1" not in row["sealed_refresh"]
    assert zalo.calls == 0
    await expire(pool)
    assert await tokens.access_token(OA) == "A1"
    assert await tokens.access_token(OA) == "A1"
    assert zalo.calls == 1


@respx.mock
async def test_a_token_is_reused_from_memory_until_zalo_refuses_it(
    pool: asyncpg.Pool, protector: IdentityProtector
):
    zalo = SingleUseRefresh()
    respx.post(OAUTH).mock(side_effect=zalo)
    tokens = store(pool, protector, cache_s=60)
    await tokens.save(OA, TokenPair("A0", "R0", 90000))
    assert await tokens.access_token(OA) == "A0"
    # Another replica refreshes: this one still uses its copy (no query per send) ...
    await pool.execute(
        "UPDATE oa_tokens SET sealed_access = $1", protector.seal("B0", purpose="zalo_access_token")
    )
    assert await tokens.access_token(OA) == "A0"
    # ... until Zalo refuses it: then it reads the new one, without refreshing again.
    assert await tokens.access_token(OA, invalid="A0") == "B0"
    assert await tokens.access_token(OA) == "B0"
    assert zalo.calls == 0
    # Saving a pair (a new authorisation in this process) replaces the copy at once.
    await tokens.save(OA, TokenPair("C0", "R9", 90000))
    assert await tokens.access_token(OA) == "C0"


@respx.mock
async def test_two_replicas_refreshing_at_once_burn_one_refresh_token(
    database_url: str, pool: asyncpg.Pool, protector: IdentityProtector
):
    zalo = SingleUseRefresh()
    respx.post(OAUTH).mock(side_effect=zalo)
    await store(pool, protector).save(OA, TokenPair("A0", "R0", 90000))
    await expire(pool)
    other_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
    try:
        replicas = [store(pool, protector), store(other_pool, protector)]
        got = await asyncio.gather(*(r.access_token(OA) for r in replicas for _ in range(4)))
    finally:
        await other_pool.close()
    assert set(got) == {"A1"}
    assert zalo.calls == 1, "exactly one refresh token used"
    assert zalo.valid == {"R1"}, "and the stored one is the live one"


@respx.mock
async def test_invalid_token_forces_one_refresh(pool: asyncpg.Pool, protector: IdentityProtector):
    zalo = SingleUseRefresh()
    respx.post(OAUTH).mock(side_effect=zalo)
    tokens = store(pool, protector)
    await tokens.save(OA, TokenPair("A0", "R0", 90000))
    assert await tokens.access_token(OA, force_refresh=True) == "A1"
    assert zalo.calls == 1


@respx.mock
async def test_a_refused_refresh_flags_the_oa_and_messages_wait(
    pool: asyncpg.Pool, protector: IdentityProtector
):
    zalo = SingleUseRefresh()
    zalo.valid.clear()  # the grant was revoked
    respx.post(OAUTH).mock(side_effect=zalo)
    tokens = store(pool, protector)
    await tokens.save(OA, TokenPair("A0", "R0", 90000))
    await expire(pool)
    with pytest.raises(NeedsReauthorisationError):
        await tokens.access_token(OA)
    row = await pool.fetchrow("SELECT * FROM oa_tokens")
    assert row["needs_reauth"] is True, "the flag survives the failed attempt"
    with pytest.raises(NeedsReauthorisationError):
        await tokens.access_token(OA)
    assert zalo.calls == 1, "no further refresh attempts until re-authorised"
    await tokens.save(OA, TokenPair("B0", "S0", 90000))  # `ketnoi zalo authorize`
    assert await tokens.access_token(OA) == "B0"
