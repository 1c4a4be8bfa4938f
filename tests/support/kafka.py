"""Small helpers for tests that look at a real broker."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition


async def committed_offset(
    bootstrap: str, group: str, topic: str, partition: int = 0
) -> int | None:
    """The offset ``group`` has committed on ``topic``'s ``partition`` (None: nothing yet)."""
    check = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        return await check.committed(TopicPartition(topic, partition))
    finally:
        await check.stop()
