"""What officers do on a case. Each action runs in the caller's scoped transaction (the
viewer's units, the console role), writes what it did to ``case_actions`` and, when the
citizen or other services must know, queues a message in the outbox in the same transaction:
the console never calls Zalo itself.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    REPORTS_TRIAGED,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    TriagedCase,
    Urgency,
)
from ketnoi_shared.db import enqueue
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.taxonomy import SUBCATEGORIES

from .access import Viewer
from .auth import audit
from .cases import reply_window

__all__ = [
    "ActionError",
    "Revealed",
    "add_note",
    "assign",
    "change_status",
    "extend_deadline",
    "mark_read",
    "reclassify",
    "reply",
    "reveal_identity",
    "transfer",
]

MAX_REPLY: Final = 2000 * 5
MIN_REASON: Final = 10
#: Allowed moves of the case status (rejected and closed are final; a closed case reopens as a
#: new case when the citizen writes again).
TRANSITIONS: Final = {
    "new": {"acknowledged", "verifying", "handled", "closed", "rejected"},
    "acknowledged": {"verifying", "handled", "closed", "rejected"},
    "verifying": {"handled", "closed", "rejected"},
    "handled": {"closed", "verifying"},
    "closed": set(),
    "rejected": set(),
}


class ActionError(Exception):
    """An action the console refuses, with a message for the officer (Vietnamese)."""


async def _case(conn: asyncpg.Connection, case_id: str, *, lock: bool = True) -> asyncpg.Record:
    try:
        uid = uuid.UUID(case_id)
    except ValueError as exc:
        raise ActionError("Không tìm thấy tin báo.") from exc
    row = await conn.fetchrow(
        "SELECT * FROM cases WHERE id = $1 FOR UPDATE"
        if lock
        else "SELECT * FROM cases WHERE id = $1",
        uid,
    )
    if row is None:
        raise ActionError("Không tìm thấy tin báo.")
    return row


def _require_owner(viewer: Viewer, case: asyncpg.Record) -> None:
    if case["owner_unit_id"] not in viewer.units:
        raise ActionError(
            "Đơn vị của đồng chí chỉ nhận bản sao để biết; đơn vị chủ trì mới xử lý được tin này."
        )


async def _record(
    conn: asyncpg.Connection,
    viewer: Viewer,
    case_id: uuid.UUID,
    kind: str,
    *,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO case_actions (case_id, account_id, kind, body, data, request_id)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)""",
        case_id,
        viewer.account_id,
        kind,
        body,
        json.dumps(data or {}, ensure_ascii=False),
        request_id,
    )


async def _recipient(conn: asyncpg.Connection, case: asyncpg.Record) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM citizen_contacts WHERE oa_id = $1 AND citizen_pseudonym = $2",
        case["oa_id"],
        case["citizen_pseudonym"],
    )


async def _notify(
    conn: asyncpg.Connection,
    viewer: Viewer,
    case: asyncpg.Record,
    contact: asyncpg.Record,
    *,
    kind: NotifyKind,
    text: str,
) -> str:
    request_id = f"{kind.value}:{uuid.uuid4()}"
    await enqueue(
        conn,
        NOTIFY_REQUESTS,
        NotifyRequest(
            event_id=request_id,
            occurred_at=datetime.now(UTC),
            correlation_id=request_id,
            oa_id=case["oa_id"],
            recipient=NotifyRecipient(
                pseudonym=contact["citizen_pseudonym"],
                sealed_user_id=contact["sealed_user_id"],
                anonymous=contact["anonymous"],
                sealed_conversation_id=contact["sealed_conversation_id"],
            ),
            kind=kind,
            text=text,
            case_id=str(case["id"]),
            reference=case["reference"],
            requested_by=f"officer:{viewer.account_id}",
        ),
    )
    return request_id


async def _publish(conn: asyncpg.Connection, case: asyncpg.Record | dict[str, Any]) -> None:
    """Every change of a case goes on reports.triaged.v1, like triage's own."""
    await enqueue(
        conn,
        REPORTS_TRIAGED,
        TriagedCase.from_row(
            case, occurred_at=datetime.now(UTC), correlation_id=f"case:{case['id']}"
        ),
    )


async def reply(
    conn: asyncpg.Connection,
    viewer: Viewer,
    case_id: str,
    text: str,
    *,
    free_h: int,
    max_h: int,
) -> str:
    """Queue an officer's reply to the citizen; returns the notify request id."""
    case = await _case(conn, case_id)
    _require_owner(viewer, case)
    text = text.strip()
    if not text:
        raise ActionError("Nội dung trả lời đang trống.")
    if len(text) > MAX_REPLY:
        raise ActionError(f"Nội dung quá dài (tối đa {MAX_REPLY} ký tự).")
    contact = await _recipient(conn, case)
    if contact is None:
        raise ActionError("Không có địa chỉ Zalo để trả lời người báo tin này.")
    window = reply_window(contact["last_interaction_at"], free_h=free_h, max_h=max_h)
    if not window.can_send:
        raise ActionError(
            "Đã quá 7 ngày kể từ tin nhắn cuối của người báo tin: Zalo không cho phép Official "
            "Account gửi tin tư vấn nữa. Chờ người báo tin nhắn lại."
        )
    request_id = await _notify(conn, viewer, case, contact, kind=NotifyKind.REPLY, text=text)
    await _record(conn, viewer, case["id"], "reply", body=text, request_id=request_id)
    if case["status"] == "new":
        await conn.execute(
            "UPDATE cases SET status = 'acknowledged', version = version + 1 WHERE id = $1",
            case["id"],
        )
    return request_id


async def add_note(conn: asyncpg.Connection, viewer: Viewer, case_id: str, text: str) -> None:
    case = await _case(conn, case_id, lock=False)
    text = text.strip()
    if not text:
        raise ActionError("Ghi chú đang trống.")
    await _record(conn, viewer, case["id"], "note", body=text[:5000])


async def change_status(
    conn: asyncpg.Connection, viewer: Viewer, case_id: str, status: str, reason: str = ""
) -> None:
    case = await _case(conn, case_id)
    _require_owner(viewer, case)
    if status not in TRANSITIONS.get(case["status"], set()):
        raise ActionError("Không thể chuyển tin báo sang trạng thái này.")
    reason = reason.strip()
    if status == "rejected" and len(reason) < MIN_REASON:
        raise ActionError("Cần ghi rõ lý do không xử lý (ít nhất 10 ký tự).")
    row = await conn.fetchrow(
        """UPDATE cases SET status = $2, status_reason = nullif($3, ''),
               closed_at = CASE WHEN $2 IN ('closed', 'rejected') THEN now() END,
               version = version + 1
           WHERE id = $1 RETURNING *""",
        case["id"],
        status,
        reason,
    )
    await _record(
        conn,
        viewer,
        case["id"],
        "status",
        body=reason or None,
        data={"from": case["status"], "to": status},
    )
    await _publish(conn, row)


async def assign(
    conn: asyncpg.Connection, viewer: Viewer, case_id: str, account_id: int | None
) -> None:
    case = await _case(conn, case_id)
    _require_owner(viewer, case)
    name = None
    if account_id is not None:
        name = await conn.fetchval(
            """SELECT display_name FROM accounts WHERE id = $1 AND unit_id = $2
                 AND NOT disabled""",
            account_id,
            case["owner_unit_id"],
        )
        if name is None:
            raise ActionError("Chỉ giao được cho cán bộ của đơn vị chủ trì.")
    await conn.execute(
        "UPDATE cases SET assignee_id = $2, version = version + 1 WHERE id = $1",
        case["id"],
        account_id,
    )
    await _record(conn, viewer, case["id"], "assign", body=name, data={"account_id": account_id})


async def transfer(
    conn: asyncpg.Connection, viewer: Viewer, case_id: str, unit_id: str, reason: str
) -> None:
    """Hand the case to another unit; the citizen is told which unit now handles it."""
    case = await _case(conn, case_id)
    _require_owner(viewer, case)
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ActionError("Cần ghi rõ lý do chuyển (ít nhất 10 ký tự).")
    unit = await conn.fetchrow(
        "SELECT id, name FROM units WHERE id = $1 AND active_to IS NULL", unit_id
    )
    if unit is None or unit["id"] == case["owner_unit_id"]:
        raise ActionError("Đơn vị nhận không hợp lệ.")
    contact = await _recipient(conn, case)
    request_id = None
    if contact is not None:
        request_id = await _notify(
            conn,
            viewer,
            case,
            contact,
            kind=NotifyKind.TRANSFER,
            text=(
                f"Tin báo mã {case['reference']} của bạn đã được chuyển tới {unit['name']} "
                "để xử lý theo thẩm quyền. Thông tin và danh tính của bạn tiếp tục được giữ bí "
                "mật. Bạn vẫn nhắn tin tại đây như bình thường."
            ),
        )
    await _record(
        conn,
        viewer,
        case["id"],
        "transfer",
        body=reason,
        data={"from": case["owner_unit_id"], "to": unit["id"], "to_name": unit["name"]},
        request_id=request_id,
    )
    # Last: after it the case is out of this officer's sight (row-level security).
    version = await conn.fetchval(
        "SELECT ketnoi_transfer_case($1, $2, $3)",
        case["id"],
        unit["id"],
        f"officer:{viewer.account_id}",
    )
    await _publish(conn, {**dict(case), "owner_unit_id": unit["id"], "version": version})


async def reclassify(
    conn: asyncpg.Connection,
    viewer: Viewer,
    case_id: str,
    *,
    category: str,
    subcategory: str | None,
    urgency: str,
) -> None:
    """An officer's decision: it wins over triage from now on and is kept as labelled
    feedback (triage_decisions with decided_by operator:<id>)."""
    case = await _case(conn, case_id)
    _require_owner(viewer, case)
    if category not in SUBCATEGORIES or urgency not in {u.value for u in Urgency}:
        raise ActionError("Phân loại không hợp lệ.")
    if subcategory and subcategory not in SUBCATEGORIES[category]:
        raise ActionError("Loại chi tiết không thuộc nhóm đã chọn.")
    decided_by = f"operator:{viewer.account_id}"
    explanation = f"Cán bộ {viewer.display_name} phân loại lại."
    lane = "procedures" if category == "admin" else "none" if category == "other" else "tips"
    if urgency == "emergency" and lane == "none":
        lane = "tips"
    row = await conn.fetchrow(
        """UPDATE cases SET category = $2, subcategory = $3, urgency = $4, decided_by = $5,
               explanation = $6, confidence = 1, lane = $7, version = version + 1
           WHERE id = $1 RETURNING *""",
        case["id"],
        category,
        subcategory or None,
        urgency,
        decided_by,
        explanation,
        lane,
    )
    await conn.execute(
        """INSERT INTO triage_decisions (case_id, version, decided_by, category, subcategory,
               urgency, confidence, explanation, location)
           VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8::jsonb)""",
        case["id"],
        row["version"],
        decided_by,
        category,
        subcategory or None,
        urgency,
        explanation,
        case["location"],
    )
    await _record(
        conn,
        viewer,
        case["id"],
        "reclassify",
        data={
            "from": [case["category"], case["subcategory"], case["urgency"]],
            "to": [category, subcategory, urgency],
        },
    )
    await _publish(conn, row)


async def extend_deadline(
    conn: asyncpg.Connection, viewer: Viewer, case_id: str, reason: str, *, allowed: int
) -> None:
    """Extend the legal deadline of a denunciation or crime report (20 days → 2 months →
    up to 2 more months): unit leads and supervisors only, with a reason."""
    case = await _case(conn, case_id)
    _require_owner(viewer, case)
    if viewer.role.value not in ("lead", "supervisor"):
        raise ActionError("Chỉ lãnh đạo đơn vị mới được gia hạn thời hạn giải quyết.")
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ActionError("Cần ghi rõ lý do gia hạn (ít nhất 10 ký tự).")
    done = await conn.fetchval(
        "SELECT count(*) FROM case_actions WHERE case_id = $1 AND kind = 'extend'", case["id"]
    )
    if done >= allowed:
        raise ActionError("Tin báo đã được gia hạn tối đa theo quy định.")
    await _record(conn, viewer, case["id"], "extend", body=reason, data={"n": done + 1})


async def mark_read(conn: asyncpg.Connection, viewer: Viewer, case_id: uuid.UUID) -> None:
    await conn.execute(
        """INSERT INTO case_reads (account_id, case_id, read_at) VALUES ($1, $2, now())
           ON CONFLICT (account_id, case_id) DO UPDATE SET read_at = now()""",
        viewer.account_id,
        case_id,
    )


@dataclass(frozen=True, slots=True)
class Revealed:
    zalo_user_id: str | None
    name: str | None
    phone: str | None
    anonymous: bool


async def reveal_identity(
    conn: asyncpg.Connection,
    viewer: Viewer,
    case_id: str,
    reason: str,
    *,
    protector: IdentityProtector,
    client: str,
) -> Revealed:
    """The audited reveal: supervisors only, with a written reason, recorded before anything
    is unsealed."""
    if not viewer.can_reveal:
        raise ActionError("Chỉ cán bộ giám sát cấp tỉnh mới được xem danh tính người báo tin.")
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ActionError("Cần ghi rõ lý do xem danh tính (ít nhất 10 ký tự).")
    case = await _case(conn, case_id, lock=False)
    contact = await _recipient(conn, case)
    if contact is None:
        raise ActionError("Không có thông tin danh tính của người báo tin này.")
    await audit(
        conn,
        account_id=viewer.account_id,
        username=viewer.username,
        action="identity.reveal",
        case_id=str(case["id"]),
        unit_id=case["owner_unit_id"],
        reason=reason,
        client=client,
    )

    def unseal(value: str | None, purpose: str) -> str | None:
        return protector.unseal(value, purpose=purpose) if value else None

    return Revealed(
        zalo_user_id=unseal(contact["sealed_user_id"], "zalo_user_id"),
        name=unseal(contact["sealed_name"], "name"),
        phone=unseal(contact["sealed_phone"], "phone"),
        anonymous=contact["anonymous"],
    )
