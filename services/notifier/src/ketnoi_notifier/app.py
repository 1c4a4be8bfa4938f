"""The notifier process: consumes ``notify.requests.v1`` (delivery) and ``zalo.events.v1``
(the interaction window), resumes parked requests, relays its outbox, serves its probes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog
from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage

from ketnoi_shared.contracts import NOTIFY_REQUESTS, ZALO_EVENTS, NotifyRequest, ZaloEvent
from ketnoi_shared.messaging import CONSUMER_ACK_POLICY, dead_letter, decode_batch, make_broker
from ketnoi_shared.service import ServiceResources, consumer_app

from .delivery import Delivery, RetriesExhaustedError
from .ratelimit import SharedRateLimiter
from .settings import NotifierSettings
from .tokens import TokenStore
from .zalo import ZaloClient

__all__ = ["create_app"]

log = structlog.get_logger("ketnoi.notifier")

WINDOW_CONSUMER: Final = "notifier-window"
#: Events that count as an interaction with the OA (README §3.4).
_INTERACTIONS = frozenset({"message", "follow", "chat_now", "submit_info", "reaction"})


@dataclass
class _State(ServiceResources):
    client: ZaloClient | None = None
    delivery: Delivery | None = None


def create_app(settings: NotifierSettings) -> FastAPI:
    if not settings.database_url:
        raise SystemExit("the notifier needs KETNOI_DATABASE_URL")
    if not (settings.zalo_app_id and settings.zalo_app_secret):
        raise SystemExit("the notifier needs KETNOI_ZALO_APP_ID and KETNOI_ZALO_APP_SECRET")
    protector = settings.identity_protector()
    broker = make_broker(settings, service="notifier")
    state = _State(settings)

    @broker.subscriber(
        NOTIFY_REQUESTS.name,
        group_id="notifier",
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        # One consumer per worker in the group: partitions are sent in parallel, each in
        # order (one citizen's messages share a partition), commits stay per partition.
        max_workers=settings.notifier_workers,
    )
    async def on_request(request: NotifyRequest, msg: KafkaMessage) -> None:
        assert state.delivery is not None
        try:
            status = await state.delivery.deliver(request)
        except RetriesExhaustedError as exc:
            await dead_letter(
                broker,
                msg.raw_message,
                exc,
                consumer="notifier",
                attempts=exc.history["attempts"],
                reason="retry_budget",
                headers=msg.headers | {"x-notify-history": json.dumps(exc.history)},
                correlation_id=msg.correlation_id,
                body=msg.body,
            )
            return
        log.info("request handled", status=status.value, kind=request.kind.value)

    @broker.subscriber(
        ZALO_EVENTS.name,
        group_id=WINDOW_CONSUMER,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        # Every event of every citizen passes here: one statement and one offset commit per
        # batch, not per event.
        batch=True,
        max_records=500,
    )
    async def on_events(msg: KafkaMessage) -> None:
        """Keep the time of each citizen's last interaction with each OA (the reply window):
        one upsert per batch, keeping the latest time (redelivery and order are harmless)."""
        assert state.pool is not None
        latest: dict[tuple[str, str], datetime] = {}
        for _, event in await decode_batch(broker, msg, ZaloEvent, consumer=WINDOW_CONSUMER):
            if event.citizen is None or event.kind.value not in _INTERACTIONS:
                continue
            key = (event.oa_id, event.citizen.pseudonym)
            if key not in latest or latest[key] < event.occurred_at:
                latest[key] = event.occurred_at
        if not latest:
            return
        await state.pool.execute(
            """INSERT INTO interaction_window (oa_id, citizen_pseudonym, last_interaction_at)
               SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
               ON CONFLICT (oa_id, citizen_pseudonym) DO UPDATE
               SET last_interaction_at = GREATEST(interaction_window.last_interaction_at,
                                                  EXCLUDED.last_interaction_at)""",
            [k[0] for k in latest],
            [k[1] for k in latest],
            list(latest.values()),
        )

    async def resume_parked() -> None:
        assert state.delivery is not None
        await state.delivery.resume_parked()

    async def start() -> None:
        pool = await state.open()
        assert settings.zalo_app_id is not None
        limiter = SharedRateLimiter(pool, settings.zalo_app_id, settings.notifier_rate_per_minute)
        state.client = ZaloClient(
            openapi_url=settings.zalo_openapi_url,
            oauth_url=settings.zalo_oauth_url,
            on_rate_remain=limiter.observe,
        )
        assert settings.zalo_app_secret is not None
        tokens = TokenStore(
            pool=pool,
            client=state.client,
            protector=protector,
            app_id=settings.zalo_app_id,
            app_secret=settings.zalo_app_secret.get_secret_value(),
        )
        state.delivery = Delivery(
            pool=pool,
            client=state.client,
            tokens=tokens,
            protector=protector,
            attempts=settings.notifier_send_attempts,
            timeout_s=settings.notifier_send_timeout_s,
            limiter=limiter,
        )
        state.every(15, resume_parked)

    async def stop() -> None:
        await state.close()
        if state.client:
            await state.client.aclose()

    app = consumer_app(
        settings,
        service="notifier",
        broker=broker,
        on_startup=start,
        on_shutdown=stop,
        pool=lambda: state.pool,
    )
    app.state.notifier = state
    return app
