"""The HTTP face every Ketnoi process has: /livez, /readyz, /metrics, run under uvicorn.

``/livez`` touches no dependency (the process answers); ``/readyz`` checks the broker and the
database (and any extra check a service adds) with a short deadline and answers 503 with the
failing parts named; ``/metrics`` is the Prometheus text of the process registry (FastStream's
handler metrics and the domain counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .db import OutboxRelay, create_pool
from .metrics import REGISTRY
from .settings import CommonSettings
from .watchdog import ConsumerWatchdog, broker_consumers

__all__ = [
    "Probe",
    "ReadinessChecks",
    "add_probes",
    "broker_probe",
    "consumer_app",
    "db_probe",
    "serve",
    "tcp_probe",
    "tune_gc",
]

log = structlog.get_logger(__name__)

Probe = Callable[[], Awaitable[bool]]


def broker_probe(broker: KafkaBroker) -> Probe:
    async def check() -> bool:
        return bool(await broker.ping(timeout=1.5))

    return check


def tcp_probe(bootstrap: str) -> Probe:
    """Ready when at least one of the ``host:port`` servers accepts a TCP connection."""

    async def check() -> bool:
        for server in bootstrap.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host or "127.0.0.1", int(port)), 1.0
                )
            except (OSError, TimeoutError, ValueError):
                continue
            writer.close()
            return True
        return False

    return check


def db_probe(pool: Callable[[], asyncpg.Pool | None]) -> Probe:
    async def check() -> bool:
        p = pool()
        if p is None:
            return False
        async with p.acquire(timeout=1.5) as conn:
            return bool(await conn.fetchval("SELECT 1", timeout=1.5) == 1)

    return check


@dataclass(slots=True)
class ReadinessChecks:
    """Named probes; ready when ``policy`` says so (default: all pass)."""

    probes: dict[str, Probe] = field(default_factory=dict)
    policy: Callable[[dict[str, bool]], bool] = field(default=lambda r: all(r.values()))

    async def run(self, timeout: float = 2.0) -> tuple[bool, dict[str, bool]]:
        async def one(probe: Probe) -> bool:
            try:
                return await asyncio.wait_for(probe(), timeout)
            except Exception:  # a probe that raises is a failing probe
                return False

        names = list(self.probes)
        results = await asyncio.gather(*(one(self.probes[n]) for n in names))
        outcome = dict(zip(names, results, strict=True))
        return self.policy(outcome), outcome


def add_probes(app: FastAPI, checks: ReadinessChecks, *, service: str) -> None:
    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        ready, outcome = await checks.run()
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "service": service, "checks": outcome},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@dataclass
class ServiceResources:
    """What a consumer service keeps open: its database pool, its outbox relay and periodic
    jobs. ``open`` in the app's start-up, ``close`` in its shut-down."""

    settings: CommonSettings
    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self) -> asyncpg.Pool:
        if not self.settings.database_url:
            raise RuntimeError("KETNOI_DATABASE_URL is not set")
        self.pool = await create_pool(
            self.settings.database_url, max_size=self.settings.database_pool_max
        )
        self.relay = OutboxRelay(
            self.pool,
            bootstrap=self.settings.kafka_bootstrap,
            idempotence=self.settings.kafka_idempotence,
            reconcile_after_s=self.settings.reconcile_after_s,
        )
        await self.relay.start()
        return self.pool

    def every(self, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        """Run ``job`` every ``seconds``; a failing run is logged and the next one comes."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await job()
                except Exception as exc:  # a periodic job must not die with one failure
                    log.warning(
                        "periodic job failed",
                        job=getattr(job, "__name__", "?"),
                        error=type(exc).__name__,
                    )

        self.tasks.append(asyncio.create_task(loop()))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.relay is not None:
            await self.relay.stop()
        if self.pool is not None:
            await self.pool.close()


def consumer_app(
    settings: CommonSettings,
    *,
    service: str,
    broker: KafkaBroker,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    pool: Callable[[], asyncpg.Pool | None] | None = None,
) -> FastAPI:
    """The HTTP face of a consumer service: the broker (with its subscribers) runs in the
    app's lifespan, and /livez, /readyz (broker, and database when ``pool`` is given) and
    /metrics are served. ``on_startup`` runs before the broker starts consuming. A watchdog
    ends the process when a consumer is stuck (:mod:`ketnoi_shared.watchdog`)."""

    watchdog = ConsumerWatchdog(lambda: broker_consumers(broker), stall_s=settings.consumer_stall_s)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        try:
            # A start waits for every consumer's first group join, which can hang for ever
            # (see ketnoi_shared.watchdog): give up, and let the supervisor start us again.
            await asyncio.wait_for(broker.start(), settings.consumer_start_timeout_s)
        except TimeoutError:
            log.error(  # noqa: TRY400 - the reason is the timeout, not a traceback
                "consumers did not join their groups in time; exiting to be started again",
                timeout_s=settings.consumer_start_timeout_s,
            )
            raise
        await watchdog.start()
        try:
            yield
        finally:
            await watchdog.stop()
            await stop_within(broker.stop(), settings.shutdown_timeout_s, what="broker")
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(title=f"Ketnoi {service}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.watchdog = watchdog
    probes: dict[str, Probe] = {"broker": broker_probe(broker)}
    if pool is not None:
        probes["database"] = db_probe(pool)
    add_probes(app, ReadinessChecks(probes=probes), service=service)
    return app


async def stop_within(stopping: Awaitable[None], timeout_s: float, *, what: str) -> bool:
    """Await ``stopping`` for at most ``timeout_s``; past that, give up on it and say so.

    aiokafka's ``AIOKafkaConsumer.stop()`` first awaits its coordination task, and a
    coordinator in the middle of a rebalance is waiting for its JoinGroup answer, which the
    group coordinator holds until every member has rejoined (up to the rebalance timeout,
    ``max.poll.interval.ms``, 300 s). A SIGTERM at that moment used to keep the process alive
    until the orchestrator's SIGKILL (reliability finding 16). Giving up is safe: nothing is
    committed after a handler's side effects are lost, so what was not committed is simply
    delivered again. Returns whether it stopped in time."""
    try:
        await asyncio.wait_for(stopping, timeout_s)
    except TimeoutError:
        log.error(  # noqa: TRY400 - the reason is the timeout, not a traceback
            "did not stop in time; exiting anyway (uncommitted records are delivered again)",
            what=what,
            timeout_s=timeout_s,
        )
        return False
    return True


def tune_gc() -> None:
    """Move start-up objects out of the collector's way and collect young objects less often.

    Measured on ingest (benchmarks/ingest_bench.py): with CPython's default thresholds the
    collector's full passes over the large start-up heap (pydantic schemas, FastStream,
    FastAPI) took about a third of the CPU under load. ``gc.freeze()`` after start-up is the
    usual remedy for long-running servers; request garbage is still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def serve(app: Any, settings: CommonSettings) -> None:
    """Run ``app`` under uvicorn on the configured host and port until SIGINT/SIGTERM."""
    tune_gc()
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our structlog configuration handles uvicorn's loggers
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
