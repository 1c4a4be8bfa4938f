"""Message contracts: one pydantic model per topic and the topic registry."""

from .base import Envelope, Pseudonym, Sealed, new_event_id, utcnow
from .cases import CaseLocation, CaseStatus, Category, TriagedCase, Urgency
from .news import NewsItem
from .notify import (
    DeliveryErrorKind,
    DeliveryStatus,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    NotifyResult,
)
from .topics import (
    NEWS_ITEMS,
    NOTIFY_REQUESTS,
    NOTIFY_RESULTS,
    REPORTS_TRIAGED,
    TOPICS,
    ZALO_EVENTS,
    TopicSpec,
    all_topics,
)
from .zalo import (
    Attachment,
    CitizenRef,
    EventKind,
    Location,
    SubmittedInfo,
    ZaloEvent,
    ZaloMessage,
)

__all__ = [
    "NEWS_ITEMS",
    "NOTIFY_REQUESTS",
    "NOTIFY_RESULTS",
    "REPORTS_TRIAGED",
    "TOPICS",
    "ZALO_EVENTS",
    "Attachment",
    "CaseLocation",
    "CaseStatus",
    "Category",
    "CitizenRef",
    "DeliveryErrorKind",
    "DeliveryStatus",
    "Envelope",
    "EventKind",
    "Location",
    "NewsItem",
    "NotifyKind",
    "NotifyRecipient",
    "NotifyRequest",
    "NotifyResult",
    "Pseudonym",
    "Sealed",
    "SubmittedInfo",
    "TopicSpec",
    "TriagedCase",
    "Urgency",
    "ZaloEvent",
    "ZaloMessage",
    "all_topics",
    "new_event_id",
    "utcnow",
]
