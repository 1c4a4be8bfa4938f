"""Group concurrent webhooks into one PostgreSQL transaction and one Kafka round trip.

Each webhook must be deduplicated against every earlier delivery (shared by all replicas,
surviving restarts) and be durable before its 200. Doing that per request costs four database
round trips and one broker round trip each; under load, webhooks that arrive together are
handled together instead:

1. one ``INSERT … SELECT unnest($1) ON CONFLICT DO NOTHING RETURNING`` claims the new event
   ids (a retry or a duplicate delivered concurrently finds the row, or waits for the
   transaction holding it, and is answered "duplicate");
2. the fresh events are sent to Kafka together and their acks=all awaited;
3. the claim also writes every fresh event to the outbox (same statement), marked published:
   the journal from which the reconciler publishes an event again if a broker loses it before
   triage has it (``ketnoi_shared.reconcile``); the events the broker did not acknowledge are
   marked pending instead, in the same transaction — the spool, drained by the relay;
4. commit — only then are the requests answered.

A crash before the commit leaves no claim behind, so Zalo's retry is processed; a commit that
fails after a publish only risks a duplicate on the topic, which the consumers' inboxes absorb.

Claims commit with ``synchronous_commit`` off (set for the transaction in the claim
statement itself): a batch whose events were all acknowledged by the broker need not wait for
the WAL flush (losing the journal of an acknowledged event takes a PostgreSQL crash within a
fraction of a second *and* a broker losing the same event). A batch that spools restores the
server's setting for its own transaction (``SET LOCAL … TO DEFAULT``), so spooled events are
flushed before their 200. A batch costs three round trips: ``BEGIN``, the claim with the
journal, ``COMMIT``; its connection comes from the pool, which no longer resets connections
on release (``ketnoi_shared.db.create_pool``), so that costs nothing more. A batch that takes
longer than ``timeout_s`` (a database that stopped answering) fails, and its webhooks get a
503 that Zalo retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import structlog

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.db import OUTBOX_CHANNEL
from ketnoi_shared.failpoints import failpoint
from ketnoi_shared.messaging import Encoded, encode_for

from .metrics import BATCH_SIZE, DUPLICATES, accepted

#: Claim the event ids and journal the claimed events in the outbox, in arrival order, in
#: one statement; marked published, which the batch undoes for those it has to spool.
_CLAIM_AND_JOURNAL = """
WITH claimed AS (
    INSERT INTO ingest_dedup (event_id) SELECT unnest($1::text[])
    ON CONFLICT DO NOTHING RETURNING event_id),
async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
journalled AS (
    INSERT INTO outbox (topic, key, value, headers, event_id, published_at)
    SELECT $2, m.k, m.v, m.h::jsonb, m.e, now()
    FROM unnest($3::bytea[], $4::bytea[], $5::text[], $1::text[]) WITH ORDINALITY
         AS m(k, v, h, e, n)
    JOIN claimed c ON c.event_id = m.e
    ORDER BY m.n
    ON CONFLICT (topic, event_id) DO NOTHING)
SELECT c.event_id FROM claimed c CROSS JOIN async_commit
"""
#: The events the broker did not acknowledge: pending for the relay (spooled), with the
#: bytes that say so.
_SPOOL = """
UPDATE outbox o SET published_at = NULL, value = m.v
FROM unnest($2::text[], $3::bytea[]) AS m(e, v)
WHERE o.topic = $1 AND o.event_id = m.e
"""

__all__ = ["DurableBatcher"]

log = structlog.get_logger("ketnoi.ingest")

_Item = tuple[ZaloEvent, "asyncio.Future[str]"]


@dataclass
class DurableBatcher:
    pool: asyncpg.Pool
    #: Sends a batch; returns, per event, True when the broker acknowledged it.
    publish: Callable[[list[Encoded]], Awaitable[list[bool]]]
    spooling: Callable[[], bool]
    on_spooled: Callable[[], None]
    workers: int = 4
    max_batch: int = 256
    #: A batch that takes longer than this (a database that stopped answering) fails: its
    #: webhooks get a 503 and Zalo retries them.
    timeout_s: float = 1.5
    _queue: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"ingest-batcher-{i}")
            for i in range(self.workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(ConnectionError("ingest is stopping"))

    async def submit(self, event: ZaloEvent) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, future))
        return await future

    async def _worker(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self.pool.acquire(timeout=1.0) as conn:
                    outcomes = await asyncio.wait_for(
                        self._process(conn, [e for e, _ in batch]), self.timeout_s
                    )
            except Exception as exc:  # answer every waiter; the HTTP layer maps it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._answer(batch, outcomes)

    @staticmethod
    def _answer(batch: list[_Item], outcomes: list[str]) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
            if outcome == "duplicate":
                DUPLICATES.inc()
            else:
                accepted("kafka" if outcome == "accepted" else "spool").inc()

    async def _process(self, conn: asyncpg.Connection, events: list[ZaloEvent]) -> list[str]:
        BATCH_SIZE.observe(len(events))
        first: dict[str, int] = {}
        for i, e in enumerate(events):
            first.setdefault(e.event_id, i)
        outcome: dict[str, str] = {}
        unique = [events[i] for i in first.values()]
        encoded = {e.event_id: encode_for(ZALO_EVENTS, e) for e in unique}
        async with conn.transaction():
            rows = await conn.fetch(
                _CLAIM_AND_JOURNAL,
                list(encoded),
                ZALO_EVENTS.name,
                [m.key for m in encoded.values()],
                [m.value for m in encoded.values()],
                [json.dumps(m.headers) for m in encoded.values()],
            )
            fresh = [events[first[r[0]]] for r in rows]
            acked = [False] * len(fresh)
            if fresh and not self.spooling():
                acked = await self.publish([encoded[e.event_id] for e in fresh])
                await failpoint("ingest.after_publish")
            to_spool = [e for e, ok in zip(fresh, acked, strict=True) if not ok]
            if to_spool:
                self.on_spooled()
                # Spooled events must survive a crash once answered: a synchronous commit
                # (the server's setting) for this transaction.
                await conn.execute("SET LOCAL synchronous_commit TO DEFAULT")
                spooled = [
                    encode_for(ZALO_EVENTS, e.model_copy(update={"source": "spool"}))
                    for e in to_spool
                ]
                await conn.execute(
                    _SPOOL,
                    ZALO_EVENTS.name,
                    [m.event_id for m in spooled],
                    [m.value for m in spooled],
                )
                await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)  # at commit
            for e, ok in zip(fresh, acked, strict=True):
                outcome[e.event_id] = "accepted" if ok else "spooled"
        await failpoint("ingest.after_commit")
        if to_spool:
            self.on_spooled()  # after the commit: the relay can now see the rows
        if len(outcome) == len(events):  # the usual case: no duplicates
            return [outcome[e.event_id] for e in events]
        results = []
        for i, e in enumerate(events):
            primary = first[e.event_id] == i
            results.append(outcome.get(e.event_id, "duplicate") if primary else "duplicate")
        return results
