"""Triage benchmark: classifier throughput on one core and end-to-end consumer throughput
with persistence on the embedded stack, each next to a baseline measured in the same run.

Targets (issue #4): classifier >= 5,000 messages/s on one core; consumer >= 1,000 events/s.

Usage: .venv/bin/python benchmarks/triage_bench.py [--messages 20000] [--events 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from ketnoi_shared.contracts import (
    ZALO_EVENTS,
    CitizenRef,
    EventKind,
    ZaloEvent,
    ZaloMessage,
    all_topics,
)
from ketnoi_shared.db import apply_migrations, claim
from ketnoi_shared.identity import IdentityProtector, generate_pseudonym_key, generate_seal_key
from ketnoi_shared.logging import configure_logging
from ketnoi_shared.messaging import (
    CONSUMER_ACK_POLICY,
    ensure_topics,
    make_broker,
    make_producer,
    send,
)
from ketnoi_shared.settings import CommonSettings
from ketnoi_stack.embedded import EmbeddedPostgres, TansuBroker, free_port
from ketnoi_triage.bootstrap import load_units
from ketnoi_triage.classify import load_corpus
from ketnoi_triage.classify.features import match_cues, prepare
from ketnoi_triage.engine import Triage
from ketnoi_triage.settings import TriageSettings


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>9,.0f}/s"


def classifier(n: int) -> None:
    os.sched_setaffinity(0, {0})  # one core
    texts = [r["text"] for r in load_corpus()]
    sample = [random.Random(i).choice(texts) + f" {i}" for i in range(n)]  # defeat caches
    engine = Triage.load()
    print(
        f"\nClassifier, one core, {n:,} messages (corpus texts, mean "
        f"{sum(map(len, sample)) / n:.0f} chars):"
    )
    t = time.perf_counter()
    prepared = [prepare(s) for s in sample]
    print(f"  baseline: normalise + teencode only        {rate(n, time.perf_counter() - t)}")
    t = time.perf_counter()
    for p in prepared:
        match_cues(p)
    print(f"  cues only                                  {rate(n, time.perf_counter() - t)}")
    if engine.gazetteer is not None:
        t = time.perf_counter()
        for p in prepared:
            engine.gazetteer.resolve_text(p.normalized, province_code=engine.province_code)
        print(f"  {'location only (gazetteer)':<43}{rate(n, time.perf_counter() - t)}")
    prepare.cache_clear()
    t = time.perf_counter()
    for i in range(0, n, 1000):
        engine.model.predict_many(sample[i : i + 1000])
    print(f"  model (normalise, cues, 3 linear models)   {rate(n, time.perf_counter() - t)}")
    prepare.cache_clear()
    t = time.perf_counter()
    for i in range(0, n, 1000):
        engine.classify_many(sample[i : i + 1000])
    print(f"  full classify (model + location)           {rate(n, time.perf_counter() - t)}")
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def make_events(n: int, protector: IdentityProtector) -> list[ZaloEvent]:
    texts = [r["text"] for r in load_corpus()]
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        user = f"8{i % (n // 3 + 1):018d}"
        out.append(
            ZaloEvent(
                event_id=f"user_send_text:bench{i:08d}",
                correlation_id=f"c{i}",
                occurred_at=t0 + timedelta(seconds=i),
                event_name="user_send_text",
                kind=EventKind.MESSAGE,
                app_id="1",
                oa_id="4123456789012345678",
                citizen=CitizenRef(
                    pseudonym=protector.pseudonym(user),
                    sealed_user_id=protector.seal(user, purpose="zalo_user_id"),
                ),
                message=ZaloMessage(msg_id=f"bench{i:08d}", text=texts[i % len(texts)]),
                zalo_timestamp_ms=int((t0 + timedelta(seconds=i)).timestamp() * 1000),
            )
        )
    return out


async def produce(bootstrap: str, events: list[ZaloEvent]) -> None:
    producer = make_producer(CommonSettings(kafka_bootstrap=bootstrap), client_id="bench")
    await producer.start()
    futures = [await send(producer, ZALO_EVENTS, e) for e in events]
    await asyncio.gather(*futures)
    await producer.stop()


async def wait_count(pool: asyncpg.Pool, sql: str, n: int, timeout: float = 600) -> float:
    t = time.perf_counter()
    while await pool.fetchval(sql) < n:
        if time.perf_counter() - t > timeout:
            raise TimeoutError(sql)
        await asyncio.sleep(0.05)
    return time.perf_counter() - t


async def baseline_consumer(bootstrap: str, url: str, n: int) -> float:
    """The least a persisting consumer does: inbox claim + one INSERT per event, commit,
    offset commit after it."""
    pool = await asyncpg.create_pool(url, min_size=2, max_size=4)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_rows (event_id text PRIMARY KEY)")
    broker = make_broker(CommonSettings(kafka_bootstrap=bootstrap), service="bench-baseline")

    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id="bench-baseline",
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
    )
    async def handle(event: ZaloEvent) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await claim(conn, consumer="bench-baseline", event_id=event.event_id):
                await conn.execute("INSERT INTO bench_rows VALUES ($1)", event.event_id)

    await broker.start()
    took = await wait_count(pool, "SELECT count(*) FROM bench_rows", n)
    await broker.stop()
    await pool.close()
    return took


async def triage_consumer(bootstrap: str, url: str, n: int, tmp: str) -> float:
    from ketnoi_triage.app import create_app  # noqa: PLC0415

    keys = {"pseudonym_key": generate_pseudonym_key(), "seal_key": generate_seal_key()}
    settings = TriageSettings(
        kafka_bootstrap=bootstrap, database_url=url, data_dir=Path(tmp), log_level="WARNING", **keys
    )
    app = create_app(settings, engine=Triage.load())
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    async with app.router.lifespan_context(app):
        took = await wait_count(pool, "SELECT count(*) FROM case_messages", n)
    await pool.close()
    return took


async def consumers(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-") as tmp:
        broker = TansuBroker(port=free_port()).start()
        pg = EmbeddedPostgres(Path(tmp) / "pg", database="bench").start()
        try:
            await ensure_topics(broker.bootstrap, all_topics())
            apply_migrations(pg.url())
            await load_units(pg.url())
            protector = IdentityProtector.from_keys(
                pseudonym_key=generate_pseudonym_key(), seal_key=generate_seal_key()
            )
            events = make_events(n, protector)
            await produce(broker.bootstrap, events)
            base = await baseline_consumer(broker.bootstrap, pg.url(), n)
            full = await triage_consumer(broker.bootstrap, pg.url(), n, tmp)
        finally:
            broker.stop()
            pg.stop()
    print(
        f"\nConsumers on the embedded stack, {n:,} events already on the topic "
        f"(one process each, {os.cpu_count()} cores shared with Tansu and PostgreSQL):"
    )
    print(f"  baseline: inbox claim + one INSERT per event   {rate(n, base)}")
    print(
        f"  triage: group, classify, locate, route, persist, outbox   {rate(n, full)} "
        f"({base / full:.0%} of the baseline)"
    )


def main() -> None:
    configure_logging("bench", level="WARNING", fmt="console")
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=5_000)
    args = parser.parse_args()
    classifier(args.messages)
    asyncio.run(consumers(args.events))


if __name__ == "__main__":
    main()
