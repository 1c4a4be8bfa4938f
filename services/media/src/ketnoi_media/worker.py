"""The media worker's units of work.

* :meth:`MediaWorker.handle` — one ``zalo.events.v1`` event → one ``media_objects`` row per
  downloadable attachment, ``pending`` with its URL sealed (or ``rejected`` at once when Zalo
  declares it too large), in the transaction that claims the event in the inbox. No network:
  the consumer commits its offset as soon as the work is durable, and a URL that hangs never
  holds up a partition (reliability finding 10: one hanging URL stopped every attachment on
  its consumer's partitions for ~49 s).
* :meth:`MediaWorker.run` — the downloader: leases pending rows (``FOR UPDATE SKIP LOCKED``,
  any replica), fetches up to ``media_concurrency`` at once whatever partition they came from,
  and settles each row ``stored``, ``rejected`` or ``failed``. A row whose downloader died is
  leased again when its lease ends, at most ``_MAX_LEASES`` times, then settled ``failed``
  (``abandoned``), so a URL that kills the process cannot loop.

Idempotent: rows are inserted with ``ON CONFLICT DO NOTHING`` and settled only while pending;
download and content failures become rows, never exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import stamina
import structlog

from ketnoi_shared.contracts import Attachment, EventKind, ZaloEvent
from ketnoi_shared.db import claim
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import is_transient

from .fetch import Fetcher, FetchError, TransientError, url_host
from .metrics import BYTES, DOWNLOADS, DURATION, IN_FLIGHT, RETRIES
from .process import Processed, process
from .settings import MediaSettings

__all__ = ["CONSUMER", "MEDIA_KINDS", "MediaWorker", "media_jobs"]

log = structlog.get_logger("ketnoi.media")

CONSUMER: Final = "media"
MEDIA_KINDS: Final = frozenset({"image", "gif", "video", "audio", "file"})

URL_PURPOSE: Final = "media_url"
#: Settling a downloaded attachment is retried on transient failures (the database's
#: connection lost, reset or slow; the statement is idempotent), this many times within this
#: many seconds.
_SETTLE_ATTEMPTS: Final = 8
_SETTLE_TIMEOUT_S: Final = 30.0

#: A pending row is leased at most this many times (a downloader that keeps dying on it).
_MAX_LEASES: Final = 3

_RECORD: Final = """
INSERT INTO media_objects (event_id, msg_id, position, oa_id, citizen_pseudonym, kind, status,
    error, file_name, sealed_url)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (event_id, position) DO NOTHING
"""

_LEASE: Final = """
UPDATE media_objects o SET lease_until = now() + make_interval(secs => $2), leases = o.leases + 1
FROM (SELECT id FROM media_objects
      WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < now())
      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) p
WHERE o.id = p.id
RETURNING o.id, o.kind, o.sealed_url, o.leases
"""

_SETTLE: Final = """
UPDATE media_objects SET status = $2, error = $3, content_type = $4, size_bytes = $5,
    sha256 = $6, sealed_original = $7, display = $8, display_content_type = $9, attempts = $10,
    sealed_url = NULL, lease_until = NULL, fetched_at = now()
WHERE id = $1 AND status = 'pending'
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


def _observe(kind: str, outcome: _Outcome, seconds: float, url: str) -> None:
    """The metrics and the log line of a settled attachment (the URL's host only)."""
    DOWNLOADS.labels(kind, outcome.status, outcome.error or "ok").inc()
    DURATION.labels(kind, outcome.status).observe(seconds)
    if outcome.attempts > 1:
        RETRIES.labels(kind).inc(outcome.attempts - 1)
    if outcome.processed is not None:
        BYTES.labels(kind).inc(outcome.processed.size)
    log.info(
        "attachment handled",
        kind=kind,
        status=outcome.status,
        reason=outcome.error,
        content_type=outcome.content_type,
        size_bytes=outcome.processed.size if outcome.processed else None,
        attempts=outcome.attempts,
        seconds=round(seconds, 3),
        host=url_host(url),
    )


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
        self._wake = asyncio.Event()
        self._downloads: dict[int, asyncio.Task[None]] = {}  # row id → its download

    # -- the consumer's part: record the work ------------------------------------------------

    async def handle(self, event: ZaloEvent) -> int:
        """Record the event's attachments as work to do; returns how many rows were written
        (0 for an event without attachments or one already handled)."""
        jobs = media_jobs(event)
        if not jobs:
            return 0
        assert event.citizen is not None
        assert event.message is not None
        written = 0
        refused: list[Attachment] = []
        async with self.pool.acquire() as conn, conn.transaction():
            if not await claim(conn, consumer=CONSUMER, event_id=event.event_id):
                return 0
            for position, att in jobs:
                assert att.url is not None
                too_large = att.size is not None and att.size > self.settings.max_bytes(att.type)
                status: str = await conn.execute(
                    _RECORD,
                    event.event_id,
                    event.message.msg_id,
                    position,
                    event.oa_id,
                    event.citizen.pseudonym,
                    att.type,
                    "rejected" if too_large else "pending",
                    "too_large" if too_large else None,  # Zalo says so: not even asked for
                    att.name,
                    None
                    if too_large
                    else self.protector.seal_bytes(att.url.encode(), purpose=URL_PURPOSE),
                )
                if status.endswith(" 1"):
                    written += 1
                    if too_large:
                        refused.append(att)
        for att in refused:
            _observe(att.type, _Outcome("rejected", "too_large"), 0.0, att.url or "")
        self._wake.set()
        return written

    # -- the downloader ------------------------------------------------------------------------

    @property
    def lease_s(self) -> float:
        """Longest a download may take before its row is taken again: every attempt to its
        deadline, the backoffs between them, and a minute for processing."""
        s = self.settings
        return s.media_fetch_attempts * (s.media_download_deadline_s + 10.0) + 60.0

    async def run(self) -> None:
        """Download pending attachments until cancelled."""
        try:
            while True:
                free = self.settings.media_concurrency - len(self._downloads)
                leased = 0
                if free > 0:
                    try:
                        leased = await self.run_once(free)
                    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                        log.warning("leasing attachments failed", error=type(exc).__name__)
                if leased and leased == free:
                    continue  # maybe more: look again once a slot frees up
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.media_poll_s):
                        await self._wake.wait()
        finally:
            await self._release()

    async def run_once(self, limit: int) -> int:
        """Lease up to ``limit`` pending rows and start their downloads; returns how many."""
        rows = await self.pool.fetch(_LEASE, limit, self.lease_s)
        for row in rows:
            task = asyncio.create_task(self._download(row))
            self._downloads[row["id"]] = task
            task.add_done_callback(functools.partial(self._done, row["id"]))
        return len(rows)

    def _done(self, row_id: int, _: asyncio.Task[None]) -> None:
        self._downloads.pop(row_id, None)
        self._wake.set()  # a slot is free

    async def drain(self) -> None:
        """Wait for the downloads in flight (tests)."""
        while self._downloads:
            await asyncio.gather(*self._downloads.values(), return_exceptions=True)

    async def _release(self) -> None:
        """On shutdown: stop the downloads in flight and hand their rows back at once."""
        ids = list(self._downloads)
        for task in list(self._downloads.values()):
            task.cancel()
        await asyncio.gather(*self._downloads.values(), return_exceptions=True)
        if ids:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                await self.pool.execute(
                    """UPDATE media_objects SET lease_until = NULL, leases = leases - 1
                       WHERE id = ANY($1::bigint[]) AND status = 'pending'""",
                    ids,
                )

    async def _download(self, row: asyncpg.Record) -> None:
        kind: str = row["kind"]
        started = time.monotonic()
        IN_FLIGHT.inc()
        url = ""
        try:
            try:
                url = self.protector.unseal_bytes(row["sealed_url"], purpose=URL_PURPOSE).decode()
            except Exception:  # a key that is not this one's (rotated away): cannot be fetched
                outcome = _Outcome("failed", "unreadable")
            else:
                if row["leases"] > _MAX_LEASES:
                    outcome = _Outcome("failed", "abandoned")
                else:
                    outcome = await self._fetch(kind, url)
            try:
                # Retried for a while: the download is done and in memory, and a row whose
                # settle is given up waits for its lease to end (reliability finding 17: with
                # PostgreSQL connections reset every 2 s, stored 271 s after its message).
                async for attempt in stamina.retry_context(
                    on=is_transient, attempts=_SETTLE_ATTEMPTS, timeout=_SETTLE_TIMEOUT_S
                ):
                    with attempt:
                        await self._settle(row["id"], outcome)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The lease ends and the row is taken again: downloaded twice, stored once.
                log.warning("settling an attachment failed", error=type(exc).__name__)
                return
        finally:
            IN_FLIGHT.dec()
        _observe(kind, outcome, time.monotonic() - started, url)

    async def _fetch(self, kind: str, url: str) -> _Outcome:
        s = self.settings
        try:
            download = await self.fetcher.fetch(url, max_bytes=s.max_bytes(kind))
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

    async def _settle(self, row_id: int, outcome: _Outcome) -> None:
        p = outcome.processed
        values: tuple[Any, ...] = (
            row_id,
            outcome.status,
            outcome.error,
            outcome.content_type,
            p.size if p else None,
            p.sha256 if p else None,
            p.sealed_original if p else None,
            p.display if p else None,
            p.display_content_type if p else None,
            outcome.attempts,
        )
        await self.pool.execute(_SETTLE, *values)
