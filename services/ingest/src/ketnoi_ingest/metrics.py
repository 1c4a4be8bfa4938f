"""Ingest's domain metrics (labels carry reasons and paths, never identities)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import Counter, Histogram

from ketnoi_shared.metrics import REGISTRY

__all__ = [
    "ACCEPTED",
    "ACK_LATENCY",
    "BATCH_SIZE",
    "DROPPED",
    "DUPLICATES",
    "RECEIVED",
    "REJECTED",
    "accepted",
    "dropped",
    "rejected",
]

RECEIVED: Final = Counter(
    "ketnoi_ingest_received_total", "Webhook requests received.", registry=REGISTRY
)
ACCEPTED: Final = Counter(
    "ketnoi_ingest_accepted_total",
    "Events made durable, by path (kafka: acked by the broker; spool: written to PostgreSQL).",
    ["path"],
    registry=REGISTRY,
)
REJECTED: Final = Counter(
    "ketnoi_ingest_rejected_total",
    "Webhook requests refused, by reason.",
    ["reason"],
    registry=REGISTRY,
)
DUPLICATES: Final = Counter(
    "ketnoi_ingest_duplicates_total",
    "Redeliveries and retries recognised at the edge and not published again.",
    registry=REGISTRY,
)
DROPPED: Final = Counter(
    "ketnoi_ingest_dropped_total",
    "Verified events deliberately not published, by reason (oa_echo: our own API sends).",
    ["reason"],
    registry=REGISTRY,
)
ACK_LATENCY: Final = Histogram(
    "ketnoi_ingest_ack_seconds",
    "Time from request received to the 200 answer (event durable).",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 5.0),
    registry=REGISTRY,
)
BATCH_SIZE: Final = Histogram(
    "ketnoi_ingest_batch_size",
    "Webhooks made durable together in one database transaction and Kafka round trip.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)


def _by_label(metric: Counter, label: str) -> Callable[[str], Counter]:
    """The series of ``metric`` for one label value, resolved on first use and then kept
    (``.labels()`` takes a lock and builds its key on every call, which showed in the hot
    path's profile). A series still appears in /metrics only once it has been used. Label
    values are this service's own constants, so the cache stays small."""
    cache: dict[str, Counter] = {}

    def child(value: str) -> Counter:
        found = cache.get(value)
        if found is None:
            found = cache[value] = metric.labels(**{label: value})
        return found

    return child


#: ``accepted("kafka")`` is ``ACCEPTED.labels(path="kafka")``, without the per-call cost.
accepted: Final = _by_label(ACCEPTED, "path")
rejected: Final = _by_label(REJECTED, "reason")
dropped: Final = _by_label(DROPPED, "reason")
