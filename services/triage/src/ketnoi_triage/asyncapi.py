"""Triage's subscriber, for the AsyncAPI document."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent

__all__ = ["register"]


def register(broker: KafkaBroker) -> None:
    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id="triage",
        title=f"{ZALO_EVENTS.name}:triage",
        description="Triage: cases, classification, location, routing.",
    )
    async def triage(event: ZaloEvent) -> None:  # pragma: no cover - documentation only
        del event
