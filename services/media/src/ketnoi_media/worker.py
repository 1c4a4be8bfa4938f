"""The media worker's unit of work: one ``zalo.events.v1`` event → one ``media_objects`` row per
downloadable attachment.

Idempotent: positions of the event already in ``media_objects`` are not fetched again (a
redelivery after a crash resumes where it stopped), each row is inserted with ``ON CONFLICT DO
NOTHING``, and the inbox claim marks the event done. Download and content failures become
rows (``rejected`` or ``failed``) and never an exception; only a database failure escapes, and
the consumer middleware pauses the partition on it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import structlog

from ketnoi_shared.contracts import Attachment, EventKind, ZaloEvent
from ketnoi_shared.db import claim
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.metrics import INBOX_DUPLICATES

from .fetch import Fetcher, FetchError, TransientError, url_host
from .metrics import BYTES, DOWNLOADS, DURATION, RETRIES
from .process import Processed, process
from .settings import MediaSettings

__all__ = ["CONSUMER", "MEDIA_KINDS", "MediaWorker", "media_jobs"]

log = structlog.get_logger("ketnoi.media")

CONSUMER: Final = "media"
MEDIA_KINDS: Final = frozenset({"image", "gif", "video", "audio", "file"})

_INSERT: Final = """
INSERT INTO media_objects (event_id, msg_id, position, oa_id, citizen_pseudonym, kind, status,
    error, content_type, file_name, size_bytes, sha256, sealed_original, display,
    display_content_type, attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (event_id, position) DO NOTHING
"""


def media_jobs(event: ZaloEvent) -> list[tuple[int, Attachment]]:
    """(position, attachment) of every downloadable attachment of a citizen's message."""
    if event.kind is not EventKind.MESSAGE or event.citizen is None or event.message is None:
        return []
    return [
        (position, att)
        for position, att in enumerate(event.message.attachments)
        if att.type in MEDIA_KINDS and att.url
    ]


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str
    error: str | None = None
    content_type: str | None = None
    processed: Processed | None = None
    attempts: int = 0


class MediaWorker:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        fetcher: Fetcher,
        protector: IdentityProtector,
        settings: MediaSettings,
    ) -> None:
        self.pool = pool
        self.fetcher = fetcher
        self.protector = protector
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.media_concurrency)

    async def handle(self, event: ZaloEvent) -> int:
        """Fetch and store the event's attachments; returns how many rows were written."""
        jobs = media_jobs(event)
        if not jobs:
            return 0
        async with self.pool.acquire() as conn:
            if await conn.fetchval(
                "SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2",
                CONSUMER,
                event.event_id,
            ):
                INBOX_DUPLICATES.labels(consumer=CONSUMER).inc()
                return 0
            done = {
                r["position"]
                for r in await conn.fetch(
                    "SELECT position FROM media_objects WHERE event_id = $1", event.event_id
                )
            }
        pending = [(p, a) for p, a in jobs if p not in done]
        results = await asyncio.gather(
            *(self._one(event, p, a) for p, a in pending), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result  # a database failure: the partition pauses, the event comes again
        async with self.pool.acquire() as conn:
            await claim(conn, consumer=CONSUMER, event_id=event.event_id)
        return sum(1 for r in results if r)

    async def _one(self, event: ZaloEvent, position: int, att: Attachment) -> bool:
        assert att.url is not None
        started = time.monotonic()
        async with self._slots:
            outcome = await self._fetch(att.type, att)
            written = await self._save(event, position, att, outcome)
        seconds = time.monotonic() - started
        DOWNLOADS.labels(att.type, outcome.status, outcome.error or "ok").inc()
        DURATION.labels(att.type, outcome.status).observe(seconds)
        if outcome.attempts > 1:
            RETRIES.labels(att.type).inc(outcome.attempts - 1)
        if outcome.processed is not None:
            BYTES.labels(att.type).inc(outcome.processed.size)
        log.info(
            "attachment handled",
            position=position,
            kind=att.type,
            status=outcome.status,
            reason=outcome.error,
            content_type=outcome.content_type,
            size_bytes=outcome.processed.size if outcome.processed else None,
            attempts=outcome.attempts,
            seconds=round(seconds, 3),
            host=url_host(att.url),
            duplicate=not written,
        )
        return written

    async def _fetch(self, kind: str, att: Attachment) -> _Outcome:
        assert att.url is not None
        s = self.settings
        cap = s.max_bytes(kind)
        if att.size is not None and att.size > cap:
            return _Outcome("rejected", "too_large")  # Zalo says so: not even asked for
        try:
            download = await self.fetcher.fetch(att.url, max_bytes=cap)
        except TransientError as exc:
            return _Outcome("failed", exc.reason, attempts=exc.attempts)
        except FetchError as exc:
            return _Outcome("rejected", exc.reason, attempts=exc.attempts)
        try:
            processed = await asyncio.to_thread(
                process,
                kind,
                download.body,
                protector=self.protector,
                max_pixels=s.media_max_pixels,
                max_side=s.media_display_max_side,
                jpeg_quality=s.media_display_jpeg_quality,
            )
        except FetchError as exc:
            return _Outcome(
                "rejected", exc.reason, content_type=exc.content_type, attempts=download.attempts
            )
        return _Outcome(
            "stored",
            content_type=processed.content_type,
            processed=processed,
            attempts=download.attempts,
        )

    async def _save(
        self, event: ZaloEvent, position: int, att: Attachment, outcome: _Outcome
    ) -> bool:
        assert event.citizen is not None
        assert event.message is not None
        p = outcome.processed
        values: tuple[Any, ...] = (
            event.event_id,
            event.message.msg_id,
            position,
            event.oa_id,
            event.citizen.pseudonym,
            att.type,
            outcome.status,
            outcome.error,
            outcome.content_type,
            att.name,
            p.size if p else None,
            p.sha256 if p else None,
            p.sealed_original if p else None,
            p.display if p else None,
            p.display_content_type if p else None,
            outcome.attempts,
        )
        status: str = await self.pool.execute(_INSERT, *values)
        return status.endswith(" 1")
