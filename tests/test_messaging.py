"""Publish/consume through real consumer groups, rebalance, retry then DLQ."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from ketnoi_shared.contracts import NEWS_ITEMS, NewsItem, TopicSpec
from ketnoi_shared.messaging import (
    CONSUMER_ACK_POLICY,
    DeadLetterPolicy,
    make_broker,
    publish,
)
from ketnoi_shared.settings import CommonSettings

from .conftest import now_ms, read_topic
from .support.kafka import committed_offset


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1), NewTopic(name + ".dlq", 1, 1)])
    finally:
        await admin.close()


def spec_for(name: str, partitions: int) -> TopicSpec:
    return TopicSpec(
        name=name,
        partitions=partitions,
        key="source id",
        value_model=NewsItem,
        retention_ms=3_600_000,
        description="test",
    )


def item(i: int, source: str = "s") -> NewsItem:
    return NewsItem(
        event_id=f"n-{i}-{uuid.uuid4().hex[:6]}",
        occurred_at=datetime.now(UTC),
        correlation_id=f"c-{i}",
        item_id=str(i),
        source_id=f"{source}{i % 7}",
        url=f"https://example.test/{i}",
        title=f"Tin {i}",
    )


def settings(bootstrap: str, **kw) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap=bootstrap, retry_backoff_s=0.01, retry_backoff_max_s=0.05, **kw
    )


async def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_publish_carries_key_and_envelope_headers(kafka_bootstrap: str, topic_name: str):
    await create_topic(kafka_bootstrap, topic_name, 1)
    spec = spec_for(topic_name, 1)
    broker = make_broker(settings(kafka_bootstrap), service="t")
    await broker.start()
    try:
        msg = item(1)
        await publish(broker, spec, msg)
    finally:
        await broker.stop()
    (record,) = await read_topic(kafka_bootstrap, topic_name, until=1)
    headers = {k: v.decode() for k, v in record.headers}
    assert record.key == msg.source_id.encode()
    assert headers["ketnoi-event-id"] == msg.event_id
    assert headers["correlation_id"] == msg.correlation_id
    assert headers["ketnoi-schema-version"] == "1"
    assert NewsItem.model_validate_json(record.value) == msg
    with pytest.raises(TypeError):
        await publish(broker, NEWS_ITEMS, object())  # type: ignore[arg-type]


async def test_consumer_group_two_members_and_rebalance(kafka_bootstrap: str, topic_name: str):
    """Two members share the partitions; one leaves, the other takes over; nothing is lost."""
    await create_topic(kafka_bootstrap, topic_name, 4)
    spec = spec_for(topic_name, 4)
    group = "g-" + uuid.uuid4().hex[:8]
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def member(name: str) -> KafkaBroker:
        broker = make_broker(settings(kafka_bootstrap), service=f"member-{name}")

        @broker.subscriber(
            topic_name, group_id=group, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest"
        )
        async def handle(msg: NewsItem) -> None:
            seen[name].append(msg.item_id)

        return broker

    a, b = member("a"), member("b")
    await a.start()
    await b.start()
    producer = make_broker(settings(kafka_bootstrap), service="producer")
    await producer.start()
    try:
        for i in range(40):
            await publish(producer, spec, item(i))
        await wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= 40)
        assert seen["a"] and seen["b"], "both members should have had partitions"
        await b.stop()  # leaves the group: a rebalance gives a every partition
        for i in range(40, 80):
            await publish(producer, spec, item(i))
        await wait_until(lambda: len(set(seen["a"]) | set(seen["b"])) >= 80, timeout=60)
    finally:
        await producer.stop()
        await a.stop()
    assert set(seen["a"]) | set(seen["b"]) == {str(i) for i in range(80)}
    assert {str(i) for i in range(40, 80)} <= set(seen["a"])


async def test_poison_message_retried_then_dead_lettered_and_partition_flows(
    kafka_bootstrap: str, topic_name: str
):
    await create_topic(kafka_bootstrap, topic_name, 1)
    spec = spec_for(topic_name, 1)
    group = "g-" + uuid.uuid4().hex[:8]
    attempts: dict[str, int] = {}
    handled: list[str] = []
    policy = DeadLetterPolicy(
        consumer="poison-test", attempts=3, backoff_s=0.01, backoff_max_s=0.02
    )
    consumer = make_broker(settings(kafka_bootstrap), service="poison-test", policy=policy)

    @consumer.subscriber(
        topic_name, group_id=group, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest"
    )
    async def handle(msg: NewsItem) -> None:
        attempts[msg.item_id] = attempts.get(msg.item_id, 0) + 1
        if msg.title == "POISON":
            raise ValueError("cannot handle this one")
        handled.append(msg.item_id)

    producer = make_broker(settings(kafka_bootstrap), service="producer")
    await producer.start()
    await consumer.start()
    try:
        await publish(producer, spec, item(1))
        poison = item(2).model_copy(update={"title": "POISON"})
        await publish(producer, spec, poison)
        # An undecodable message: not JSON of the model at all.
        await producer.publish(b"\xff not json", topic=topic_name, key=b"x")
        await publish(producer, spec, item(3))
        await wait_until(lambda: "3" in handled)
    finally:
        await consumer.stop()
        await producer.stop()
    assert handled == ["1", "3"], "later messages flow after the poison one"
    assert attempts["2"] == 3, "bounded attempts"
    dlq = await read_topic(kafka_bootstrap, topic_name + ".dlq", until=2)
    assert len(dlq) == 2
    first = {k: v.decode() for k, v in dlq[0].headers}
    assert first["x-dlq-reason"] == "handler_error"
    assert first["x-dlq-attempts"] == "3"
    assert first["x-dlq-original-topic"] == topic_name
    assert first["x-dlq-error-type"] == "ValueError"
    assert first["ketnoi-event-id"] == poison.event_id, "original headers kept"
    assert NewsItem.model_validate_json(dlq[0].value) == poison, "original bytes kept"
    second = {k: v.decode() for k, v in dlq[1].headers}
    assert second["x-dlq-reason"] == "undecodable"
    assert dlq[1].value == b"\xff not json"
    # The group's committed offset is past everything: a restart re-reads nothing.
    assert await committed_offset(kafka_bootstrap, group, topic_name) == 4


async def test_transient_failure_is_retried_without_dead_lettering(
    kafka_bootstrap: str, topic_name: str
):
    """An infrastructure outage pauses the partition; the message is not dead-lettered."""
    await create_topic(kafka_bootstrap, topic_name, 1)
    spec = spec_for(topic_name, 1)
    calls = {"n": 0}
    handled: list[str] = []
    policy = DeadLetterPolicy(consumer="transient-test", attempts=2, transient_pause_s=0.05)
    consumer = make_broker(settings(kafka_bootstrap), service="transient-test", policy=policy)

    @consumer.subscriber(
        topic_name,
        group_id="g-" + uuid.uuid4().hex[:8],
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
    )
    async def handle(msg: NewsItem) -> None:
        calls["n"] += 1
        if calls["n"] <= 5:
            raise ConnectionRefusedError("database is down")
        handled.append(msg.item_id)

    producer = make_broker(settings(kafka_bootstrap), service="producer")
    await producer.start()
    await consumer.start()
    try:
        await publish(producer, spec, item(7))
        await wait_until(lambda: handled == ["7"])
    finally:
        await consumer.stop()
        await producer.stop()
    assert calls["n"] == 6
    assert await read_topic(kafka_bootstrap, topic_name + ".dlq", timeout=1.0, idle=0.5) == []


async def test_a_batch_subscriber_handles_each_record_and_dead_letters_only_the_bad_ones(
    kafka_bootstrap: str, topic_name: str
):
    """decode_batch + handle_each: an undecodable record and a record whose handler keeps
    failing are dead-lettered alone; the others are handled once, each partition in order;
    an infrastructure failure is waited out on its record (no attempt counted, nothing
    dead-lettered, the batch not read again)."""
    from ketnoi_shared.messaging import decode_batch, handle_each, retry_policy  # noqa: PLC0415

    await create_topic(kafka_bootstrap, topic_name, 2)
    spec = spec_for(topic_name, 2)
    conf = settings(kafka_bootstrap)
    broker = make_broker(conf, service="batcher")
    handled: list[str] = []
    attempts: dict[str, int] = {}
    outage = {"left": 2}

    async def handle(news: NewsItem) -> None:
        attempts[news.item_id] = attempts.get(news.item_id, 0) + 1
        if news.item_id == "13":
            raise ValueError("this record is bad")
        if news.item_id == "20" and outage["left"]:
            outage["left"] -= 1
            raise ConnectionRefusedError("database down")  # transient: waited out
        handled.append(news.item_id)

    @broker.subscriber(
        topic_name,
        group_id="b-" + topic_name,
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        batch=True,
        max_records=50,
    )
    async def on_batch(msg: KafkaMessage) -> None:
        batch = await decode_batch(broker, msg, NewsItem, consumer="batcher")
        await handle_each(
            broker, batch, handle, policy=retry_policy(conf, consumer="batcher"), concurrency=2
        )

    producer = make_broker(conf, service="producer")
    await producer.start()
    since = now_ms()
    items = [item(i, source="s") for i in range(30)]
    for it in items:
        await publish(producer, spec, it)
    await producer.publish(b"not json", topic=topic_name, key=b"s1")
    await producer.stop()
    await broker.start()
    try:
        await wait_until(lambda: len(handled) >= 29)
        dead = await read_topic(kafka_bootstrap, topic_name + ".dlq", since_ms=since, until=2)
    finally:
        await broker.stop()
    assert sorted(handled, key=int) == [str(i) for i in range(30) if i != 13], "each once"
    assert attempts["13"] == conf.retry_attempts
    assert attempts["20"] == 3  # twice down, then handled
    await asyncio.sleep(1)  # nothing more reaches the dead-letter topic
    dead = await read_topic(kafka_bootstrap, topic_name + ".dlq", since_ms=since, timeout=5)
    reasons = sorted(dict(r.headers)["x-dlq-reason"].decode() for r in dead)
    assert reasons == ["handler_error", "undecodable"]
    by_source: dict[str, list[int]] = {}
    for i in handled:
        by_source.setdefault(items[int(i)].source_id, []).append(int(i))
    assert all(v == sorted(v) for v in by_source.values()), "each key (partition) in order"
