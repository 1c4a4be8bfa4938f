"""The triage consumer: ``zalo.events.v1`` in; cases, messages and decisions in PostgreSQL;
``reports.triaged.v1`` and ``notify.requests.v1`` out through the outbox.

One event is handled in one transaction, together with its inbox claim and its outbox rows,
so a redelivered event changes nothing and nothing is published that was not stored.

Grouping: messages from one citizen (pseudonym) to one OA join the open case whose messages
are within the quiet gap (default 30 min) of this one — earlier or later, so late and
out-of-order deliveries land in the right case — unless the case was closed. Every message
re-triages the whole case; an operator's decision always wins over the automatic one.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    REPORTS_TRIAGED,
    CaseLocation,
    CaseStatus,
    Category,
    EventKind,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    TriagedCase,
    Urgency,
    ZaloEvent,
)
from ketnoi_shared.db import claim, enqueue

from .classify.taxonomy import TIP_CATEGORIES
from .directory import Directory
from .engine import Triage, TriageResult
from .replies import acknowledgement, greeting_reply
from .routing import RoutingRules

__all__ = ["CaseDecision", "TriageService"]

log = structlog.get_logger("ketnoi.triage")

CONSUMER: Final = "triage"
_REF_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_MAX_TEXT: Final = 6000
_DISASTER_CUES: Final = frozenset({"fire_flood"})
_VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True, slots=True)
class _Touched:
    """A case an event of the current batch wrote to."""

    event: ZaloEvent  # the latest: its correlation id and message id are quoted
    created: bool  # opened within this batch


@dataclass(frozen=True, slots=True)
class CaseDecision:
    category: str
    subcategory: str | None
    urgency: str
    confidence: float
    explanation: str
    decided_by: str
    location: dict[str, Any] | None
    outside_province: bool
    disaster: bool


def new_reference(prefix: str) -> str:
    return f"{prefix}-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(5))


class TriageService:
    def __init__(
        self,
        *,
        engine: Triage,
        rules: RoutingRules,
        directory: Directory,
        quiet_gap: timedelta = timedelta(minutes=30),
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.directory = directory
        self.quiet_gap = quiet_gap

    async def handle(self, conn: asyncpg.Connection, event: ZaloEvent) -> str:
        """Apply one event; returns what happened (for logs and tests)."""
        return (await self.handle_batch(conn, [event]))[0]

    async def handle_batch(
        self, conn: asyncpg.Connection, events: Sequence[ZaloEvent]
    ) -> list[str]:
        """Apply ``events`` (in order) in one transaction: each event is recorded, then every
        case they touched is re-triaged once, with one batched classification."""
        touched: dict[uuid.UUID, _Touched] = {}
        async with conn.transaction():
            outcomes = [await self._record(conn, event, touched) for event in events]
            if touched:
                await self._retriage(conn, touched)
        return outcomes

    async def _record(
        self, conn: asyncpg.Connection, event: ZaloEvent, touched: dict[uuid.UUID, _Touched]
    ) -> str:
        if not await claim(conn, consumer=CONSUMER, event_id=event.event_id):
            return "duplicate"
        if event.citizen is None:
            return "ignored"
        await self._touch_contact(conn, event)
        if event.kind in (EventKind.FOLLOW, EventKind.UNFOLLOW):
            await conn.execute(
                """INSERT INTO followers (oa_id, citizen_pseudonym, following, source,
                                          changed_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE
                   SET following = EXCLUDED.following, source = EXCLUDED.source,
                       changed_at = EXCLUDED.changed_at
                   WHERE followers.changed_at <= EXCLUDED.changed_at""",
                event.oa_id,
                event.citizen.pseudonym,
                event.kind is EventKind.FOLLOW,
                event.follow_source,
                event.occurred_at,
            )
            return event.kind.value
        if event.kind is not EventKind.MESSAGE or event.message is None:
            return "recorded"
        return await self._message(conn, event, touched)

    async def _touch_contact(self, conn: asyncpg.Connection, event: ZaloEvent) -> None:
        citizen = event.citizen
        assert citizen is not None
        if citizen.sealed_user_id is None:
            return
        await conn.execute(
            """INSERT INTO citizen_contacts (oa_id, citizen_pseudonym, sealed_user_id, anonymous,
                                             sealed_conversation_id, last_interaction_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE
               SET sealed_user_id = EXCLUDED.sealed_user_id,
                   anonymous = EXCLUDED.anonymous,
                   sealed_conversation_id = COALESCE(EXCLUDED.sealed_conversation_id,
                                                     citizen_contacts.sealed_conversation_id),
                   last_interaction_at = GREATEST(citizen_contacts.last_interaction_at,
                                                  EXCLUDED.last_interaction_at)""",
            event.oa_id,
            citizen.pseudonym,
            citizen.sealed_user_id,
            citizen.anonymous,
            citizen.sealed_conversation_id,
            event.occurred_at,
        )

    # -- messages ----------------------------------------------------------------------------
    async def _message(
        self, conn: asyncpg.Connection, event: ZaloEvent, touched: dict[uuid.UUID, _Touched]
    ) -> str:
        citizen = event.citizen
        message = event.message
        assert citizen is not None
        assert message is not None
        case_id = await conn.fetchval(
            """SELECT id FROM cases
               WHERE oa_id = $1 AND citizen_pseudonym = $2
                 AND status NOT IN ('closed', 'rejected')
                 AND last_message_at >= $3 AND opened_at <= $4
               ORDER BY last_message_at DESC LIMIT 1 FOR UPDATE""",
            event.oa_id,
            citizen.pseudonym,
            event.occurred_at - self.quiet_gap,
            event.occurred_at + self.quiet_gap,
        )
        created = case_id is None
        if case_id is None:
            case_id = await self._open_case(conn, event)
        attachments = [a.model_dump(exclude_none=True) for a in message.attachments]
        await conn.execute(
            """INSERT INTO case_messages (case_id, event_id, msg_id, event_name, text,
                                          attachments, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)""",
            case_id,
            event.event_id,
            message.msg_id,
            event.event_name,
            message.text,
            json.dumps(attachments, ensure_ascii=False),
            event.occurred_at,
        )
        # Keep the case's time span current at once: the next event of this batch groups on it.
        await conn.execute(
            """UPDATE cases SET last_message_at = GREATEST(last_message_at, $2),
                 opened_at = LEAST(opened_at, $2), message_count = message_count + 1
               WHERE id = $1""",
            case_id,
            event.occurred_at,
        )
        previous = touched.get(case_id)
        touched[case_id] = _Touched(
            event=event,
            created=created or (previous is not None and previous.created),
        )
        return "opened" if created else "joined"

    async def _retriage(self, conn: asyncpg.Connection, touched: dict[uuid.UUID, _Touched]) -> None:
        ids = list(touched)
        cases = {
            r["id"]: r
            for r in await conn.fetch("SELECT * FROM cases WHERE id = ANY($1::uuid[])", ids)
        }
        messages: dict[uuid.UUID, list[asyncpg.Record]] = {i: [] for i in ids}
        for r in await conn.fetch(
            """SELECT case_id, text, attachments FROM case_messages
               WHERE case_id = ANY($1::uuid[]) ORDER BY case_id, occurred_at, id""",
            ids,
        ):
            messages[r["case_id"]].append(r)
        operators = {
            r["case_id"]: r
            for r in await conn.fetch(
                """SELECT DISTINCT ON (case_id) * FROM triage_decisions
               WHERE case_id = ANY($1::uuid[]) AND decided_by LIKE 'operator:%'
               ORDER BY case_id, id DESC""",
                ids,
            )
        }
        texts = [self._case_text(messages[i]) for i in ids]
        results = self.engine.classify_many(texts)
        for case_id, result in zip(ids, results, strict=True):
            case, rows, event = cases[case_id], messages[case_id], touched[case_id].event
            decision = self._decide(result, rows, operators.get(case_id))
            if (
                touched[case_id].created
                and decision.category == "other"
                and (decision.subcategory in ("greeting", "thanks"))
            ):
                # Greetings and thanks are answered, not acknowledged as tips.
                await self._greet(conn, event, thanks=decision.subcategory == "thanks")
            updated = await self._apply(conn, case, decision, event)
            await self._acknowledge_once(conn, updated, decision, event)

    @staticmethod
    def _case_text(rows: Sequence[asyncpg.Record]) -> str:
        texts = [r["text"] for r in rows if r["text"]]
        captions = [
            a.get("description")
            for r in rows
            for a in json.loads(r["attachments"])
            if isinstance(a.get("description"), str)
        ]
        return "\n".join([*texts, *captions])[-_MAX_TEXT:]

    async def _open_case(self, conn: asyncpg.Connection, event: ZaloEvent) -> uuid.UUID:
        assert event.citizen is not None
        for _ in range(8):
            row = await conn.fetchval(
                """INSERT INTO cases (id, reference, oa_id, citizen_pseudonym, category,
                                      urgency, opened_at, last_message_at, version)
                   VALUES ($1, $2, $3, $4, 'other', 'low', $5, $5, 0)
                   ON CONFLICT (reference) DO NOTHING RETURNING id""",
                uuid.uuid4(),
                new_reference(self.rules.reference_prefix),
                event.oa_id,
                event.citizen.pseudonym,
                event.occurred_at,
            )
            if row is not None:
                return row
        raise RuntimeError("could not draw a unique case reference")

    def _decide(
        self,
        result: TriageResult,
        rows: Sequence[asyncpg.Record],
        operator: asyncpg.Record | None,
    ) -> CaseDecision:
        location, outside = result.location, result.outside_province
        point = self._latest_point(rows)
        if point is not None:
            located = self.engine.locate_point(*point)
            if located is not None:
                location, outside = located
        disaster = bool(_DISASTER_CUES & set(result.cues))
        if operator is not None:
            return CaseDecision(
                category=operator["category"],
                subcategory=operator["subcategory"],
                urgency=operator["urgency"],
                confidence=1.0,
                explanation=operator["explanation"] or "Quyết định của cán bộ.",
                decided_by=operator["decided_by"],
                location=location,
                outside_province=outside,
                disaster=disaster,
            )
        return CaseDecision(
            category=result.category,
            subcategory=result.subcategory,
            urgency=result.urgency,
            confidence=result.confidence,
            explanation=result.explanation,
            decided_by="auto",
            location=location,
            outside_province=outside,
            disaster=disaster,
        )

    @staticmethod
    def _latest_point(rows: Sequence[asyncpg.Record]) -> tuple[float, float] | None:
        for r in reversed(rows):
            for a in json.loads(r["attachments"]):
                loc = a.get("location")
                if isinstance(loc, dict) and "latitude" in loc:
                    return float(loc["latitude"]), float(loc["longitude"])
        return None

    async def _apply(
        self,
        conn: asyncpg.Connection,
        case: asyncpg.Record,
        decision: CaseDecision,
        event: ZaloEvent,
    ) -> asyncpg.Record:
        ward_unit = None
        if decision.location and not decision.outside_province:
            unit = self.directory.by_code.get(str(decision.location.get("ward_code")))
            ward_unit = unit.id if unit else None
        oa_unit = self.directory.by_oa.get(case["oa_id"])
        route = self.rules.route(
            category=decision.category,
            subcategory=decision.subcategory,
            urgency=decision.urgency,
            ward_unit_id=ward_unit,
            oa_unit_id=oa_unit.id if oa_unit else None,
        )
        changed = (
            case["category"],
            case["subcategory"],
            case["urgency"],
            case["owner_unit_id"],
            case["location"] and json.loads(case["location"]),
        ) != (
            decision.category,
            decision.subcategory,
            decision.urgency,
            route.owner_unit_id,
            decision.location,
        )
        row = await conn.fetchrow(
            """UPDATE cases SET category = $2, subcategory = $3, urgency = $4, confidence = $5,
                 explanation = $6, decided_by = $7, owner_unit_id = $8, info_unit_ids = $9,
                 lane = $10, location = $11::jsonb, location_unknown = $12,
                 outside_province = $13, version = version + 1
               WHERE id = $1 RETURNING *""",
            case["id"],
            decision.category,
            decision.subcategory,
            decision.urgency,
            decision.confidence,
            decision.explanation,
            decision.decided_by,
            route.owner_unit_id,
            list(route.info_unit_ids),
            route.lane,
            json.dumps(decision.location, ensure_ascii=False) if decision.location else None,
            route.location_unknown,
            decision.outside_province,
        )
        if changed:
            await conn.execute(
                """INSERT INTO triage_decisions (case_id, version, decided_by, category,
                       subcategory, urgency, confidence, explanation, location)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)""",
                row["id"],
                row["version"],
                decision.decided_by,
                decision.category,
                decision.subcategory,
                decision.urgency,
                decision.confidence,
                decision.explanation,
                row["location"],
            )
        await enqueue(conn, REPORTS_TRIAGED, self._contract(row, event))
        return row

    def _contract(self, row: asyncpg.Record, event: ZaloEvent) -> TriagedCase:
        location = json.loads(row["location"]) if row["location"] else None
        return TriagedCase(
            event_id=f"case:{row['id']}:v{row['version']}",
            occurred_at=row["last_message_at"],
            correlation_id=event.correlation_id,
            case_id=str(row["id"]),
            reference=row["reference"],
            version=row["version"],
            oa_id=row["oa_id"],
            citizen_pseudonym=row["citizen_pseudonym"],
            status=CaseStatus(row["status"]),
            category=Category(row["category"]),
            subcategory=row["subcategory"],
            urgency=Urgency(row["urgency"]),
            confidence=max(0.0, min(1.0, float(row["confidence"]))),
            explanation=row["explanation"],
            decided_by=row["decided_by"],
            owner_unit_id=row["owner_unit_id"],
            info_unit_ids=tuple(row["info_unit_ids"]),
            location=CaseLocation(
                ward_code=location.get("ward_code"),
                ward_name=location.get("ward_name"),
                province_code=location.get("province_code"),
                latitude=location.get("latitude"),
                longitude=location.get("longitude"),
                source=location.get("source", "text"),
                distance_km=location.get("distance_km"),
            )
            if location
            else None,
            location_unknown=row["location_unknown"],
            outside_province=row["outside_province"],
            message_count=row["message_count"],
            opened_at=row["opened_at"],
            last_message_at=row["last_message_at"],
        )

    async def _recipient(
        self, conn: asyncpg.Connection, oa_id: str, pseudonym: str
    ) -> NotifyRecipient | None:
        contact = await conn.fetchrow(
            """SELECT * FROM citizen_contacts WHERE oa_id = $1 AND citizen_pseudonym = $2""",
            oa_id,
            pseudonym,
        )
        if contact is None:
            return None
        return NotifyRecipient(
            pseudonym=pseudonym,
            sealed_user_id=contact["sealed_user_id"],
            anonymous=contact["anonymous"],
            sealed_conversation_id=contact["sealed_conversation_id"],
        )

    async def _acknowledge_once(
        self,
        conn: asyncpg.Connection,
        case: asyncpg.Record,
        decision: CaseDecision,
        event: ZaloEvent,
    ) -> None:
        needs_ack = decision.category in TIP_CATEGORIES or decision.urgency == "emergency"
        if not needs_ack or case["ack_requested_at"] is not None:
            return
        recipient = await self._recipient(conn, case["oa_id"], case["citizen_pseudonym"])
        if recipient is None:
            return
        unit_name = self.directory.name(case["owner_unit_id"])
        request = NotifyRequest(
            event_id=f"ack:{case['id']}",
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            oa_id=case["oa_id"],
            recipient=recipient,
            kind=NotifyKind.ACK,
            text=acknowledgement(
                reference=case["reference"],
                unit_name=unit_name,
                urgency=decision.urgency,
                disaster=decision.disaster,
            ),
            quote_message_id=event.message.msg_id if event.message else None,
            case_id=str(case["id"]),
            reference=case["reference"],
        )
        await enqueue(conn, NOTIFY_REQUESTS, request)
        await conn.execute(
            """UPDATE cases SET ack_requested_at = now(),
                 status = CASE WHEN status = 'new' THEN 'acknowledged' ELSE status END
               WHERE id = $1""",
            case["id"],
        )

    async def _greet(self, conn: asyncpg.Connection, event: ZaloEvent, *, thanks: bool) -> None:
        assert event.citizen is not None
        today = event.occurred_at.astimezone(_VN).date()
        updated = await conn.fetchval(
            """UPDATE citizen_contacts SET last_greeting_on = $3
               WHERE oa_id = $1 AND citizen_pseudonym = $2
                 AND (last_greeting_on IS NULL OR last_greeting_on < $3)
               RETURNING true""",
            event.oa_id,
            event.citizen.pseudonym,
            today,
        )
        if not updated:
            return
        recipient = await self._recipient(conn, event.oa_id, event.citizen.pseudonym)
        if recipient is None:
            return
        unit = self.directory.by_oa.get(event.oa_id)
        await enqueue(
            conn,
            NOTIFY_REQUESTS,
            NotifyRequest(
                event_id=f"greeting:{event.oa_id}:{event.citizen.pseudonym}:{today.isoformat()}",
                occurred_at=event.occurred_at,
                correlation_id=event.correlation_id,
                oa_id=event.oa_id,
                recipient=recipient,
                kind=NotifyKind.GREETING,
                text=greeting_reply(unit_name=unit.name if unit else "Công an", thanks=thanks),
            ),
        )
