"""The ingest HTTP service: ``POST /zalo/webhook``.

Order of work for one request, cheapest refusal first:

1. size: ``Content-Length`` over the limit → 413 before reading; a streamed body is cut at the
   limit → 413;
2. signature header present, body parsed (ids and timestamps kept as text), envelope readable,
   signature valid for the OA's secret (else the app-wide one) → otherwise 401/400/422 and no
   side effect at all: nothing stored, nothing published, the body not logged;
3. normalise into ``zalo.events.v1`` (identities pseudonymised and sealed), drop our own API
   echoes;
4. make it durable exactly once: in one PostgreSQL transaction, claim the event id in the edge
   dedup table (a retry or concurrent duplicate finds it and is answered 200 without effect),
   then publish with acks=all within a deadline; if the broker is slow or down, write the event
   to the spool (the outbox table) in the same transaction instead, and the relay drains it to
   Kafka in order when the broker is back. The 200 goes out only after the commit.

If PostgreSQL is unreachable the event is still published (the consumers' inboxes deduplicate);
if neither is reachable the answer is 503 and Zalo retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, Response
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent
from ketnoi_shared.db import OutboxRelay, create_pool
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import Encoded, encode_for, make_producer, send_encoded
from ketnoi_shared.service import ReadinessChecks, add_probes, db_probe, tcp_probe

from .batcher import DurableBatcher
from .metrics import ACK_LATENCY, RECEIVED, accepted, dropped, rejected
from .normalize import BadShapeError, normalize, read_envelope
from .settings import IngestSettings
from .signature import compute_signature, signature_matches

__all__ = ["Ingest", "create_app"]

log = structlog.get_logger("ketnoi.ingest")

SIGNATURE_HEADER: Final = "x-zevent-signature"
_BROKER_ERRORS: Final = (KafkaError, TimeoutError, OSError)
#: The request headers the handler reads (raw, lowercase, as the ASGI server gives them).
_WANTED_HEADERS: Final = {
    name.encode(): name for name in (SIGNATURE_HEADER, "content-length", "num_retry", "num-retry")
}
#: ``json.loads(raw, parse_int=str, parse_float=str)`` without building a decoder per call.
_DECODER: Final = json.JSONDecoder(parse_int=str, parse_float=str)
#: Starlette's JSONResponse serialisation (same bytes), without an encoder per call.
_ENCODE_JSON: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
).encode


def parse_body(raw: bytes) -> Any:
    """``json.loads`` for a request body: the encoding detected as ``json.loads`` does, ids
    and numbers kept as text. Raises ValueError (or RecursionError) when it is not JSON."""
    return _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


def json_response(payload: dict[str, Any], status: int) -> Response:
    """What ``JSONResponse(payload, status_code=status)`` sends, byte for byte."""
    return Response(
        _ENCODE_JSON(payload).encode(), status_code=status, media_type="application/json"
    )


class RefusedError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class Ingest:
    """The long-lived parts of one ingest process."""

    settings: IngestSettings
    protector: IdentityProtector
    producer: AIOKafkaProducer | None = None
    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    batcher: DurableBatcher | None = None
    broker_connected: bool = False
    #: While spooled events wait for the relay, new ones queue behind them (order per citizen).
    spooling: bool = False
    last_spooled: float = 0.0
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    # -- secrets ---------------------------------------------------------------------------
    def secret_for(self, candidates: tuple[str, ...]) -> tuple[str | None, str | None]:
        """(OA id, secret): the first candidate OA with its own key, else the app-wide key."""
        for oa_id in candidates:
            key = self.settings.zalo_oa_secrets.get(oa_id)
            if key is not None:
                return oa_id, key.get_secret_value()
        fallback = self.settings.zalo_oa_secret
        oa_id = candidates[0] if candidates else None
        return oa_id, fallback.get_secret_value() if fallback else None

    # -- request handling --------------------------------------------------------------------
    async def handle(self, raw: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            raise RefusedError(401, "missing_signature", "missing X-ZEvent-Signature")
        try:
            body = parse_body(raw)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise RefusedError(400, "malformed_json", "body is not valid UTF-8 JSON") from exc
        try:
            env = read_envelope(body)
        except BadShapeError as exc:
            raise RefusedError(422, "bad_shape", str(exc)) from exc
        oa_id, secret = self.secret_for(env.oa_candidates)
        if secret is None or oa_id is None:
            raise RefusedError(401, "unknown_oa", "no secret for this OA")
        if self.settings.zalo_app_id and env.app_id != self.settings.zalo_app_id:
            raise RefusedError(401, "wrong_app", "unknown app_id")
        expected = compute_signature(
            app_id=env.app_id, raw_body=raw, timestamp=env.timestamp, secret=secret
        )
        if not signature_matches(signature, expected):
            raise RefusedError(401, "bad_signature", "signature does not match")

        retry_header = headers.get("num_retry") or headers.get("num-retry") or "0"
        num_retry = int(retry_header) if retry_header.isdigit() and len(retry_header) < 6 else 0
        try:
            event = normalize(body, env, oa_id=oa_id, protect=self.protector, num_retry=num_retry)
        except BadShapeError as exc:
            raise RefusedError(422, "bad_shape", str(exc)) from exc
        except ValueError as exc:  # pydantic validation of the contract
            raise RefusedError(422, "bad_shape", "event does not fit the contract") from exc
        if event is None:
            dropped("oa_echo").inc()
            return 200, {"status": "ignored", "reason": "oa_echo"}
        tokens = structlog.contextvars.bind_contextvars(
            event_id=event.event_id, correlation_id=event.correlation_id
        )
        try:
            outcome = await self.make_durable(event)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        return 200, {"status": outcome, "event_id": event.event_id}

    async def make_durable(self, event: ZaloEvent) -> str:
        if self.batcher is not None:
            try:
                return await self.batcher.submit(event)
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
            ) as exc:
                log.warning(
                    "spool unavailable, publishing without edge dedup", error=type(exc).__name__
                )
        if await self._publish_one(event):
            accepted("kafka").inc()
            return "accepted"
        raise RefusedError(503, "unavailable", "neither broker nor spool available")

    async def _publish_one(self, event: ZaloEvent) -> bool:
        return (await self.publish_batch([encode_for(ZALO_EVENTS, event)]))[0]

    # -- lifecycle ---------------------------------------------------------------------------
    async def publish_batch(self, events: list[Encoded]) -> list[bool]:
        """Send ``events`` together; per event, True when the broker acknowledged it.

        The producer's request timeout (= the publish timeout) expires an unsent batch and
        fails its futures, so an event that is spooled is not also delivered later."""
        if not self.broker_connected or self.producer is None:
            return [False] * len(events)
        futures = []
        for event in events:
            try:
                futures.append(await send_encoded(self.producer, event))
            except _BROKER_ERRORS as exc:
                log.warning("broker refused a send", error=type(exc).__name__)
                break
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        acked = [not isinstance(o, BaseException) for o in outcomes]
        if not all(acked) or len(acked) < len(events):
            log.warning(
                "broker did not acknowledge in time, spooling", unacked=len(events) - sum(acked)
            )
        return acked + [False] * (len(events) - len(acked))

    def mark_spooled(self) -> None:
        self.spooling = True
        self.last_spooled = time.monotonic()

    async def _connect_broker(self) -> None:
        delay = 0.5
        while not self.broker_connected:
            if self.producer is None:
                # aiokafka binds to the running loop, so the producer is made here.
                self.producer = make_producer(
                    self.settings,
                    client_id="ketnoi-ingest",
                    request_timeout_ms=int(self.settings.ingest_publish_timeout_s * 1000),
                )
            try:
                await self.producer.start()
                self.broker_connected = True
                log.info("broker connected")
            except Exception as exc:  # keep trying; the spool takes events meanwhile
                log.warning("broker not reachable yet", error=type(exc).__name__)
                with contextlib.suppress(Exception):
                    await self.producer.stop()
                self.producer = None  # a failed start is not retried on the same object
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _watch_spool(self) -> None:
        """Leave spooling mode once the relay has drained the spool: a relay pass that
        started after the last spooled event committed has published everything it found."""
        assert self.relay is not None
        while True:
            await asyncio.sleep(0.2)
            if self.spooling and self.relay.last_clean_pass_started > self.last_spooled:
                self.spooling = False
                log.info("spool drained, publishing directly again")

    async def _expire_dedup(self) -> None:
        assert self.pool is not None
        while True:
            with contextlib.suppress(Exception):
                await self.pool.execute(
                    "DELETE FROM ingest_dedup "
                    "WHERE received_at < now() - make_interval(days => $1)",
                    self.settings.ingest_dedup_days,
                )
            await asyncio.sleep(3600)

    async def start(self) -> None:
        if self.settings.database_url:
            try:
                self.pool = await create_pool(
                    self.settings.database_url, max_size=self.settings.database_pool_max
                )
            except Exception as exc:
                log.error("database not reachable at start", error=type(exc).__name__)  # noqa: TRY400 - no traceback needed
                raise
            self.relay = OutboxRelay(
                self.pool,
                bootstrap=self.settings.kafka_bootstrap,
                idempotence=self.settings.kafka_idempotence,
                reconcile_after_s=self.settings.reconcile_after_s,
            )
            await self.relay.start()
            self.batcher = DurableBatcher(
                pool=self.pool,
                publish=self.publish_batch,
                spooling=lambda: self.spooling,
                on_spooled=self.mark_spooled,
                # Two batches in flight: one forms and claims while the other waits for its
                # acks. More workers meant smaller batches and more round trips per webhook
                # (measured: 4 workers, ~8 per batch; 2, ~11; and less CPU per webhook).
                workers=max(1, min(2, self.settings.database_pool_max - 2)),
                # The broker's wait plus room for the spool write, inside Zalo's 2 s.
                timeout_s=self.settings.ingest_publish_timeout_s + 0.7,
            )
            await self.batcher.start()
            self._tasks += [
                asyncio.create_task(self._watch_spool()),
                asyncio.create_task(self._expire_dedup()),
            ]
        connect = asyncio.create_task(self._connect_broker())
        self._tasks.append(connect)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(connect), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.batcher:
            await self.batcher.stop()
        if self.relay:
            await self.relay.stop()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
        if self.pool:
            await self.pool.close()

    def readiness(self) -> ReadinessChecks:
        checks = ReadinessChecks(
            probes={
                "broker": tcp_probe(self.settings.kafka_bootstrap),
                "spool": db_probe(lambda: self.pool),
            },
            # Ready when at least one durable path can take writes.
            policy=lambda r: r["broker"] or r["spool"],
        )
        return checks


def build_ingest(settings: IngestSettings) -> Ingest:
    if settings.zalo_oa_secret is None and not settings.zalo_oa_secrets:
        raise SystemExit(
            "ingest refuses to start: no Zalo OA secret key configured "
            "(KETNOI_ZALO_OA_SECRET or KETNOI_ZALO_OA_SECRETS); there is no unverified mode"
        )
    protector = settings.identity_protector()
    return Ingest(settings=settings, protector=protector)


def _headers(request: Request) -> dict[str, str]:
    """The headers the handler reads, first occurrence kept (as ``request.headers.get``),
    picked from the raw ASGI list without building Starlette's ``Headers``."""
    found: dict[str, str] = {}
    for key, value in request.scope["headers"]:
        name = _WANTED_HEADERS.get(key)
        if name is not None and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def _read_body(request: Request, declared: str | None, limit: int) -> bytes:
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RefusedError(413, "too_large", f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RefusedError(413, "too_large", f"body over {limit} bytes")
            if not message.get("more_body", False):
                if not chunks:
                    return chunk  # the usual case: the whole body in one message
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect


def create_app(settings: IngestSettings, ingest: Ingest | None = None) -> FastAPI:
    """The ingest ASGI app; built by a function so tests configure it first."""
    ingest = ingest or build_ingest(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ingest.start()
        try:
            yield
        finally:
            await ingest.stop()

    app = FastAPI(title="Ketnoi ingest", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ingest = ingest
    add_probes(app, ingest.readiness(), service="ingest")

    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        RECEIVED.inc()
        try:
            headers = _headers(request)
            raw = await _read_body(
                request, headers.get("content-length"), settings.ingest_max_body_bytes
            )
            status, payload = await ingest.handle(raw, headers)
        except RefusedError as refused:
            rejected(refused.reason).inc()
            log.info("webhook refused", reason=refused.reason, status=refused.status)
            return json_response(
                {"error": refused.reason, "message": refused.message}, refused.status
            )
        except Exception:
            # Never a 500 for what Zalo sends: Zalo will retry a 503.
            rejected("internal").inc()
            log.exception("webhook failed")
            return json_response({"error": "unavailable", "message": "try again"}, 503)
        ACK_LATENCY.observe(time.perf_counter() - started)
        return json_response(payload, status)

    # A plain Starlette route: the hot path needs no FastAPI dependency solving.
    app.router.routes.insert(0, Route("/zalo/webhook", webhook, methods=["POST"]))
    return app
