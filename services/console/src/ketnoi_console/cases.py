"""Reading cases for the inbox and the case page. Every function takes a connection from
:func:`ketnoi_console.access.scoped`: PostgreSQL decides which rows exist for the viewer."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from ketnoi_shared.text import normalize

from .clocks import CLOCK_COLUMNS, Policy, case_clocks

__all__ = [
    "CaseFilters",
    "ReplyWindow",
    "case_detail",
    "citizen_label",
    "inbox",
    "reply_window",
]

OPEN_STATUSES: Final = ("new", "acknowledged", "verifying")
TIP_LANE: Final = "tips"
PROCEDURE_LANE: Final = "procedures"
INBOX_LIMIT: Final = 200


def citizen_label(unit_id: str, pseudonym: str) -> str:
    """What officers call a tipster: stable within a unit, unrelated across units."""
    digest = hmac.new(unit_id.encode(), pseudonym.encode(), hashlib.sha256).hexdigest()
    return f"Người báo tin #{digest[:4].upper()}"


@dataclass(frozen=True, slots=True)
class CaseFilters:
    lane: str = TIP_LANE
    category: str | None = None
    urgency: str | None = None
    status: str | None = None
    unread: bool = False
    overdue: bool = False
    due_soon: bool = False
    q: str = ""

    def query_string(self) -> str:
        from urllib.parse import urlencode  # noqa: PLC0415

        items: dict[str, str] = {"lane": self.lane}
        for key in ("category", "urgency", "status"):
            if value := getattr(self, key):
                items[key] = value
        if self.unread:
            items["unread"] = "1"
        if self.overdue:
            items["overdue"] = "1"
        if self.due_soon:
            items["due_soon"] = "1"
        if self.q:
            items["q"] = self.q
        return urlencode(items)


async def inbox(
    conn: asyncpg.Connection,
    *,
    account_id: int,
    unit_id: str,
    units: tuple[str, ...],
    filters: CaseFilters,
    policy: Policy,
) -> list[dict[str, Any]]:
    """The viewer's cases of one lane, emergencies pinned on top, newest first."""
    where = ["c.lane = $2"]
    args: list[Any] = [account_id, filters.lane]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.category:
        where.append(f"c.category = {arg(filters.category)}")
    if filters.urgency:
        where.append(f"c.urgency = {arg(filters.urgency)}")
    if filters.status == "open":
        where.append("c.status IN ('new', 'acknowledged', 'verifying')")
    elif filters.status:
        where.append(f"c.status = {arg(filters.status)}")
    if filters.unread:
        where.append("(r.read_at IS NULL OR r.read_at < c.last_message_at)")
    if filters.overdue or filters.due_soon:
        where.append("c.status IN ('new', 'acknowledged', 'verifying')")
    if filters.q.strip():
        needle = normalize(filters.q).folded[:200]
        like = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            f"(c.search_text LIKE {arg(like)} OR lower(c.reference) = {arg(needle.lower())})"
        )
    rows = await conn.fetch(
        f"""SELECT c.id, c.reference, c.status, c.category, c.subcategory, c.urgency, c.lane,
                   c.owner_unit_id, c.info_unit_ids, c.location, c.location_unknown,
                   c.message_count, c.opened_at, c.last_message_at, c.citizen_pseudonym,
                   c.decided_by, c.assignee_id,
                   ou.name AS owner_name,
                   (SELECT m.text FROM case_messages m WHERE m.case_id = c.id
                      AND coalesce(m.text, '') <> '' ORDER BY m.occurred_at DESC, m.id DESC LIMIT 1)
                       AS preview,
                   (SELECT count(*) FROM case_messages m WHERE m.case_id = c.id
                      AND m.attachments <> '[]'::jsonb) AS with_attachments,
                   (r.read_at IS NULL OR r.read_at < c.last_message_at) AS unread,
                   {CLOCK_COLUMNS}
            FROM cases c
            LEFT JOIN case_reads r ON r.case_id = c.id AND r.account_id = $1
            LEFT JOIN units ou ON ou.id = c.owner_unit_id
            WHERE {" AND ".join(where)}
            ORDER BY (c.urgency = 'emergency'
                      AND c.status IN ('new', 'acknowledged', 'verifying')) DESC,
                     c.last_message_at DESC
            LIMIT {INBOX_LIMIT * (5 if filters.overdue or filters.due_soon else 1)}""",  # noqa: S608 - only placeholders are interpolated
        *args,
    )
    out = []
    now = datetime.now(UTC)
    for r in rows:
        row = dict(r)
        clocks = case_clocks(
            row,
            policy,
            unit_kind=r["owner_kind"],
            first_reply_at=r["first_reply_at"],
            extensions=r["extensions"],
            now=now,
        )
        row["overdue"] = any(c.state == "overdue" for c in clocks.values())
        row["due_soon"] = not row["overdue"] and any(c.state == "due_soon" for c in clocks.values())
        if (filters.overdue and not row["overdue"]) or (filters.due_soon and not row["due_soon"]):
            continue
        row["label"] = citizen_label(unit_id, r["citizen_pseudonym"])
        row["info_only"] = r["owner_unit_id"] not in units
        row["location"] = json.loads(r["location"]) if r["location"] else None
        out.append(row)
    return out[:INBOX_LIMIT]


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    """Zalo's interaction window for consultation messages (see ../shared/zalo/README.md)."""

    state: str  # free | paid | closed | unknown
    last_interaction_at: datetime | None
    free_until: datetime | None
    closes_at: datetime | None

    @property
    def can_send(self) -> bool:
        return self.state in ("free", "paid")


def reply_window(
    last: datetime | None, *, free_h: int, max_h: int, now: datetime | None = None
) -> ReplyWindow:
    if last is None:
        return ReplyWindow("unknown", None, None, None)
    now = now or datetime.now(UTC)
    free_until, closes_at = last + timedelta(hours=free_h), last + timedelta(hours=max_h)
    state = "free" if now < free_until else "paid" if now < closes_at else "closed"
    return ReplyWindow(state, last, free_until, closes_at)


@dataclass(slots=True)
class CaseView:
    case: dict[str, Any]
    label: str
    timeline: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    last_interaction_at: datetime | None = None
    has_contact: bool = False
    has_submitted_identity: bool = False
    owned: bool = True
    assignees: list[dict[str, Any]] = field(default_factory=list)
    candidates: list[dict[str, Any]] = field(default_factory=list)


async def case_detail(
    conn: asyncpg.Connection, case_id: str, *, unit_id: str, units: tuple[str, ...]
) -> CaseView | None:
    case = await conn.fetchrow(
        """SELECT c.*, ou.name AS owner_name, a.display_name AS assignee_name
           FROM cases c LEFT JOIN units ou ON ou.id = c.owner_unit_id
           LEFT JOIN accounts a ON a.id = c.assignee_id
           WHERE c.id = $1::uuid""",
        case_id,
    )
    if case is None:
        return None
    data = dict(case)
    data["location"] = json.loads(case["location"]) if case["location"] else None
    view = CaseView(case=data, label=citizen_label(unit_id, case["citizen_pseudonym"]))
    view.owned = case["owner_unit_id"] in units
    messages = await conn.fetch(
        """SELECT id, event_id, msg_id, event_name, text, attachments, occurred_at
           FROM case_messages WHERE case_id = $1 ORDER BY occurred_at, id""",
        case["id"],
    )
    media = {
        (r["event_id"], r["position"]): dict(r)
        for r in await conn.fetch(
            """SELECT o.id, o.event_id, o.position, o.kind, o.status, o.error,
                      o.display_content_type, o.content_type, o.file_name, o.size_bytes, o.sha256
               FROM media_objects o JOIN case_messages m ON m.event_id = o.event_id
               WHERE m.case_id = $1 AND o.status <> 'pending'""",
            case["id"],
        )
    }
    for m in messages:
        attachments = []
        for position, a in enumerate(json.loads(m["attachments"])):
            attachments.append({**a, "media": media.get((m["event_id"], position))})
        view.timeline.append(
            {
                "at": m["occurred_at"],
                "who": "citizen",
                "text": m["text"],
                "attachments": attachments,
            }
        )
    deliveries = {
        r["request_id"]: dict(r)
        for r in await conn.fetch("SELECT * FROM delivery_results WHERE case_id = $1", case["id"])
    }
    for a in await conn.fetch(
        """SELECT a.*, acc.display_name FROM case_actions a
           LEFT JOIN accounts acc ON acc.id = a.account_id
           WHERE a.case_id = $1 ORDER BY a.at, a.id""",
        case["id"],
    ):
        view.timeline.append(
            {
                "at": a["at"],
                "who": "officer",
                "kind": a["kind"],
                "text": a["body"],
                "data": json.loads(a["data"]) if a["data"] else {},
                "officer": a["display_name"],
                "delivery": deliveries.get(a["request_id"]) if a["request_id"] else None,
            }
        )
    ack = deliveries.get(f"ack:{case['id']}")
    if case["ack_requested_at"] is not None:
        view.timeline.append(
            {
                "at": case["ack_requested_at"],
                "who": "system",
                "kind": "ack",
                "text": None,
                "delivery": ack,
            }
        )
    for key, d in deliveries.items():
        if d["kind"] == "answer":
            view.timeline.append(
                {
                    "at": d["updated_at"],
                    "who": "system",
                    "kind": "answer",
                    "delivery": d,
                    "text": None,
                    "request_id": key,
                }
            )
    view.timeline.sort(key=lambda item: item["at"])
    view.decisions = [
        dict(r)
        for r in await conn.fetch(
            """SELECT version, decided_by, category, subcategory, urgency, confidence,
                      explanation, created_at
               FROM triage_decisions WHERE case_id = $1 ORDER BY id DESC LIMIT 20""",
            case["id"],
        )
    ]
    contact = await conn.fetchrow(
        """SELECT last_interaction_at, sealed_name IS NOT NULL OR sealed_phone IS NOT NULL
                  AS submitted
           FROM citizen_contacts WHERE oa_id = $1 AND citizen_pseudonym = $2""",
        case["oa_id"],
        case["citizen_pseudonym"],
    )
    if contact is not None:
        view.has_contact = True
        view.last_interaction_at = contact["last_interaction_at"]
        view.has_submitted_identity = bool(contact["submitted"])
    for r in await conn.fetch(
        """SELECT question, candidates, answered, created_at FROM procedure_candidates
           WHERE case_id = $1 ORDER BY case_version DESC LIMIT 3""",
        case["id"],
    ):
        view.candidates.append(
            {
                "question": r["question"],
                "answered": r["answered"],
                "at": r["created_at"],
                "entries": json.loads(r["candidates"]),
            }
        )
    view.assignees = [
        dict(r)
        for r in await conn.fetch(
            """SELECT id, display_name FROM accounts
               WHERE unit_id = $1 AND NOT disabled AND role IN ('officer', 'lead')
               ORDER BY display_name""",
            case["owner_unit_id"],
        )
    ]
    return view
