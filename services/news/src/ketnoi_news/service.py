"""The news consumers' logic: welcome, menu queries and "Tin tức" from ``zalo.events.v1``;
automatic "Công vụ" answers to the procedure questions of ``reports.triaged.v1``.

Each event is handled in one transaction with its inbox claim and its outbox rows, and every
request to the notifier has a deterministic id, so a redelivered event sends nothing twice.

What triage already says is not repeated here: triage greets and acknowledges tips, and gives
no acknowledgement to procedure questions (category ``admin``), which this service answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg
import structlog

from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    Category,
    EventKind,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    TriagedCase,
    ZaloEvent,
)
from ketnoi_shared.db import claim, enqueue
from ketnoi_shared.queries import Query, classify_query, status_reference

from .kb import KnowledgeBase
from .replies import (
    VN as _VN,
)
from .replies import (
    fallback_reply,
    news_digest,
    status_help,
    status_reply,
    status_too_many,
    welcome,
)
from .retrieval import Match, Retriever

__all__ = ["CONSUMER_CASES", "CONSUMER_EVENTS", "NewsService", "Unit"]

log = structlog.get_logger("ketnoi.news")

CONSUMER_EVENTS: Final = "news"
CONSUMER_CASES: Final = "news-answers"
#: Replies to a citizen's action are useless after the interaction window (7 days).
_WINDOW: Final = timedelta(days=7)
#: Answers to a question or a menu query are dropped if they cannot go out within a day.
_ANSWER_TTL: Final = timedelta(days=1)
#: Status checks per citizen and day: enough for honest use, too few to enumerate codes.
STATUS_LOOKUPS_PER_DAY: Final = 10

_UNIT_CHAIN: Final = """
    WITH RECURSIVE chain AS (
        SELECT id, kind, code, name, parent_id, 0 AS depth FROM (
            SELECT * FROM units WHERE $1 = ANY (oa_ids)
            ORDER BY (kind = 'commune') DESC, id LIMIT 1) first
        UNION ALL
        SELECT u.id, u.kind, u.code, u.name, u.parent_id, c.depth + 1
        FROM units u JOIN chain c ON u.id = c.parent_id WHERE c.depth < 8
    )
    SELECT * FROM chain ORDER BY depth"""


@dataclass(frozen=True, slots=True)
class Unit:
    """The police unit behind an OA, and the province it belongs to."""

    name: str
    province_code: str | None
    province_name: str | None


@dataclass(frozen=True, slots=True)
class _Item:
    title: str
    url: str
    published_at: datetime | None


def _recipient(event: ZaloEvent) -> NotifyRecipient | None:
    citizen = event.citizen
    if citizen is None or citizen.sealed_user_id is None:
        return None
    return NotifyRecipient(
        pseudonym=citizen.pseudonym,
        sealed_user_id=citizen.sealed_user_id,
        anonymous=citizen.anonymous,
        sealed_conversation_id=citizen.sealed_conversation_id,
    )


class NewsService:
    def __init__(self, *, kb: KnowledgeBase, retriever: Retriever, items_per_reply: int = 5):
        self.kb = kb
        self.retriever = retriever
        self.items_per_reply = items_per_reply

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    async def unit_of(conn: asyncpg.Connection, oa_id: str) -> Unit:
        rows = await conn.fetch(_UNIT_CHAIN, oa_id)
        if not rows:
            return Unit(name="Công an", province_code=None, province_name=None)
        province = next((r for r in rows if r["kind"] == "province"), None)
        return Unit(
            name=rows[0]["name"],
            province_code=province["code"] if province else None,
            province_name=province["name"] if province else None,
        )

    async def latest_items(
        self, conn: asyncpg.Connection, province_code: str | None, limit: int | None = None
    ) -> list[_Item]:
        """The latest items of the province and of national sources."""
        rows = await conn.fetch(
            """SELECT title, url, published_at FROM news_items
               WHERE $1::text IS NULL OR province_code IS NULL OR province_code = $1
               ORDER BY coalesce(published_at, fetched_at) DESC, item_id LIMIT $2""",
            province_code,
            limit or self.items_per_reply,
        )
        return [_Item(r["title"], r["url"], r["published_at"]) for r in rows]

    # -- zalo.events.v1 --------------------------------------------------------------------
    @staticmethod
    def wants(event: ZaloEvent) -> bool:
        """Whether ``event`` concerns this service at all (most events do not: no claim)."""
        if event.citizen is None:
            return False
        if event.kind in (EventKind.FOLLOW, EventKind.UNFOLLOW, EventKind.CHAT_NOW):
            return True
        return (
            event.kind is EventKind.MESSAGE
            and event.message is not None
            and classify_query(event.message.text) is not None
        )

    async def handle_event(  # noqa: PLR0911 - one outcome per kind of event
        self, conn: asyncpg.Connection, event: ZaloEvent
    ) -> str:
        """Apply one event; returns what happened (for logs and tests)."""
        if not self.wants(event):
            return "ignored"
        async with conn.transaction():
            if not await claim(conn, consumer=CONSUMER_EVENTS, event_id=event.event_id):
                return "duplicate"
            assert event.citizen is not None
            if event.kind is EventKind.UNFOLLOW:
                await self._unfollow(conn, event)
                return "unfollowed"
            recipient = _recipient(event)
            if recipient is None:
                return "ignored"
            if event.kind is EventKind.FOLLOW:
                return await self._welcome(conn, event, recipient, await self._follow(conn, event))
            if event.kind is EventKind.CHAT_NOW:
                return await self._welcome(conn, event, recipient, await self._chat(conn, event))
            assert event.message is not None
            query = classify_query(event.message.text)
            assert query is not None
            return await self._menu(conn, event, recipient, query)

    async def _follow(self, conn: asyncpg.Connection, event: ZaloEvent) -> int:
        assert event.citizen is not None
        epoch: int = await conn.fetchval(
            """INSERT INTO news_follows (oa_id, citizen_pseudonym, epoch, following,
                                         ever_followed, changed_at)
               VALUES ($1, $2, 1, true, true, $3)
               ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE SET
                 epoch = CASE WHEN NOT news_follows.following AND news_follows.ever_followed
                              THEN news_follows.epoch + 1 ELSE news_follows.epoch END,
                 following = true, ever_followed = true,
                 changed_at = GREATEST(news_follows.changed_at, EXCLUDED.changed_at)
               RETURNING epoch""",
            event.oa_id,
            event.citizen.pseudonym,
            event.occurred_at,
        )
        return epoch

    async def _unfollow(self, conn: asyncpg.Connection, event: ZaloEvent) -> None:
        assert event.citizen is not None
        await conn.execute(
            """INSERT INTO news_follows (oa_id, citizen_pseudonym, epoch, following,
                                         ever_followed, changed_at)
               VALUES ($1, $2, 1, false, true, $3)
               ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE SET following = false,
                 changed_at = GREATEST(news_follows.changed_at, EXCLUDED.changed_at)""",
            event.oa_id,
            event.citizen.pseudonym,
            event.occurred_at,
        )

    async def _chat(self, conn: asyncpg.Connection, event: ZaloEvent) -> int:
        """A first chat opens an epoch for a citizen not known yet; a follower's first chat
        belongs to the follow's epoch (welcomed already)."""
        assert event.citizen is not None
        await conn.execute(
            """INSERT INTO news_follows (oa_id, citizen_pseudonym, epoch, following,
                                         ever_followed, changed_at)
               VALUES ($1, $2, 1, false, false, $3) ON CONFLICT DO NOTHING""",
            event.oa_id,
            event.citizen.pseudonym,
            event.occurred_at,
        )
        epoch: int = await conn.fetchval(
            "SELECT epoch FROM news_follows WHERE oa_id = $1 AND citizen_pseudonym = $2",
            event.oa_id,
            event.citizen.pseudonym,
        )
        return epoch

    async def _welcome(
        self, conn: asyncpg.Connection, event: ZaloEvent, recipient: NotifyRecipient, epoch: int
    ) -> str:
        first = await conn.fetchval(
            """INSERT INTO welcome_sent (oa_id, citizen_pseudonym, follow_epoch, trigger)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
            event.oa_id,
            recipient.pseudonym,
            epoch,
            event.kind.value,
        )
        if not first:
            return "already_welcomed"
        unit = await self.unit_of(conn, event.oa_id)
        await enqueue(
            conn,
            NOTIFY_REQUESTS,
            NotifyRequest(
                event_id=f"welcome:{event.oa_id}:{recipient.pseudonym}:{epoch}",
                occurred_at=event.occurred_at,
                correlation_id=event.correlation_id,
                oa_id=event.oa_id,
                recipient=recipient,
                kind=NotifyKind.WELCOME,
                text=welcome(unit_name=unit.name),
                not_after=event.occurred_at + _WINDOW,
            ),
        )
        return "welcomed"

    async def _menu(
        self, conn: asyncpg.Connection, event: ZaloEvent, recipient: NotifyRecipient, query: Query
    ) -> str:
        unit = await self.unit_of(conn, event.oa_id)
        kind = NotifyKind.ANSWER
        if query is Query.NEWS:
            kind = NotifyKind.NEWS
            text = news_digest(
                await self.latest_items(conn, unit.province_code), unit_name=unit.name
            )
        elif query is Query.PROCEDURES:
            text = self.kb.index_text()
        elif query is Query.STATUS:
            text = await self._status(conn, event)
        elif query is Query.HOW_TO_REPORT:
            text = self.kb.by_id["phan_anh"].render()
        else:
            text = self.kb.by_id["lien_he"].render(unit_name=unit.name)
        await enqueue(
            conn,
            NOTIFY_REQUESTS,
            NotifyRequest(
                event_id=f"menu:{event.event_id}",
                occurred_at=event.occurred_at,
                correlation_id=event.correlation_id,
                oa_id=event.oa_id,
                recipient=recipient,
                kind=kind,
                text=text,
                not_after=event.occurred_at + _ANSWER_TTL,
            ),
        )
        return f"menu:{query.value}"

    async def _status(self, conn: asyncpg.Connection, event: ZaloEvent) -> str:
        """The public status check: the coarse state of a tip, nothing else."""
        assert event.citizen is not None
        assert event.message is not None
        reference = status_reference(event.message.text)
        day = event.occurred_at.astimezone(_VN).date()
        lookups = await conn.fetchval(
            """INSERT INTO status_lookups (citizen_pseudonym, day, lookups) VALUES ($1, $2, 1)
               ON CONFLICT (citizen_pseudonym, day)
               DO UPDATE SET lookups = status_lookups.lookups + 1 RETURNING lookups""",
            event.citizen.pseudonym,
            day,
        )
        if reference is None:
            return status_help()
        if lookups > STATUS_LOOKUPS_PER_DAY:
            return status_too_many()
        status = await conn.fetchval(
            "SELECT status FROM case_status WHERE reference = $1", reference
        )
        return status_reply(reference, status)

    @staticmethod
    async def _project_status(conn: asyncpg.Connection, case: TriagedCase) -> None:
        await conn.execute(
            """INSERT INTO case_status (reference, case_id, status, version, updated_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (reference) DO UPDATE SET status = EXCLUDED.status,
                   version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
               WHERE case_status.version < EXCLUDED.version""",
            case.reference,
            case.case_id,
            case.status.value,
            case.version,
            case.occurred_at,
        )

    # -- reports.triaged.v1 ----------------------------------------------------------------
    @staticmethod
    def is_question(case: TriagedCase) -> bool:
        return (
            case.category is Category.ADMIN
            and bool(case.question)
            and case.reply_to is not None
            # A menu query is answered from zalo.events.v1, not twice.
            and classify_query(case.question) is None
        )

    def answer(self, question: str) -> tuple[Match, str]:
        """The knowledge base's answer to ``question`` (the fallback text when unsure)."""
        match = self.retriever.search(question)
        if match.confident and match.best is not None:
            return match, self.kb.by_id[match.best.entry_id].render()
        return match, fallback_reply()

    async def handle_case(self, conn: asyncpg.Connection, case: TriagedCase) -> str:
        await self._project_status(conn, case)
        if not self.is_question(case):
            return "ignored"
        assert case.question is not None
        assert case.reply_to is not None
        async with conn.transaction():
            if not await claim(conn, consumer=CONSUMER_CASES, event_id=case.event_id):
                return "duplicate"
            match, text = self.answer(case.question)
            # One answer per question message, whatever versions of the case carry it.
            request_id = (
                f"answer:{case.case_id}:{case.question_msg_id}"
                if case.question_msg_id
                else f"answer:{case.event_id}"
            )
            fresh = await enqueue(
                conn,
                NOTIFY_REQUESTS,
                NotifyRequest(
                    event_id=request_id,
                    occurred_at=case.last_message_at,
                    correlation_id=case.correlation_id,
                    oa_id=case.oa_id,
                    recipient=case.reply_to,
                    kind=NotifyKind.ANSWER,
                    text=text,
                    quote_message_id=case.question_msg_id,
                    case_id=case.case_id,
                    reference=case.reference,
                    not_after=case.last_message_at + _WINDOW,
                ),
            )
            if not fresh:
                return "already_answered"
            if match.confident:
                log.info("procedure question answered", entry=match.best and match.best.entry_id)
                return "answered"
            await conn.execute(
                """INSERT INTO procedure_candidates (case_id, case_version, question, candidates)
                   VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING""",
                case.case_id,
                case.version,
                case.question,
                json.dumps(
                    [
                        {"entry_id": c.entry_id, "title": c.title, "score": c.score}
                        for c in match.candidates
                    ],
                    ensure_ascii=False,
                ),
            )
            log.info("procedure question handed to officers", candidates=len(match.candidates))
            return "handed_over"
