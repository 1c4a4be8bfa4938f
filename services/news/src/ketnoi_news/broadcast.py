"""Alerts to followers: a news item or an officer's written warning becomes a Zalo article,
broadcast to the followers of the chosen OAs within what the OA API allows
(../shared/zalo/README.md §5):

* **verified OAs only** — an OA not configured as verified is refused before any call (and
  Zalo's own -221 is treated the same way);
* **no broadcast 22:00–06:00** (Vietnam time; Zalo answers -234): the target waits until
  06:00, nothing is lost;
* **per-follower caps**: at most ``monthly_cap`` broadcasts a month (the OA's package) and one
  a day per follower. A broadcast reaches every follower of the OA, so a second one the same
  day waits for the next morning, and an OA whose known followers have all reached the month's
  cap is refused; the counts are kept per follower (``broadcast_counts``);
* **article verification**: ``article/create`` gives a token; ``article/verify`` gives the
  article id once Zalo has processed it (-214 meanwhile): only then is it broadcast.

Targets are processed by :meth:`Broadcaster.run_due` (every few seconds in the service, or
once from the CLI), one runner at a time (advisory lock), each step committed as it happens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

import asyncpg
import structlog

__all__ = [
    "ArticleApi",
    "ArticleProcessingError",
    "BroadcastRefusedError",
    "Broadcaster",
    "NightBanError",
    "RetryLaterError",
    "is_night",
    "next_morning",
]

log = structlog.get_logger("ketnoi.news")

VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_LOCK: Final = 0x6E657773  # "news": one broadcast runner per database
_RETRY: Final = timedelta(seconds=20)
_MAX_ATTEMPTS: Final = 30
#: Zalo requires a cover photo on every article; deployments configure their own.
DEFAULT_COVER: Final = "https://congan.example.gov.vn/static/canh-bao.jpg"


class ArticleProcessingError(Exception):
    """-214: Zalo is still processing the article; verify again later."""


class NightBanError(Exception):
    """-234: broadcasts are not sent 22:00–06:00."""


class BroadcastRefusedError(Exception):
    """Zalo refuses for good (-221 OA not verified, invalid article...)."""


class RetryLaterError(Exception):
    """Transport trouble, rate limit, 5xx: try again later."""


class ArticleApi(Protocol):
    async def create_article(self, oa_id: str, article: dict[str, Any]) -> str: ...
    async def verify_article(self, oa_id: str, token: str) -> str: ...
    async def broadcast(self, oa_id: str, article_id: str, target: dict[str, str]) -> str: ...


def is_night(now: datetime) -> bool:
    hour = now.astimezone(VN).hour
    return hour >= 22 or hour < 6


def next_morning(now: datetime) -> datetime:
    """06:00 Vietnam time after ``now`` (today's if it is still before 06:00)."""
    local = now.astimezone(VN)
    day = local.date() if local.hour < 6 else local.date() + timedelta(days=1)
    return datetime.combine(day, time(6, 0), VN).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Outcome:
    oa_id: str
    status: str
    reason: str | None = None
    not_before: datetime | None = None


class Broadcaster:
    def __init__(
        self,
        pool: asyncpg.Pool,
        api: ArticleApi,
        *,
        verified_oas: Collection[str] | None,
        monthly_cap: int = 4,
        target: dict[str, str] | None = None,
        cover_url: str = DEFAULT_COVER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``verified_oas`` None means every OA is verified (the sandbox demo)."""
        self.pool = pool
        self.api = api
        self.verified_oas = verified_oas
        self.monthly_cap = monthly_cap
        self.target = target or {"gender": "0"}
        self.cover_url = cover_url
        self.clock = clock

    async def create(
        self,
        *,
        title: str,
        body: str,
        oa_ids: Sequence[str],
        requested_by: str,
        author: str = "Công an",
        description: str | None = None,
        cover_url: str | None = None,
        item_id: str | None = None,
    ) -> uuid.UUID:
        """Record a broadcast and its targets; :meth:`run_due` sends it."""
        if not oa_ids:
            raise ValueError("choose at least one OA")
        if len(title) > 150:
            raise ValueError("an article title has at most 150 characters")
        broadcast_id = uuid.uuid4()
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO broadcasts (id, title, author, description, body, cover_url,
                                           item_id, requested_by, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                broadcast_id,
                title,
                author[:50],
                (description or body)[:300],
                body,
                cover_url or self.cover_url,
                item_id,
                requested_by,
                now,
            )
            await conn.executemany(
                """INSERT INTO broadcast_targets (broadcast_id, oa_id, not_before, updated_at)
                   VALUES ($1, $2, $3, $3)""",
                [(broadcast_id, oa, now) for oa in dict.fromkeys(oa_ids)],
            )
        return broadcast_id

    async def create_from_item(
        self, *, item_id: str, oa_ids: Sequence[str], requested_by: str, note: str = ""
    ) -> uuid.UUID:
        """A broadcast of a stored news item: its title, summary and link."""
        row = await self.pool.fetchrow("SELECT * FROM news_items WHERE item_id = $1", item_id)
        if row is None:
            raise ValueError(f"no news item {item_id}")
        body = "\n\n".join(p for p in (note, row["summary"], f"Chi tiết: {row['url']}") if p)
        return await self.create(
            title=row["title"][:150],
            body=body,
            description=row["summary"] or row["title"],
            oa_ids=oa_ids,
            requested_by=requested_by,
            item_id=item_id,
        )

    # -- sending ---------------------------------------------------------------------------
    async def run_due(self) -> list[Outcome]:
        """Process every target whose time has come; returns what happened to each."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
                return []
            try:
                rows = await conn.fetch(
                    """SELECT t.*, b.title, b.author, b.description, b.body, b.cover_url
                       FROM broadcast_targets t JOIN broadcasts b ON b.id = t.broadcast_id
                       WHERE t.status = 'pending' AND t.not_before <= $1
                       ORDER BY t.not_before, b.created_at""",
                    self.clock(),
                )
                return [await self._one(conn, row) for row in rows]
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK)

    async def _set(
        self, conn: asyncpg.Connection, row: asyncpg.Record, status: str, **values: Any
    ) -> Outcome:
        values = {"status": status, "updated_at": self.clock(), **values}
        columns = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=3))
        await conn.execute(
            f"UPDATE broadcast_targets SET {columns} "  # noqa: S608 - column names are ours
            "WHERE broadcast_id = $1 AND oa_id = $2",
            row["broadcast_id"],
            row["oa_id"],
            *values.values(),
        )
        outcome = Outcome(row["oa_id"], status, values.get("reason"), values.get("not_before"))
        log.info("broadcast target", oa_id=row["oa_id"], status=status, reason=outcome.reason)
        return outcome

    async def _wait(
        self, conn: asyncpg.Connection, row: asyncpg.Record, until: datetime, reason: str
    ) -> Outcome:
        return await self._set(conn, row, "pending", not_before=until, reason=reason)

    async def _one(  # noqa: PLR0911 - one return per rule, in the order they apply
        self, conn: asyncpg.Connection, row: asyncpg.Record
    ) -> Outcome:
        now = self.clock()
        oa = row["oa_id"]
        if self.verified_oas is not None and oa not in self.verified_oas:
            return await self._set(conn, row, "refused", reason="oa_not_verified")
        if is_night(now):
            return await self._wait(conn, row, next_morning(now), "night")
        today = now.astimezone(VN).date()
        sent_today = await conn.fetchval(
            """SELECT count(*) FROM broadcast_targets WHERE oa_id = $1 AND status = 'sent'
                 AND (updated_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date = $2""",
            oa,
            today,
        )
        if sent_today:
            return await self._wait(conn, row, next_morning(now), "daily_cap")
        month = today.replace(day=1)
        followers = await conn.fetch(
            """SELECT f.citizen_pseudonym, coalesce(c.count, 0) AS count, c.last_on
               FROM followers f LEFT JOIN broadcast_counts c
                 ON c.oa_id = f.oa_id AND c.citizen_pseudonym = f.citizen_pseudonym
                AND c.month = $2
               WHERE f.oa_id = $1 AND f.following""",
            oa,
            month,
        )
        eligible = [
            f["citizen_pseudonym"]
            for f in followers
            if f["count"] < self.monthly_cap and (f["last_on"] is None or f["last_on"] < today)
        ]
        if followers and not eligible:
            return await self._set(conn, row, "refused", reason="monthly_cap")
        attempts = row["attempts"] + 1
        if attempts > _MAX_ATTEMPTS:
            return await self._set(conn, row, "failed", reason="too_many_attempts")
        try:
            token = row["article_token"]
            if token is None:
                token = await self.api.create_article(oa, self._article(row))
                await self._set(conn, row, "pending", article_token=token, attempts=attempts)
            article_id = row["article_id"]
            if article_id is None:
                article_id = await self.api.verify_article(oa, token)
                await self._set(conn, row, "pending", article_id=article_id, attempts=attempts)
            message_id = await self.api.broadcast(oa, article_id, self.target)
        except ArticleProcessingError:
            return await self._set(
                conn, row, "pending", not_before=now + _RETRY, attempts=attempts, reason="verify"
            )
        except NightBanError:
            return await self._wait(conn, row, next_morning(now), "night")
        except RetryLaterError as exc:
            return await self._set(
                conn,
                row,
                "pending",
                not_before=now + _RETRY * attempts,
                attempts=attempts,
                reason=f"retry: {exc}"[:200],
            )
        except BroadcastRefusedError as exc:
            return await self._set(conn, row, "refused", reason=str(exc)[:200])
        async with conn.transaction():
            outcome = await self._set(
                conn,
                row,
                "sent",
                zalo_message_id=message_id,
                recipients=len(eligible),
                attempts=attempts,
                reason=None,
            )
            await conn.executemany(
                """INSERT INTO broadcast_counts (oa_id, citizen_pseudonym, month, count, last_on)
                   VALUES ($1, $2, $3, 1, $4)
                   ON CONFLICT (oa_id, citizen_pseudonym, month) DO UPDATE
                   SET count = broadcast_counts.count + 1, last_on = EXCLUDED.last_on""",
                [(oa, p, month, today) for p in eligible],
            )
        return outcome

    @staticmethod
    def _article(row: asyncpg.Record) -> dict[str, Any]:
        """The ``article/create`` body (README §5.1; limits: title 150, author 50,
        description 300)."""
        body: list[dict[str, Any]] = [
            {"type": "text", "content": part} for part in row["body"].split("\n\n") if part
        ]
        article: dict[str, Any] = {
            "type": "normal",
            "title": row["title"][:150],
            "author": row["author"][:50],
            "description": row["description"][:300],
            "body": body,
            "status": "show",
            "comment": "hide",
        }
        if row["cover_url"]:
            article["cover"] = {
                "cover_type": "photo",
                "photo_url": row["cover_url"],
                "status": "show",
            }
        return article
