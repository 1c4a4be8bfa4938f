"""Escalations: raised once per case and kind by a periodic job of the console.

* ``emergency_unanswered``: an open emergency with no officer's reply past its first-reply
  target;
* ``reply_window_closing``: an open case whose citizen has had no officer's reply since their
  last message, and whose 7-day Zalo reply window closes within the warning period.

Raising an escalation copies the case, for information, to the duty desk of the owner's
province (so the desk sees it under row-level security) and inserts one ``escalations`` row:
the primary key (case, kind) makes it fire once, even with several console replicas. The
insert wakes every console page that can see the case; leads and the duty desk see the
alert banner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
import structlog

from .clocks import Policy

__all__ = ["raise_escalations"]

log = structlog.get_logger("ketnoi.console.escalation")

REPLY_WINDOW: Final = timedelta(days=7)

_COPY_TO_DESK: Final = """
UPDATE cases c SET info_unit_ids = array_append(c.info_unit_ids, d.id), version = c.version + 1
FROM units o, units d
WHERE c.id = $1 AND o.id = c.owner_unit_id AND d.kind = 'duty_desk'
  AND d.parent_id IS NOT DISTINCT FROM coalesce(o.parent_id, o.id)
  AND d.id <> c.owner_unit_id AND NOT d.id = ANY (c.info_unit_ids)
"""


async def raise_escalations(
    pool: asyncpg.Pool, policy: Policy, *, now: datetime | None = None
) -> int:
    """Raise the escalations that are due; returns how many were raised now."""
    now = now or datetime.now(UTC)
    emergency_target = policy.first_reply["emergency"]
    raised = 0
    async with pool.acquire() as conn, conn.transaction():
        emergencies = await conn.fetch(
            """SELECT c.id FROM cases c
               WHERE c.urgency = 'emergency' AND c.status IN ('new', 'acknowledged', 'verifying')
                 AND c.opened_at < $1
                 AND NOT EXISTS (SELECT 1 FROM case_actions a
                                 WHERE a.case_id = c.id AND a.kind = 'reply')
                 AND NOT EXISTS (SELECT 1 FROM escalations e
                                 WHERE e.case_id = c.id AND e.kind = 'emergency_unanswered')""",
            now - emergency_target,
        )
        closing = await conn.fetch(
            """SELECT c.id, k.last_interaction_at FROM cases c
               JOIN citizen_contacts k ON k.oa_id = c.oa_id
                                      AND k.citizen_pseudonym = c.citizen_pseudonym
               WHERE c.status IN ('new', 'acknowledged', 'verifying') AND c.lane = 'tips'
                 AND k.last_interaction_at + $2::interval < $1
                 AND k.last_interaction_at + $3::interval > $1
                 AND NOT EXISTS (SELECT 1 FROM case_actions a WHERE a.case_id = c.id
                                   AND a.kind = 'reply' AND a.at > k.last_interaction_at)
                 AND NOT EXISTS (SELECT 1 FROM escalations e
                                 WHERE e.case_id = c.id AND e.kind = 'reply_window_closing')""",
            now,
            REPLY_WINDOW - policy.reply_window_warning,
            REPLY_WINDOW,
        )
        for kind, rows in (
            ("emergency_unanswered", emergencies),
            ("reply_window_closing", closing),
        ):
            for r in rows:
                status = await conn.execute(
                    """INSERT INTO escalations (case_id, kind, raised_at) VALUES ($1, $2, $3)
                       ON CONFLICT DO NOTHING""",
                    r["id"],
                    kind,
                    now,
                )
                if status.endswith(" 1"):
                    await conn.execute(_COPY_TO_DESK, r["id"])
                    raised += 1
    if raised:
        log.warning("escalations raised", count=raised)
    return raised
