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

import dataclasses
import json
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    REPORTS_TRIAGED,
    EventKind,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    TriagedCase,
    ZaloEvent,
)
from ketnoi_shared.db import enqueue, enqueue_many
from ketnoi_shared.failpoints import failpoint
from ketnoi_shared.metrics import INBOX_DUPLICATES
from ketnoi_shared.queries import classify_query
from ketnoi_shared.text import normalize

from .classify.taxonomy import TIP_CATEGORIES
from .directory import Directory
from .engine import Triage, TriageResult
from .replies import acknowledgement, greeting_reply
from .routing import Route, RoutingRules

__all__ = ["CaseDecision", "TriageService"]

log = structlog.get_logger("ketnoi.triage")

CONSUMER: Final = "triage"
_REF_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_MAX_TEXT: Final = 6000
_MAX_SEARCH_TEXT: Final = 20_000
_DISASTER_CUES: Final = frozenset({"fire_flood"})
_VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")


_UPSERT_CONTACT: Final = """
    INSERT INTO citizen_contacts (oa_id, citizen_pseudonym, sealed_user_id, anonymous,
                                  sealed_conversation_id, last_interaction_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE
    SET sealed_user_id = EXCLUDED.sealed_user_id,
        anonymous = EXCLUDED.anonymous,
        sealed_conversation_id = COALESCE(EXCLUDED.sealed_conversation_id,
                                          citizen_contacts.sealed_conversation_id),
        last_interaction_at = GREATEST(citizen_contacts.last_interaction_at,
                                       EXCLUDED.last_interaction_at)"""


@dataclass(slots=True)
class _Span:
    """A case's time span while a batch is grouped in memory."""

    id: uuid.UUID
    first: datetime
    last: datetime
    new: bool
    count: int = 0


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


def _without_menu_queries(
    messages: list[tuple[int, ZaloEvent]], outcomes: list[str]
) -> list[tuple[int, ZaloEvent]]:
    """Menu queries (#tin_tuc, #cong_vu, "tin tức"...) are the news service's to answer: no
    case, no greeting, no acknowledgement from triage."""
    kept = []
    for i, e in messages:
        message = e.message
        if message is not None and not message.attachments and classify_query(message.text):
            outcomes[i] = "menu_query"
        else:
            kept.append((i, e))
    return kept


def _recipient_of(contact: asyncpg.Record) -> NotifyRecipient:
    """Where a reply to a citizen goes: their pseudonym and sealed ids, never clear ones."""
    return NotifyRecipient(
        pseudonym=contact["citizen_pseudonym"],
        sealed_user_id=contact["sealed_user_id"],
        anonymous=contact["anonymous"],
        sealed_conversation_id=contact["sealed_conversation_id"],
    )


def _pseudonym(event: ZaloEvent) -> str:
    assert event.citizen is not None
    return event.citizen.pseudonym


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
        """Apply ``events`` (in order) in one transaction, with set-based statements: claim
        them all in the inbox, record contacts, follows and messages, group the messages into
        cases, then re-triage every case they touched once, with one batched
        classification."""
        outcomes = ["duplicate"] * len(events)
        async with conn.transaction():
            fresh = {
                r["event_id"]
                for r in await conn.fetch(
                    "INSERT INTO inbox (consumer, event_id) SELECT $1, x FROM unnest($2::text[]) x "
                    "ON CONFLICT DO NOTHING RETURNING event_id",
                    CONSUMER,
                    list(dict.fromkeys(e.event_id for e in events)),
                )
            }
            todo: list[tuple[int, ZaloEvent]] = []
            for i, event in enumerate(events):
                if event.event_id in fresh:
                    fresh.discard(event.event_id)  # a duplicate within the batch: once
                    todo.append((i, event))
            if len(todo) < len(events):
                INBOX_DUPLICATES.labels(consumer=CONSUMER).inc(len(events) - len(todo))
            with_citizen = [(i, e) for i, e in todo if e.citizen is not None]
            for i, e in todo:
                if e.citizen is None:
                    outcomes[i] = "ignored"
            await self._touch_contacts(conn, [e for _, e in with_citizen])
            follows = [
                (i, e) for i, e in with_citizen if e.kind in (EventKind.FOLLOW, EventKind.UNFOLLOW)
            ]
            await self._follows(conn, [e for _, e in follows])
            await self._submitted_info(
                conn, [e for _, e in with_citizen if e.kind is EventKind.SUBMIT_INFO]
            )
            for i, e in follows:
                outcomes[i] = e.kind.value
            messages = [
                (i, e)
                for i, e in with_citizen
                if e.kind is EventKind.MESSAGE and e.message is not None
            ]
            for i, _ in with_citizen:
                if outcomes[i] == "duplicate":
                    outcomes[i] = "recorded"  # messages below say opened/joined instead
            messages = _without_menu_queries(messages, outcomes)
            touched: dict[uuid.UUID, _Touched] = {}
            if messages:
                for (i, _), outcome in zip(
                    messages,
                    await self._messages(conn, [e for _, e in messages], touched),
                    strict=True,
                ):
                    outcomes[i] = outcome
            if touched:
                await self._retriage(conn, touched)
            await failpoint("triage.before_commit")
        await failpoint("triage.after_commit")
        return outcomes

    async def _touch_contacts(self, conn: asyncpg.Connection, events: list[ZaloEvent]) -> None:
        rows = [
            (
                e.oa_id,
                e.citizen.pseudonym,
                e.citizen.sealed_user_id,
                e.citizen.anonymous,
                e.citizen.sealed_conversation_id,
                e.occurred_at,
            )
            for e in events
            if e.citizen is not None and e.citizen.sealed_user_id is not None
        ]
        if rows:
            await conn.executemany(_UPSERT_CONTACT, rows)

    async def _submitted_info(self, conn: asyncpg.Connection, events: list[ZaloEvent]) -> None:
        """What a citizen chose to share (user_submit_info) stays sealed; the console shows it
        only through an audited reveal."""
        rows = [
            (
                e.oa_id,
                e.citizen.pseudonym,
                e.submitted_info.sealed_name,
                e.submitted_info.sealed_phone,
            )
            for e in events
            if e.citizen is not None and e.submitted_info is not None
        ]
        if rows:
            await conn.executemany(
                """UPDATE citizen_contacts SET sealed_name = COALESCE($3, sealed_name),
                       sealed_phone = COALESCE($4, sealed_phone)
                   WHERE oa_id = $1 AND citizen_pseudonym = $2""",
                rows,
            )

    async def _follows(self, conn: asyncpg.Connection, events: list[ZaloEvent]) -> None:
        if events:
            await conn.executemany(
                """INSERT INTO followers (oa_id, citizen_pseudonym, following, source, changed_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE
                   SET following = EXCLUDED.following, source = EXCLUDED.source,
                       changed_at = EXCLUDED.changed_at
                   WHERE followers.changed_at <= EXCLUDED.changed_at""",
                [
                    (
                        e.oa_id,
                        e.citizen.pseudonym,
                        e.kind is EventKind.FOLLOW,
                        e.follow_source,
                        e.occurred_at,
                    )
                    for e in events
                    if e.citizen is not None
                ],
            )

    async def _messages(
        self, conn: asyncpg.Connection, events: list[ZaloEvent], touched: dict[uuid.UUID, _Touched]
    ) -> list[str]:
        """Group messages into cases (in memory, over the open cases locked for the batch),
        open the new cases and store the messages, all set-based."""
        pairs = list(
            dict.fromkeys((e.oa_id, e.citizen.pseudonym) for e in events if e.citizen is not None)
        )
        earliest = min(e.occurred_at for e in events) - self.quiet_gap
        open_cases: dict[tuple[str, str], list[_Span]] = {}
        for r in await conn.fetch(
            """SELECT id, oa_id, citizen_pseudonym, opened_at, last_message_at FROM cases
               WHERE (oa_id, citizen_pseudonym) IN (
                       SELECT * FROM unnest($1::text[], $2::text[]))
                 AND status NOT IN ('closed', 'rejected') AND last_message_at >= $3
               ORDER BY last_message_at FOR UPDATE""",
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            earliest,
        ):
            open_cases.setdefault((r["oa_id"], r["citizen_pseudonym"]), []).append(
                _Span(r["id"], r["opened_at"], r["last_message_at"], new=False)
            )
        outcomes = []
        assigned: list[_Span] = []
        for e in events:
            assert e.citizen is not None
            spans = open_cases.setdefault((e.oa_id, e.citizen.pseudonym), [])
            fits = [
                c
                for c in spans
                if c.last >= e.occurred_at - self.quiet_gap
                and c.first <= e.occurred_at + self.quiet_gap
            ]
            if fits:
                span = max(fits, key=lambda c: c.last)
                outcomes.append("joined")
            else:
                span = _Span(uuid.uuid4(), e.occurred_at, e.occurred_at, new=True)
                spans.append(span)
                outcomes.append("opened")
            span.first = min(span.first, e.occurred_at)
            span.last = max(span.last, e.occurred_at)
            span.count += 1
            assigned.append(span)
            previous = touched.get(span.id)
            touched[span.id] = _Touched(
                event=e, created=span.new or (previous is not None and previous.created)
            )
        new = {s.id: (s, e) for s, e in zip(assigned, events, strict=True) if s.new}
        await self._open_cases(conn, list(new.values()))
        await conn.executemany(
            """INSERT INTO case_messages (case_id, event_id, msg_id, event_name, text,
                                          attachments, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)""",
            [
                (
                    s.id,
                    e.event_id,
                    e.message.msg_id,
                    e.event_name,
                    e.message.text,
                    json.dumps(
                        [a.model_dump(exclude_none=True) for a in e.message.attachments],
                        ensure_ascii=False,
                    ),
                    e.occurred_at,
                )
                for s, e in zip(assigned, events, strict=True)
                if e.message is not None
            ],
        )
        spans = {s.id: s for s in assigned}
        # The console searches cases without diacritics: keep each case's folded text.
        searchable: dict[uuid.UUID, list[str]] = defaultdict(list)
        for s, e in zip(assigned, events, strict=True):
            if e.message is not None:
                texts = [e.message.text or ""]
                texts += [a.description or "" for a in e.message.attachments]
                searchable[s.id].append(normalize(" ".join(t for t in texts if t)).folded)
        await conn.execute(
            """UPDATE cases c SET last_message_at = GREATEST(c.last_message_at, u.last),
                 opened_at = LEAST(c.opened_at, u.first), message_count = c.message_count + u.n,
                 search_text = right(c.search_text || ' ' || u.folded, $6)
               FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::int[],
                           $5::text[])
                    AS u(id, first, last, n, folded)
               WHERE c.id = u.id""",
            list(spans),
            [s.first for s in spans.values()],
            [s.last for s in spans.values()],
            [s.count for s in spans.values()],
            [" ".join(searchable.get(i, ())).strip() for i in spans],
            _MAX_SEARCH_TEXT,
        )
        return outcomes

    async def _open_cases(
        self, conn: asyncpg.Connection, new: list[tuple[_Span, ZaloEvent]]
    ) -> None:
        pending = new
        for _ in range(8):
            if not pending:
                return
            refs = [new_reference(self.rules.reference_prefix) for _ in pending]
            made = {
                r["id"]
                for r in await conn.fetch(
                    """INSERT INTO cases (id, reference, oa_id, citizen_pseudonym, category,
                                          urgency, opened_at, last_message_at, version)
                       SELECT id, ref, oa, ps, 'other', 'low', at, at, 0
                       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
                                   $5::timestamptz[]) AS u(id, ref, oa, ps, at)
                       ON CONFLICT (reference) DO NOTHING RETURNING id""",
                    [s.id for s, _ in pending],
                    refs,
                    [e.oa_id for _, e in pending],
                    [_pseudonym(e) for _, e in pending],
                    [s.first for s, _ in pending],
                )
            }
            # message_count starts at 0: the batch's UPDATE adds every message.
            pending = [(s, e) for s, e in pending if s.id not in made]
        raise RuntimeError("could not draw unique case references")

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
        decisions = {
            case_id: self._decide(result, messages[case_id], operators.get(case_id))
            for case_id, result in zip(ids, results, strict=True)
        }
        for case_id, decision in decisions.items():
            if (
                touched[case_id].created
                and decision.category == "other"
                and (decision.subcategory in ("greeting", "thanks"))
                # A photo or clip without words is not a greeting, whatever the classifier
                # makes of the empty text: it is the start of a tip whose text comes next
                # (found by the reliability harness: greeted, then acknowledged).
                and not any(json.loads(r["attachments"]) for r in messages[case_id])
            ):
                # Greetings and thanks are answered, not acknowledged as tips.
                await self._greet(
                    conn, touched[case_id].event, thanks=decision.subcategory == "thanks"
                )
        updated = await self._apply(conn, cases, decisions, touched)
        await self._acknowledge(conn, updated, decisions, touched)

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

    def _route(self, case: asyncpg.Record, decision: CaseDecision) -> Route:
        ward_unit = None
        if decision.location and not decision.outside_province:
            unit = self.directory.by_code.get(str(decision.location.get("ward_code")))
            ward_unit = unit.id if unit else None
        oa_unit = self.directory.by_oa.get(case["oa_id"])
        return self.rules.route(
            category=decision.category,
            subcategory=decision.subcategory,
            urgency=decision.urgency,
            ward_unit_id=ward_unit,
            oa_unit_id=oa_unit.id if oa_unit else None,
        )

    async def _apply(
        self,
        conn: asyncpg.Connection,
        cases: dict[uuid.UUID, asyncpg.Record],
        decisions: dict[uuid.UUID, CaseDecision],
        touched: dict[uuid.UUID, _Touched],
    ) -> dict[uuid.UUID, asyncpg.Record]:
        """Write every case's new decision in one statement, record the decisions that
        changed something, and queue ``reports.triaged.v1`` for every case."""
        ids = list(decisions)
        routes = {i: self._route(cases[i], decisions[i]) for i in ids}
        for i in ids:
            if cases[i]["owner_set_by"] is not None:  # transferred by an officer: it stands
                routes[i] = dataclasses.replace(routes[i], owner_unit_id=cases[i]["owner_unit_id"])
        locations = [
            json.dumps(decisions[i].location, ensure_ascii=False) if decisions[i].location else None
            for i in ids
        ]
        rows = await conn.fetch(
            """UPDATE cases c SET category = u.category, subcategory = u.subcategory,
                 urgency = u.urgency, confidence = u.confidence, explanation = u.explanation,
                 decided_by = u.decided_by,
                 -- An officer's transfer stands: triage then only adds info copies.
                 owner_unit_id = CASE WHEN c.owner_set_by IS NULL THEN u.owner
                                      ELSE c.owner_unit_id END,
                 info_unit_ids = CASE WHEN u.info = '' THEN '{}'::text[]
                                      ELSE string_to_array(u.info, ',') END,
                 lane = u.lane, location = u.location::jsonb,
                 location_unknown = u.location_unknown, outside_province = u.outside,
                 version = c.version + 1
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::real[],
                           $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                           $11::text[], $12::boolean[], $13::boolean[])
                    AS u(id, category, subcategory, urgency, confidence, explanation,
                         decided_by, owner, info, lane, location, location_unknown, outside)
               WHERE c.id = u.id RETURNING c.*""",
            ids,
            [decisions[i].category for i in ids],
            [decisions[i].subcategory for i in ids],
            [decisions[i].urgency for i in ids],
            [decisions[i].confidence for i in ids],
            [decisions[i].explanation for i in ids],
            [decisions[i].decided_by for i in ids],
            [routes[i].owner_unit_id for i in ids],
            [",".join(routes[i].info_unit_ids) for i in ids],
            [routes[i].lane for i in ids],
            locations,
            [routes[i].location_unknown for i in ids],
            [decisions[i].outside_province for i in ids],
        )
        updated = {r["id"]: r for r in rows}
        changed = [
            i
            for i in ids
            if (
                cases[i]["category"],
                cases[i]["subcategory"],
                cases[i]["urgency"],
                cases[i]["owner_unit_id"],
                cases[i]["location"] and json.loads(cases[i]["location"]),
            )
            != (
                decisions[i].category,
                decisions[i].subcategory,
                decisions[i].urgency,
                routes[i].owner_unit_id,
                decisions[i].location,
            )
        ]
        if changed:
            await conn.executemany(
                """INSERT INTO triage_decisions (case_id, version, decided_by, category,
                       subcategory, urgency, confidence, explanation, location)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)""",
                [
                    (
                        i,
                        updated[i]["version"],
                        decisions[i].decided_by,
                        decisions[i].category,
                        decisions[i].subcategory,
                        decisions[i].urgency,
                        decisions[i].confidence,
                        decisions[i].explanation,
                        updated[i]["location"],
                    )
                    for i in changed
                ],
            )
        await enqueue_many(
            conn, [(REPORTS_TRIAGED, self._contract(updated[i], touched[i].event)) for i in ids]
        )
        return updated

    def _contract(self, row: asyncpg.Record, event: ZaloEvent) -> TriagedCase:
        return TriagedCase.from_row(
            row,
            occurred_at=row["last_message_at"],
            correlation_id=event.correlation_id,
            **self._question(row, event),
        )

    @staticmethod
    def _question(row: asyncpg.Record, event: ZaloEvent) -> dict[str, Any]:
        """A procedure question travels with its text and where the answer goes, so that the
        news service can answer it without reading triage's tables."""
        message, citizen = event.message, event.citizen
        if (
            row["category"] != "admin"
            or message is None
            or not message.text
            or citizen is None
            or citizen.sealed_user_id is None
        ):
            return {}
        return {
            "question": message.text,
            "question_msg_id": message.msg_id,
            "reply_to": NotifyRecipient(
                pseudonym=citizen.pseudonym,
                sealed_user_id=citizen.sealed_user_id,
                anonymous=citizen.anonymous,
                sealed_conversation_id=citizen.sealed_conversation_id,
            ),
        }

    async def _recipient(
        self, conn: asyncpg.Connection, oa_id: str, pseudonym: str
    ) -> NotifyRecipient | None:
        contact = await conn.fetchrow(
            """SELECT * FROM citizen_contacts WHERE oa_id = $1 AND citizen_pseudonym = $2""",
            oa_id,
            pseudonym,
        )
        return None if contact is None else _recipient_of(contact)

    async def _acknowledge(
        self,
        conn: asyncpg.Connection,
        cases: dict[uuid.UUID, asyncpg.Record],
        decisions: dict[uuid.UUID, CaseDecision],
        touched: dict[uuid.UUID, _Touched],
    ) -> None:
        """One acknowledgement per tip (and per emergency), the first time a case is one."""
        due = [
            i
            for i, case in cases.items()
            if case["ack_requested_at"] is None
            and (decisions[i].category in TIP_CATEGORIES or decisions[i].urgency == "emergency")
        ]
        if not due:
            return
        contacts = {
            (r["oa_id"], r["citizen_pseudonym"]): r
            for r in await conn.fetch(
                """SELECT * FROM citizen_contacts WHERE (oa_id, citizen_pseudonym) IN (
                       SELECT * FROM unnest($1::text[], $2::text[]))""",
                [cases[i]["oa_id"] for i in due],
                [cases[i]["citizen_pseudonym"] for i in due],
            )
        }
        requests = []
        for i in due:
            case, decision, event = cases[i], decisions[i], touched[i].event
            contact = contacts.get((case["oa_id"], case["citizen_pseudonym"]))
            if contact is None:
                continue
            requests.append(
                NotifyRequest(
                    event_id=f"ack:{case['id']}",
                    occurred_at=event.occurred_at,
                    correlation_id=event.correlation_id,
                    oa_id=case["oa_id"],
                    recipient=_recipient_of(contact),
                    kind=NotifyKind.ACK,
                    text=acknowledgement(
                        reference=case["reference"],
                        unit_name=self.directory.name(case["owner_unit_id"]),
                        urgency=decision.urgency,
                        disaster=decision.disaster,
                    ),
                    quote_message_id=event.message.msg_id if event.message else None,
                    case_id=str(case["id"]),
                    reference=case["reference"],
                )
            )
        await enqueue_many(conn, [(NOTIFY_REQUESTS, r) for r in requests])
        await conn.execute(
            """UPDATE cases SET ack_requested_at = now(),
                 status = CASE WHEN status = 'new' THEN 'acknowledged' ELSE status END
               WHERE id = ANY($1::uuid[])""",
            [uuid.UUID(r.case_id) for r in requests if r.case_id],
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
