"""The operators' pages: ``/ops`` (topics, consumer lag, dead letters, service health, OA
tokens; its numbers refresh from ``/ops/live``), ``/ops/dlq`` (the dead-letter browser) and
``POST /ops/dlq/replay``. Administrators only; everything else gets a 403.

``create_app`` calls :func:`add_ops_routes` once; the broker clients and the HTTP client it
opens are closed with the app's lifespan.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg
import httpx
import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from ketnoi_shared.contracts import TOPICS, all_topics
from ketnoi_shared.messaging import make_producer

from . import ops
from .access import Role, Viewer
from .settings import ConsoleSettings

__all__ = ["OpsState", "add_ops_routes"]

log = structlog.get_logger("ketnoi.console.ops")

#: How often the page refreshes its numbers (ops.js reads it from the page).
REFRESH_S = 5
DLQ_LIMIT = 50
HEALTH_TIMEOUT_S = 1.5
BROKER_TIMEOUT_S = 8.0

STATE_VI = {
    "ready": "Sẵn sàng",
    "not_ready": "Chưa sẵn sàng",
    "unreachable": "Không kết nối được",
}
TOKEN_VI = {
    "valid": "Còn hiệu lực",
    "expired": "Đã hết hạn (làm mới khi gửi tin)",
    "needs_reauth": "Cần cấp lại quyền",
}
CHECK_VI = {"broker": "Kafka", "database": "PostgreSQL"}
METRIC_VI = {
    "received": "Đã nhận",
    "errors": "Lỗi xử lý",
    "retries": "Thử lại",
    "dead_lettered": "Chuyển DLQ",
    "duplicates": "Trùng (bỏ qua)",
    "outbox_pending": "Outbox chờ gửi",
}
DLQ_REASON_VI = {
    "undecodable": "Không giải mã được",
    "handler_error": "Lỗi khi xử lý (đã thử hết số lần)",
}


@dataclass
class OpsState:
    """The long-lived clients of the operators' pages, opened on first use."""

    settings: ConsoleSettings
    inspector: ops.BrokerInspector
    rates: ops.RateTracker = field(default_factory=ops.RateTracker)
    http: httpx.AsyncClient | None = None
    producer: AIOKafkaProducer | None = None
    _producer_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def client(self) -> httpx.AsyncClient:
        if self.http is None:
            self.http = httpx.AsyncClient(
                timeout=httpx.Timeout(HEALTH_TIMEOUT_S),
                limits=httpx.Limits(max_connections=20),
                follow_redirects=False,
            )
        return self.http

    async def publisher(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self.producer is None:
                producer = make_producer(self.settings, client_id="ketnoi-console-ops")
                await producer.start()
                self.producer = producer
        return self.producer

    async def close(self) -> None:
        await self.inspector.close()
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        if self.http is not None:
            await self.http.aclose()
            self.http = None


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def add_ops_routes(  # noqa: PLR0915 - the routes, in one place
    app: FastAPI,
    templates: Jinja2Templates,
    *,
    pool: Callable[[], asyncpg.Pool],
    settings: ConsoleSettings,
    current: Callable[..., Awaitable[Viewer]],
    csrf: Callable[[Viewer, str | None], None],
) -> OpsState:
    """Register the operators' routes on ``app`` (the console's ``create_app``)."""
    state = OpsState(
        settings=settings,
        inspector=ops.BrokerInspector(
            settings.kafka_bootstrap, request_timeout_ms=settings.kafka_request_timeout_ms
        ),
    )
    templates.env.globals.update(
        OPS_STATE_VI=STATE_VI,
        OPS_TOKEN_VI=TOKEN_VI,
        OPS_CHECK_VI=CHECK_VI,
        OPS_METRIC_VI=METRIC_VI,
        OPS_DLQ_REASON_VI=DLQ_REASON_VI,
    )

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as value:
            try:
                yield value
            finally:
                await state.close()

    app.router.lifespan_context = lifespan

    async def admin(viewer: Annotated[Viewer, Depends(current)]) -> Viewer:
        if viewer.role is not Role.ADMIN:
            raise HTTPException(403, "Chỉ quản trị hệ thống mới được xem trang vận hành.")
        return viewer

    Admin = Annotated[Viewer, Depends(admin)]  # noqa: N806 - a type alias

    async def snapshot() -> dict[str, Any]:
        """Every number of the page, gathered concurrently; a failing source is named on the
        page instead of failing it."""
        urls = await asyncio.to_thread(
            ops.service_urls, settings.console_service_urls, settings.data_dir
        )

        async def broker() -> tuple[list[ops.TopicStats], list[ops.GroupLag]]:
            topics = await ops.topic_stats(state.inspector, all_topics(), state.rates)
            by_tp = {TopicPartition(t.name, p): o for t in topics for p, o in t.offsets.items()}
            lags = [
                await ops.group_lag(state.inspector, g, offsets=by_tp) for g in ops.CONSUMER_GROUPS
            ]
            return topics, lags

        results = await asyncio.gather(
            asyncio.wait_for(broker(), BROKER_TIMEOUT_S),
            ops.service_health(state.client(), urls),
            ops.oa_token_status(pool()),
            ops.replay_counts(pool()),
            return_exceptions=True,
        )
        broker_result, health, tokens, replayed = results
        ctx: dict[str, Any] = {
            "topics": [],
            "groups": [],
            "broker_error": None,
            "health": health if isinstance(health, list) else [],
            "tokens": tokens if isinstance(tokens, list) else [],
            "replayed": replayed if isinstance(replayed, dict) else {},
            "refresh_s": REFRESH_S,
        }
        if isinstance(broker_result, BaseException):
            log.warning("broker inspection failed", error=type(broker_result).__name__)
            ctx["broker_error"] = ops.broker_error(broker_result)
        else:
            ctx["topics"], ctx["groups"] = broker_result
        for name, value in (("health", health), ("tokens", tokens), ("replayed", replayed)):
            if isinstance(value, BaseException):
                log.warning("ops source failed", source=name, error=type(value).__name__)
        return ctx

    def render(
        request: Request, name: str, viewer: Viewer, status_code: int = 200, **ctx: Any
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name, {"viewer": viewer, **ctx}, status_code=status_code
        )

    @app.get("/ops", response_class=HTMLResponse)
    async def ops_page(request: Request, viewer: Admin) -> Response:
        return render(request, "ops.html", viewer, **await snapshot())

    @app.get("/ops/live", response_class=HTMLResponse)
    async def ops_live(request: Request, viewer: Admin) -> Response:
        return render(request, "ops_live.html", viewer, **await snapshot())

    def dlq_spec(topic: str) -> str:
        spec = TOPICS.get(topic)
        if spec is None or spec.dead_letter_of is None:
            raise HTTPException(404, "Không có hàng đợi thư lỗi này.")
        return spec.name

    async def render_dlq(
        request: Request,
        viewer: Viewer,
        topic: str,
        *,
        status_code: int = 200,
        error: str | None = None,
        done: str | None = None,
    ) -> Response:
        try:
            records = await asyncio.wait_for(
                ops.list_dlq(state.inspector, pool(), topic, limit=DLQ_LIMIT), BROKER_TIMEOUT_S
            )
            broker_error = None
        except (TimeoutError, KafkaError, OSError) as exc:
            records, broker_error = [], ops.broker_error(exc)
        return render(
            request,
            "ops_dlq.html",
            viewer,
            status_code=status_code,
            topic=topic,
            source=TOPICS[topic].dead_letter_of,
            dlq_topics=[t.name for t in all_topics() if t.dead_letter_of],
            records=records,
            broker_error=broker_error,
            error=error,
            done=done,
            limit=DLQ_LIMIT,
        )

    @app.get("/ops/dlq", response_class=HTMLResponse)
    async def dlq_page(
        request: Request, viewer: Admin, topic: str = "", done: str = ""
    ) -> Response:
        topic = dlq_spec(topic or next(t.name for t in all_topics() if t.dead_letter_of))
        return await render_dlq(request, viewer, topic, done=done[:200] or None)

    @app.post("/ops/dlq/replay")
    async def dlq_replay(
        request: Request,
        *,
        viewer: Admin,
        topic: Annotated[str, Form(max_length=200)] = "",
        partition: Annotated[int, Form(ge=0)] = 0,
        offset: Annotated[int, Form(ge=0)] = 0,
        reason: Annotated[str, Form(max_length=2000)] = "",
        csrf_token: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        csrf(viewer, csrf_token)
        topic = dlq_spec(topic)
        try:
            shown = await ops.replay(
                pool=pool(),
                inspector=state.inspector,
                producer=await state.publisher(),
                viewer=viewer,
                dlq_topic=topic,
                partition=partition,
                offset=offset,
                reason=reason,
                client=_client_address(request),
            )
        except ops.ReplayError as exc:
            return await render_dlq(request, viewer, topic, status_code=exc.status, error=str(exc))
        return RedirectResponse(
            f"/ops/dlq?topic={topic}&done={shown.partition}/{shown.offset}", status_code=303
        )

    return state
