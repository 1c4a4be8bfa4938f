"""The triage service process: a FastStream consumer of ``zalo.events.v1`` with its HTTP face,
its outbox relay and a periodically refreshed unit directory."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.messaging import (
    CONSUMER_ACK_POLICY,
    dead_letter,
    decode_batch,
    is_transient,
    make_broker,
)
from ketnoi_shared.service import ServiceResources, consumer_app

from .directory import Directory
from .engine import Triage
from .routing import RoutingRules, default_rules_path
from .service import CONSUMER, TriageService
from .settings import TriageSettings

__all__ = ["create_app"]

log = structlog.get_logger("ketnoi.triage")


@dataclass
class _State(ServiceResources):
    service: TriageService | None = None


async def apply_batch(
    state: _State,
    broker: KafkaBroker,
    settings: TriageSettings,
    batch: list[tuple[Any, ZaloEvent]],
) -> None:
    """Apply a batch in one transaction; if that fails for a reason of the data, retry each
    event alone and dead-letter only the one that keeps failing. Infrastructure failures
    propagate: the partition pauses and the batch is read again."""
    assert state.pool is not None
    assert state.service is not None
    try:
        async with state.pool.acquire() as conn:
            await state.service.handle_batch(conn, [event for _, event in batch])
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning(
            "batch failed, isolating the event at fault", size=len(batch), error=type(exc).__name__
        )
    else:
        return
    for record, event in batch:
        for attempt in range(1, settings.retry_attempts + 1):
            try:
                async with state.pool.acquire() as conn:
                    await state.service.handle(conn, event)
                break
            except Exception as exc:
                if is_transient(exc):
                    raise
                if attempt == settings.retry_attempts:
                    await dead_letter(
                        broker,
                        record,
                        exc,
                        consumer=CONSUMER,
                        attempts=attempt,
                        reason="handler_error",
                    )
                else:
                    await asyncio.sleep(settings.retry_backoff_s * 2 ** (attempt - 1))


def create_app(settings: TriageSettings, *, engine: Triage | None = None) -> FastAPI:
    if not settings.database_url:
        raise SystemExit("triage needs KETNOI_DATABASE_URL")
    broker = make_broker(settings, service="triage")
    state = _State(settings)
    rules = RoutingRules(settings.triage_rules or default_rules_path())

    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id=CONSUMER,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        batch=True,
        max_records=settings.triage_batch_max,
    )
    async def on_events(msg: KafkaMessage) -> None:
        """A batch of records: decoded one by one (an undecodable one is dead-lettered alone),
        applied in one transaction; if that fails for a reason of the data, each event is
        retried alone and only the one that keeps failing is dead-lettered."""
        batch = await decode_batch(broker, msg, ZaloEvent, consumer=CONSUMER)
        if batch:
            await apply_batch(state, broker, settings, batch)

    async def refresh_directory() -> None:
        assert state.pool is not None
        assert state.service is not None
        state.service.directory = await Directory.fetch(state.pool)

    async def start() -> None:
        pool = await state.open()
        loaded = engine or await asyncio.to_thread(
            Triage.load,
            province=settings.triage_province,
            cache_dir=settings.data_dir / "cache",
        )
        state.service = TriageService(
            engine=loaded,
            rules=rules,
            directory=await Directory.fetch(pool),
            quiet_gap=timedelta(minutes=settings.triage_quiet_gap_min),
        )
        state.every(60, refresh_directory)

    app = consumer_app(
        settings,
        service="triage",
        broker=broker,
        on_startup=start,
        on_shutdown=state.close,
        pool=lambda: state.pool,
    )
    app.state.triage = state
    return app
