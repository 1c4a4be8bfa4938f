"""Migrations, inbox and outbox against a real PostgreSQL (and broker for the relay)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

import asyncpg

from ketnoi_shared.contracts import NEWS_ITEMS, NewsItem
from ketnoi_shared.db import OutboxRelay, apply_migrations, claim, enqueue

from .conftest import now_ms, read_topic


def news(i: int) -> NewsItem:
    return NewsItem(
        event_id=f"ev-{uuid.uuid4().hex}",
        occurred_at=datetime.now(UTC),
        correlation_id="c",
        item_id=str(i),
        source_id="src",
        url=f"https://x/{i}",
        title=f"Tin {i}",
    )


async def test_migrations_apply_twice_idempotently(database_url: str, pool: asyncpg.Pool):
    # The fixture's database is already migrated from the template: nothing is pending.
    assert await asyncio.to_thread(apply_migrations, database_url) == []
    assert await asyncio.to_thread(apply_migrations, database_url) == []
    tables = {
        r["tablename"]
        for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"inbox", "outbox", "ingest_dedup"} <= tables


async def test_migrations_from_empty_database(admin_url: str):
    name = "ketnoi_m_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    if "?" in admin_url:
        url = (
            admin_url.split("?", maxsplit=1)[0].rsplit("/", 1)[0]
            + "/"
            + name
            + "?"
            + admin_url.split("?")[1]
        )
    try:
        first = await asyncio.to_thread(apply_migrations, url)
        again = await asyncio.to_thread(apply_migrations, url)
        assert first and first == sorted(first)
        assert again == []
    finally:
        conn = await asyncpg.connect(admin_url)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


async def test_inbox_skips_a_redelivered_event_and_rolls_back_with_the_effect(
    pool: asyncpg.Pool,
):
    await pool.execute("CREATE TABLE effects (event_id text)")

    async def consume(event_id: str, *, fail: bool = False) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            if not await claim(conn, consumer="c1", event_id=event_id):
                return False
            await conn.execute("INSERT INTO effects VALUES ($1)", event_id)
            if fail:
                raise RuntimeError("crash before commit")
        return True

    assert await consume("e1") is True
    assert await consume("e1") is False  # redelivery
    with contextlib.suppress(RuntimeError):
        await consume("e2", fail=True)
    assert await consume("e2") is True  # the failed attempt left no claim behind
    async with pool.acquire() as conn, conn.transaction():
        assert await claim(conn, consumer="another-consumer", event_id="e1") is True
    assert sorted(r[0] for r in await pool.fetch("SELECT event_id FROM effects")) == ["e1", "e2"]


async def test_concurrent_redeliveries_have_one_effect(pool: asyncpg.Pool):
    await pool.execute("CREATE TABLE effects (event_id text)")

    async def consume() -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await claim(conn, consumer="c1", event_id="same"):
                await asyncio.sleep(0.05)
                await conn.execute("INSERT INTO effects VALUES ('same')")

    await asyncio.gather(*(consume() for _ in range(5)))
    assert await pool.fetchval("SELECT count(*) FROM effects") == 1


async def test_outbox_relay_publishes_in_order_once(pool: asyncpg.Pool, kafka_bootstrap: str):
    start = now_ms()
    items = [news(i) for i in range(30)]
    async with pool.acquire() as conn, conn.transaction():
        for it in items:
            assert await enqueue(conn, NEWS_ITEMS, it) is True
        assert await enqueue(conn, NEWS_ITEMS, items[0]) is False  # same event id: once
    relay = OutboxRelay(pool, bootstrap=kafka_bootstrap, poll_s=30)  # NOTIFY must wake it
    await relay.start()
    try:
        records = await read_topic(kafka_bootstrap, NEWS_ITEMS.name, since_ms=start, until=30)
        late = news(99)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, NEWS_ITEMS, late)
        for _ in range(100):
            if await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    ids = [NewsItem.model_validate_json(r.value).item_id for r in records[:30]]
    assert ids == [str(i) for i in range(30)], "same key, same partition, outbox order"
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    after = await read_topic(kafka_bootstrap, NEWS_ITEMS.name, since_ms=start, timeout=5)
    assert sorted(NewsItem.model_validate_json(r.value).item_id for r in after) == sorted(
        [str(i) for i in range(30)] + ["99"]
    ), "every row exactly once"


async def test_a_pass_without_the_relay_lock_is_not_a_clean_pass(
    pool: asyncpg.Pool, kafka_bootstrap: str
):
    """Ingest leaves spooling mode after a clean pass: one that could not even look (another
    process's relay held the lock) must not count as one."""
    from ketnoi_shared.db import _RELAY_LOCK  # noqa: PLC0415 - the lock other relays take

    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        assert await holder.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK)
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, NEWS_ITEMS, news(1))
        relay = OutboxRelay(pool, bootstrap=kafka_bootstrap, poll_s=0.1)
        await relay.start()
        try:
            await asyncio.sleep(1.0)
            assert relay.last_clean_pass_started == 0.0
            assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            await tx.rollback()  # the other relay is done
            for _ in range(100):
                if relay.last_clean_pass_started > 0:
                    break
                await asyncio.sleep(0.05)
            assert relay.last_clean_pass_started > 0
            pending = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            assert await pool.fetchval(pending) == 0
        finally:
            await relay.stop()
