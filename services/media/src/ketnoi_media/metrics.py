"""Media worker metrics, in the process registry. Labels are bounded: kinds, statuses,
reasons — never a URL, a host or an identity."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

from ketnoi_shared.metrics import REGISTRY

__all__ = ["BYTES", "DOWNLOADS", "DURATION", "IN_FLIGHT", "RETRIES"]

DOWNLOADS: Final = Counter(
    "ketnoi_media_downloads_total",
    "Attachments handled, by kind, status (stored/rejected/failed) and reason.",
    ["kind", "status", "reason"],
    registry=REGISTRY,
)
BYTES: Final = Counter(
    "ketnoi_media_bytes_total",
    "Bytes of originals stored, by kind.",
    ["kind"],
    registry=REGISTRY,
)
DURATION: Final = Histogram(
    "ketnoi_media_download_seconds",
    "Time to fetch and process one attachment (retries included), by kind and status.",
    ["kind", "status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
RETRIES: Final = Counter(
    "ketnoi_media_fetch_retries_total",
    "Download attempts beyond the first, by kind.",
    ["kind"],
    registry=REGISTRY,
)
IN_FLIGHT: Final = Gauge(
    "ketnoi_media_downloads_in_flight",
    "Attachments being downloaded now (at most KETNOI_MEDIA_CONCURRENCY per process).",
    registry=REGISTRY,
)
