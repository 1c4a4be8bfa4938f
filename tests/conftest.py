"""Session fixtures: a real broker and a real PostgreSQL (see tests/support/servers.py),
a freshly migrated database per test, keys, and helpers to read topics."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ketnoi_shared.contracts import all_topics
from ketnoi_shared.db import apply_migrations
from ketnoi_shared.identity import IdentityProtector, generate_pseudonym_key, generate_seal_key
from ketnoi_shared.messaging import ensure_topics

from .support.servers import kafka_server, postgres_server

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "zalo" / "fixtures"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"kafka_bootstrap", "database_url", "admin_url"}:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"Zalo fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with kafka_server() as (bootstrap, _kind):
        asyncio.run(ensure_topics(bootstrap, all_topics()))
        yield bootstrap


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    # Not under pytest's basetemp: pytest deletes all but the 3 latest session directories,
    # so a fourth test session started on the same machine would remove this one's running
    # database under it.
    root = Path(tempfile.mkdtemp(prefix="ketnoi-test-pg-"))
    try:
        with postgres_server(root) as (url, _kind, _handle):
            yield url
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def template_database(admin_url: str) -> str:
    """A migrated database used as the template of every test database."""
    name = "ketnoi_tmpl_" + uuid.uuid4().hex[:8]

    async def create() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    apply_migrations(_with_database(admin_url, name))
    return name


@pytest.fixture
async def database_url(admin_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = "ketnoi_t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await conn.close()
    yield _with_database(admin_url, name)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    return {"pseudonym_key": generate_pseudonym_key(), "seal_key": generate_seal_key("t1")}


@pytest.fixture(scope="session")
def protector(keys: dict[str, str]) -> IdentityProtector:
    return IdentityProtector.from_keys(**keys)


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name per test (created by the test)."""
    return "test." + uuid.uuid4().hex[:12]


def now_ms() -> int:
    """A mark in time: records produced after it have a Kafka timestamp at or above it."""
    return int(time.time() * 1000) - 5  # a little slack for clock granularity


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    since_ms: int = 0,
    until: int | None = None,
    timeout: float = 10.0,
    idle: float = 1.5,
) -> list[ConsumerRecord]:
    """Every record of ``topic`` produced at or after ``since_ms`` (from offset 0 of every
    partition: the embedded Tansu broker's ListOffsets answers are not reliable, so tests
    never start from end_offsets()). Stops after ``until`` records, or when idle."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = loop.time()
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [r for rs in batch.values() for r in rs if r.timestamp >= since_ms]
            records.extend(got)
            if batch:  # still reading (older records included): not idle
                last = loop.time()
            if until is not None and len(records) >= until:
                break
            if until is None and loop.time() - last > idle:
                break
    finally:
        await consumer.stop()
    return records
