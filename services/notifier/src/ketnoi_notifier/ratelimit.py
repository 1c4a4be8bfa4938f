"""Zalo's rate limit (4,000 requests a minute per app, ../shared/zalo/README.md §3.1) kept by
every notifier replica together: one counter row per app and minute in PostgreSQL. A call
over the budget waits for the next minute instead of earning a -32.

Zalo's own count wins over ours: every successful answer of the OA API carries
``X-RateLimit-Remain``, which also counts what other users of the same app spent (another
tool, a replica whose counter row was lost, a budget set higher than Zalo's). The limiter
never holds more permits than Zalo says remain, and its next trip to the shared counter raises
the counter so that no more than that remains for anyone: a budget that Zalo says is spent
stops every replica until the next minute."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

__all__ = ["SharedRateLimiter"]

#: Take ``chunk`` permits, after raising the minute's counter to ``$3`` (the budget less what
#: Zalo says remains).
_TAKE = """
INSERT INTO zalo_rate (app_id, minute, calls) VALUES ($1, $2, $3::int + $4::int)
ON CONFLICT (app_id, minute) DO UPDATE SET calls = GREATEST(zalo_rate.calls, $3::int) + $4::int
RETURNING calls
"""


def _this_minute() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now, now.replace(second=0, microsecond=0)


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
    #: What Zalo says remains of ``_zalo_minute``: the lowest X-RateLimit-Remain seen, less
    #: the permits this replica spent since (their calls were not counted in it yet).
    _zalo_minute: datetime | None = field(default=None, init=False, repr=False)
    _zalo_remain: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.chunk is None:
            self.chunk = max(1, self.per_minute // 200)

    def observe(self, remain: int) -> None:
        """Zalo's ``X-RateLimit-Remain`` on an answer: hold no more permits than remain, and
        leave no more than that to anyone on the next trip to the shared counter."""
        _, minute = _this_minute()
        remain = max(0, remain)
        if self._zalo_minute != minute:
            self._zalo_minute, self._zalo_remain = minute, remain
        else:
            self._zalo_remain = min(self._zalo_remain, remain)
        if self._minute == minute:
            self._left = min(self._left, remain)

    async def acquire(self) -> None:
        assert self.chunk is not None
        while True:
            now, minute = _this_minute()
            if self._minute == minute and self._left > 0:
                self._spend(minute)
                return
            calls = await self.pool.fetchval(
                _TAKE,
                self.app_id,
                minute,
                max(0, self.per_minute - self._zalo_remain) if self._zalo_minute == minute else 0,
                self.chunk,
            )
            granted = min(self.chunk, self.per_minute - (calls - self.chunk))
            if granted > 0:
                self._minute, self._left = minute, granted
                self._spend(minute)
                return
            await asyncio.sleep((minute + timedelta(minutes=1) - now).total_seconds() + 0.01)

    def _spend(self, minute: datetime) -> None:
        self._left -= 1
        if self._zalo_minute == minute:
            self._zalo_remain = max(0, self._zalo_remain - 1)
