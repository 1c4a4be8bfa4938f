"""Kafka messaging on FastStream: broker factory, publishing with envelope headers, topic
creation, and the one retry + dead-letter mechanism every consumer uses.

Delivery guarantees:

* producers wait for ``acks=all``;
* consumers use a consumer group with ``AckPolicy.NACK_ON_ERROR``: the offset is committed only
  after the handler returned (its side effects are durable by then), and an exception that
  escapes rewinds the partition to the message;
* :class:`DeadLetterMiddleware` turns that into bounded retries: a deterministic failure is
  retried with jittered exponential backoff a bounded number of times, then the original bytes
  and headers go to ``<topic>.dlq`` with the error, the attempt count and the origin, and the
  offset is committed so the partition keeps flowing. An undecodable message goes to the DLQ at
  once. A failure of the infrastructure itself (database or broker unreachable) is not the
  message's fault: the partition pauses and retries it (with backoff) instead of dead-lettering
  good messages during an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final, TypeVar

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from faststream import AckPolicy
from faststream._internal.middlewares import BaseMiddleware
from faststream.exceptions import HandlerException, NackMessage
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from pydantic import ValidationError

from .contracts import Envelope, TopicSpec
from .logging import bind_context
from .metrics import CONSUMER_RETRIES, DEAD_LETTERED, REGISTRY
from .settings import CommonSettings

__all__ = [
    "CONSUMER_ACK_POLICY",
    "DeadLetterMiddleware",
    "DeadLetterPolicy",
    "Encoded",
    "dead_letter",
    "decode_batch",
    "encode_for",
    "ensure_topics",
    "envelope_headers",
    "handle_each",
    "is_transient",
    "kafka_headers",
    "make_broker",
    "make_producer",
    "publish",
    "retry_policy",
    "send",
    "send_encoded",
]

log = structlog.get_logger(__name__)

#: Ack policy of every Ketnoi subscriber: commit after processing, rewind on error.
CONSUMER_ACK_POLICY: Final = AckPolicy.NACK_ON_ERROR

H_EVENT_ID: Final = "ketnoi-event-id"
H_SCHEMA: Final = "ketnoi-schema-version"
H_OCCURRED: Final = "ketnoi-occurred-at"
H_PRODUCED: Final = "ketnoi-produced-at"
H_MODEL: Final = "ketnoi-model"


def envelope_headers(model: Envelope) -> dict[str, str]:
    """Kafka headers mirroring the envelope (FastStream adds ``correlation_id`` itself)."""
    return {
        H_EVENT_ID: model.event_id,
        H_SCHEMA: str(model.schema_version),
        H_OCCURRED: model.occurred_at.isoformat(),
        H_PRODUCED: model.produced_at.isoformat(),
        H_MODEL: type(model).__name__,
    }


def encode(model: Envelope) -> bytes:
    return model.model_dump_json().encode()


def kafka_headers(model: Envelope) -> list[tuple[str, bytes]]:
    """Envelope headers plus the ``correlation_id`` header FastStream consumers read."""
    headers = envelope_headers(model) | {"correlation_id": model.correlation_id}
    return [(k, v.encode()) for k, v in headers.items()]


def make_producer(
    settings: CommonSettings, *, client_id: str, request_timeout_ms: int | None = None
) -> AIOKafkaProducer:
    """A bare aiokafka producer (acks=all) for hot paths that only produce, such as ingest:
    it skips FastStream's per-message middleware work. An unsent batch expires after
    ``request_timeout_ms``, which bounds how long a send can stay ambiguous."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        client_id=client_id,
        request_timeout_ms=request_timeout_ms or settings.kafka_request_timeout_ms,
        linger_ms=0,
    )


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message as bytes, encoded once: what is produced to ``topic`` and what the outbox
    stores (ingest journals every event it publishes, ketnoi_shared.reconcile)."""

    topic: str
    event_id: str
    key: bytes
    value: bytes
    #: Envelope headers plus ``correlation_id``, as text.
    headers: dict[str, str]

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers.items()]


def encode_for(spec: TopicSpec, model: Envelope) -> Encoded:
    """``model`` encoded for ``spec`` (its key, value and envelope headers)."""
    if spec.value_model is None or not isinstance(model, spec.value_model):
        raise TypeError(f"{type(model).__name__} is not the value model of {spec.name}")
    key: str = model.partition_key()  # type: ignore[attr-defined]
    return Encoded(
        topic=spec.name,
        event_id=model.event_id,
        key=key.encode(),
        value=encode(model),
        headers=envelope_headers(model) | {"correlation_id": model.correlation_id},
    )


async def send_encoded(producer: AIOKafkaProducer, message: Encoded) -> asyncio.Future[Any]:
    """Enqueue an encoded message on ``producer``; returns the future of its ack."""
    future: asyncio.Future[Any] = await producer.send(
        message.topic, value=message.value, key=message.key, headers=message.kafka_headers()
    )
    return future


async def send(producer: AIOKafkaProducer, spec: TopicSpec, model: Envelope) -> asyncio.Future[Any]:
    """Enqueue ``model`` on ``producer``; returns the future of the broker's acknowledgement.

    Sends issued in order on one producer keep their order within a partition."""
    return await send_encoded(producer, encode_for(spec, model))


async def publish(broker: KafkaBroker, spec: TopicSpec, model: Envelope) -> None:
    """Publish ``model`` to ``spec`` with its key and envelope headers; waits for acks=all."""
    if spec.value_model is None or not isinstance(model, spec.value_model):
        raise TypeError(f"{type(model).__name__} is not the value model of {spec.name}")
    key: str = model.partition_key()  # type: ignore[attr-defined]
    await broker.publish(
        encode(model),
        topic=spec.name,
        key=key.encode(),
        headers=envelope_headers(model),
        correlation_id=model.correlation_id,
    )


_TRANSIENT: Final = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    KafkaConnectionError,
    KafkaTimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """True when the failure is the infrastructure's, not the message's."""
    return isinstance(exc, _TRANSIENT)


def _is_undecodable(exc: BaseException) -> bool:
    return isinstance(exc, ValidationError | json.JSONDecodeError | UnicodeDecodeError)


@dataclass(slots=True)
class DeadLetterPolicy:
    """How a consumer retries, and where it dead-letters."""

    consumer: str
    attempts: int = 4
    backoff_s: float = 0.2
    backoff_max_s: float = 5.0
    #: Backoff while the infrastructure is failing (the partition pauses, nothing is DLQ'd).
    transient_pause_s: float = 1.0
    broker: KafkaBroker | None = field(default=None, repr=False)
    sleep: Callable[[float], Any] = field(default=asyncio.sleep, repr=False)

    def backoff(self, attempt: int) -> float:
        base: float = min(self.backoff_max_s, self.backoff_s * 2.0 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto


class DeadLetterMiddleware(BaseMiddleware):
    """Bounded retries, then ``<topic>.dlq``; see the module docstring."""

    def __init__(self, msg: Any, /, *, context: Any, policy: DeadLetterPolicy) -> None:
        super().__init__(msg, context=context)
        self.policy = policy

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Any], msg: StreamMessage[Any]
    ) -> Any:
        record = msg.raw_message
        topic = getattr(record, "topic", "?")
        bind_context(
            {
                "topic": topic,
                "partition": getattr(record, "partition", None),
                "offset": getattr(record, "offset", None),
                "correlation_id": msg.correlation_id,
                "event_id": msg.headers.get(H_EVENT_ID),
                "consumer": self.policy.consumer,
            }
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call_next(msg)
            except HandlerException:
                raise
            except Exception as exc:
                if is_transient(exc):
                    CONSUMER_RETRIES.labels(topic=topic, kind="transient").inc()
                    log.warning("infrastructure failure, pausing partition", error=repr(exc))
                    await self.policy.sleep(self.policy.transient_pause_s)
                    raise NackMessage() from exc
                if _is_undecodable(exc) or attempt >= self.policy.attempts:
                    reason = "undecodable" if _is_undecodable(exc) else "handler_error"
                    await self._dead_letter(msg, exc, attempt=attempt, reason=reason)
                    return None
                CONSUMER_RETRIES.labels(topic=topic, kind="deterministic").inc()
                delay = self.policy.backoff(attempt)
                log.warning(
                    "handler failed, retrying",
                    attempt=attempt,
                    delay_s=round(delay, 3),
                    error=type(exc).__name__,
                )
                await self.policy.sleep(delay)

    async def _dead_letter(
        self, msg: StreamMessage[Any], exc: BaseException, *, attempt: int, reason: str
    ) -> None:
        broker = self.policy.broker
        if broker is None:  # pragma: no cover - wiring error
            raise RuntimeError("DeadLetterPolicy.broker is not set")
        await dead_letter(
            broker,
            msg.raw_message,
            exc,
            consumer=self.policy.consumer,
            attempts=attempt,
            reason=reason,
            headers=msg.headers,
            correlation_id=msg.correlation_id,
            body=msg.body,
        )


async def dead_letter(
    broker: KafkaBroker,
    record: Any,
    exc: BaseException,
    *,
    consumer: str,
    attempts: int,
    reason: str,
    headers: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    body: bytes | None = None,
) -> None:
    """Send one consumed record to ``<topic>.dlq`` with its original bytes and headers plus
    the error, the attempt count and its origin. Batch consumers call it per bad record."""
    topic = getattr(record, "topic", "unknown")
    if headers is None:
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    out = {k: v for k, v in headers.items() if isinstance(v, str)}
    out.update(
        {
            "x-dlq-reason": reason,
            "x-dlq-error-type": type(exc).__name__,
            # The exception text may quote the payload; keep only the last frames' shape.
            "x-dlq-error": _safe_error(exc),
            "x-dlq-attempts": str(attempts),
            "x-dlq-original-topic": topic,
            "x-dlq-original-partition": str(getattr(record, "partition", "")),
            "x-dlq-original-offset": str(getattr(record, "offset", "")),
            "x-dlq-consumer": consumer,
            "x-dlq-failed-at": datetime.now(UTC).isoformat(),
        }
    )
    await broker.publish(
        body if body is not None else record.value,
        topic=topic + ".dlq",
        key=getattr(record, "key", None),
        headers=out,
        correlation_id=correlation_id or out.get("correlation_id"),
    )
    DEAD_LETTERED.labels(topic=topic, reason=reason).inc()
    log.error(
        "message dead-lettered", reason=reason, attempts=attempts, error_type=type(exc).__name__
    )


_M = TypeVar("_M", bound=Envelope)


async def decode_batch(
    broker: KafkaBroker, msg: Any, model: type[_M], *, consumer: str
) -> list[tuple[Any, _M]]:
    """The records of a batch subscriber's message, each decoded as ``model``, in order; a
    record that does not decode is dead-lettered alone (reason ``undecodable``) and left out,
    so one bad record never holds back the batch."""
    records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
    out: list[tuple[Any, _M]] = []
    for record in records:
        try:
            out.append((record, model.model_validate_json(record.value)))
        except ValidationError as exc:
            await dead_letter(
                broker, record, exc, consumer=consumer, attempts=1, reason="undecodable"
            )
    return out


async def handle_each(
    broker: KafkaBroker,
    batch: list[tuple[Any, _M]],
    handle: Callable[[_M], Awaitable[Any]],
    *,
    policy: DeadLetterPolicy,
    concurrency: int = 1,
) -> None:
    """Handle the records of a batch one by one with the retry and dead-letter rules of
    :class:`DeadLetterMiddleware`: a deterministic failure is retried ``policy.attempts``
    times, then that record alone is dead-lettered; a failure of the infrastructure is waited
    out on the record itself (every ``policy.transient_pause_s``, without counting attempts),
    so the batch is not read again and no record is dead-lettered twice. A very long outage
    ends in a rebalance (``max.poll.interval.ms``) or the watchdog's restart, and the batch is
    read again from its committed offsets. Partitions are handled ``concurrently`` at a time,
    each in order.

    With a batch subscriber the offsets are committed once per batch instead of once per
    record: for consumers that see every event (most of which they skip), that commit was
    most of their cost."""
    by_partition: dict[tuple[str, int], list[tuple[Any, _M]]] = {}
    for record, model in batch:
        key = (getattr(record, "topic", ""), getattr(record, "partition", 0))
        by_partition.setdefault(key, []).append((record, model))
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one_partition(items: list[tuple[Any, _M]]) -> None:
        async with limit:
            for record, model in items:
                await _handle_one(broker, record, model, handle, policy)

    outcomes = await asyncio.gather(
        *(one_partition(items) for items in by_partition.values()), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _handle_one(
    broker: KafkaBroker,
    record: Any,
    model: _M,
    handle: Callable[[_M], Awaitable[Any]],
    policy: DeadLetterPolicy,
) -> None:
    topic = getattr(record, "topic", "?")
    bind_context(
        {
            "topic": topic,
            "partition": getattr(record, "partition", None),
            "offset": getattr(record, "offset", None),
            "correlation_id": model.correlation_id,
            "event_id": model.event_id,
            "consumer": policy.consumer,
        }
    )
    attempt = 0
    while True:
        attempt += 1
        try:
            await handle(model)
        except Exception as exc:
            if is_transient(exc):
                attempt -= 1  # not the record's fault: it does not count
                CONSUMER_RETRIES.labels(topic=topic, kind="transient").inc()
                log.warning("infrastructure failure, waiting", error=repr(exc))
                await policy.sleep(policy.transient_pause_s)
                continue
            if attempt >= policy.attempts:
                await dead_letter(
                    broker,
                    record,
                    exc,
                    consumer=policy.consumer,
                    attempts=attempt,
                    reason="handler_error",
                )
                return
            CONSUMER_RETRIES.labels(topic=topic, kind="deterministic").inc()
            delay = policy.backoff(attempt)
            log.warning(
                "handler failed, retrying",
                attempt=attempt,
                delay_s=round(delay, 3),
                error=type(exc).__name__,
            )
            await policy.sleep(delay)
        else:
            return


def _safe_error(exc: BaseException) -> str:
    """A description of ``exc`` that cannot carry payload values (identities, text)."""
    if isinstance(exc, ValidationError):
        fields = sorted({".".join(map(str, e["loc"])) + ":" + e["type"] for e in exc.errors()})
        return "ValidationError " + ", ".join(fields)[:900]
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " < ".join(f"{f.name}@{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in frames)
    return f"{type(exc).__name__} at {where}"[:900]


def retry_policy(settings: CommonSettings, *, consumer: str) -> DeadLetterPolicy:
    """The retry and dead-letter rules of ``settings`` for ``consumer``."""
    return DeadLetterPolicy(
        consumer=consumer,
        attempts=settings.retry_attempts,
        backoff_s=settings.retry_backoff_s,
        backoff_max_s=settings.retry_backoff_max_s,
    )


def make_broker(
    settings: CommonSettings,
    *,
    service: str,
    policy: DeadLetterPolicy | None = None,
) -> KafkaBroker:
    """A KafkaBroker with acks=all, Prometheus metrics and the dead-letter middleware."""
    policy = policy or retry_policy(settings, consumer=service)
    broker = KafkaBroker(
        settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotence,
        client_id=f"ketnoi-{service}",
        request_timeout_ms=settings.kafka_request_timeout_ms,
        # On stop, handlers in flight get this long to finish before they are cancelled.
        graceful_timeout=settings.shutdown_timeout_s / 2,
        middlewares=(
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service),
            partial(DeadLetterMiddleware, policy=policy),
        ),
        # A standard-library logger: its lines go through the structlog formatter like all.
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,  # per-message "Received/Processed" lines only in debug
    )
    policy.broker = broker
    return broker


async def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec], *, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ketnoi-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        try:
            await admin.create_topics(
                [
                    NewTopic(
                        s.name,
                        s.partitions,
                        replication,
                        topic_configs={"retention.ms": str(s.retention_ms)},
                    )
                    for s in missing
                ]
            )
        except TopicAlreadyExistsError:  # a concurrent creator won the race
            pass
        except KafkaError:
            # Some brokers reject topic configs; create without them rather than fail.
            for s in missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(s.name, s.partitions, replication)])
        return [s.name for s in missing]
    finally:
        await admin.close()
