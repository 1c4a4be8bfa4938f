"""The media worker process: a FastStream consumer of ``zalo.events.v1`` (group ``media``) that
fetches every attachment of a citizen's message as soon as it arrives, with its HTTP face."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.messaging import CONSUMER_ACK_POLICY, make_broker
from ketnoi_shared.service import ServiceResources, consumer_app

from .fetch import Fetcher
from .settings import MediaSettings
from .worker import CONSUMER, MediaWorker

__all__ = ["create_app"]


@dataclass
class _State(ServiceResources):
    fetcher: Fetcher | None = None
    worker: MediaWorker | None = None
    downloader: asyncio.Task[None] | None = None


def create_app(
    settings: MediaSettings,
    *,
    topic: str = ZALO_EVENTS.name,
    group_id: str = CONSUMER,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The app; ``topic``, ``group_id`` and ``transport`` let tests isolate it."""
    if not settings.database_url:
        raise SystemExit("the media worker needs KETNOI_DATABASE_URL")
    protector = settings.identity_protector()
    broker = make_broker(settings, service="media")
    state = _State(settings)

    @broker.subscriber(
        topic,
        group_id=group_id,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        # Recording work is a short transaction; downloads run apart (MediaWorker.run).
        max_workers=settings.media_workers,
        max_poll_interval_ms=int(settings.media_max_poll_interval_s * 1000),
    )
    async def on_event(event: ZaloEvent) -> None:
        assert state.worker is not None
        await state.worker.handle(event)

    async def start() -> None:
        pool = await state.open()
        state.fetcher = Fetcher(
            connect_timeout_s=settings.media_connect_timeout_s,
            read_timeout_s=settings.media_read_timeout_s,
            deadline_s=settings.media_download_deadline_s,
            attempts=settings.media_fetch_attempts,
            backoff_s=settings.media_fetch_backoff_s,
            max_connections=settings.media_concurrency,
            allowed_hosts=settings.media_allowed_hosts,
            transport=transport,
        )
        state.worker = MediaWorker(
            pool=pool, fetcher=state.fetcher, protector=protector, settings=settings
        )
        state.downloader = asyncio.create_task(state.worker.run(), name="media-downloader")

    async def stop() -> None:
        if state.downloader is not None:
            state.downloader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.downloader
        if state.fetcher is not None:
            await state.fetcher.aclose()
        await state.close()

    app = consumer_app(
        settings,
        service="media",
        broker=broker,
        on_startup=start,
        on_shutdown=stop,
        pool=lambda: state.pool,
    )
    app.state.media = state
    return app
