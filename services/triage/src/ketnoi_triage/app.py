"""The triage service process: a FastStream consumer of ``zalo.events.v1`` with its HTTP face,
its outbox relay and a periodically refreshed unit directory."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.db import OutboxRelay, create_pool
from ketnoi_shared.messaging import CONSUMER_ACK_POLICY, make_broker
from ketnoi_shared.service import consumer_app

from .directory import Directory
from .engine import Triage
from .routing import RoutingRules, default_rules_path
from .service import CONSUMER, TriageService
from .settings import TriageSettings

__all__ = ["create_app"]

log = structlog.get_logger("ketnoi.triage")


@dataclass
class _State:
    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    service: TriageService | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def create_app(settings: TriageSettings, *, engine: Triage | None = None) -> FastAPI:
    if not settings.database_url:
        raise SystemExit("triage needs KETNOI_DATABASE_URL")
    database_url = settings.database_url
    broker = make_broker(settings, service="triage")
    state = _State()
    rules = RoutingRules(settings.triage_rules or default_rules_path())

    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id=CONSUMER,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
    )
    async def on_event(event: ZaloEvent) -> None:
        assert state.pool is not None
        assert state.service is not None
        async with state.pool.acquire() as conn:
            outcome = await state.service.handle(conn, event)
        log.debug("event handled", outcome=outcome, event_name=event.event_name)

    async def refresh_directory() -> None:
        while True:
            await asyncio.sleep(60)
            with contextlib.suppress(Exception):
                assert state.pool is not None
                assert state.service is not None
                state.service.directory = await Directory.fetch(state.pool)

    async def start() -> None:
        state.pool = await create_pool(database_url, max_size=settings.database_pool_max)
        loaded = engine or await asyncio.to_thread(
            Triage.load,
            province=settings.triage_province,
            cache_dir=settings.data_dir / "cache",
        )
        state.service = TriageService(
            engine=loaded,
            rules=rules,
            directory=await Directory.fetch(state.pool),
            quiet_gap=timedelta(minutes=settings.triage_quiet_gap_min),
        )
        state.relay = OutboxRelay(
            state.pool, bootstrap=settings.kafka_bootstrap, idempotence=settings.kafka_idempotence
        )
        await state.relay.start()
        state.tasks.append(asyncio.create_task(refresh_directory()))

    async def stop() -> None:
        for task in state.tasks:
            task.cancel()
        if state.relay:
            await state.relay.stop()
        if state.pool:
            await state.pool.close()

    app = consumer_app(
        settings,
        service="triage",
        broker=broker,
        on_startup=start,
        on_shutdown=stop,
        pool=lambda: state.pool,
    )
    app.state.triage = state
    return app
