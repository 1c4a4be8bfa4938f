"""Zalo's rate limit (4,000 requests a minute per app, ../shared/zalo/README.md §3.1) kept by
every notifier replica together: one counter row per app and minute in PostgreSQL. A call
over the budget waits for the next minute instead of earning a -32."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

__all__ = ["SharedRateLimiter"]


@dataclass
class SharedRateLimiter:
    """Permits are taken from the shared counter ``chunk`` at a time and spent locally, so a
    send costs a database round trip only once per chunk (the counter row is also the one
    row every replica updates). A replica leaves at most ``chunk - 1`` permits of a minute
    unused; by default a chunk is 1/200 of the budget (20 for Zalo's 4,000)."""

    pool: asyncpg.Pool
    app_id: str
    per_minute: int = 4000
    chunk: int | None = None
    _minute: datetime | None = field(default=None, init=False, repr=False)
    _left: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.chunk is None:
            self.chunk = max(1, self.per_minute // 200)

    async def acquire(self) -> None:
        assert self.chunk is not None
        while True:
            now = datetime.now(UTC)
            minute = now.replace(second=0, microsecond=0)
            if self._minute == minute and self._left > 0:
                self._left -= 1
                return
            calls = await self.pool.fetchval(
                """INSERT INTO zalo_rate (app_id, minute, calls) VALUES ($1, $2, $3)
                   ON CONFLICT (app_id, minute) DO UPDATE SET calls = zalo_rate.calls + $3
                   RETURNING calls""",
                self.app_id,
                minute,
                self.chunk,
            )
            granted = min(self.chunk, self.per_minute - (calls - self.chunk))
            if granted > 0:
                self._minute, self._left = minute, granted - 1
                return
            await asyncio.sleep((minute + timedelta(minutes=1) - now).total_seconds() + 0.01)
