"""What the operators' dashboards read: the broker (topics, log-end offsets, produce rate,
consumer-group lag, dead-letter topics), the services (``/readyz`` and ``/metrics``) and the
notifier's OA tokens; and the one thing they change: replaying a dead-lettered record.

Offsets, on Tansu and on Apache Kafka alike (docs/console.md, "Operators' dashboards"):

* The embedded Tansu broker answers ListOffsets(latest) with the base offset of the partition's
  last record *batch* plus one, not the log-end offset (5 records produced in one batch: it
  says 1). The high watermark that a Fetch response carries is right on both brokers. So the
  log end is read by seeking to ``listed - 1`` (the last batch on Tansu, the last record on
  Kafka), fetching once, and taking ``max(listed, high watermark, last offset + 1)``.
* Committed offsets come from a consumer created with the group's id and never subscribed
  (OffsetFetch; it never joins the group): the admin client's ListConsumerGroupOffsets fails to
  decode Tansu's answer.
* The produce rate of a topic is the difference of its summed log-end offsets between two
  samples divided by the time between them (the previous sample is kept per process).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import asyncpg
import httpx
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    NOTIFY_RESULTS,
    REPORTS_TRIAGED,
    TOPICS,
    ZALO_EVENTS,
    TopicSpec,
)
from ketnoi_shared.logging import IDENTITY_KEYS, scrub_text

from .access import Viewer
from .auth import audit

__all__ = [
    "CONSUMER_GROUPS",
    "BrokerInspector",
    "DlqRecord",
    "GroupLag",
    "GroupSpec",
    "Offsets",
    "PartitionLag",
    "RateTracker",
    "ReplayError",
    "ServiceHealth",
    "TokenStatus",
    "TopicStats",
    "describe_dlq_record",
    "group_lag",
    "list_dlq",
    "oa_token_status",
    "redact",
    "replay",
    "service_health",
    "service_urls",
    "topic_stats",
]

log = structlog.get_logger("ketnoi.console.ops")


@dataclass(frozen=True, slots=True)
class GroupSpec:
    group: str
    topic: str
    service: str


#: Every consumer group of the services (``group_id=`` in services/*/src; a test keeps this
#: list in step with the code).
CONSUMER_GROUPS: Final = (
    GroupSpec("triage", ZALO_EVENTS.name, "triage"),
    GroupSpec("media", ZALO_EVENTS.name, "media"),
    GroupSpec("news", ZALO_EVENTS.name, "news"),
    GroupSpec("notifier-window", ZALO_EVENTS.name, "notifier"),
    GroupSpec("news-answers", REPORTS_TRIAGED.name, "news"),
    GroupSpec("notifier", NOTIFY_REQUESTS.name, "notifier"),
    GroupSpec("console", NOTIFY_RESULTS.name, "console"),
)

# -- redaction ---------------------------------------------------------------------------------

_DIGITS_RE: Final = re.compile(r"(?<!\d)\d{9,}(?!\d)")
#: Keys whose values are never shown in the DLQ browser: identities (as in the logs) and the
#: content of tips and replies, which administrators do not read.
HIDDEN_KEYS: Final = IDENTITY_KEYS | {
    "description",
    "url",
    "thumbnail",
    "latitude",
    "longitude",
    "location",
    "title",
    "summary",
    "content",
    "question",
    "answer",
    "ward",
    "district",
    "city",
    "file_name",
}
SEALED_PREFIX: Final = "sealed:"
HEX_PREVIEW_BYTES: Final = 64


def redact(text: str) -> str:
    """The logs' scrubbing (Zalo ids, Vietnamese phone numbers) plus any run of 9 or more
    digits."""
    return _DIGITS_RE.sub("[số]", scrub_text(text))


def _mask(value: Any, key: str | None = None, depth: int = 0) -> Any:  # noqa: PLR0911 - one case per kind
    if depth > 8:
        return "[…]"
    if isinstance(value, str) and value.startswith(SEALED_PREFIX):
        return value[:16] + "…"  # kept sealed: a prefix tells the operator what it is
    if key is not None and key.lower() in HIDDEN_KEYS and value not in (None, "", [], {}):
        size = f" · {len(value)} ký tự" if isinstance(value, str) else ""
        return f"[ẩn{size}]"
    if isinstance(value, Mapping):
        return {str(k): _mask(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, key, depth + 1) for v in value]
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        shown = redact(str(value))
        return value if shown == str(value) else shown
    return value


# -- broker ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offsets:
    first: int
    end: int

    @property
    def records(self) -> int:
        return max(0, self.end - self.first)


class BrokerInspector:
    """Read-only views of the broker through long-lived consumers: one without a group for
    offsets and fetches, and one per consumer group (never subscribed) for its commits."""

    def __init__(
        self, bootstrap: str, *, timeout_s: float = 3.0, request_timeout_ms: int = 10_000
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.request_timeout_ms = request_timeout_ms
        self._reader: AIOKafkaConsumer | None = None
        self._groups: dict[str, AIOKafkaConsumer] = {}
        self._lock = asyncio.Lock()  # the reader's assignment and positions are shared state
        # Held while a consumer starts: two first requests at once must not each start one
        # (the loser would be overwritten, never stopped: reliability finding 9).
        self._starting = asyncio.Lock()

    def _consumer(self, group: str | None) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=group,
            client_id="ketnoi-console-ops",
            enable_auto_commit=False,
            auto_offset_reset="latest",  # a vanished offset reads nothing, never all
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=256 * 1024,
            request_timeout_ms=self.request_timeout_ms,
        )

    async def _reader_started(self) -> AIOKafkaConsumer:
        async with self._starting:
            if self._reader is None:
                reader = self._consumer(None)
                await reader.start()
                self._reader = reader
            return self._reader

    async def close(self) -> None:
        async with self._starting:
            consumers = [c for c in (self._reader, *self._groups.values()) if c is not None]
            self._reader, self._groups = None, {}
        for c in consumers:
            await c.stop()

    async def partitions(self, topics: Iterable[str]) -> dict[str, list[TopicPartition]]:
        """The partitions of each topic that exists (metadata refreshed)."""
        reader = await self._reader_started()
        existing = await reader.topics()
        return {
            t: [TopicPartition(t, p) for p in sorted(reader.partitions_for_topic(t) or ())]
            for t in topics
            if t in existing
        }

    async def offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, Offsets]:
        """First and log-end offset of each partition, right on Tansu and Kafka (see the
        module docstring)."""
        if not tps:
            return {}
        reader = await self._reader_started()
        async with self._lock:
            listed = await reader.end_offsets(list(tps))
            first = await reader.beginning_offsets(list(tps))
            ends = {tp: listed[tp] for tp in tps}
            probe = [tp for tp in tps if listed[tp] > first[tp]]
            if probe:
                reader.assign(probe)
                try:
                    for tp in probe:
                        reader.seek(tp, listed[tp] - 1)
                    for tp, (last, highwater) in (await self._fetch_once(reader, probe)).items():
                        ends[tp] = max(ends[tp], last, highwater)
                finally:
                    reader.unsubscribe()
        return {tp: Offsets(first[tp], ends[tp]) for tp in tps}

    async def _fetch_once(
        self, reader: AIOKafkaConsumer, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, int]]:
        """One fetch per partition: (last offset + 1, high watermark)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        pending = set(tps)
        seen: dict[TopicPartition, tuple[int, int]] = {}
        while pending and loop.time() < deadline:
            batch = await reader.getmany(*pending, timeout_ms=200)
            for tp, records in batch.items():
                if records:
                    seen[tp] = (records[-1].offset + 1, reader.highwater(tp) or 0)
                    pending.discard(tp)
                    reader.pause(tp)
        if pending:
            log.warning("log end not confirmed by a fetch", partitions=len(pending))
        return seen

    async def committed(
        self, group: str, tps: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """The group's committed offsets (None: nothing committed on that partition)."""
        async with self._starting:
            consumer = self._groups.get(group)
            if consumer is None:
                consumer = self._consumer(group)
                await consumer.start()
                self._groups[group] = consumer
        found = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
        return dict(zip(tps, found, strict=True))

    async def records(
        self, tp: TopicPartition, start: int, end: int
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The records of ``tp`` with ``start <= offset < end``."""
        if end <= start:
            return []
        reader = await self._reader_started()
        out: list[ConsumerRecord[bytes, bytes]] = []
        loop = asyncio.get_running_loop()
        async with self._lock:
            reader.assign([tp])
            try:
                reader.seek(tp, start)
                deadline = loop.time() + self.timeout_s
                while loop.time() < deadline:
                    batch = await reader.getmany(tp, timeout_ms=200)
                    out.extend(r for r in batch.get(tp, ()) if start <= r.offset < end)
                    if await reader.position(tp) >= end:
                        break
            finally:
                reader.unsubscribe()
        return out


@dataclass(slots=True)
class TopicStats:
    spec: TopicSpec
    exists: bool
    offsets: dict[int, Offsets] = field(default_factory=dict)
    rate: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def end(self) -> int:
        return sum(o.end for o in self.offsets.values())

    @property
    def records(self) -> int:
        return sum(o.records for o in self.offsets.values())


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    end: int
    committed: int | None
    lag: int


@dataclass(slots=True)
class GroupLag:
    spec: GroupSpec
    partitions: list[PartitionLag]
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def committed_any(self) -> bool:
        return any(p.committed is not None for p in self.partitions)


class RateTracker:
    """Produce rates from the previous sample of each topic's summed log-end offsets. Samples
    closer than ``min_interval_s`` keep the last rates (several browsers refresh at once)."""

    def __init__(self, *, min_interval_s: float = 2.0, clock: Any = time.monotonic) -> None:
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._prev: tuple[float, dict[str, int]] | None = None
        self._rates: dict[str, float] = {}

    def update(self, totals: Mapping[str, int]) -> dict[str, float]:
        now = self.clock()
        if self._prev is not None:
            then, before = self._prev
            if now - then < self.min_interval_s:
                return dict(self._rates)
            self._rates = {
                t: max(0, n - before[t]) / (now - then) for t, n in totals.items() if t in before
            }
        self._prev = (now, dict(totals))
        return dict(self._rates)


async def topic_stats(
    inspector: BrokerInspector, specs: Iterable[TopicSpec], rates: RateTracker
) -> list[TopicStats]:
    specs = list(specs)
    parts = await inspector.partitions(s.name for s in specs)
    offsets = await inspector.offsets([tp for tps in parts.values() for tp in tps])
    stats = [
        TopicStats(
            spec=s,
            exists=s.name in parts,
            offsets={tp.partition: offsets[tp] for tp in parts.get(s.name, ())},
        )
        for s in specs
    ]
    measured = rates.update({s.name: s.end for s in stats if s.exists})
    for s in stats:
        s.rate = measured.get(s.name)
    return stats


async def group_lag(
    inspector: BrokerInspector,
    spec: GroupSpec,
    *,
    offsets: Mapping[TopicPartition, Offsets] | None = None,
) -> GroupLag:
    """Lag per partition: log end minus the committed offset (a partition without a commit
    counts from its first offset: every service starts from the earliest record)."""
    parts = (await inspector.partitions([spec.topic])).get(spec.topic)
    if not parts:
        return GroupLag(spec, [], error="Chủ đề chưa được tạo")
    if offsets is None or any(tp not in offsets for tp in parts):
        offsets = await inspector.offsets(parts)
    committed = await inspector.committed(spec.group, parts)
    return GroupLag(
        spec,
        [
            PartitionLag(
                partition=tp.partition,
                end=offsets[tp].end,
                committed=committed[tp],
                lag=max(0, offsets[tp].end - max(committed[tp] or 0, offsets[tp].first)),
            )
            for tp in parts
        ],
    )


# -- dead letters ------------------------------------------------------------------------------


@dataclass(slots=True)
class DlqRecord:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: str
    size: int
    dlq: dict[str, str]
    headers: dict[str, str]
    decoded: bool
    value: str  # masked JSON when decoded, else a hex preview
    event_id: str | None
    replayed: Mapping[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


def _headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", errors="replace") for k, v in record.headers or ()}


def describe_dlq_record(record: ConsumerRecord[bytes, bytes]) -> DlqRecord:
    """A dead-lettered record as operators may see it: identities sealed, content hidden,
    digit runs redacted; an undecodable value only as a hex preview of its first bytes."""
    headers = _headers(record)
    raw = record.value or b""
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = None
        decoded = False
    else:
        decoded = isinstance(parsed, dict | list)
    if decoded:
        value = redact(json.dumps(_mask(parsed), ensure_ascii=False, indent=2))
    else:
        preview = raw[:HEX_PREVIEW_BYTES].hex(" ")
        value = preview + (" …" if len(raw) > HEX_PREVIEW_BYTES else "")
    event_id = headers.get("ketnoi-event-id") or (
        parsed.get("event_id") if isinstance(parsed, dict) else None
    )
    return DlqRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC)
        if record.timestamp
        else None,
        key=redact((record.key or b"").decode("utf-8", errors="replace"))[:120],
        size=len(raw),
        dlq={
            k.removeprefix("x-dlq-"): redact(v)
            for k, v in headers.items()
            if k.startswith("x-dlq-")
        },
        headers={k: redact(v) for k, v in headers.items() if not k.startswith("x-dlq-")},
        decoded=decoded,
        value=value,
        event_id=redact(str(event_id)) if event_id else None,
    )


async def list_dlq(
    inspector: BrokerInspector, pool: asyncpg.Pool, dlq_topic: str, *, limit: int = 50
) -> list[DlqRecord]:
    """The last ``limit`` records of a dead-letter topic, newest first, with their replays."""
    parts = (await inspector.partitions([dlq_topic])).get(dlq_topic, [])
    offsets = await inspector.offsets(parts)
    found: list[DlqRecord] = []
    for tp in parts:
        o = offsets[tp]
        for r in await inspector.records(tp, max(o.first, o.end - limit), o.end):
            found.append(describe_dlq_record(r))
    found.sort(key=lambda r: (r.timestamp or datetime.min.replace(tzinfo=UTC), r.offset))
    found = found[::-1][:limit]
    replays = await pool.fetch(
        """SELECT r.partition, r."offset", r.replayed_at, r.reason, a.username
           FROM dlq_replays r LEFT JOIN accounts a ON a.id = r.replayed_by
           WHERE r.topic = $1""",
        dlq_topic,
    )
    by_ref = {(r["partition"], r["offset"]): dict(r) for r in replays}
    for rec in found:
        rec.replayed = by_ref.get((rec.partition, rec.offset))
    return found


async def replay_counts(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT topic, count(*) AS n FROM dlq_replays GROUP BY topic")
    return {r["topic"]: r["n"] for r in rows}


class ReplayError(Exception):
    """A replay that is refused; the message is for the operator (Vietnamese)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


MIN_REASON: Final = 10


async def replay(
    *,
    pool: asyncpg.Pool,
    inspector: BrokerInspector,
    producer: AIOKafkaProducer,
    viewer: Viewer,
    dlq_topic: str,
    partition: int,
    offset: int,
    reason: str,
    client: str | None = None,
) -> DlqRecord:
    """Republish one dead-lettered record to its original topic: the original value, key and
    headers (minus ``x-dlq-*``, plus ``x-replayed-by`` and ``x-replay-of``).

    A DLQ offset is replayed once: ``dlq_replays`` is written, the audit record appended and
    the record published in one transaction, which commits only after the broker acknowledged
    (acks=all). If the commit itself fails after the publish, an operator may replay again;
    the consumers' inboxes (event_id) make the second delivery a no-op.
    """
    spec = TOPICS.get(dlq_topic)
    if spec is None or spec.dead_letter_of is None:
        raise ReplayError("Không có hàng đợi thư lỗi này.", 404)
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ReplayError(f"Hãy ghi lý do phát lại (ít nhất {MIN_REASON} ký tự).")
    tp = TopicPartition(dlq_topic, partition)
    kept = (
        await inspector.offsets([tp])
        if tp in (await inspector.partitions([dlq_topic])).get(dlq_topic, ())
        else {}
    )
    found = (
        await inspector.records(tp, offset, offset + 1)
        if tp in kept and kept[tp].first <= offset < kept[tp].end
        else []
    )
    if not found:
        raise ReplayError("Không tìm thấy bản ghi này trong hàng đợi thư lỗi.", 404)
    record = found[0]
    headers = _headers(record)
    target = headers.get("x-dlq-original-topic") or spec.dead_letter_of
    if target != spec.dead_letter_of:
        raise ReplayError("Bản ghi ghi nguồn gốc không khớp với hàng đợi; không phát lại.")
    shown = describe_dlq_record(record)
    detail = json.dumps(
        {
            "dlq": shown.ref,
            "original": "/".join(
                (
                    target,
                    shown.dlq.get("original-partition", ""),
                    shown.dlq.get("original-offset", ""),
                )
            ),
            "event_id": shown.event_id,
        }
    )
    out_headers = [
        (k, v) for k, v in record.headers or () if not k.startswith(("x-dlq-", "x-replay"))
    ]
    out_headers += [
        ("x-replayed-by", viewer.username.encode()),
        ("x-replay-of", shown.ref.encode()),
    ]
    async with pool.acquire() as conn:
        async with conn.transaction():
            fresh = await conn.fetchval(
                """INSERT INTO dlq_replays (topic, partition, "offset", original_topic, event_id,
                                            replayed_by, reason)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT DO NOTHING RETURNING true""",
                dlq_topic,
                partition,
                offset,
                target,
                shown.event_id,
                viewer.account_id,
                reason,
            )
            if fresh:
                await audit(
                    conn,
                    account_id=viewer.account_id,
                    username=viewer.username,
                    action="dlq.replay",
                    reason=reason,
                    detail=detail,
                    client=client,
                )
                await producer.send_and_wait(
                    target, value=record.value, key=record.key, headers=out_headers
                )
        if not fresh:
            await audit(
                conn,
                account_id=viewer.account_id,
                username=viewer.username,
                action="dlq.replay.refused",
                reason=reason,
                detail=detail,
                client=client,
            )
            raise ReplayError("Bản ghi này đã được phát lại; không phát lại lần nữa.", 409)
    log.info("dead letter replayed", dlq=shown.ref, target=target)
    return shown


# -- services ----------------------------------------------------------------------------------


def service_urls(configured: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """The services to watch: the configured mapping, else ``endpoints.json`` of ``ketnoi
    up``."""
    if configured:
        return dict(configured)
    path = data_dir / "endpoints.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {name: svc["url"] for name, svc in state.get("services", {}).items() if "url" in svc}


#: Metrics summed per service for the health table (absent ones are not shown).
METRICS: Final = {
    "received": "faststream_received_messages_total",
    "errors": "faststream_received_processed_messages_exceptions_total",
    "retries": "ketnoi_consumer_retries_total",
    "dead_lettered": "ketnoi_dead_lettered_total",
    "duplicates": "ketnoi_inbox_duplicates_total",
    "outbox_pending": "ketnoi_outbox_pending",
}


@dataclass(slots=True)
class ServiceHealth:
    name: str
    url: str
    state: str  # ready | not_ready | unreachable
    checks: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _sum_metrics(text: str) -> dict[str, float]:
    wanted = {v: k for k, v in METRICS.items()}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                key = wanted[sample.name]
                sums[key] = sums.get(key, 0.0) + sample.value
    return sums


async def _one_service(client: httpx.AsyncClient, name: str, url: str) -> ServiceHealth:
    base = url.rstrip("/")
    try:
        ready, metrics = await asyncio.gather(
            client.get(base + "/readyz"), client.get(base + "/metrics"), return_exceptions=True
        )
        if isinstance(ready, BaseException):
            raise ready
    except (httpx.HTTPError, OSError) as exc:
        return ServiceHealth(name, url, "unreachable", error=type(exc).__name__)
    checks: dict[str, bool] = {}
    try:
        body = ready.json()
        checks = {str(k): bool(v) for k, v in (body.get("checks") or {}).items()}
    except (ValueError, AttributeError):
        pass
    sums: dict[str, float] = {}
    if isinstance(metrics, httpx.Response) and metrics.status_code == 200:
        try:
            sums = _sum_metrics(metrics.text)
        except ValueError:
            sums = {}
    state = "ready" if ready.status_code == 200 else "not_ready"
    return ServiceHealth(
        name, url, state, checks, sums, None if state == "ready" else f"HTTP {ready.status_code}"
    )


async def service_health(client: httpx.AsyncClient, urls: Mapping[str, str]) -> list[ServiceHealth]:
    """``/readyz`` and ``/metrics`` of every service, concurrently (the client's timeout)."""
    return list(await asyncio.gather(*(_one_service(client, n, u) for n, u in urls.items())))


# -- OA tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenStatus:
    oa_id: str
    units: str
    state: str  # valid | expired | needs_reauth
    expires_in_h: float
    refreshed_at: datetime
    last_error: str | None


async def oa_token_status(pool: asyncpg.Pool) -> list[TokenStatus]:
    """The notifier's OA tokens, without the sealed token columns."""
    rows = await pool.fetch(
        """SELECT t.oa_id, t.access_expires_at, t.refreshed_at, t.needs_reauth, t.last_error,
                  (SELECT string_agg(u.name, ', ' ORDER BY u.name) FROM units u
                   WHERE t.oa_id = ANY(u.oa_ids)) AS units
           FROM oa_tokens t ORDER BY t.needs_reauth DESC, t.access_expires_at"""
    )
    now = datetime.now(UTC)
    out = []
    for r in rows:
        left = (r["access_expires_at"] - now).total_seconds() / 3600
        state = "needs_reauth" if r["needs_reauth"] else ("valid" if left > 0 else "expired")
        out.append(
            TokenStatus(
                oa_id=r["oa_id"],
                units=r["units"] or "",
                state=state,
                expires_in_h=round(left, 1),
                refreshed_at=r["refreshed_at"],
                last_error=redact(r["last_error"]) if r["last_error"] else None,
            )
        )
    return out


def broker_error(exc: BaseException) -> str:
    """A short, payload-free description of a broker failure for the page."""
    if isinstance(exc, KafkaError | OSError | TimeoutError):
        return type(exc).__name__
    return "Lỗi không xác định"
