"""PostgreSQL through asyncpg: pools, migrations (yoyo), the inbox and the outbox.

* **Migrations** are plain SQL files in :mod:`ketnoi_shared.migrations`, applied by
  yoyo-migrations (a maintained migration tool with a lock and a history table) as a one-shot
  step: ``ketnoi migrate``. Services never run DDL at start-up.
* **Inbox**: :func:`claim` records (consumer, event_id) in the same transaction as the
  consumer's side effects; a redelivered event finds its row and is skipped, so every consumer
  is idempotent.
* **Outbox**: :func:`enqueue` writes a message in the caller's transaction;
  :class:`OutboxRelay` publishes pending rows to Kafka in id order and marks them. We evaluated
  ``faststream-outbox``: it is a Postgres-table *broker* driven through SQLAlchemy sessions, not
  a relay into Kafka for an asyncpg code base, so this small relay (one advisory lock, one
  ordered SELECT, one UPDATE) is written here. Published rows are kept a week: under the same
  lock the relay also runs the reconciler (:mod:`ketnoi_shared.reconcile`), which marks again
  the rows whose effect is missing because a broker lost them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from .contracts import Envelope, TopicSpec, all_topics
from .messaging import encode, envelope_headers
from .metrics import INBOX_DUPLICATES, OUTBOX_PENDING, OUTBOX_PUBLISHED
from .reconcile import reconcile_once

__all__ = [
    "OUTBOX_CHANNEL",
    "OutboxRelay",
    "OutboxRelayError",
    "apply_migrations",
    "claim",
    "create_pool",
    "enqueue",
    "enqueue_many",
    "migrations_dir",
]

log = structlog.get_logger(__name__)

OUTBOX_CHANNEL: Final = "ketnoi_outbox"
INBOX_KEEP_S: Final = max(t.retention_ms for t in all_topics()) / 1000 + 7 * 24 * 3600
_RELAY_LOCK: Final = 0x6B65746E6F69  # "ketnoi": one active relay per database


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection to the pool without asyncpg's reset query.

    By default asyncpg sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release: one more round trip and four statements for every ``pool.execute`` (in
    a profile of the notifier under load, 15 % of its busy time). Ketnoi keeps no session
    state on pooled connections — settings are ``SET LOCAL`` / ``set_config(…, true)``,
    advisory locks are transaction-scoped or unlocked in ``finally``, cursors live in
    transactions, listeners are removed before release, and code that sets a session setting
    resets it itself before release — so there is nothing to reset. asyncpg still rolls back
    an open transaction and drops listener callbacks before calling this."""
    del conn


async def create_pool(url: str, *, max_size: int = 10, min_size: int = 1) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, timeout=10, reset=_keep_session
    )
    if pool is None:  # pragma: no cover - asyncpg types say Optional
        raise RuntimeError("could not create a database pool")
    return pool


def migrations_dir() -> Path:
    return Path(str(resources.files("ketnoi_shared") / "migrations"))


def _yoyo_url(url: str) -> str:
    """asyncpg URL → yoyo/psycopg URL (socket ``host=`` query kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), ""))


def apply_migrations(url: str, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the ids applied (empty when up to date)."""
    from yoyo import get_backend, read_migrations  # noqa: PLC0415 - heavy, CLI-only import

    backend = get_backend(_yoyo_url(url))
    try:
        migrations = read_migrations(str(directory or migrations_dir()))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()


async def claim(conn: asyncpg.Connection, *, consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` handles ``event_id``; False if it already did.

    Call inside the transaction that holds the consumer's side effects.
    """
    status: str = await conn.execute(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        consumer,
        event_id,
    )
    fresh = status.endswith(" 1")
    if not fresh:
        INBOX_DUPLICATES.labels(consumer=consumer).inc()
    return fresh


async def enqueue(conn: asyncpg.Connection, spec: TopicSpec, model: Envelope) -> bool:
    """Write ``model`` to the outbox in the caller's transaction; False if already there."""
    if spec.value_model is None or not isinstance(model, spec.value_model):
        raise TypeError(f"{type(model).__name__} is not the value model of {spec.name}")
    headers = envelope_headers(model) | {"correlation_id": model.correlation_id}
    status: str = await conn.execute(
        """INSERT INTO outbox (topic, key, value, headers, event_id)
           VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (topic, event_id) DO NOTHING""",
        spec.name,
        model.partition_key().encode(),  # type: ignore[attr-defined]
        encode(model),
        json.dumps(headers),
        model.event_id,
    )
    return status.endswith(" 1")


async def enqueue_many(
    conn: asyncpg.Connection, items: Sequence[tuple[TopicSpec, Envelope]]
) -> None:
    """:func:`enqueue` for many messages in one round trip (order kept)."""
    rows = []
    for spec, model in items:
        if spec.value_model is None or not isinstance(model, spec.value_model):
            raise TypeError(f"{type(model).__name__} is not the value model of {spec.name}")
        headers = envelope_headers(model) | {"correlation_id": model.correlation_id}
        rows.append(
            (
                spec.name,
                model.partition_key().encode(),  # type: ignore[attr-defined]
                encode(model),
                json.dumps(headers),
                model.event_id,
            )
        )
    if rows:
        await conn.executemany(
            """INSERT INTO outbox (topic, key, value, headers, event_id)
               VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (topic, event_id) DO NOTHING""",
            rows,
        )


class OutboxRelayError(Exception):
    """Some rows of a relay pass were not acknowledged; they stay pending."""


class OutboxRelay:
    """Publishes outbox rows to Kafka in order; wakes on NOTIFY, else polls."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        bootstrap: str,
        idempotence: bool = False,
        batch: int = 500,
        poll_s: float = 1.0,
        keep_published_s: float = 7 * 24 * 3600,
        request_timeout_ms: int = 5000,
        reconcile_after_s: float = 0.0,
        reconcile_every_s: float = 15.0,
    ) -> None:
        self.request_timeout_ms = request_timeout_ms
        #: Republish rows without their effect this long after publishing (0: never); see
        #: :mod:`ketnoi_shared.reconcile`.
        self.reconcile_after_s = reconcile_after_s
        self.reconcile_every_s = reconcile_every_s
        self._last_reconcile: float = time.monotonic()
        self.pool = pool
        self.bootstrap = bootstrap
        self.idempotence = idempotence
        self.batch = batch
        self.poll_s = poll_s
        self.keep_published_s = keep_published_s
        self._wake = asyncio.Event()
        #: Monotonic start time of the last pass that held the lock and published every
        #: pending row (fewer than a batch): whatever was committed before it is published.
        self.last_clean_pass_started: float = 0.0
        self._last_cleanup: float = 0.0
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()
        if self._producer:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _drop_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.remove_listener(OUTBOX_CHANNEL, self._on_notify)
            with contextlib.suppress(Exception):
                await self.pool.release(self._listener)
            self._listener = None

    async def _close_listener(self) -> None:
        await self._drop_listener()

    async def _ensure_clients(self) -> AIOKafkaProducer:
        if self._listener is None or self._listener.is_closed():
            self._listener = await self.pool.acquire()
            await self._listener.add_listener(OUTBOX_CHANNEL, self._on_notify)
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=self.idempotence,
                client_id="ketnoi-outbox-relay",
                # An unsent batch expires after this, so a failed pass settles quickly.
                request_timeout_ms=self.request_timeout_ms,
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                producer = await self._ensure_clients()
                started = time.monotonic()
                sent = await self.relay_once(producer)
                failures = 0
                if sent is None:  # another process's relay holds the lock: not a clean pass
                    await asyncio.sleep(self.poll_s / 4)
                    continue
                if sent >= self.batch:  # there may be more: not clean either
                    continue
                self.last_clean_pass_started = started
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying whatever fails; back off
                failures += 1
                log.warning("outbox relay pass failed", error=type(exc).__name__)
                await self._drop_listener()
                await asyncio.sleep(min(10.0, 0.2 * 2**failures))

    async def relay_once(self, producer: AIOKafkaProducer) -> int | None:
        """Publish one batch of pending rows; returns how many were published, or None when
        another relay holds the lock (this pass saw nothing)."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return None
            if time.monotonic() - self._last_cleanup > 60:
                # Published rows are kept a while (for reconciliation), then removed; once a
                # minute is enough, and the partial index keeps it cheap.
                await conn.execute(
                    "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
                    self.keep_published_s,
                )
                # An inbox claim is needed only while its event can still be redelivered:
                # past the longest topic retention (plus a margin) it can go.
                await conn.execute(
                    "DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)",
                    INBOX_KEEP_S,
                )
                self._last_cleanup = time.monotonic()
            if (
                self.reconcile_after_s > 0
                and time.monotonic() - self._last_reconcile > self.reconcile_every_s
            ):
                # Under the relay's lock, before the pending rows are read: what it marks
                # again goes out in this very pass.
                await reconcile_once(conn, after_s=self.reconcile_after_s)
                self._last_reconcile = time.monotonic()
            rows: Sequence[asyncpg.Record] = await conn.fetch(
                """SELECT id, topic, key, value, headers FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT $1""",
                self.batch,
            )
            OUTBOX_PENDING.set(len(rows))
            if not rows:
                return 0
            futures = []
            for row in rows:
                headers: dict[str, Any] = json.loads(row["headers"])
                try:
                    futures.append(
                        await producer.send(
                            row["topic"],
                            value=row["value"],
                            key=row["key"],
                            headers=[(k, str(v).encode()) for k, v in headers.items()],
                        )
                    )
                except Exception as exc:  # stop here; what was issued still settles below
                    log.warning("outbox relay send refused", error=type(exc).__name__)
                    break
            # Wait for every send to settle (acked or expired): a row is marked only when the
            # broker acknowledged it, and nothing of this pass is still in flight when the
            # next pass re-sends the rest, so nothing is published twice.
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            done = [
                r["id"]
                for r, o in zip(rows, outcomes, strict=False)
                if not isinstance(o, BaseException)
            ]
            if done:
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", done
                )
        failed = len(rows) - len(done)
        if failed:
            raise OutboxRelayError(f"{failed} of {len(rows)} outbox rows not acknowledged")
        for row in rows:
            OUTBOX_PUBLISHED.labels(topic=row["topic"]).inc()
        return len(rows)
