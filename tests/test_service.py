"""The HTTP face every consumer service gets: probes and metrics, on a real broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx

from ketnoi_shared.contracts import NewsItem, TopicSpec
from ketnoi_shared.messaging import CONSUMER_ACK_POLICY, ensure_topics, make_broker, publish
from ketnoi_shared.service import consumer_app, stop_within
from ketnoi_shared.settings import CommonSettings

from .support.kafka import committed_offset


def news_topic(name: str) -> TopicSpec:
    """A one-partition topic of news items."""
    return TopicSpec(name, 1, "source", NewsItem, 3_600_000, "t")


async def publish_news_item(settings: CommonSettings, topic: str, item_id: str) -> None:
    producer = make_broker(settings, service="producer")
    await producer.start()
    try:
        await publish(
            producer,
            news_topic(topic),
            NewsItem(
                event_id=f"e{item_id}",
                occurred_at=datetime.now(UTC),
                correlation_id="c",
                item_id=item_id,
                source_id="s",
                url=f"https://x/{item_id}",
                title="Tin",
            ),
        )
    finally:
        await producer.stop()


async def test_consumer_service_probes_and_metrics(
    kafka_bootstrap: str, database_url: str, topic_name: str
):
    await ensure_topics(kafka_bootstrap, [news_topic(topic_name)])
    settings = CommonSettings(kafka_bootstrap=kafka_bootstrap, database_url=database_url)
    broker = make_broker(settings, service="probe-test")
    got: list[str] = []

    @broker.subscriber(
        topic_name,
        group_id="g-" + uuid.uuid4().hex[:6],
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
    )
    async def handle(msg: NewsItem) -> None:
        got.append(msg.item_id)

    state: dict[str, asyncpg.Pool] = {}

    async def start() -> None:
        state["pool"] = await asyncpg.create_pool(database_url, min_size=1, max_size=2)

    async def stop() -> None:
        await state.pop("pool").close()

    app = consumer_app(
        settings,
        service="probe-test",
        broker=broker,
        on_startup=start,
        on_shutdown=stop,
        pool=lambda: state.get("pool"),
    )
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            assert (await client.get("/livez")).json()["status"] == "ok"
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"broker": True, "database": True}
            await publish_news_item(settings, topic_name, "42")
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.05)
            assert got == ["42"]
            metrics = (await client.get("/metrics")).text
            assert "faststream_received_processed_messages_total" in metrics
            assert topic_name in metrics
        # The database going away makes the service not ready, and says which part failed.
        await state["pool"].close()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] is False
        state["pool"] = await asyncpg.create_pool(database_url, min_size=1, max_size=2)


async def test_a_stop_lets_the_handler_in_flight_finish_and_commit(
    kafka_bootstrap: str, topic_name: str
):
    """On SIGTERM the handler in flight gets the grace period (half of shutdown_timeout_s)
    to finish, and its offset is committed before the consumer leaves."""
    await ensure_topics(kafka_bootstrap, [news_topic(topic_name)])
    settings = CommonSettings(kafka_bootstrap=kafka_bootstrap, shutdown_timeout_s=6)
    group = "g-" + uuid.uuid4().hex[:6]
    broker = make_broker(settings, service="stop-test")
    entered, done = asyncio.Event(), []

    @broker.subscriber(
        topic_name, group_id=group, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest"
    )
    async def handle(msg: NewsItem) -> None:
        entered.set()
        await asyncio.sleep(1.0)  # still running when the stop begins
        done.append(msg.item_id)

    await publish_news_item(settings, topic_name, "1")
    app = consumer_app(settings, service="stop-test", broker=broker)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(entered.wait(), 30)
    assert done == ["1"]  # finished, not cancelled by the stop
    assert await committed_offset(kafka_bootstrap, group, topic_name) == 1


async def test_stop_within_gives_up_on_a_stop_that_hangs():
    finished: list[str] = []

    async def stops() -> None:
        await asyncio.sleep(0.01)
        finished.append("stopped")

    assert await stop_within(stops(), 1, what="quick") is True
    assert finished == ["stopped"]
    started = asyncio.get_running_loop().time()
    assert await stop_within(asyncio.Event().wait(), 0.2, what="hangs") is False
    assert asyncio.get_running_loop().time() - started < 1  # gave up, did not wait on
