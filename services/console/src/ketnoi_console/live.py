"""Live updates: one LISTEN connection per console process fans case changes out to the
officers' browsers (server-sent events). Which browser hears about which case is decided by
PostgreSQL: each subscriber looks the case up through its own scoped transaction, so a case
of another unit is never announced."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog

from .access import scoped

__all__ = ["CaseFeed"]

log = structlog.get_logger("ketnoi.console.live")

CHANNEL = "ketnoi_cases"


class CaseFeed:
    def __init__(self, dsn: str, pool: asyncpg.Pool) -> None:
        self.dsn = dsn
        self.pool = pool
        self.subscribers: set[asyncio.Queue[str]] = set()
        self.conn: asyncpg.Connection | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Keep one listening connection, reconnecting after a database restart."""
        while True:
            try:
                self.conn = await asyncpg.connect(self.dsn)
                await self.conn.add_listener(CHANNEL, self._on_notify)
                closed = asyncio.Event()
                self.conn.add_termination_listener(lambda _c, done=closed: done.set())
                await closed.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("case feed disconnected", error=type(exc).__name__)
            await asyncio.sleep(1.0)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for queue in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(payload)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.conn is not None and not self.conn.is_closed():
            await self.conn.close()

    async def events(self, units: tuple[str, ...]) -> AsyncIterator[dict[str, str]]:
        """Case changes visible to ``units``, as SSE events (``case`` with the case id, and a
        distinct ``emergency`` event for an open emergency)."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        self.subscribers.add(queue)
        try:
            while True:
                first = await queue.get()
                ids = {first}
                await asyncio.sleep(0.2)  # coalesce a burst of changes into one refresh
                while not queue.empty():
                    ids.add(queue.get_nowait())
                async with scoped(self.pool, units) as conn:
                    rows = await conn.fetch(
                        """SELECT id::text, urgency, status, reference FROM cases
                           WHERE id::text = ANY($1::text[])""",
                        list(ids),
                    )
                for r in rows:
                    yield {"event": "case", "data": r["id"]}
                    if r["urgency"] == "emergency" and r["status"] in ("new", "acknowledged"):
                        yield {"event": "emergency", "data": r["reference"]}
        finally:
            self.subscribers.discard(queue)
