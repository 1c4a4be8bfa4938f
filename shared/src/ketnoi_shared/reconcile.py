"""End-to-end reconciliation: publish again what the broker lost.

A broker can lose writes it acknowledged: the embedded Tansu broker keeps everything in memory,
so a restart loses every record not yet consumed, and a real cluster can lose acknowledged
writes in an unclean leader election. The consumers' inboxes make a second copy harmless, so
the remedy is to publish again whatever has not produced its effect.

What makes that possible is in PostgreSQL already: every event ingest accepts and every message
a service sends (acknowledgements, replies) is an ``outbox`` row, kept after it is published;
and each consumer leaves a durable trace of every record it handled. :data:`EFFECTS` names,
per topic, the trace that shows a record was consumed. A pass finds rows published more than
``after_s`` ago without their trace and marks them pending again; the outbox relay publishes
them on its next pass, in id order.

Bounds, so that a reconciler can never become a retry storm:

* a row is republished at most ``max_attempts`` times (a record its consumer dead-letters never
  leaves the trace; after the last attempt it is counted in
  ``ketnoi_reconcile_given_up_total`` and logged by event id, for an operator);
* a republished row waits ``after_s`` again (counted from its new publication) before it can be
  picked again;
* at most ``batch`` rows per topic and pass, published within ``horizon_s`` before that.

A consumer that lags by more than ``after_s`` gets copies of records it would have consumed
anyway: they cost a lookup in its inbox and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import asyncpg
import structlog

from .contracts import NOTIFY_REQUESTS, ZALO_EVENTS
from .metrics import RECONCILE_GIVEN_UP, RECONCILE_REPUBLISHED

__all__ = ["EFFECTS", "Effect", "reconcile_once"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Effect:
    """The durable trace a record of ``topic`` leaves once ``consumer`` handled it: an SQL
    condition on the outbox row ``o``."""

    topic: str
    consumer: str
    exists_sql: str


EFFECTS: Final[tuple[Effect, ...]] = (
    # Triage claims every event it consumes (those it ignores too) in its inbox.
    Effect(
        ZALO_EVENTS.name,
        "triage",
        "EXISTS (SELECT 1 FROM inbox i WHERE i.consumer = 'triage' AND i.event_id = o.event_id)",
    ),
    # The notifier writes its ledger row before anything else it does with a request.
    Effect(
        NOTIFY_REQUESTS.name,
        "notifier",
        "EXISTS (SELECT 1 FROM notify_ledger l WHERE l.request_id = o.event_id)",
    ),
)


async def reconcile_once(
    conn: asyncpg.Connection,
    *,
    after_s: float,
    max_attempts: int = 2,
    batch: int = 500,
    horizon_s: float = 6 * 3600,
    effects: tuple[Effect, ...] = EFFECTS,
) -> dict[str, int]:
    """Mark for publishing again the rows of ``effects``' topics that have not produced their
    effect ``after_s`` seconds after they were published (and no more than ``horizon_s``
    before that: each pass looks at a window, not the whole retained outbox); returns how many
    per topic.

    Run it under the relay's lock (one reconciler per database), in a transaction."""
    out: dict[str, int] = {}
    for effect in effects:
        rows = await conn.fetch(
            f"""WITH lost AS (
                    SELECT o.id FROM outbox o
                    WHERE o.topic = $1
                      AND o.published_at < now() - make_interval(secs => $2)
                      AND o.published_at > now() - make_interval(secs => $5)
                      AND o.reconciled <= $3
                      AND NOT {effect.exists_sql}
                    ORDER BY o.id LIMIT $4
                    FOR UPDATE SKIP LOCKED)
                UPDATE outbox o
                   SET published_at = CASE WHEN o.reconciled < $3 THEN NULL
                                           ELSE o.published_at END,
                       reconciled = o.reconciled + 1
                  FROM lost WHERE o.id = lost.id
                RETURNING o.event_id, o.reconciled > $3 AS given_up""",  # noqa: S608 - EFFECTS are constants
            effect.topic,
            after_s,
            max_attempts,
            batch,
            after_s + horizon_s,
        )
        again = [r["event_id"] for r in rows if not r["given_up"]]
        given_up = [r["event_id"] for r in rows if r["given_up"]]
        if again:
            RECONCILE_REPUBLISHED.labels(topic=effect.topic).inc(len(again))
            log.warning(
                "records without their effect published again",
                topic=effect.topic,
                consumer=effect.consumer,
                count=len(again),
                event_ids=again[:20],
            )
        if given_up:
            RECONCILE_GIVEN_UP.labels(topic=effect.topic).inc(len(given_up))
            log.error(
                "records still without their effect after every republish",
                topic=effect.topic,
                consumer=effect.consumer,
                count=len(given_up),
                event_ids=given_up[:20],
            )
        out[effect.topic] = len(again)
    return out
