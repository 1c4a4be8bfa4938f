"""A consumer that has silently stopped consuming is found and its process restarted.

aiokafka recovers from almost everything by itself, but not from everything: after a short
broker outage we saw a triage consumer log ``Marking the coordinator dead`` and then nothing —
no rejoin, no fetch, no error — while tips waited (docs/reliability.md, finding 4), and a start
can wait for a group join forever. No exception reaches our code in either case, so the process
watches its consumers from the outside and, when one is stuck, says why and ends the process:
``ketnoi up``'s supervisor and Kubernetes start it again, and at-least-once delivery with
idempotent consumers makes the restart safe (offsets are committed only after durable effects).

Stuck means, for one of the process's consumers:

* its coordination or fetch task has ended (it will never fetch again), or
* it has been in a group rebalance (no assignment) for longer than ``stall_s``, or
* one of its partitions has records past its fetch position and the position has not moved for
  longer than ``stall_s``.

One more state is not stuck but never ends by itself: a **position past the end of the
partition's log**. A broker that lost records (Tansu restarted empty, an unclean leader
election) can still hold the group's committed offset, or the consumer its fetch position, from
before the loss. Kafka answers a fetch there with OFFSET_OUT_OF_RANGE and the consumer resets
by its ``auto_offset_reset``; Tansu answers with nothing, for ever (found by the reliability
harness's ``broker_restart_empty``: triage sat at offset ~300 of a log that now ended at ~50).
When the position is past the high watermark of the partition's last fetch response (accurate
on Tansu, unlike ListOffsets) and has not moved for ``past_end_s``, the watchdog does what
OFFSET_OUT_OF_RANGE does: it seeks the partition by the consumer's reset policy (earliest for
every Ketnoi consumer). Records read twice are harmless: consumers are idempotent, and the
reconciler republishes what the broker lost.

The checks read aiokafka's consumer state (``_coordinator``, ``_fetcher``, ``_subscription``):
aiokafka offers no public health API, and these attributes have been stable across its
releases; a missing attribute disables that check rather than failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import OffsetResetStrategy
from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Gauge

from .metrics import REGISTRY

__all__ = ["ConsumerWatchdog", "broker_consumers"]

log = structlog.get_logger(__name__)

CONSUMER_STUCK = Gauge(
    "ketnoi_consumer_stuck",
    "1 when the watchdog found one of this process's consumers stuck (the process then exits).",
    registry=REGISTRY,
)


POSITION_RESETS = Counter(
    "ketnoi_consumer_position_resets_total",
    "Partitions whose position was past the end of their log (records lost by the broker) and "
    "were sought by the reset policy, as Kafka's OFFSET_OUT_OF_RANGE does.",
    registry=REGISTRY,
)


def broker_consumers(broker: KafkaBroker) -> list[tuple[str, AIOKafkaConsumer]]:
    """(group id, consumer) of every running subscriber of ``broker``."""
    found: list[tuple[str, AIOKafkaConsumer]] = []
    for sub in broker.subscribers:
        group = str(getattr(sub, "group_id", None) or getattr(sub, "_group_id", None) or "-")
        consumers = list(getattr(sub, "consumer_subgroup", None) or ())
        if not consumers and getattr(sub, "consumer", None) is not None:
            consumers = [sub.consumer]  # type: ignore[attr-defined]
        found.extend((group, c) for c in consumers)
    return found


def _task_ended(owner: Any, name: str) -> bool:
    task = getattr(owner, name, None)
    return isinstance(task, asyncio.Future) and task.done()


@dataclass
class _Progress:
    position: int
    since: float


@dataclass
class ConsumerWatchdog:
    """Checks ``consumers()`` every ``every_s``; calls ``on_stuck`` (default: end the process)
    with the reason when one is stuck."""

    consumers: Callable[[], Iterable[tuple[str, AIOKafkaConsumer]]]
    stall_s: float = 180.0
    every_s: float = 10.0
    past_end_s: float = 15.0
    on_stuck: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic
    _rebalancing_since: dict[int, float] = field(default_factory=dict)
    _progress: dict[tuple[int, TopicPartition], _Progress] = field(default_factory=dict)
    _past_end: dict[tuple[int, TopicPartition], _Progress] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    stuck: str | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consumer-watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                reason = await self.check()
            except Exception as exc:  # a check that fails says nothing about the consumer
                log.warning("consumer watchdog check failed", error=type(exc).__name__)
                continue
            if reason is not None:
                self.stuck = reason
                CONSUMER_STUCK.set(1)
                log.error("a consumer is stuck; restarting the process", reason=reason)
                (self.on_stuck or _end_process)(reason)
                return

    async def check(self) -> str | None:
        """The reason one of the consumers is stuck, or None."""
        now = self.clock()
        for group, consumer in self.consumers():
            key = id(consumer)
            coordinator = getattr(consumer, "_coordinator", None)
            fetcher = getattr(consumer, "_fetcher", None)
            if coordinator is not None and _task_ended(coordinator, "_coordination_task"):
                return f"group {group}: its coordination task ended"
            if fetcher is not None and _task_ended(fetcher, "_fetch_task"):
                return f"group {group}: its fetch task ended"
            state = getattr(consumer, "_subscription", None)
            subscription = getattr(state, "subscription", None)
            if subscription is not None and getattr(
                subscription, "_reassignment_in_progress", False
            ):
                since = self._rebalancing_since.setdefault(key, now)
                if now - since > self.stall_s:
                    return f"group {group}: no assignment for {now - since:.0f} s"
                continue
            self._rebalancing_since.pop(key, None)
            if reason := await self._check_progress(group, consumer, now):
                return reason
        return None

    async def _check_progress(
        self, group: str, consumer: AIOKafkaConsumer, now: float
    ) -> str | None:
        assigned = sorted(consumer.assignment())
        if not assigned:
            return None
        ends = await asyncio.wait_for(consumer.end_offsets(assigned), 10)
        for tp in assigned:
            key = (id(consumer), tp)
            try:
                position = await asyncio.wait_for(consumer.position(tp), 5)
            except Exception:  # no position yet (being reset): nothing to compare
                self._progress.pop(key, None)
                continue
            if await self._past_end_of_log(group, consumer, tp, position, now):
                self._progress.pop(key, None)
                continue
            seen = self._progress.get(key)
            if seen is None or seen.position != position or ends.get(tp, 0) <= position:
                self._progress[key] = _Progress(position, now)
                continue
            if now - seen.since > self.stall_s:
                return (
                    f"group {group}: {tp.topic}[{tp.partition}] has records up to "
                    f"{ends[tp]} and has not moved from {position} for {now - seen.since:.0f} s"
                )
        return None

    async def _past_end_of_log(
        self, group: str, consumer: AIOKafkaConsumer, tp: TopicPartition, position: int, now: float
    ) -> bool:
        """True (and, after ``past_end_s`` without a move, the partition sought by the reset
        policy) when ``position`` is past the partition's high watermark."""
        key = (id(consumer), tp)
        highwater = consumer.highwater(tp)
        if highwater is None or position <= highwater:
            self._past_end.pop(key, None)
            return False
        seen = self._past_end.get(key)
        if seen is None or seen.position != position:
            self._past_end[key] = _Progress(position, now)
            return True
        if now - seen.since < self.past_end_s:
            return True
        fetcher = getattr(consumer, "_fetcher", None)
        latest = getattr(fetcher, "_default_reset_strategy", None) == OffsetResetStrategy.LATEST
        log.warning(
            "position past the end of the partition's log (the broker lost records); "
            "seeking by the reset policy, as Kafka's OFFSET_OUT_OF_RANGE does",
            group=group,
            topic=tp.topic,
            partition=tp.partition,
            position=position,
            log_end=highwater,
            reset="latest" if latest else "earliest",
        )
        POSITION_RESETS.inc()
        self._past_end.pop(key, None)
        if latest:
            await asyncio.wait_for(consumer.seek_to_end(tp), 10)
        else:
            await asyncio.wait_for(consumer.seek_to_beginning(tp), 10)
        return True


def _end_process(reason: str) -> None:
    """Ask the process to stop as on SIGTERM; if a stuck client keeps it from stopping, end it
    hard after 30 s (nothing is lost: offsets are committed only after durable effects)."""
    del reason
    loop = asyncio.get_running_loop()
    loop.call_later(30, os._exit, 70)
    os.kill(os.getpid(), signal.SIGTERM)
