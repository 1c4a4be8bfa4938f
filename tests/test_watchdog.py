"""The consumer watchdog on a real broker: a consumer that stops moving while its partition has
records, or whose fetch task ended, is reported stuck; a healthy one is not."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream.kafka import KafkaBroker

from ketnoi_shared.watchdog import ConsumerWatchdog, broker_consumers

from .test_messaging import create_topic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(topic, f"r{i}".encode())
    finally:
        await producer.stop()


async def test_a_consumer_that_does_not_move_is_stuck_and_one_that_consumes_is_not(
    kafka_bootstrap: str, topic_name: str
):
    await create_topic(kafka_bootstrap, topic_name, 1)
    await _produce(kafka_bootstrap, topic_name, 3)
    consumer = AIOKafkaConsumer(
        topic_name,
        bootstrap_servers=kafka_bootstrap,
        group_id="wd-" + topic_name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    clock = Clock()
    stuck: list[str] = []
    watchdog = ConsumerWatchdog(
        lambda: [("wd", consumer)], stall_s=60, clock=clock, on_stuck=stuck.append
    )
    try:
        assert await watchdog.check() is None  # first look: nothing to compare with yet
        clock.now += 30
        assert await watchdog.check() is None  # not moving, but not for long
        clock.now += 31
        reason = await watchdog.check()
        assert reason is not None
        assert "has not moved from 0" in reason
        assert topic_name in reason

        # It consumes everything: at the end of its partition it is idle, not stuck.
        got = 0
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=200)
            got += sum(len(v) for v in batch.values())
            if got >= 3:
                break
        assert got == 3
        assert await watchdog.check() is None
        clock.now += 600
        assert await watchdog.check() is None

        # Its fetch task ends (as when aiokafka gives up internally): stuck at once.
        fetch_task = consumer._fetcher._fetch_task
        fetch_task.cancel()
        await asyncio.sleep(0.05)
        assert "fetch task ended" in (await watchdog.check() or "")
        assert stuck == []  # check() reports; only the running loop acts
    finally:
        await consumer.stop()


async def test_the_running_watchdog_acts_once_on_a_stuck_consumer(
    kafka_bootstrap: str, topic_name: str
):
    await create_topic(kafka_bootstrap, topic_name, 1)
    broker = KafkaBroker(kafka_bootstrap)

    @broker.subscriber(topic_name, group_id="wd2-" + topic_name, auto_offset_reset="earliest")
    async def handle(body: bytes) -> None:
        del body

    await broker.start()
    stuck: list[str] = []
    watchdog = ConsumerWatchdog(
        lambda: broker_consumers(broker), stall_s=60, every_s=0.05, on_stuck=stuck.append
    )
    try:
        consumers = broker_consumers(broker)
        assert [g for g, _ in consumers] == ["wd2-" + topic_name]
        await watchdog.start()
        await asyncio.sleep(0.3)
        assert stuck == [] and watchdog.stuck is None  # a healthy subscriber
        consumers[0][1]._fetcher._fetch_task.cancel()
        for _ in range(40):
            if stuck:
                break
            await asyncio.sleep(0.05)
        assert len(stuck) == 1 and "fetch task ended" in stuck[0]
        assert watchdog.stuck == stuck[0]
    finally:
        await watchdog.stop()
        await broker.stop()


async def test_a_position_past_the_end_of_the_log_is_sought_back_as_kafka_would(
    kafka_bootstrap: str, topic_name: str
):
    """A broker that lost records (Tansu restarted empty) still holds the group's committed
    offset from before: Tansu answers a fetch there with nothing, for ever. The watchdog does
    what Kafka's OFFSET_OUT_OF_RANGE does: it seeks by the reset policy (earliest)."""
    await create_topic(kafka_bootstrap, topic_name, 1)
    await _produce(kafka_bootstrap, topic_name, 5)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    tp = TopicPartition(topic_name, 0)
    consumer.assign([tp])
    consumer.seek(tp, 300)  # where it was before the broker lost its log
    clock = Clock()
    watchdog = ConsumerWatchdog(
        lambda: [("wd", consumer)], stall_s=60, past_end_s=15, clock=clock, on_stuck=print
    )
    try:
        for _ in range(20):
            assert await consumer.getmany(timeout_ms=250) == {}, "nothing, and no error"
            if consumer.highwater(tp) is not None:
                break
        assert consumer.highwater(tp) == 5
        assert await watchdog.check() is None
        clock.now += 10
        assert await watchdog.check() is None
        assert await consumer.position(tp) == 300, "not before past_end_s"
        clock.now += 6
        assert await watchdog.check() is None, "not stuck: sought"
        got = []
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=200)
            got += [r.value for records in batch.values() for r in records]
            if len(got) >= 5:
                break
        assert got == [f"r{i}".encode() for i in range(5)]
        clock.now += 600
        assert await watchdog.check() is None, "at the end of its log it is idle"
        assert await consumer.position(tp) == 5
    finally:
        await consumer.stop()
