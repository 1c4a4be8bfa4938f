"""The process's Prometheus registry and the domain counters shared by every service.

FastStream's Prometheus middleware writes its handler metrics into the same registry, so one
/metrics endpoint shows both. Labels never carry identities: topic names, reasons, services.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = [
    "CONSUMER_RETRIES",
    "DEAD_LETTERED",
    "INBOX_DUPLICATES",
    "OUTBOX_PENDING",
    "OUTBOX_PUBLISHED",
    "RECONCILE_GIVEN_UP",
    "RECONCILE_REPUBLISHED",
    "REGISTRY",
]

REGISTRY: Final = CollectorRegistry(auto_describe=True)

DEAD_LETTERED: Final = Counter(
    "ketnoi_dead_lettered_total",
    "Messages sent to a dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
    registry=REGISTRY,
)
CONSUMER_RETRIES: Final = Counter(
    "ketnoi_consumer_retries_total",
    "Re-attempts of a message by a consumer, by topic and kind (deterministic/transient).",
    ["topic", "kind"],
    registry=REGISTRY,
)
INBOX_DUPLICATES: Final = Counter(
    "ketnoi_inbox_duplicates_total",
    "Redelivered events skipped by a consumer's inbox.",
    ["consumer"],
    registry=REGISTRY,
)
OUTBOX_PUBLISHED: Final = Counter(
    "ketnoi_outbox_published_total",
    "Outbox rows relayed to Kafka, by topic.",
    ["topic"],
    registry=REGISTRY,
)
OUTBOX_PENDING: Final = Gauge(
    "ketnoi_outbox_pending",
    "Outbox rows waiting to be relayed (at the last relay pass).",
    registry=REGISTRY,
)
RECONCILE_REPUBLISHED: Final = Counter(
    "ketnoi_reconcile_republished_total",
    "Outbox rows published again because their effect was missing (a broker lost them).",
    ["topic"],
    registry=REGISTRY,
)
RECONCILE_GIVEN_UP: Final = Counter(
    "ketnoi_reconcile_given_up_total",
    "Outbox rows still without their effect after every republish (an operator must look).",
    ["topic"],
    registry=REGISTRY,
)
