"""The sandbox: a strict, in-memory fake of the Zalo OA Open API and OAuth v4.

One FastAPI app serves what are two hosts in real life, under Zalo's own paths:

- ``oauth.zaloapp.com``: ``GET /v4/oa/permission`` (consent link → redirect to the callback with
  ``code`` and ``oa_id``), ``POST /v4/oa/access_token`` (code exchange with PKCE, refresh);
- ``openapi.zalo.me``: ``/v3.0/oa/message/cs``, ``/v2.0/oa/message``, ``/v2.0/oa/upload/*``,
  ``/v3.0/oa/user/detail``, ``/v3.0/oa/user/getlist``, ``/v3.0/oa/quota/message``,
  ``/v2.0/oa/conversation``, ``/v2.0/article/create`` and ``/v2.0/article/verify``.

Plus ``/sandbox/...`` admin endpoints (not Zalo): create codes and token pairs, record user
interactions, inject faults, read what was sent, reset; the simulated citizen
(``/sandbox/citizen/send``, :mod:`ketnoi_sandbox.citizen`) and its page (``/phone``,
:mod:`ketnoi_sandbox.phone`); and the citizens' media as Zalo's CDN serves it (``/media/<id>``
behind signed, expiring links, :mod:`ketnoi_sandbox.media`).

The Zalo rules enforced, with their source in ``shared/zalo/README.md``:

- authentication by the bare ``access_token`` header only (§3.1): ``Authorization: Bearer``
  alone → -216; unknown → -216; expired → -216 (configurable to -220); revoked → -220;
  ``appsecret_proof`` checked when present (-242);
- every answer is HTTP 200 with ``{"data", "error": 0, "message": "Success"}`` or
  ``{"error", "message"}`` (§3.1, §3.6);
- rate limit per App per minute → -32, with ``X-RateLimit-Limit`` / ``X-RateLimit-Remain`` (§3.1);
- consultation messages only within 7 days of the user's last interaction → -230 (§3.4);
- text ≤ 2,000 characters after NFC (§3.2, §6 item 8) → -210 beyond;
- v2 ordinary sends → -240 (§3.3); reactions, broadcast and anonymous replies still on v2;
- broadcast night ban 22:00–06:00 Vietnam time → -234 (§3.4, §5.2);
- uploads: jpg/png ≤ 1 MB, PDF/DOC/DOCX ≤ 5 MB, ids expire after 7 days → -100 (§3.5);
- OAuth: form body, ``secret_key`` header, PKCE S256 without a method parameter, codes valid
  10 minutes and single-use, refresh tokens single-use, ``expires_in`` a string (§4).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field as FormField
from python_multipart.multipart import File as FormFile
from python_multipart.multipart import FormParser, parse_options_header

from .citizen import CitizenAction, WebhookTarget, add_citizen_routes
from .errors import (
    OAUTH_INVALID_APP_ID,
    OAUTH_INVALID_CODE,
    OAUTH_INVALID_CODE_VERIFIER,
    OAUTH_INVALID_PARAMETER,
    OAUTH_INVALID_REDIRECT_URI,
    OAUTH_INVALID_REFRESH_TOKEN,
    OAUTH_INVALID_SECRET_KEY,
    OAuthError,
    ZaloError,
    invalid,
    oauth_body,
    too_long,
)
from .media import add_media_routes
from .phone import add_phone_routes
from .settings import ManualClock, SandboxSettings
from .state import (
    Article,
    Fault,
    FaultKind,
    RecordedMessage,
    SandboxState,
    TokenPair,
    Upload,
    UserRecord,
    epoch_ms,
    vn_datetime,
)
from .validation import (
    AnonymousSend,
    Broadcast,
    GetListQuery,
    ParsedMessage,
    Reaction,
    parse_article,
    parse_conversation_query,
    parse_cs_body,
    parse_getlist_query,
    parse_token_body,
    parse_user_id_body,
    parse_v2_message_body,
)

__all__ = ["API_NAMES", "OAUTH_API", "create_sandbox_app"]

#: Fault-injection names of the APIs: the path after the version and ``oa/``.
API_CS: Final = "message/cs"
API_V2_MESSAGE: Final = "message"
OAUTH_API: Final = "oauth/access_token"
API_NAMES: Final = frozenset(
    {
        API_CS,
        API_V2_MESSAGE,
        "upload/image",
        "upload/gif",
        "upload/file",
        "user/detail",
        "user/getlist",
        "quota/message",
        "conversation",
        "article/create",
        "article/verify",
        OAUTH_API,
    }
)
#: Fault kinds that make sense on the OAuth token endpoint.
OAUTH_FAULT_KINDS: Final = frozenset(
    {"latency", "http_500", "timeout", "timeout_after_write", "error_code"}
)
#: Bodies larger than this are refused before reading (sandbox choice, above every upload limit).
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
#: PKCE code_challenge = base64url_nopad(SHA-256(verifier)): always 43 characters (§4.1).
_CHALLENGE_RE: Final = re.compile(r"[A-Za-z0-9_-]{43}")
OA_AVATAR: Final = "https://avatar.zalo-cdn.example/oa/default.jpg"

HTML_500: Final = (
    "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    "<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
HTML_504: Final = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


# ---------------------------------------------------------------------------------- helpers


def pkce_challenge(verifier: str) -> str:
    """``base64url_nopad(SHA-256(code_verifier))`` (README §4.1)."""
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed by the App secret (README §3.1)."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def _ok(data: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"data": data, "error": 0, "message": "Success"}, headers=dict(headers or {})
    )


def _fail(error: ZaloError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), headers=dict(headers or {}))


def _ms_to_s(value: int | str | None, field_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value.isdigit():
            raise HTTPException(422, f"{field_name} must be epoch milliseconds")
        value = int(value)
    return value / 1000.0


def _fault_user(body: bytes, query: Mapping[str, str]) -> str | None:
    """The user a call is about, for matching per-user faults (before any validation)."""
    candidates: list[Any] = []
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        recipient = parsed.get("recipient")
        if isinstance(recipient, dict):
            candidates += [recipient.get("user_id"), recipient.get("anonymous_id")]
        candidates.append(parsed.get("user_id"))
    raw_data = query.get("data")
    if raw_data:
        try:
            data = json.loads(raw_data)
        except ValueError:
            data = None
        if isinstance(data, dict):
            candidates.append(data.get("user_id"))
    for value in candidates:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _normalise_api(api: str) -> str:
    name = api.strip().strip("/")
    for prefix in ("v3.0/", "v2.0/", "v4/"):
        name = name.removeprefix(prefix)
    name = name.removeprefix("oa/")
    if name in {"access_token", "oauth/access_token"}:
        return OAUTH_API
    return name


@dataclass
class CallContext:
    """One authenticated OA API call, handed to a handler (which runs under ``state.lock``)."""

    api: str
    pair: TokenPair
    now: float
    body: bytes
    content_type: str
    query: Mapping[str, str]
    recorded: list[RecordedMessage] = field(default_factory=list)

    @property
    def oa_id(self) -> str:
        return self.pair.oa_id

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise invalid("body") from None

    def data(self) -> Any:
        """The single URL-encoded JSON ``data`` parameter of GET endpoints (README §3.1)."""
        raw = self.query.get("data")
        if raw is None:
            raise invalid("data")
        try:
            return json.loads(raw)
        except ValueError:
            raise invalid("data") from None


Handler = Callable[[CallContext], Any]


# ---------------------------------------------------------------------------------- admin bodies


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeRequest(_Strict):
    """``POST /sandbox/oauth/codes``: what the consent screen would produce."""

    oa_id: str
    code_challenge: str | None = None
    redirect_uri: str | None = None


class TokenRequest(_Strict):
    """``POST /sandbox/tokens``: mint a pair directly, like the console's API Explorer (§4.1)."""

    oa_id: str


class RevokeRequest(_Strict):
    access_token: str


class InteractionRequest(_Strict):
    """``POST /sandbox/interactions``: a user interacted with an OA (README §3.4).

    ``kind``: ``message`` (a user_send_* event; ``text`` and ``msg_id`` go to the conversation),
    ``follow``, ``chatnow`` (tapped the chat button), ``call`` (accepted a call), ``menu_query``
    (an ``oa.query`` menu item) all count as interactions; ``unfollow`` only clears
    ``is_follower``. ``at`` is epoch milliseconds (default: now). ``conversation_id`` marks an
    anonymous sender (README §3.3).
    """

    oa_id: str
    user_id: str
    at: int | str | None = None
    kind: Literal["message", "follow", "unfollow", "chatnow", "call", "menu_query"] = "message"
    text: str | None = None
    msg_id: str | None = None
    conversation_id: str | None = None
    is_follower: bool | None = None
    #: A ``message``'s attachments as recorded (``{"type", **webhook payload}``): its kind is
    #: the first one's type.
    attachments: list[dict[str, Any]] = Field(default_factory=list)


class UserRequest(_Strict):
    """``POST /sandbox/users``: create or update a user's profile (user/detail, §3.5)."""

    oa_id: str
    user_id: str
    display_name: str | None = None
    user_id_by_app: str | None = None
    user_external_id: str | None = None
    user_alias: str | None = None
    is_sensitive: bool | None = None
    is_follower: bool | None = None
    avatar: str | None = None
    tag_names: list[str] | None = None
    notes: list[str] | None = None
    shared_info: dict[str, str] | None = None
    last_interaction: int | str | None = None


class FaultRequest(_Strict):
    """``POST /sandbox/faults``. ``api``: one of :data:`API_NAMES` (a full path such as
    ``/v3.0/oa/message/cs`` is accepted too) or ``*``. ``count``: times it fires, null = forever.

    ``value`` per kind: latency → seconds (required); timeout / timeout_after_write → seconds
    to hang (default ``settings.hang_s``); token_expired → -216 or -220; outside_window → -230
    or -232; error_code → the code (required).
    """

    api: str
    kind: FaultKind
    user_id: str | None = None
    oa_id: str | None = None
    value: float | int | None = None
    count: int | None = Field(default=None, ge=1)


class ClockRequest(_Strict):
    advance_s: float | None = None
    set_epoch_s: float | None = None


# ---------------------------------------------------------------------------------- the app


class Sandbox:
    """Route handlers over one :class:`SandboxState`."""

    def __init__(self, settings: SandboxSettings, state: SandboxState) -> None:
        self.settings = settings
        self.state = state

    # ------------------------------------------------------------------ plumbing

    def _rate_headers(self, remain: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.settings.rate_limit_per_minute),
            "X-RateLimit-Remain": str(remain),
        }

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_long()
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_long()
            chunks.append(chunk)
        return b"".join(chunks)

    def _hang_s(self, fault: Fault) -> float:
        return float(fault.value) if fault.value is not None else self.settings.hang_s

    async def _hang(self, fault: Fault) -> Response:
        """The response never comes (within any sane client timeout); then a gateway 504."""
        await asyncio.sleep(self._hang_s(fault))
        return HTMLResponse(HTML_504, status_code=504)

    async def _latency(self, fired: list[Fault]) -> Fault | None:
        for fault in fired:
            if fault.kind == "latency":
                await asyncio.sleep(float(fault.value or 0))
        return next((f for f in fired if f.kind != "latency"), None)

    def _authenticate(self, request: Request, now: float) -> TokenPair:
        """README §3.1: the bare ``access_token`` header; Bearer is not read at all."""
        token = request.headers.get("access_token")
        pair = self.state.pair_by_access(token)
        if pair is None:
            raise ZaloError(-216)
        if pair.access_revoked_at is not None:
            raise ZaloError(-220)
        if now >= pair.access_expires_at:
            raise ZaloError(self.settings.expired_token_error)
        if pair.oa_id not in self.settings.oas:
            raise ZaloError(-205)
        proof = request.headers.get("appsecret_proof")
        if proof is None:
            if self.settings.require_appsecret_proof:
                raise ZaloError(-242)
        elif not hmac.compare_digest(
            proof.lower(), appsecret_proof(pair.access_token, self.settings.app_secret)
        ):
            raise ZaloError(-242)
        return pair

    async def oa_call(self, request: Request, api: str, handler: Handler) -> Response:
        """The pipeline of every OA API call: rate limit, faults, auth, validate, act, answer."""
        now = self.state.now()
        allowed, remain = self.state.take_rate(now)
        headers = self._rate_headers(remain)
        if not allowed:
            return _fail(ZaloError(-32), headers)
        try:
            body = await self._read_body(request)
        except ZaloError as exc:
            return _fail(exc, headers)

        known = self.state.pair_by_access(request.headers.get("access_token"))
        fired = self.state.take_faults(
            api, _fault_user(body, request.query_params), known.oa_id if known else None
        )
        fault = await self._latency(fired)
        after_write = None
        if fault is not None:
            if fault.kind == "timeout_after_write":
                after_write = fault
            else:
                return await self._fault_answer(fault, headers)

        ctx: CallContext | None = None
        try:
            pair = self._authenticate(request, now)
            ctx = CallContext(
                api=api,
                pair=pair,
                now=now,
                body=body,
                content_type=request.headers.get("content-type", ""),
                query=request.query_params,
            )
            with self.state.lock:
                data = handler(ctx)
            response: Response = _ok(data, headers)
        except ZaloError as exc:
            response = _fail(exc, headers)
        if after_write is not None:
            if ctx is not None:
                for message in ctx.recorded:
                    message.response_lost = True
            return await self._hang(after_write)
        return response

    async def _fault_answer(self, fault: Fault, headers: dict[str, str]) -> Response:
        """The answer of a fault that preempts the call (all kinds but latency and
        timeout_after_write)."""
        if fault.kind == "http_500":
            return HTMLResponse(HTML_500, status_code=500)
        if fault.kind == "timeout":
            return await self._hang(fault)
        if fault.kind == "rate_limited":
            return _fail(ZaloError(-32), {**headers, "X-RateLimit-Remain": "0"})
        default = {
            "token_expired": self.settings.expired_token_error,
            "not_follower": -213,
            "outside_window": -230,
        }.get(fault.kind, -200)
        code = default if fault.kind == "not_follower" else int(fault.value or default)
        return _fail(ZaloError(code), headers)

    # ------------------------------------------------------------------ shared checks

    def _window_user(self, oa_id: str, user_id: str, now: float) -> UserRecord:
        """README §3.4: a consultation message needs an interaction in the last 7 days (-230).

        A user the OA has never seen has not interacted either, so it also gets -230.
        """
        user = self.state.user(oa_id, user_id)
        if user is None or user.last_interaction is None:
            raise ZaloError(-230)
        if now - user.last_interaction > self.settings.interaction_window_s:
            raise ZaloError(-230)
        return user

    def _upload(self, ctx: CallContext, upload_id: str | None, kind: str, path: str) -> Upload:
        """An uploaded asset of this OA; -100 once older than 7 days (README §3.5)."""
        upload = self.state.uploads.get(upload_id or "")
        if upload is None or upload.kind != kind or upload.oa_id != ctx.oa_id:
            raise invalid(path)
        if ctx.now - upload.created_at > self.settings.upload_lifetime_s:
            raise ZaloError(-100)
        return upload

    def _attachments(self, ctx: CallContext, msg: ParsedMessage) -> list[dict[str, Any]]:
        el_path = "message.attachment.payload.elements[0]"
        if msg.kind == "media" and msg.media is not None:
            el = msg.media
            if el.url is not None:
                return [{"type": "image", "url": el.url}]
            if el.media_type in {"image", "gif"}:
                up = self._upload(ctx, el.attachment_id, el.media_type, f"{el_path}.attachment_id")
                item: dict[str, Any] = {
                    "type": el.media_type,
                    "attachment_id": up.id,
                    "filename": up.filename,
                    "size": up.size,
                    "media_type": up.media_type,
                }
                if el.media_type == "gif":
                    item |= {"width": el.width, "height": el.height}
                return [item]
            return [{"type": el.media_type, "attachment_id": el.attachment_id}]
        if msg.kind == "file":
            up = self._upload(ctx, msg.file_token, "file", "message.attachment.payload.token")
            return [
                {
                    "type": "file",
                    "token": up.id,
                    "filename": up.filename,
                    "size": up.size,
                    "media_type": up.media_type,
                }
            ]
        if msg.kind == "request_user_info" and msg.user_info is not None:
            return [{"type": "request_user_info", **msg.user_info}]
        return []

    def _record(
        self,
        ctx: CallContext,
        *,
        user: UserRecord | None,
        user_id: str | None,
        kind: str,
        text: str | None,
        attachments: list[dict[str, Any]],
        recipient: dict[str, Any],
        quote: str | None = None,
    ) -> RecordedMessage:
        age = None
        if user is not None and user.last_interaction is not None:
            age = ctx.now - user.last_interaction
        message = self.state.record(
            RecordedMessage(
                message_id=self.state.new_message_id(),
                oa_id=ctx.oa_id,
                user_id=user_id,
                direction="oa",
                api=ctx.api,
                kind=kind,
                text=text,
                attachments=attachments,
                sent_at=ctx.now,
                recipient=recipient,
                quote_message_id=quote,
                interaction_age_s=age,
                billed=None if age is None else age > self.settings.free_window_s,
            )
        )
        ctx.recorded.append(message)
        return message

    # ------------------------------------------------------------------ OA API handlers

    def message_cs(self, ctx: CallContext) -> dict[str, Any]:
        """``POST /v3.0/oa/message/cs`` (README §3.2): text, quote, media, file, request_user_info.

        Checks, in order: body shape (-201/-210/-233), the 7-day window (-230), following when
        ``cs_requires_follower`` (-213, §7.1 item 9), attachment ids (-201, -100). The answer
        carries ``message_id``, ``user_id``, ``sent_time`` and, if ``cs_response_quota``, the
        pre-2026-03 ``quota`` object.
        """
        user_id, msg = parse_cs_body(ctx.json(), max_text=self.settings.max_text_chars)
        user = self._window_user(ctx.oa_id, user_id, ctx.now)
        if self.settings.cs_requires_follower and not user.is_follower:
            raise ZaloError(-213)
        attachments = self._attachments(ctx, msg)
        rec = self._record(
            ctx,
            user=user,
            user_id=user_id,
            kind=msg.kind,
            text=msg.text,
            attachments=attachments,
            recipient={"user_id": user_id},
            quote=msg.quote_message_id,
        )
        data: dict[str, Any] = {}
        if self.settings.cs_response_quota:
            data["quota"] = {"quota_type": "reply", "remain": "8", "total": "8"}
        data |= {
            "message_id": rec.message_id,
            "user_id": user_id,
            "sent_time": epoch_ms(rec.sent_at),
        }
        return data

    def message_v2(self, ctx: CallContext) -> dict[str, Any]:
        """``POST /v2.0/oa/message`` (README §3.3, §5.2): -240 for ordinary sends; reactions,
        broadcast of a verified article, and anonymous replies are still accepted."""
        parsed = parse_v2_message_body(ctx.json(), max_text=self.settings.max_text_chars)
        if isinstance(parsed, Reaction):
            user = self.state.user(ctx.oa_id, parsed.user_id)
            if user is None:
                raise invalid("recipient.user_id")
            rec = self._record(
                ctx,
                user=user,
                user_id=parsed.user_id,
                kind="reaction",
                text=None,
                attachments=[
                    {
                        "type": "reaction",
                        "react_icon": parsed.react_icon,
                        "react_message_id": parsed.react_message_id,
                    }
                ],
                recipient={"user_id": parsed.user_id},
            )
            return {"message_id": rec.message_id}
        if isinstance(parsed, Broadcast):
            return self._broadcast(ctx, parsed)
        return self._anonymous(ctx, parsed)

    def _broadcast(self, ctx: CallContext, parsed: Broadcast) -> dict[str, Any]:
        hour = vn_datetime(ctx.now).hour
        if self.settings.broadcast_night_ban and (hour >= 22 or hour < 6):
            raise ZaloError(-234)
        article = self.state.article_by_id(parsed.article_id)
        if article is None or article.oa_id != ctx.oa_id:
            raise invalid("message.attachment.payload.elements[0].attachment_id")
        rec = self._record(
            ctx,
            user=None,
            user_id=None,
            kind="broadcast",
            text=None,
            attachments=[
                {"type": "article", "attachment_id": parsed.article_id, "title": article.title}
            ],
            recipient={"target": parsed.target},
        )
        return {"message_id": rec.message_id}

    def _anonymous(self, ctx: CallContext, parsed: AnonymousSend) -> dict[str, Any]:
        user = self._window_user(ctx.oa_id, parsed.anonymous_id, ctx.now)
        if user.conversation_id != parsed.conversation_id:
            raise invalid("recipient.conversation_id")
        msg = parsed.message
        rec = self._record(
            ctx,
            user=user,
            user_id=parsed.anonymous_id,
            kind=msg.kind,
            text=msg.text,
            attachments=self._attachments(ctx, msg),
            recipient={
                "anonymous_id": parsed.anonymous_id,
                "conversation_id": parsed.conversation_id,
            },
        )
        return {"message_id": rec.message_id}

    def upload(self, kind: Literal["image", "gif", "file"]) -> Handler:
        """``POST /v2.0/oa/upload/{image,gif,file}`` (README §3.5): multipart field ``file``.

        image: JPEG or PNG ≤ 1 MB → ``attachment_id``; gif: GIF → ``attachment_id``; file: PDF,
        DOC or DOCX ≤ 5 MB → ``token``. The type is checked from the content (and, for files,
        the name's extension). 5,000 uploads per OA per month (-211 beyond, sandbox choice of
        code). Wrong type → -201, too large → -210.
        """

        def handle(ctx: CallContext) -> dict[str, Any]:
            parts = _multipart_parts(ctx.content_type, ctx.body)
            if parts is None or len(parts) != 1 or parts[0].name != "file" or not parts[0].data:
                raise invalid("file")
            part = parts[0]
            media_type = _sniff(kind, part.data, part.filename)
            limit = (
                self.settings.file_max_bytes if kind == "file" else self.settings.image_max_bytes
            )
            if len(part.data) > limit:
                raise too_long()
            if self.state.uploads_this_month(ctx.oa_id, ctx.now) >= self.settings.uploads_per_month:
                raise ZaloError(-211)
            upload = Upload(
                id=self.state.new_upload_id(kind),
                kind=kind,
                oa_id=ctx.oa_id,
                filename=part.filename,
                size=len(part.data),
                media_type=media_type,
                created_at=ctx.now,
            )
            self.state.add_upload(upload)
            return {"token": upload.id} if kind == "file" else {"attachment_id": upload.id}

        return handle

    def user_detail(self, ctx: CallContext) -> dict[str, Any]:
        """``GET /v3.0/oa/user/detail?data={"user_id"}`` (README §3.5; fixture user_detail).

        ``user_last_interaction_date`` is DD/MM/YYYY in Vietnam time; ``shared_info`` appears only
        once the user has shared it. An id unknown to this OA → -201.
        """
        user_id = parse_user_id_body(ctx.data())
        user = self.state.user(ctx.oa_id, user_id)
        if user is None:
            raise invalid("user_id")
        avatar_240 = user.avatar.replace("/120/", "/240/")
        data: dict[str, Any] = {
            "user_id": user.user_id,
            "user_id_by_app": user.user_id_by_app,
            "user_external_id": user.user_external_id,
            "display_name": user.display_name,
            "user_alias": user.user_alias,
            "is_sensitive": user.is_sensitive,
            "user_last_interaction_date": (
                ""
                if user.last_interaction is None
                else vn_datetime(user.last_interaction).strftime("%d/%m/%Y")
            ),
            "user_is_follower": user.is_follower,
            "avatar": user.avatar,
            "avatars": {"120": user.avatar, "240": avatar_240},
            "tags_and_notes_info": {"notes": list(user.notes), "tag_names": list(user.tag_names)},
        }
        if user.shared_info is not None:
            keys = ("address", "city", "district", "phone", "name")
            data["shared_info"] = {k: str(user.shared_info.get(k, "")) for k in keys}
        return data

    def user_getlist(self, ctx: CallContext) -> dict[str, Any]:
        """``GET /v3.0/oa/user/getlist?data={offset, count, ...}`` (README §3.5; fixture).

        ``count`` in the answer echoes the requested page size, as in the fixture (``total`` is
        the number matching). Periods are calendar days in Vietnam time: L7D = today and the 6
        days before, L30D = today and the 29 before (sandbox reading of the names).
        """
        query = parse_getlist_query(ctx.data())
        users = [u for u in self.state.users_of(ctx.oa_id) if self._matches(u, query, ctx.now)]
        page = users[query.offset : query.offset + query.count]
        return {
            "total": len(users),
            "count": query.count,
            "offset": query.offset,
            "users": [{"user_id": u.user_id} for u in page],
        }

    @staticmethod
    def _matches(user: UserRecord, query: GetListQuery, now: float) -> bool:
        if query.is_follower is not None and user.is_follower != query.is_follower:
            return False
        if query.tag_name is not None and query.tag_name not in user.tag_names:
            return False
        if query.period is None:
            return True
        if user.last_interaction is None:
            return False
        day = vn_datetime(user.last_interaction).date()
        today = vn_datetime(now).date()
        if isinstance(query.period, tuple):
            return query.period[0] <= day <= query.period[1]
        first = {
            "TODAY": today,
            "YESTERDAY": today - timedelta(days=1),
            "L7D": today - timedelta(days=6),
            "L30D": today - timedelta(days=29),
        }[query.period]
        last = today - timedelta(days=1) if query.period == "YESTERDAY" else today
        return first <= day <= last

    def quota_message(self, ctx: CallContext) -> dict[str, Any]:
        """``POST /v3.0/oa/quota/message {user_id}`` (README §3.4, §3.5; fixture).

        ``last_interaction`` is epoch ms as a string ("0" if never); ``cs_reply`` is 8/8 (free
        replies unlimited within 48 h since 2026-01-01, ``remain`` always 8). The OA-wide body
        shape on the same path is not modelled (→ -201).
        """
        user_id = parse_user_id_body(ctx.json())
        user = self.state.user(ctx.oa_id, user_id)
        if user is None:
            raise invalid("user_id")
        return {
            "last_interaction": "0"
            if user.last_interaction is None
            else epoch_ms(user.last_interaction),
            "cs_reply": {"remain": 8, "total": 8},
            "promotion": {
                "daily_remain": 1,
                "daily_total": 1,
                "monthly_remain": 6,
                "monthly_total": 6,
            },
        }

    def conversation(self, ctx: CallContext) -> list[dict[str, Any]]:
        """``GET /v2.0/oa/conversation?data={user_id, offset, count}`` (README §3.5), ≤ 10.

        Newest first: what the OA sent to the user through the API (so a client can check after
        an ambiguous timeout whether its send landed) and the user's messages recorded through
        ``/sandbox/interactions``. No fixture exists: the entry shape follows the official v2 doc
        as remembered (``src`` 0 = sent by the OA, 1 = by the user; ``time`` epoch ms number).
        """
        user_id, offset, count = parse_conversation_query(ctx.data())
        user = self.state.user(ctx.oa_id, user_id)
        if user is None:
            raise invalid("user_id")
        messages = [
            m
            for m in self.state.find_messages(oa_id=ctx.oa_id, user_id=user_id)
            if m.kind not in {"reaction", "broadcast"}
        ]
        messages.reverse()
        return [self._conversation_entry(m, user) for m in messages[offset : offset + count]]

    def _conversation_entry(self, m: RecordedMessage, user: UserRecord) -> dict[str, Any]:
        oa_side = (m.oa_id, self.settings.oa_name(m.oa_id), OA_AVATAR)
        user_side = (user.user_id, user.display_name, user.avatar)
        sender, receiver = (oa_side, user_side) if m.direction == "oa" else (user_side, oa_side)
        first = m.attachments[0] if m.attachments else {}
        kind = {"image": "photo", "gif": "gif", "sticker": "sticker", "file": "file"}.get(
            str(first.get("type")), "template" if first else "text"
        )
        entry: dict[str, Any] = {
            "src": 0 if m.direction == "oa" else 1,
            "time": round(m.sent_at * 1000),
            "sent_time": vn_datetime(m.sent_at).strftime("%H:%M:%S %d/%m/%Y"),
            "from_id": sender[0],
            "from_display_name": sender[1],
            "from_avatar": sender[2],
            "to_id": receiver[0],
            "to_display_name": receiver[1],
            "to_avatar": receiver[2],
            "message_id": m.message_id,
            "type": kind,
            "message": m.text or "",
        }
        if "url" in first:
            entry["url"] = first["url"]
            entry["thumb"] = first.get("thumbnail", first["url"])
        return entry

    def article_create(self, ctx: CallContext) -> dict[str, Any]:
        """``POST /v2.0/article/create`` (README §5.1): validate, store, return ``token``."""
        draft = parse_article(ctx.json())
        article = Article(
            token=self.state.new_article_token(),
            oa_id=ctx.oa_id,
            kind=draft.kind,
            title=draft.title,
            status=draft.status,
            created_at=ctx.now,
            body=draft.raw,
        )
        self.state.add_article(article)
        return {"token": article.token}

    def article_verify(self, ctx: CallContext) -> dict[str, Any]:
        """``POST /v2.0/article/verify {token}`` (README §5.1): the article ``id`` once processed;
        -214 "Article is being processed" during ``settings.article_processing_s``."""
        token = parse_token_body(ctx.json())
        article = self.state.articles.get(token)
        if article is None or article.oa_id != ctx.oa_id:
            raise invalid("token")
        if ctx.now < article.created_at + self.settings.article_processing_s:
            raise ZaloError(-214)
        return {"id": self.state.verify_article(article)}

    # ------------------------------------------------------------------ OAuth v4

    def permission(self, request: Request) -> Response:
        """``GET /v4/oa/permission?app_id&redirect_uri&code_challenge&state`` (README §4.1).

        Stands for the consent screen: the OA admin "grants" at once and the browser is sent to
        ``redirect_uri?code=…&oa_id=…&state=…`` (fixture oauth_callback.query.json). The OA is the
        ``oa_id`` query parameter (sandbox extension) or the first configured OA. Errors
        redirect to ``/v4/permission/error?error_code=…`` as Zalo does (-14002 wrong app,
        -14003 unregistered redirect).
        """
        q = request.query_params
        refused = self._consent_error(q)
        if refused is not None:
            return RedirectResponse(
                f"/v4/permission/error?{urlencode({'error_code': refused})}", status_code=302
            )
        redirect_uri = q["redirect_uri"]
        parts = urlsplit(redirect_uri)
        oa_id = q.get("oa_id") or next(iter(self.settings.oas))
        code = self.state.create_code(oa_id, q.get("code_challenge"), redirect_uri)
        params = {"code": code.code, "oa_id": oa_id}
        if q.get("state") is not None:
            params["state"] = q["state"]
        query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)

    def _consent_error(self, q: Mapping[str, str]) -> int | None:
        """Why the consent link is refused (-14002 app, -14003 redirect, -14001 other), or None."""
        redirect_uri = q.get("redirect_uri") or ""
        parts = urlsplit(redirect_uri)
        challenge = q.get("code_challenge")
        oa_id = q.get("oa_id") or next(iter(self.settings.oas), "")
        if q.get("app_id") != self.settings.app_id:
            return OAUTH_INVALID_APP_ID
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            return OAUTH_INVALID_REDIRECT_URI
        if self.settings.redirect_uris and redirect_uri not in self.settings.redirect_uris:
            return OAUTH_INVALID_REDIRECT_URI
        if oa_id not in self.settings.oas:
            return OAUTH_INVALID_PARAMETER
        if challenge is None:
            return OAUTH_INVALID_PARAMETER if self.settings.require_pkce else None
        return None if _CHALLENGE_RE.fullmatch(challenge) else OAUTH_INVALID_PARAMETER

    async def access_token(self, request: Request) -> Response:
        """``POST /v4/oa/access_token`` (README §4.2): form body, ``secret_key`` header.

        ``grant_type=authorization_code``: ``code, app_id, code_verifier``; the code must be
        unexpired (10 min), unused, and ``base64url_nopad(SHA-256(code_verifier))`` must equal
        its ``code_challenge``. A failed PKCE check leaves the code unused (sandbox choice).
        ``grant_type=refresh_token``: ``refresh_token, app_id``; single-use (§4.3): once used
        (or expired) it is refused with -14014. The old access token stays valid until it
        expires. Answer: ``{"access_token", "refresh_token", "expires_in": "90000"}``.
        """
        try:
            body = await self._read_body(request)
        except ZaloError:
            return JSONResponse(oauth_body(OAUTH_INVALID_PARAMETER, "Request body too large"))
        form = _parse_form(request.headers.get("content-type", ""), body)
        oa_hint = None
        if form is not None:
            found = self.state.pair_by_refresh(form.get("refresh_token"))
            oa_hint = found.oa_id if found else None
        fault = await self._latency(self.state.take_faults(OAUTH_API, None, oa_hint))
        after_write = None
        if fault is not None:
            if fault.kind == "timeout_after_write":
                after_write = fault
            elif fault.kind == "http_500":
                return HTMLResponse(HTML_500, status_code=500)
            elif fault.kind == "timeout":
                return await self._hang(fault)
            else:
                return JSONResponse(
                    oauth_body(int(fault.value or OAUTH_INVALID_PARAMETER), "Injected fault")
                )
        try:
            answer: dict[str, Any] = self._grant(request, form)
        except OAuthError as exc:
            answer = exc.body()
        if after_write is not None:
            return await self._hang(after_write)
        return JSONResponse(answer)

    def _grant(self, request: Request, form: dict[str, str] | None) -> dict[str, Any]:
        if form is None:
            raise OAuthError(
                OAUTH_INVALID_PARAMETER, "Body must be application/x-www-form-urlencoded"
            )
        secret = request.headers.get("secret_key")
        if not secret or not hmac.compare_digest(
            secret.encode(), self.settings.app_secret.encode()
        ):
            raise OAuthError(OAUTH_INVALID_SECRET_KEY, "Invalid secret_key header")
        if form.get("app_id") != self.settings.app_id:
            raise OAuthError(OAUTH_INVALID_APP_ID, "Invalid appId")
        grant_type = form.get("grant_type")
        with self.state.lock:
            now = self.state.now()
            if grant_type == "authorization_code":
                pair = self._exchange_code(form, now)
            elif grant_type == "refresh_token":
                pair = self._refresh(form, now)
            else:
                raise OAuthError(OAUTH_INVALID_PARAMETER, "Invalid grant_type")
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_in": str(self.settings.access_token_lifetime_s),
        }

    def _exchange_code(self, form: dict[str, str], now: float) -> TokenPair:
        allowed = {"code", "app_id", "grant_type", "code_verifier", "redirect_uri"}
        if not form.get("code") or set(form) - allowed:
            raise OAuthError(OAUTH_INVALID_PARAMETER, "Invalid parameter")
        code = self.state.codes.get(form["code"])
        if code is None:
            raise OAuthError(OAUTH_INVALID_CODE, "Invalid authorization code")
        if code.used_at is not None:
            raise OAuthError(OAUTH_INVALID_CODE, "Authorization code has already been used")
        if now >= code.expires_at:
            raise OAuthError(OAUTH_INVALID_CODE, "Authorization code is expired")
        verifier = form.get("code_verifier")
        if code.code_challenge is not None or self.settings.require_pkce:
            if not verifier:
                raise OAuthError(OAUTH_INVALID_CODE_VERIFIER, "code_verifier is required")
            if code.code_challenge is None or not hmac.compare_digest(
                pkce_challenge(verifier), code.code_challenge
            ):
                raise OAuthError(OAUTH_INVALID_CODE_VERIFIER, "Invalid code verifier")
        code.used_at = now
        return self.state.issue_pair(code.oa_id, grant="authorization_code")

    def _refresh(self, form: dict[str, str], now: float) -> TokenPair:
        if not form.get("refresh_token") or set(form) - {"refresh_token", "app_id", "grant_type"}:
            raise OAuthError(OAUTH_INVALID_PARAMETER, "Invalid parameter")
        old = self.state.pair_by_refresh(form["refresh_token"])
        if old is None:
            raise OAuthError(OAUTH_INVALID_REFRESH_TOKEN, "Invalid refresh token")
        if old.refresh_used_at is not None:
            raise OAuthError(OAUTH_INVALID_REFRESH_TOKEN, "Refresh token has already been used")
        if now >= old.refresh_expires_at:
            raise OAuthError(OAUTH_INVALID_REFRESH_TOKEN, "Refresh token is expired")
        old.refresh_used_at = now
        return self.state.issue_pair(old.oa_id, grant="refresh_token")

    # ------------------------------------------------------------------ sandbox admin

    def _known_oa(self, oa_id: str) -> str:
        if oa_id not in self.settings.oas:
            raise HTTPException(404, f"unknown oa_id {oa_id}")
        return oa_id

    def admin_create_code(self, req: CodeRequest) -> dict[str, Any]:
        self._known_oa(req.oa_id)
        if req.code_challenge is not None and not _CHALLENGE_RE.fullmatch(req.code_challenge):
            raise HTTPException(
                422, "code_challenge must be base64url(SHA-256(verifier)) without padding"
            )
        code = self.state.create_code(req.oa_id, req.code_challenge, req.redirect_uri)
        return {"code": code.code, "oa_id": code.oa_id, "expires_in": self.settings.code_lifetime_s}

    def admin_create_tokens(self, req: TokenRequest) -> dict[str, Any]:
        pair = self.state.issue_pair(self._known_oa(req.oa_id), grant="admin")
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_in": str(self.settings.access_token_lifetime_s),
            "oa_id": pair.oa_id,
        }

    def admin_tokens(self, oa: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            now = self.state.now()
            return [p.view(now) for p in self.state.pairs if oa is None or p.oa_id == oa]

    def admin_revoke(self, req: RevokeRequest) -> dict[str, Any]:
        with self.state.lock:
            pair = self.state.pair_by_access(req.access_token)
            if pair is None:
                raise HTTPException(404, "unknown access_token")
            pair.access_revoked_at = self.state.now()
            return pair.view(self.state.now())

    def admin_interaction(self, req: InteractionRequest) -> dict[str, Any]:
        self._known_oa(req.oa_id)
        at = _ms_to_s(req.at, "at")
        with self.state.lock:
            now = self.state.now()
            at = now if at is None else at
            user = self.state.ensure_user(req.oa_id, req.user_id)
            if req.kind == "unfollow":
                user.is_follower = False
            else:
                if req.kind == "follow":
                    user.is_follower = True
                user.last_interaction = (
                    at if user.last_interaction is None else max(user.last_interaction, at)
                )
            if req.is_follower is not None:
                user.is_follower = req.is_follower
            if req.conversation_id is not None:
                user.conversation_id = req.conversation_id
            result: dict[str, Any] = {"user": user.view()}
            if req.kind == "message":
                msg_id = req.msg_id or self.state.new_message_id()
                self.state.record(
                    RecordedMessage(
                        message_id=msg_id,
                        oa_id=req.oa_id,
                        user_id=req.user_id,
                        direction="user",
                        api="sandbox/interactions",
                        kind=str(req.attachments[0].get("type", "text"))
                        if req.attachments
                        else "text",
                        text=req.text,
                        attachments=[dict(a) for a in req.attachments],
                        sent_at=at,
                        recipient={"oa_id": req.oa_id},
                    )
                )
                result["msg_id"] = msg_id
            return result

    def admin_upsert_user(self, req: UserRequest) -> dict[str, Any]:
        self._known_oa(req.oa_id)
        last = _ms_to_s(req.last_interaction, "last_interaction")
        with self.state.lock:
            user = self.state.ensure_user(req.oa_id, req.user_id)
            for name in (
                "display_name",
                "user_id_by_app",
                "user_external_id",
                "user_alias",
                "is_sensitive",
                "is_follower",
                "avatar",
                "tag_names",
                "notes",
                "shared_info",
            ):
                value = getattr(req, name)
                if value is not None:
                    setattr(user, name, value)
            if last is not None:
                user.last_interaction = last
            return user.view()

    def admin_users(self, oa: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [
                u.view()
                for u in sorted(self.state.users.values(), key=lambda u: u.seq)
                if oa in {None, u.oa_id}
            ]

    def admin_add_fault(self, req: FaultRequest) -> dict[str, Any]:
        api = req.api if req.api == "*" else _normalise_api(req.api)
        if api != "*" and api not in API_NAMES:
            raise HTTPException(422, f"unknown api {req.api!r}; known: {sorted(API_NAMES)}")
        if api == OAUTH_API and req.kind not in OAUTH_FAULT_KINDS:
            raise HTTPException(422, f"fault kind {req.kind} does not apply to the OAuth endpoint")
        value = req.value
        if req.kind == "latency" and (value is None or value < 0):
            raise HTTPException(422, "latency needs value = seconds")
        if req.kind in {"timeout", "timeout_after_write"} and value is not None and value < 0:
            raise HTTPException(422, "timeout value = seconds to hang")
        if req.kind == "error_code" and (not isinstance(value, int) or value == 0):
            raise HTTPException(422, "error_code needs value = a non-zero integer code")
        if req.kind == "token_expired" and value not in {None, -216, -220}:
            raise HTTPException(422, "token_expired value must be -216 or -220")
        if req.kind == "outside_window" and value not in {None, -230, -232}:
            raise HTTPException(422, "outside_window value must be -230 or -232")
        fault = self.state.add_fault(
            api=api,
            kind=req.kind,
            user_id=req.user_id,
            oa_id=req.oa_id,
            value=value,
            count=req.count,
        )
        return fault.view()

    def admin_faults(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [f.view() for f in self.state.faults]

    def admin_clear_faults(self) -> dict[str, Any]:
        return {"removed": self.state.clear_faults()}

    def admin_remove_fault(self, fault_id: str) -> dict[str, Any]:
        if not self.state.remove_fault(fault_id):
            raise HTTPException(404, "unknown fault id")
        return {"removed": 1}

    def admin_messages(
        self,
        user: str | None = None,
        oa: str | None = None,
        direction: Literal["oa", "user", "all"] = "oa",
    ) -> list[dict[str, Any]]:
        found = self.state.find_messages(
            oa_id=oa, user_id=user, direction=None if direction == "all" else direction
        )
        return [m.view() for m in found]

    def admin_reset(self) -> dict[str, Any]:
        self.state.reset()
        return {"reset": True}

    def admin_clock(self, req: ClockRequest) -> dict[str, Any]:
        clock = self.settings.clock
        if not isinstance(clock, ManualClock):
            raise HTTPException(
                409, "the sandbox clock is the system clock; start it with a ManualClock"
            )
        if req.set_epoch_s is not None:
            clock.set(req.set_epoch_s)
        if req.advance_s is not None:
            clock.advance(req.advance_s)
        return {"now": clock(), "now_ms": epoch_ms(clock())}

    def admin_health(self) -> dict[str, Any]:
        now = self.state.now()
        return {
            "ok": True,
            "app_id": self.settings.app_id,
            "oas": self.settings.oas,
            "now_ms": epoch_ms(now),
            "rate_limit_remain": self.state.rate_remaining(now),
        }


_MAGIC: Final[dict[str, tuple[tuple[bytes, str], ...]]] = {
    "image": ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png")),
    "gif": ((b"GIF87a", "image/gif"), (b"GIF89a", "image/gif")),
}
_FILE_TYPES: Final[dict[str, tuple[bytes, str]]] = {
    "pdf": (b"%PDF-", "application/pdf"),
    "doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/msword"),
    "docx": (
        b"PK\x03\x04",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
}


def _sniff(kind: str, data: bytes, filename: str | None) -> str:
    """The media type of an upload, or -201 if it is not one the endpoint takes (§3.5)."""
    if kind == "file":
        ext = (filename or "").rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
        if ext not in _FILE_TYPES or not data.startswith(_FILE_TYPES[ext][0]):
            raise invalid("file")
        return _FILE_TYPES[ext][1]
    for magic, media_type in _MAGIC[kind]:
        if data.startswith(magic):
            return media_type
    raise invalid("file")


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    filename: str | None
    data: bytes


def _multipart_parts(content_type: str, body: bytes) -> list[_Part] | None:
    """The parts of a complete ``multipart/form-data`` body (RFC 7578, parsed by
    python-multipart, in memory), or None when it is not one."""
    mime, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        return None
    parts: list[_Part] = []
    ended = False

    def on_field(f: FormField) -> None:
        parts.append(_Part((f.field_name or b"").decode("utf-8", "replace"), None, f.value or b""))

    def on_file(f: FormFile) -> None:
        f.file_object.seek(0)
        name = (f.field_name or b"").decode("utf-8", "replace")
        filename = None if f.file_name is None else f.file_name.decode("utf-8", "replace")
        parts.append(_Part(name, filename, f.file_object.read()))

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = FormParser(
        "multipart/form-data",
        on_field,
        on_file,
        on_end=on_end,
        boundary=boundary,
        config={"MAX_BODY_SIZE": MAX_BODY_BYTES, "MAX_MEMORY_FILE_SIZE": MAX_BODY_BYTES},
    )
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError:
        return None
    return parts if ended else None


def _parse_form(content_type: str, body: bytes) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body (README §4.2: a form, not JSON)."""
    if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            return None
        form[key] = value
    return form


def _add_phone(app: FastAPI, sb: Sandbox, webhook: WebhookTarget) -> None:
    """The simulated citizen's phone, recording what it sends in the sandbox's state."""

    def record(action: CitizenAction, msg_id: str, attachments: list[dict[str, Any]]) -> None:
        kind = action.kind if action.kind in ("follow", "unfollow") else "message"
        sb.admin_interaction(
            InteractionRequest(
                oa_id=action.oa_id,
                user_id=action.user_id,
                kind=kind,
                text=action.text,
                msg_id=msg_id,
                attachments=attachments,
            )
        )
        if action.display_name:
            sb.admin_upsert_user(
                UserRequest(
                    oa_id=action.oa_id, user_id=action.user_id, display_name=action.display_name
                )
            )

    add_citizen_routes(
        app, settings=sb.settings, media=lambda: sb.state.media, target=webhook, record=record
    )


def create_sandbox_app(
    settings: SandboxSettings | None = None, *, webhook: WebhookTarget | None = None
) -> FastAPI:
    """The sandbox as an ASGI app. ``app.state.sandbox`` is the :class:`SandboxState`."""
    settings = settings or SandboxSettings()
    state = SandboxState(settings)
    sb = Sandbox(settings, state)
    app = FastAPI(
        title="Ketnoi Zalo OA sandbox",
        description=__doc__,
        docs_url="/sandbox/docs",
        openapi_url="/sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    app.state.sandbox_settings = settings

    def oa_route(path: str, method: str, api: str, handler: Handler) -> None:
        async def endpoint(request: Request) -> Response:
            return await sb.oa_call(request, api, handler)

        endpoint.__name__ = "zalo_" + api.replace("/", "_")
        endpoint.__doc__ = handler.__doc__
        app.add_api_route(
            path, endpoint, methods=[method], tags=["Zalo OA API"], include_in_schema=True
        )

    oa_route("/v3.0/oa/message/cs", "POST", API_CS, sb.message_cs)
    oa_route("/v2.0/oa/message", "POST", API_V2_MESSAGE, sb.message_v2)
    oa_route("/v2.0/oa/upload/image", "POST", "upload/image", sb.upload("image"))
    oa_route("/v2.0/oa/upload/gif", "POST", "upload/gif", sb.upload("gif"))
    oa_route("/v2.0/oa/upload/file", "POST", "upload/file", sb.upload("file"))
    oa_route("/v3.0/oa/user/detail", "GET", "user/detail", sb.user_detail)
    oa_route("/v3.0/oa/user/getlist", "GET", "user/getlist", sb.user_getlist)
    oa_route("/v3.0/oa/quota/message", "POST", "quota/message", sb.quota_message)
    oa_route("/v2.0/oa/conversation", "GET", "conversation", sb.conversation)
    oa_route("/v2.0/article/create", "POST", "article/create", sb.article_create)
    oa_route("/v2.0/article/verify", "POST", "article/verify", sb.article_verify)

    @app.get("/v4/oa/permission", tags=["Zalo OAuth v4"])
    def permission(request: Request) -> Response:
        return sb.permission(request)

    @app.get("/v4/permission/error", tags=["Zalo OAuth v4"])
    def permission_error(error_code: int = OAUTH_INVALID_PARAMETER) -> JSONResponse:
        return JSONResponse(oauth_body(error_code, "Authorization request refused"))

    @app.post("/v4/oa/access_token", tags=["Zalo OAuth v4"])
    async def access_token(request: Request) -> Response:
        return await sb.access_token(request)

    admin: list[str | Enum] = ["sandbox admin"]
    app.add_api_route("/sandbox/health", sb.admin_health, methods=["GET"], tags=admin)
    app.add_api_route("/sandbox/oauth/codes", sb.admin_create_code, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/tokens", sb.admin_create_tokens, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/tokens", sb.admin_tokens, methods=["GET"], tags=admin)
    app.add_api_route("/sandbox/tokens/revoke", sb.admin_revoke, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/interactions", sb.admin_interaction, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/users", sb.admin_upsert_user, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/users", sb.admin_users, methods=["GET"], tags=admin)
    app.add_api_route("/sandbox/faults", sb.admin_add_fault, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/faults", sb.admin_faults, methods=["GET"], tags=admin)
    app.add_api_route("/sandbox/faults", sb.admin_clear_faults, methods=["DELETE"], tags=admin)
    app.add_api_route(
        "/sandbox/faults/{fault_id}", sb.admin_remove_fault, methods=["DELETE"], tags=admin
    )
    app.add_api_route("/sandbox/messages", sb.admin_messages, methods=["GET"], tags=admin)
    app.add_api_route("/sandbox/reset", sb.admin_reset, methods=["POST"], tags=admin)
    app.add_api_route("/sandbox/clock", sb.admin_clock, methods=["POST"], tags=admin)
    add_media_routes(app, lambda: state.media)
    add_phone_routes(app, settings, state, simulator=webhook is not None)
    if webhook is not None:
        _add_phone(app, sb, webhook)

    return app
