"""The officers' console: a server-rendered web app (FastAPI + Jinja2, a little vanilla JS for
server-sent events). It also consumes notify.results.v1 to show the delivery of every reply."""

import csv
import io
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from faststream.kafka.annotations import KafkaMessage
from sse_starlette.sse import EventSourceResponse
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from ketnoi_shared.contracts import NOTIFY_RESULTS, NotifyResult
from ketnoi_shared.messaging import (
    CONSUMER_ACK_POLICY,
    decode_batch,
    handle_each,
    make_broker,
    retry_policy,
)
from ketnoi_shared.service import ServiceResources, consumer_app
from ketnoi_shared.taxonomy import (
    CATEGORIES,
    CATEGORY_VI,
    SUBCATEGORIES,
    SUBCATEGORY_VI,
    URGENCIES,
    URGENCY_VI,
)

from . import actions
from .access import Viewer, scoped
from .auth import Sessions, audit
from .cases import CaseFilters, case_detail, inbox, reply_window
from .clocks import Policy, case_clocks
from .dashboards import bar_chart, build_dashboard, case_rows, clock_rows, stacked_chart
from .escalation import raise_escalations
from .live import CaseFeed
from .ops_routes import add_ops_routes
from .settings import ConsoleSettings

__all__ = ["create_app"]

log = structlog.get_logger("ketnoi.console")

HERE = Path(__file__).resolve().parent
VN = ZoneInfo("Asia/Ho_Chi_Minh")
STATUS_VI = {
    "new": "Mới",
    "acknowledged": "Đã tiếp nhận",
    "verifying": "Đang xác minh",
    "handled": "Đã xử lý",
    "closed": "Đã đóng",
    "rejected": "Không xử lý",
}
WINDOW_VI = {
    "free": "Trong 48 giờ: trả lời miễn phí",
    "paid": "Quá 48 giờ: vẫn gửi được (tính phí) đến hết 7 ngày",
    "closed": "Quá 7 ngày: không thể gửi tin tư vấn",
    "unknown": "Chưa rõ lần tương tác cuối",
}
DELIVERY_VI = {
    "sent": "Đã gửi",
    "failed": "Gửi không thành công",
    "parked": "Đang chờ cấp lại quyền OA",
    "retrying": "Đang gửi lại",
    "skipped": "Không gửi",
}
#: Why the media worker did not keep an attachment (``media_objects.error``), for officers.
MEDIA_ERROR_VI = {
    "expired": "đường dẫn của Zalo đã hết hạn",
    "not_found": "tệp không còn trên máy chủ Zalo",
    "too_large": "tệp vượt quá dung lượng cho phép",
    "type_not_allowed": "định dạng tệp không được phép",
    "corrupt": "tệp bị hỏng, không đọc được",
    "too_many_pixels": "ảnh quá lớn",
    "empty": "tệp rỗng",
    "bad_url": "đường dẫn không hợp lệ",
    "host_not_allowed": "đường dẫn không thuộc máy chủ được phép",
    "redirects": "đường dẫn chuyển hướng quá nhiều lần",
    "timeout": "máy chủ không phản hồi, đã thử lại nhiều lần",
    "deadline": "tải quá lâu, đã thử lại nhiều lần",
    "connection": "không kết nối được máy chủ, đã thử lại nhiều lần",
    "http_5xx": "máy chủ Zalo báo lỗi, đã thử lại nhiều lần",
    "http_429": "máy chủ Zalo từ chối vì quá tải, đã thử lại nhiều lần",
    "http_408": "máy chủ không phản hồi, đã thử lại nhiều lần",
    "abandoned": "tải về nhiều lần không thành công",
    "unreadable": "không đọc được đường dẫn đã lưu",
}
REPLY_TEMPLATES = (
    (
        "Xin thêm thông tin",
        "Cảm ơn bạn đã báo tin. Để xác minh, bạn vui lòng cho biết thêm: thời gian, địa điểm cụ "
        "thể, đặc điểm người hoặc phương tiện liên quan (nếu có). Danh tính của bạn được giữ bí "
        "mật.",
    ),
    (
        "Xin vị trí",
        "Bạn vui lòng gửi vị trí chính xác nơi xảy ra sự việc (bấm dấu + trong Zalo, chọn "
        '"Vị trí") hoặc ghi rõ số nhà, tên đường, thôn/tổ dân phố.',
    ),
    (
        "Cảm ơn",
        "Cảm ơn bạn đã cung cấp thông tin cho lực lượng Công an. Chúng tôi đã tiếp nhận và "
        "đang xác minh, xử lý theo quy định.",
    ),
    (
        "Kết quả xử lý",
        "Công an đã xác minh và xử lý tin báo của bạn theo quy định. Cảm ơn bạn đã chung tay "
        "giữ gìn an ninh trật tự. Nếu có thông tin mới, bạn cứ nhắn tại đây.",
    ),
)


class NotLoggedInError(Exception):
    pass


def _vn_time(value: datetime | None, fmt: str = "%H:%M %d/%m/%Y") -> str:
    return value.astimezone(VN).strftime(fmt) if value else ""


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters["vntime"] = _vn_time
    env.globals.update(
        CATEGORY_VI=CATEGORY_VI,
        SUBCATEGORY_VI=SUBCATEGORY_VI,
        URGENCY_VI=URGENCY_VI,
        STATUS_VI=STATUS_VI,
        WINDOW_VI=WINDOW_VI,
        DELIVERY_VI=DELIVERY_VI,
        MEDIA_ERROR_VI=MEDIA_ERROR_VI,
        CATEGORIES=CATEGORIES,
        SUBCATEGORIES=SUBCATEGORIES,
        URGENCIES=URGENCIES,
        REPLY_TEMPLATES=REPLY_TEMPLATES,
        TRANSITIONS=actions.TRANSITIONS,
    )
    return templates


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; media-src 'self'; script-src 'self'; "
            "style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'",
        )
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def create_app(settings: ConsoleSettings) -> FastAPI:  # noqa: PLR0915 - the routes, in one place
    if not settings.database_url:
        raise SystemExit("the console needs KETNOI_DATABASE_URL")
    if settings.console_session_secret is None:
        raise SystemExit("the console needs KETNOI_CONSOLE_SESSION_SECRET")
    secret = settings.console_session_secret.get_secret_value()
    protector = settings.identity_protector()
    broker = make_broker(settings, service="console")
    state = ServiceResources(settings)
    holder: dict[str, Any] = {}
    templates = _templates()
    policy = Policy.load(settings.console_policy)

    @broker.subscriber(
        NOTIFY_RESULTS.name,
        group_id="console",
        ack_policy=CONSUMER_ACK_POLICY,
        auto_offset_reset="earliest",
        batch=True,  # one offset commit per batch, not per result
        max_records=200,
    )
    async def on_results(msg: KafkaMessage) -> None:
        await handle_each(
            broker,
            await decode_batch(broker, msg, NotifyResult, consumer="console"),
            on_result,
            policy=retry_policy(settings, consumer="console"),
        )

    async def on_result(result: NotifyResult) -> None:
        """Keep the latest delivery state of every request (an upsert: redelivery is
        harmless)."""
        assert state.pool is not None
        await state.pool.execute(
            """INSERT INTO delivery_results (request_id, case_id, kind, status, error_kind,
                   error_code, attempt, updated_at, error_message, zalo_message_ids)
               VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (request_id) DO UPDATE SET status = EXCLUDED.status,
                   error_kind = EXCLUDED.error_kind, error_code = EXCLUDED.error_code,
                   attempt = EXCLUDED.attempt, updated_at = EXCLUDED.updated_at,
                   error_message = EXCLUDED.error_message,
                   zalo_message_ids = EXCLUDED.zalo_message_ids
               WHERE delivery_results.attempt <= EXCLUDED.attempt""",
            result.request_id,
            _uuid_or_none(result.case_id),
            result.kind.value,
            result.status.value,
            result.error_kind.value if result.error_kind else None,
            result.error_code,
            result.attempt,
            result.occurred_at,
            result.error_message,
            list(result.zalo_message_ids),
        )

    async def startup() -> None:
        pool = await state.open()
        holder["sessions"] = Sessions(
            pool,
            secret=secret,
            hours=settings.console_session_hours,
            max_failures=settings.console_login_max_failures,
            window_s=settings.console_login_window_s,
        )
        feed = CaseFeed(settings.database_url or "", pool)
        await feed.start()
        holder["feed"] = feed

        async def escalate() -> None:
            await raise_escalations(pool, policy)

        state.every(settings.console_escalation_interval_s, escalate)

    async def shutdown() -> None:
        if "feed" in holder:
            await holder["feed"].stop()
        await state.close()

    app = consumer_app(
        settings,
        service="console",
        broker=broker,
        on_startup=startup,
        on_shutdown=shutdown,
        pool=lambda: state.pool,
    )
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def pool() -> asyncpg.Pool:
        assert state.pool is not None
        return state.pool

    async def current(request: Request) -> Viewer:
        viewer = await holder["sessions"].viewer(request.cookies.get(Sessions.COOKIE))
        if viewer is None:
            raise NotLoggedInError
        return viewer

    Current = Annotated[Viewer, Depends(current)]  # noqa: N806 - a type alias

    def csrf(viewer: Viewer, token: str | None) -> None:
        if not Sessions.csrf_ok(viewer, token):
            raise HTTPException(403, "Phiên làm việc không hợp lệ, hãy tải lại trang.")

    @app.exception_handler(NotLoggedInError)
    async def to_login(request: Request, _exc: NotLoggedInError) -> Response:
        if request.method == "GET" and "text/event-stream" not in request.headers.get("accept", ""):
            return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303)
        return Response("Chưa đăng nhập.", status_code=401, media_type="text/plain")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": exc.status_code, "message": exc.detail},
            status_code=exc.status_code,
        )

    async def page(
        request: Request, name: str, viewer: Viewer | None, status_code: int = 200, **ctx: Any
    ) -> HTMLResponse:
        alerts = 0
        if viewer is not None and viewer.units and not name.startswith("_"):
            async with scoped(pool(), viewer.units) as conn:
                alerts = await conn.fetchval(
                    "SELECT count(*) FROM escalations WHERE seen_at IS NULL"
                )
        return templates.TemplateResponse(
            request, name, {"viewer": viewer, "alerts": alerts, **ctx}, status_code=status_code
        )

    # -- login -------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/inbox") -> Response:
        token = secrets.token_urlsafe(24)
        response = await page(request, "login.html", None, login_csrf=token, next=_safe_next(next))
        response.set_cookie(
            "ketnoi_login_csrf",
            token,
            httponly=True,
            samesite="strict",
            secure=settings.console_cookie_secure,
            max_age=3600,
        )
        return response

    @app.post("/login")
    async def login(
        request: Request,
        username: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=200)],
        csrf_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=300)] = "/inbox",
    ) -> Response:
        expected = request.cookies.get("ketnoi_login_csrf", "")
        if not expected or not secrets.compare_digest(expected, csrf_token):
            raise HTTPException(403, "Phiên đăng nhập đã hết hạn, hãy tải lại trang.")
        result = await holder["sessions"].login(username, password, client=_client(request))
        if result.token is None:
            message = (
                "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 15 phút."
                if result.throttled
                else "Tên đăng nhập hoặc mật khẩu không đúng."
            )
            token = secrets.token_urlsafe(24)
            response = await page(
                request,
                "login.html",
                None,
                status_code=429 if result.throttled else 401,
                login_csrf=token,
                next=_safe_next(next),
                error=message,
                username=username,
            )
            response.set_cookie(
                "ketnoi_login_csrf",
                token,
                httponly=True,
                samesite="strict",
                secure=settings.console_cookie_secure,
                max_age=3600,
            )
            return response
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(
            Sessions.COOKIE,
            result.token,
            httponly=True,
            samesite="strict",
            secure=settings.console_cookie_secure,
            max_age=int(settings.console_session_hours * 3600),
        )
        response.delete_cookie("ketnoi_login_csrf")
        return response

    @app.post("/logout")
    async def logout(
        request: Request, viewer: Current, csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        csrf(viewer, csrf_token)
        await holder["sessions"].logout(request.cookies.get(Sessions.COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(Sessions.COOKIE)
        return response

    # -- inbox -------------------------------------------------------------------------------

    def filters_of(request: Request) -> CaseFilters:
        q = request.query_params
        lane = q.get("lane", "tips")
        return CaseFilters(
            lane=lane if lane in ("tips", "procedures") else "tips",
            category=q.get("category") if q.get("category") in CATEGORIES else None,
            urgency=q.get("urgency") if q.get("urgency") in URGENCIES else None,
            status=q.get("status") if q.get("status") in (*STATUS_VI, "open") else None,
            unread=q.get("unread") == "1",
            overdue=q.get("overdue") == "1",
            due_soon=q.get("due_soon") == "1",
            q=(q.get("q") or "")[:200],
        )

    async def rows_for(viewer: Viewer, filters: CaseFilters) -> list[dict[str, Any]]:
        async with scoped(pool(), viewer.units) as conn:
            return await inbox(
                conn,
                account_id=viewer.account_id,
                unit_id=viewer.unit_id,
                units=viewer.units,
                filters=filters,
                policy=policy,
            )

    @app.get("/")
    async def root() -> Response:
        return RedirectResponse("/inbox", status_code=303)

    @app.get("/inbox", response_class=HTMLResponse)
    async def inbox_page(request: Request, viewer: Current) -> Response:
        filters = filters_of(request)
        rows = await rows_for(viewer, filters)
        return await page(request, "inbox.html", viewer, rows=rows, filters=filters)

    @app.get("/inbox/rows", response_class=HTMLResponse)
    async def inbox_rows(request: Request, viewer: Current) -> Response:
        filters = filters_of(request)
        rows = await rows_for(viewer, filters)
        return await page(request, "_rows.html", viewer, rows=rows, filters=filters)

    @app.get("/inbox.csv")
    async def inbox_export(request: Request, viewer: Current) -> Response:
        filters = filters_of(request)
        rows = await rows_for(viewer, filters)
        async with pool().acquire() as conn:
            await audit(
                conn,
                account_id=viewer.account_id,
                username=viewer.username,
                action="export.inbox",
                unit_id=viewer.unit_id,
                client=_client(request),
                detail=json.dumps({"rows": len(rows), "query": filters.query_string()}),
            )
        return _csv_response(
            "tin-bao.csv",
            [
                "ma_tin_bao",
                "nguoi_bao_tin",
                "nhom",
                "loai",
                "muc_do",
                "trang_thai",
                "don_vi_chu_tri",
                "xa_phuong",
                "mo_luc",
                "tin_moi_nhat",
            ],
            (
                [
                    r["reference"],
                    r["label"],
                    CATEGORY_VI.get(r["category"], r["category"]),
                    SUBCATEGORY_VI.get(r["subcategory"] or "", r["subcategory"] or ""),
                    URGENCY_VI.get(r["urgency"], r["urgency"]),
                    STATUS_VI.get(r["status"]),
                    r["owner_name"],
                    (r["location"] or {}).get("ward_name") or "",
                    _vn_time(r["opened_at"]),
                    _vn_time(r["last_message_at"]),
                ]
                for r in rows
            ),
        )

    @app.get("/events")
    async def events(viewer: Current) -> EventSourceResponse:
        return EventSourceResponse(holder["feed"].events(viewer.units), ping=15)

    # -- case page ---------------------------------------------------------------------------

    async def render_case(
        request: Request,
        viewer: Viewer,
        case_id: str,
        *,
        error: str | None = None,
        revealed: actions.Revealed | None = None,
        fragment: bool = False,
    ) -> Response:
        try:
            uid = uuid.UUID(case_id)
        except ValueError as exc:
            raise HTTPException(404, "Không tìm thấy tin báo.") from exc
        async with scoped(pool(), viewer.units) as conn:
            view = await case_detail(conn, str(uid), unit_id=viewer.unit_id, units=viewer.units)
            if view is None:
                raise HTTPException(404, "Không tìm thấy tin báo.")
            if not fragment:
                await actions.mark_read(conn, viewer, uid)
            units = await conn.fetch(
                """SELECT id, name, kind FROM units WHERE active_to IS NULL
                   ORDER BY kind <> 'commune', name"""
            )
        if not fragment:
            async with pool().acquire() as conn:
                await audit(
                    conn,
                    account_id=viewer.account_id,
                    username=viewer.username,
                    action="case.view",
                    case_id=str(uid),
                    unit_id=view.case["owner_unit_id"],
                    client=_client(request),
                )
        first_reply = next((i["at"] for i in view.timeline if i.get("kind") == "reply"), None)
        extensions = sum(1 for i in view.timeline if i.get("kind") == "extend")
        clocks = case_clocks(
            view.case,
            policy,
            unit_kind=None,
            first_reply_at=first_reply,
            extensions=extensions,
        )
        window = reply_window(
            view.last_interaction_at,
            free_h=settings.console_reply_window_free_h,
            max_h=settings.console_reply_window_max_h,
        )
        return await page(
            request,
            "_timeline.html" if fragment else "case.html",
            viewer,
            status_code=400 if error else 200,
            view=view,
            window=window,
            clocks=clocks,
            can_extend=extensions < len(policy.legal_extensions) and "legal" in clocks,
            units=units,
            error=error,
            revealed=revealed,
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case_page(request: Request, case_id: str, viewer: Current) -> Response:
        return await render_case(request, viewer, case_id)

    @app.get("/cases/{case_id}/timeline", response_class=HTMLResponse)
    async def case_timeline(request: Request, case_id: str, viewer: Current) -> Response:
        return await render_case(request, viewer, case_id, fragment=True)

    async def act(
        request: Request,
        viewer: Viewer,
        case_id: str,
        token: str,
        run: Callable[[asyncpg.Connection], Awaitable[Any]],
    ) -> Response:
        csrf(viewer, token)
        try:
            async with scoped(pool(), viewer.units) as conn:
                await run(conn)
        except actions.ActionError as exc:
            return await render_case(request, viewer, case_id, error=str(exc))
        async with scoped(pool(), viewer.units) as conn:
            still_visible = await conn.fetchval("SELECT 1 FROM cases WHERE id::text = $1", case_id)
        return RedirectResponse(
            f"/cases/{case_id}" if still_visible else "/inbox?moved=1", status_code=303
        )

    Csrf = Annotated[str, Form(max_length=100)]  # noqa: N806 - a type alias  # checked by csrf(): a missing token is a 403

    @app.post("/cases/{case_id}/reply")
    async def post_reply(
        request: Request,
        case_id: str,
        viewer: Current,
        text: Annotated[str, Form(max_length=12_000)] = "",
        csrf_token: Csrf = "",
    ) -> Response:
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.reply(
                conn,
                viewer,
                case_id,
                text,
                free_h=settings.console_reply_window_free_h,
                max_h=settings.console_reply_window_max_h,
            ),
        )

    @app.post("/cases/{case_id}/note")
    async def post_note(
        request: Request,
        case_id: str,
        viewer: Current,
        text: Annotated[str, Form(max_length=5000)] = "",
        csrf_token: Csrf = "",
    ) -> Response:
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.add_note(conn, viewer, case_id, text),
        )

    @app.post("/cases/{case_id}/status")
    async def post_status(
        request: Request,
        case_id: str,
        viewer: Current,
        status: Annotated[str, Form(max_length=20)] = "",
        csrf_token: Csrf = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.change_status(conn, viewer, case_id, status, reason),
        )

    @app.post("/cases/{case_id}/assign")
    async def post_assign(
        request: Request,
        case_id: str,
        viewer: Current,
        csrf_token: Csrf = "",
        account_id: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        target = int(account_id) if account_id.isdigit() else None
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.assign(conn, viewer, case_id, target),
        )

    @app.post("/cases/{case_id}/transfer")
    async def post_transfer(
        request: Request,
        case_id: str,
        viewer: Current,
        unit_id: Annotated[str, Form(max_length=100)] = "",
        csrf_token: Csrf = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.transfer(conn, viewer, case_id, unit_id, reason),
        )

    @app.post("/cases/{case_id}/reclassify")
    async def post_reclassify(
        request: Request,
        case_id: str,
        viewer: Current,
        csrf_token: Csrf = "",
        category: Annotated[str, Form(max_length=40)] = "",
        urgency: Annotated[str, Form(max_length=20)] = "",
        subcategory: Annotated[str, Form(max_length=40)] = "",
    ) -> Response:
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.reclassify(
                conn,
                viewer,
                case_id,
                category=category,
                subcategory=subcategory or None,
                urgency=urgency,
            ),
        )

    @app.post("/cases/{case_id}/extend")
    async def post_extend(
        request: Request,
        case_id: str,
        viewer: Current,
        csrf_token: Csrf = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        return await act(
            request,
            viewer,
            case_id,
            csrf_token,
            lambda conn: actions.extend_deadline(
                conn, viewer, case_id, reason, allowed=len(policy.legal_extensions)
            ),
        )

    # -- deadlines, alerts and dashboards ---------------------------------------------------

    @app.get("/deadlines", response_class=HTMLResponse)
    async def deadlines(request: Request, viewer: Current) -> Response:
        async with scoped(pool(), viewer.units) as conn:
            rows = await case_rows(conn, open_only=True)
        clocked = clock_rows(list(rows), policy, unit_id=viewer.unit_id, now=now())
        overdue = [r for r in clocked if r["late"]]
        due_soon = [r for r in clocked if r["due_soon"] and not r["late"]]
        return await page(request, "deadlines.html", viewer, overdue=overdue, due_soon=due_soon)

    @app.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(request: Request, viewer: Current) -> Response:
        async with scoped(pool(), viewer.units) as conn:
            rows = await conn.fetch(
                """SELECT e.*, c.reference, c.urgency, u.name AS owner_name
                   FROM escalations e JOIN cases c ON c.id = e.case_id
                   LEFT JOIN units u ON u.id = c.owner_unit_id
                   ORDER BY e.seen_at IS NULL DESC, e.raised_at DESC LIMIT 200"""
            )
        return await page(request, "alerts.html", viewer, rows=rows)

    @app.post("/alerts/{case_id}/{kind}/seen")
    async def alert_seen(
        case_id: str, kind: str, viewer: Current, csrf_token: Csrf = ""
    ) -> Response:
        csrf(viewer, csrf_token)
        async with scoped(pool(), viewer.units) as conn:
            await conn.execute(
                """UPDATE escalations SET seen_by = $3, seen_at = now()
                   WHERE case_id::text = $1 AND kind = $2 AND seen_at IS NULL""",
                case_id,
                kind[:40],
                viewer.account_id,
            )
        return RedirectResponse("/alerts", status_code=303)

    def require_dashboard(viewer: Viewer) -> None:
        if viewer.role.value not in ("lead", "supervisor"):
            raise HTTPException(403, "Bảng số liệu dành cho lãnh đạo đơn vị và giám sát cấp tỉnh.")

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard(request: Request, viewer: Current, days: int = 14) -> Response:
        require_dashboard(viewer)
        days = max(7, min(days, 90))
        async with scoped(pool(), viewer.units) as conn:
            dash = await build_dashboard(conn, policy, unit_id=viewer.unit_id, days=days)
        return await page(
            request,
            "dashboard.html",
            viewer,
            dash=dash,
            days=days,
            per_day_svg=stacked_chart(dash, title="Tin báo mỗi ngày theo nhóm"),
            per_unit_svg=bar_chart(
                [(name.removeprefix("Công an "), n) for name, n in dash.per_unit],
                title="Tin báo theo đơn vị chủ trì",
            ),
            reply_svg=bar_chart(dash.reply_hist, title="Thời gian đến lần trả lời đầu tiên"),
        )

    @app.get("/dashboard.csv")
    async def dashboard_export(request: Request, viewer: Current, days: int = 30) -> Response:
        require_dashboard(viewer)
        days = max(7, min(days, 90))
        async with scoped(pool(), viewer.units) as conn:
            dash = await build_dashboard(conn, policy, unit_id=viewer.unit_id, days=days)
        async with pool().acquire() as conn:
            await audit(
                conn,
                account_id=viewer.account_id,
                username=viewer.username,
                action="export.dashboard",
                unit_id=viewer.unit_id,
                client=_client(request),
                detail=json.dumps({"rows": len(dash.clocks), "days": days}),
            )
        return _csv_response(
            "so-lieu.csv",
            [
                "ma_tin_bao",
                "nguoi_bao_tin",
                "don_vi_chu_tri",
                "nhom",
                "muc_do",
                "trang_thai",
                "mo_luc",
                "han_tra_loi_dau",
                "tra_loi_dau",
                "han_giai_quyet",
                "dung_han",
            ],
            (
                [
                    r["reference"],
                    r["label"],
                    r["owner_name"] or r["owner_unit_id"],
                    CATEGORY_VI.get(r["category"], r["category"]),
                    URGENCY_VI.get(r["urgency"], r["urgency"]),
                    STATUS_VI.get(r["status"]),
                    _vn_time(r["opened_at"]),
                    _vn_time(r["clocks"]["first_reply"].due_at),
                    _vn_time(r["clocks"]["first_reply"].stopped_at),
                    _vn_time(r["clocks"]["resolution"].due_at),
                    "có" if not r["late"] else "không",
                ]
                for r in dash.clocks
            ),
        )

    @app.post("/cases/{case_id}/reveal", response_class=HTMLResponse)
    async def post_reveal(
        request: Request,
        case_id: str,
        viewer: Current,
        csrf_token: Csrf = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        csrf(viewer, csrf_token)
        if not viewer.can_reveal:
            async with pool().acquire() as conn:
                await audit(
                    conn,
                    account_id=viewer.account_id,
                    username=viewer.username,
                    action="identity.reveal.refused",
                    case_id=_uuid_or_none(case_id),
                    client=_client(request),
                )
            raise HTTPException(
                403, "Chỉ cán bộ giám sát cấp tỉnh mới được xem danh tính người báo tin."
            )
        try:
            async with scoped(pool(), viewer.units) as conn:
                revealed = await actions.reveal_identity(
                    conn, viewer, case_id, reason, protector=protector, client=_client(request)
                )
        except actions.ActionError as exc:
            return await render_case(request, viewer, case_id, error=str(exc))
        return await render_case(request, viewer, case_id, revealed=revealed)

    @app.get("/cases/{case_id}/media/{media_id}")
    async def media(request: Request, case_id: str, media_id: int, viewer: Current) -> Response:
        try:
            uid = uuid.UUID(case_id)
        except ValueError as exc:
            raise HTTPException(404, "Không tìm thấy tệp.") from exc
        async with scoped(pool(), viewer.units) as conn:
            row = await conn.fetchrow(
                """SELECT o.display, o.display_content_type, o.file_name, o.kind, o.sha256,
                          c.owner_unit_id
                   FROM media_objects o JOIN case_messages m ON m.event_id = o.event_id
                   JOIN cases c ON c.id = m.case_id
                   WHERE o.id = $1 AND m.case_id = $2 AND o.status = 'stored'""",
                media_id,
                uid,
            )
            if row is None or row["display"] is None:
                raise HTTPException(404, "Không tìm thấy tệp.")
            await audit(
                conn,
                account_id=viewer.account_id,
                username=viewer.username,
                action="attachment.open",
                case_id=str(uid),
                unit_id=row["owner_unit_id"],
                detail=json.dumps({"media_id": media_id, "sha256": row["sha256"]}),
                client=_client(request),
            )
        inline = row["kind"] in ("image", "gif", "video", "audio")
        name = row["file_name"] or f"tep-{media_id}"
        return StreamingResponse(
            iter([bytes(row["display"])]),
            media_type=row["display_content_type"] or "application/octet-stream",
            headers={
                "Content-Disposition": ("inline" if inline else "attachment")
                + f"; filename*=UTF-8''{quote(name)}",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        )

    # -- audit -------------------------------------------------------------------------------

    @app.get("/audit", response_class=HTMLResponse)
    async def audit_page(request: Request, viewer: Current, action: str = "") -> Response:
        if not viewer.can_read_audit:
            raise HTTPException(403, "Đồng chí không có quyền xem nhật ký truy cập.")
        async with pool().acquire() as conn:
            rows = await conn.fetch(
                """SELECT l.*, c.reference FROM audit_log l LEFT JOIN cases c ON c.id = l.case_id
                   WHERE ($1 = '' OR l.action = $1)
                     AND ($2::text[] IS NULL OR l.unit_id IS NULL OR l.unit_id = ANY($2))
                   ORDER BY l.id DESC LIMIT 300""",
                action[:50],
                list(viewer.units) if viewer.role.value == "supervisor" else None,
            )
        return await page(request, "audit.html", viewer, rows=rows, action=action)

    add_ops_routes(app, templates, pool=pool, settings=settings, current=current, csrf=csrf)
    return app


def _csv_response(filename: str, header: list[str], rows: Iterable[list[Any]]) -> Response:
    """A CSV download that Excel opens as UTF-8 (with a byte-order mark)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        out.getvalue().encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _safe_next(target: str) -> str:
    """Only local paths: never redirect a login to another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/inbox"
    return target


def _uuid_or_none(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def now() -> datetime:
    return datetime.now(UTC)
