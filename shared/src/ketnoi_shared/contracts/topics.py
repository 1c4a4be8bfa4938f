"""The single registry of Kafka topics: name, partitions, key, value model, retention.

Every producer and consumer takes its topic from here; ``ketnoi topics`` creates them, the
README's topics table and the AsyncAPI document are generated from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from .base import Envelope
from .cases import TriagedCase
from .news import NewsItem
from .notify import NotifyRequest, NotifyResult
from .zalo import ZaloEvent

__all__ = [
    "DLQ_SUFFIX",
    "NEWS_ITEMS",
    "NOTIFY_REQUESTS",
    "NOTIFY_RESULTS",
    "REPORTS_TRIAGED",
    "TOPICS",
    "ZALO_EVENTS",
    "TopicSpec",
    "all_topics",
    "dlq_of",
]

DAY_MS: Final = 24 * 3600 * 1000
DLQ_SUFFIX: Final = ".dlq"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    value_model: type[Envelope] | None
    retention_ms: int
    description: str
    consumed: bool = True
    dead_letter_of: str | None = None

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


ZALO_EVENTS: Final = TopicSpec(
    name="zalo.events.v1",
    partitions=12,
    key="citizen pseudonym (else oa:<OA id>): one citizen's messages stay ordered",
    value_model=ZaloEvent,
    retention_ms=7 * DAY_MS,
    description="Verified Zalo OA webhook events, normalised, identities pseudonymised/sealed.",
)
REPORTS_TRIAGED: Final = TopicSpec(
    name="reports.triaged.v1",
    partitions=6,
    key="case id",
    value_model=TriagedCase,
    retention_ms=30 * DAY_MS,
    description="Every change of a case: category, urgency, location, owner and copies.",
)
NOTIFY_REQUESTS: Final = TopicSpec(
    name="notify.requests.v1",
    partitions=6,
    key="recipient pseudonym",
    value_model=NotifyRequest,
    retention_ms=7 * DAY_MS,
    description="Messages to send to citizens (acknowledgements, replies, answers, news).",
)
NOTIFY_RESULTS: Final = TopicSpec(
    name="notify.results.v1",
    partitions=6,
    key="recipient pseudonym",
    value_model=NotifyResult,
    retention_ms=30 * DAY_MS,
    description="Outcome of every delivery attempt, with Zalo message ids or the error.",
)
NEWS_ITEMS: Final = TopicSpec(
    name="news.items.v1",
    partitions=3,
    key="source id",
    value_model=NewsItem,
    retention_ms=30 * DAY_MS,
    description="News items from official sources, deduplicated and tagged.",
)

_PRIMARY: Final = (ZALO_EVENTS, REPORTS_TRIAGED, NOTIFY_REQUESTS, NOTIFY_RESULTS, NEWS_ITEMS)


def dlq_of(spec: TopicSpec) -> TopicSpec:
    return TopicSpec(
        name=spec.dlq,
        partitions=1,
        key="same key as the original message",
        value_model=None,
        retention_ms=30 * DAY_MS,
        description=f"Messages of {spec.name} that failed every attempt; original bytes and "
        "headers plus x-dlq-* headers (error, attempts, origin).",
        consumed=False,
        dead_letter_of=spec.name,
    )


TOPICS: Final[dict[str, TopicSpec]] = {
    **{t.name: t for t in _PRIMARY},
    **{t.dlq: dlq_of(t) for t in _PRIMARY if t.consumed},
}


def all_topics() -> Iterator[TopicSpec]:
    yield from TOPICS.values()
