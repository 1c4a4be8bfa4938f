"""Zalo's rate limit (4,000 requests a minute per app, ../shared/zalo/README.md §3.1) kept by
every notifier replica together: one counter row per app and minute in PostgreSQL. A call
over the budget waits for the next minute instead of earning a -32."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

__all__ = ["SharedRateLimiter"]


@dataclass
class SharedRateLimiter:
    pool: asyncpg.Pool
    app_id: str
    per_minute: int = 4000

    async def acquire(self) -> None:
        while True:
            now = datetime.now(UTC)
            minute = now.replace(second=0, microsecond=0)
            calls = await self.pool.fetchval(
                """INSERT INTO zalo_rate (app_id, minute, calls) VALUES ($1, $2, 1)
                   ON CONFLICT (app_id, minute) DO UPDATE SET calls = zalo_rate.calls + 1
                   RETURNING calls""",
                self.app_id,
                minute,
            )
            if calls <= self.per_minute:
                return
            await asyncio.sleep((minute + timedelta(minutes=1) - now).total_seconds() + 0.01)
