"""The media worker's subscriber, for the AsyncAPI document."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent

__all__ = ["register"]


def register(broker: KafkaBroker) -> None:
    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id="media",
        title=f"{ZALO_EVENTS.name}:media",
        description="Media worker: fetches attachments before Zalo's links expire; originals "
        "sealed with their SHA-256, display copies stripped of metadata (media_objects).",
    )
    async def media(event: ZaloEvent) -> None:  # pragma: no cover - documentation only
        del event
