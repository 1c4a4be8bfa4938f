"""The reconciler against a real PostgreSQL (and broker for the relay): outbox rows whose effect
is missing are published again, a bounded number of times; the rest are left alone."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from ketnoi_shared.contracts import NOTIFY_REQUESTS, ZALO_EVENTS
from ketnoi_shared.db import OutboxRelay
from ketnoi_shared.metrics import RECONCILE_GIVEN_UP, RECONCILE_REPUBLISHED
from ketnoi_shared.reconcile import reconcile_once

from .conftest import now_ms, read_topic


async def _row(
    pool: asyncpg.Pool, topic: str, *, published_s_ago: float | None, tag: str = ""
) -> str:
    """An outbox row published ``published_s_ago`` seconds ago (None: still pending)."""
    event_id = f"{tag}{uuid.uuid4().hex}"
    await pool.execute(
        """INSERT INTO outbox (topic, key, value, event_id, published_at)
           VALUES ($1, $2, $3, $4,
                   CASE WHEN $5::float8 IS NULL THEN NULL
                        ELSE now() - make_interval(secs => $5::float8) END)""",
        topic,
        b"k",
        event_id.encode(),
        event_id,
        published_s_ago,
    )
    return event_id


async def _pending(pool: asyncpg.Pool) -> set[str]:
    return {
        r["event_id"]
        for r in await pool.fetch("SELECT event_id FROM outbox WHERE published_at IS NULL")
    }


async def _reconcile(pool: asyncpg.Pool, **kw: float) -> dict[str, int]:
    async with pool.acquire() as conn, conn.transaction():
        return await reconcile_once(conn, after_s=60, **kw)


async def test_rows_without_their_effect_are_marked_again_and_others_are_left(
    pool: asyncpg.Pool,
):
    lost_event = await _row(pool, ZALO_EVENTS.name, published_s_ago=600)
    consumed_event = await _row(pool, ZALO_EVENTS.name, published_s_ago=600)
    await pool.execute("INSERT INTO inbox VALUES ('triage', $1)", consumed_event)
    # A claim by another consumer is not triage's effect.
    other_claim = await _row(pool, ZALO_EVENTS.name, published_s_ago=600)
    await pool.execute("INSERT INTO inbox VALUES ('media', $1)", other_claim)
    lost_request = await _row(pool, NOTIFY_REQUESTS.name, published_s_ago=600)
    sent_request = await _row(pool, NOTIFY_REQUESTS.name, published_s_ago=600)
    await pool.execute(
        "INSERT INTO notify_ledger (request_id, oa_id, status) VALUES ($1, 'oa', 'sent')",
        sent_request,
    )
    too_young = await _row(pool, ZALO_EVENTS.name, published_s_ago=5)
    beyond_horizon = await _row(pool, ZALO_EVENTS.name, published_s_ago=8 * 3600)
    await _row(pool, "news.items.v1", published_s_ago=600)  # no effect defined: never
    before = RECONCILE_REPUBLISHED.labels(topic=ZALO_EVENTS.name)._value.get()

    counts = await _reconcile(pool)

    assert counts == {ZALO_EVENTS.name: 2, NOTIFY_REQUESTS.name: 1}
    assert await _pending(pool) == {lost_event, other_claim, lost_request}
    assert RECONCILE_REPUBLISHED.labels(topic=ZALO_EVENTS.name)._value.get() == before + 2
    # Nothing is marked twice while it waits for the relay.
    assert await _reconcile(pool) == {ZALO_EVENTS.name: 0, NOTIFY_REQUESTS.name: 0}
    assert too_young not in await _pending(pool)
    assert beyond_horizon not in await _pending(pool)


async def test_a_row_is_republished_at_most_twice_then_given_up(pool: asyncpg.Pool):
    event_id = await _row(pool, NOTIFY_REQUESTS.name, published_s_ago=600, tag="poison-")
    given_up = RECONCILE_GIVEN_UP.labels(topic=NOTIFY_REQUESTS.name)._value.get()

    async def relay_published_it_long_ago() -> None:
        await pool.execute(
            "UPDATE outbox SET published_at = now() - interval '10 minutes' WHERE event_id = $1",
            event_id,
        )

    for attempt in (1, 2):
        assert (await _reconcile(pool))[NOTIFY_REQUESTS.name] == 1, attempt
        assert event_id in await _pending(pool)
        await relay_published_it_long_ago()
    assert (await _reconcile(pool))[NOTIFY_REQUESTS.name] == 0
    assert event_id not in await _pending(pool)
    assert RECONCILE_GIVEN_UP.labels(topic=NOTIFY_REQUESTS.name)._value.get() == given_up + 1
    assert await pool.fetchval("SELECT reconciled FROM outbox WHERE event_id = $1", event_id) == 3
    assert (await _reconcile(pool))[NOTIFY_REQUESTS.name] == 0  # and left alone after that
    assert RECONCILE_GIVEN_UP.labels(topic=NOTIFY_REQUESTS.name)._value.get() == given_up + 1


async def test_the_relay_publishes_a_lost_record_again_until_its_effect_appears(
    pool: asyncpg.Pool, kafka_bootstrap: str
):
    start = now_ms()
    event_id = await _row(pool, NOTIFY_REQUESTS.name, published_s_ago=None)
    relay = OutboxRelay(
        pool, bootstrap=kafka_bootstrap, poll_s=0.2, reconcile_after_s=1.0, reconcile_every_s=0.2
    )
    await relay.start()
    try:
        # Published, never consumed (as if the broker lost it): published again, once per
        # ``reconcile_after_s``, twice at most.
        first = await read_topic(
            kafka_bootstrap, NOTIFY_REQUESTS.name, since_ms=start, until=2, timeout=20
        )
        ours = [r for r in first if r.value == event_id.encode()]
        assert len(ours) == 2
        # The notifier finally handles it: the reconciler stops.
        await pool.execute(
            "INSERT INTO notify_ledger (request_id, oa_id, status) VALUES ($1, 'oa', 'sent')",
            event_id,
        )
        await asyncio.sleep(2.5)
    finally:
        await relay.stop()
    records = await read_topic(kafka_bootstrap, NOTIFY_REQUESTS.name, since_ms=start, timeout=5)
    copies = [r for r in records if r.value == event_id.encode()]
    assert 2 <= len(copies) <= 3, "republished, boundedly, then left alone"
    reconciled = await pool.fetchval("SELECT reconciled FROM outbox WHERE event_id = $1", event_id)
    assert reconciled == len(copies) - 1
