"""The news service process: two FastStream consumers (``zalo.events.v1`` for the welcome,
menu queries and "Tin tức"; ``reports.triaged.v1`` for procedure answers), the feed poller and
the broadcast runner as periodic jobs, the sample feeds served at ``/feeds/``, its outbox relay
and its probes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage
from starlette.staticfiles import StaticFiles

from ketnoi_shared.contracts import REPORTS_TRIAGED, ZALO_EVENTS, TriagedCase, ZaloEvent
from ketnoi_shared.messaging import (
    CONSUMER_ACK_POLICY,
    decode_batch,
    handle_each,
    make_broker,
    retry_policy,
)
from ketnoi_shared.service import ServiceResources, consumer_app

from .broadcast import ArticleApi, Broadcaster
from .feeds import FeedPoller, default_feeds_dir, load_sources
from .kb import KnowledgeBase
from .retrieval import Retriever, Thresholds
from .service import CONSUMER_CASES, CONSUMER_EVENTS, NewsService
from .settings import NewsSettings

__all__ = ["build_service", "create_app", "verified_oas"]

log = structlog.get_logger("ketnoi.news")


def build_service(settings: NewsSettings) -> NewsService:
    kb = KnowledgeBase.load(settings.news_kb)
    thresholds = Thresholds(settings.news_answer_min_score, settings.news_answer_min_ratio)
    return NewsService(
        kb=kb,
        retriever=Retriever(kb, thresholds),
        items_per_reply=settings.news_items_per_reply,
    )


def verified_oas(settings: NewsSettings, *, openapi_url: str) -> set[str] | None:
    """The configured verified OAs; None (all) for ``*``, or when Zalo is the sandbox, which
    does not model verification."""
    raw = settings.news_verified_oas.strip()
    if raw == "*" or (not raw and "openapi.zalo.me" not in openapi_url):
        return None
    return {oa.strip() for oa in raw.split(",") if oa.strip()}


@dataclass
class _State(ServiceResources):
    service: NewsService | None = None
    poller: FeedPoller | None = None
    http: httpx.AsyncClient | None = None
    broadcaster: Broadcaster | None = None
    zalo: Any = None


def _article_api(settings: NewsSettings, state: _State) -> tuple[ArticleApi, str] | None:
    """Articles go through the notifier's Zalo client and token store, configured by the
    notifier's settings (KETNOI_ZALO_*); None when Zalo is not configured."""
    from ketnoi_notifier.settings import NotifierSettings  # noqa: PLC0415
    from ketnoi_notifier.tokens import TokenStore  # noqa: PLC0415
    from ketnoi_shared.settings import load_settings  # noqa: PLC0415

    from .zalo_articles import ArticleClient, ZaloArticleApi  # noqa: PLC0415

    zalo = load_settings(NotifierSettings)
    if not (zalo.zalo_app_id and zalo.zalo_app_secret) or state.pool is None:
        return None
    client = ArticleClient(openapi_url=zalo.zalo_openapi_url, oauth_url=zalo.zalo_oauth_url)
    state.zalo = client
    tokens = TokenStore(
        pool=state.pool,
        client=client,
        protector=settings.identity_protector(),
        app_id=zalo.zalo_app_id,
        app_secret=zalo.zalo_app_secret.get_secret_value(),
    )
    return ZaloArticleApi(client, tokens), zalo.zalo_openapi_url


def create_app(  # noqa: PLR0915 - the wiring of one service reads best in one place
    settings: NewsSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    article_api: ArticleApi | None = None,
    poll_every_s: float = 15,
) -> FastAPI:
    """``transport`` replaces the feed HTTP transport and ``article_api`` the Zalo article
    calls (tests)."""
    if not settings.database_url:
        raise SystemExit("the news service needs KETNOI_DATABASE_URL")
    broker = make_broker(settings, service="news")
    state = _State(settings)
    state.service = build_service(settings)

    # Batches: one offset commit per batch instead of one per event (news sees every event of
    # every citizen and skips most); partitions of a batch are handled in parallel, each in
    # order (one consumer handling every partition in turn was the queue at 30 questions/s).
    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id=CONSUMER_EVENTS,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        batch=True,
        max_records=200,
    )
    async def on_events(msg: KafkaMessage) -> None:
        batch = await decode_batch(broker, msg, ZaloEvent, consumer=CONSUMER_EVENTS)
        assert state.service is not None
        wanted = [(r, e) for r, e in batch if state.service.wants(e)]
        await handle_each(
            broker,
            wanted,
            on_event,
            policy=retry_policy(settings, consumer=CONSUMER_EVENTS),
            concurrency=settings.news_workers,
        )

    async def on_event(event: ZaloEvent) -> None:
        assert state.service is not None
        assert state.pool is not None
        async with state.pool.acquire() as conn:
            outcome = await state.service.handle_event(conn, event)
        log.info("zalo event handled", kind=event.kind.value, outcome=outcome)

    @broker.subscriber(
        REPORTS_TRIAGED.name,
        group_id=CONSUMER_CASES,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        batch=True,
        max_records=200,
    )
    async def on_cases(msg: KafkaMessage) -> None:
        await handle_each(
            broker,
            await decode_batch(broker, msg, TriagedCase, consumer=CONSUMER_CASES),
            on_case,
            policy=retry_policy(settings, consumer=CONSUMER_CASES),
            concurrency=settings.news_workers,
        )

    async def on_case(case: TriagedCase) -> None:
        # Every case version: the status projection (#tra_cuu) needs them all, not only the
        # procedure questions.
        assert state.service is not None
        assert state.pool is not None
        async with state.pool.acquire() as conn:
            outcome = await state.service.handle_case(conn, case)
        if outcome != "ignored":
            log.info("procedure question handled", case_id=case.case_id, outcome=outcome)

    async def poll() -> None:
        assert state.poller is not None
        result = await state.poller.poll_once()
        if result.new or "error" in result.status.values():
            log.info("feeds polled", new=len(result.new), sources=result.status)

    async def run_broadcasts() -> None:
        assert state.broadcaster is not None
        await state.broadcaster.run_due()

    async def start() -> None:
        pool = await state.open()
        state.http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(settings.news_fetch_timeout_s, connect=5.0),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=20),
        )
        self_url = f"http://{settings.http_host}:{settings.http_port}"
        state.poller = FeedPoller(
            pool,
            state.http,
            load_sources(settings.news_sources, self_url=self_url),
            interval_s=settings.news_poll_interval_s,
            timeout_s=settings.news_fetch_timeout_s,
            backoff_max_s=settings.news_backoff_max_s,
        )
        state.every(poll_every_s, poll)
        api, openapi_url = article_api, "sandbox"
        if api is None:
            built = _article_api(settings, state)
            if built is not None:
                api, openapi_url = built
        if api is not None:
            state.broadcaster = Broadcaster(
                pool,
                api,
                verified_oas=verified_oas(settings, openapi_url=openapi_url),
                monthly_cap=settings.news_broadcast_monthly_cap,
                target=json.loads(settings.news_broadcast_target),
                cover_url=settings.news_article_cover_url,
            )
            state.every(5, run_broadcasts)

    async def stop() -> None:
        await state.close()
        if state.http is not None:
            await state.http.aclose()
        if state.zalo is not None:
            await state.zalo.aclose()

    app = consumer_app(
        settings,
        service="news",
        broker=broker,
        on_startup=start,
        on_shutdown=stop,
        pool=lambda: state.pool,
    )
    app.mount("/feeds", StaticFiles(directory=default_feeds_dir()), name="feeds")
    app.state.news = state
    return app
