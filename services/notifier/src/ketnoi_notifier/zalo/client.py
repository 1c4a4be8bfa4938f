"""The Zalo OA client: one long-lived ``httpx.AsyncClient`` with explicit timeouts and
limits; base URLs are configurable so the same code talks to Zalo or to the sandbox.

Conventions (../shared/zalo/README.md §3.1): a bare ``access_token`` header (not Bearer),
GET parameters as one URL-encoded JSON ``data`` parameter, errors with HTTP 200 and
``error`` ≠ 0 — every response is checked. Consultation texts are NFC-normalised and at most
2,000 characters; longer ones are split on sentence boundaries and sent in order.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx

from .errors import AmbiguousError, PermanentError, RetryableError, UnreachableError, ZaloError

__all__ = ["SentMessage", "TokenPair", "ZaloClient", "split_text"]

MAX_TEXT: Final = 2000
#: Answers of a gateway that timed out waiting for the server: the request may have landed.
_GATEWAY_TIMEOUTS: Final = frozenset({504})
_SENTENCE_END: Final = re.compile(r"(?<=[.!?…;])\s+|\n+")
#: What is left of the app's per-minute budget, on every OA API answer (README §3.1).
RATE_REMAIN_HEADER: Final = "x-ratelimit-remain"


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """NFC ``text`` in pieces of at most ``limit`` characters, cut after sentences where
    possible, else at a space, else hard."""
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for whole in (s for s in _SENTENCE_END.split(text) if s):
        sentence = whole
        while len(sentence) > limit:  # one sentence longer than a message
            cut = sentence.rfind(" ", 0, limit + 1)
            cut = cut if cut > 0 else limit
            head, sentence = sentence[:cut].rstrip(), sentence[cut:].lstrip()
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
        candidate = f"{current} {sentence}" if current else sentence
        if len(candidate) <= limit:
            current = candidate
        else:
            pieces.append(current)
            current = sentence
    if current:
        pieces.append(current)
    return pieces


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: str
    user_id: str | None
    sent_time_ms: int | None


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in_s: int


class ZaloClient:
    def __init__(
        self,
        *,
        openapi_url: str = "https://openapi.zalo.me",
        oauth_url: str = "https://oauth.zaloapp.com",
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        on_rate_remain: Callable[[int], None] | None = None,
    ) -> None:
        self.openapi_url = openapi_url.rstrip("/")
        #: Told the ``X-RateLimit-Remain`` of every successful answer that carries one: the
        #: shared rate limiter's :meth:`~ketnoi_notifier.ratelimit.SharedRateLimiter.observe`.
        self.on_rate_remain = on_rate_remain
        self.oauth_url = oauth_url.rstrip("/")
        self._own = http is None
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=3.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    # -- transport ---------------------------------------------------------------------------
    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection, so no request: Zalo (or the way to it) is down.
            raise UnreachableError(f"unreachable: {type(exc).__name__}") from exc
        except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError) as exc:
            # The request went out; whether Zalo acted on it is unknown.
            raise AmbiguousError(f"no answer: {type(exc).__name__}") from exc
        except httpx.TimeoutException as exc:
            raise RetryableError(f"timeout: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"transport: {type(exc).__name__}") from exc
        if response.status_code in _GATEWAY_TIMEOUTS:
            # A gateway gave up waiting for Zalo's server, which may have acted on the request
            # (found by the reliability harness: a send retried after a 504 reached the citizen
            # twice). As ambiguous as a read timeout: look before sending again.
            raise AmbiguousError(f"HTTP {response.status_code}")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise PermanentError(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError("response is not JSON") from exc
        if not isinstance(body, dict):
            raise PermanentError("unexpected response shape")
        code = body.get("error", 0)
        if isinstance(code, str) and code.lstrip("-").isdigit():
            code = int(code)
        if code not in (0, None):
            raise ZaloError.from_code(int(code), str(body.get("message", "")))
        # Read from answers that succeeded: they keep us from earning a -32. A -32 itself is
        # retried with backoff within the send's time budget (reliability finding 1); had it
        # stopped every send until the next minute, a burst of -32 spanning two minutes
        # would spend that budget and dead-letter acknowledgements.
        remain = response.headers.get(RATE_REMAIN_HEADER, "").strip()
        if self.on_rate_remain is not None and remain.isdigit():
            self.on_rate_remain(int(remain))
        return body

    async def _openapi(self, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"access_token": token, **kwargs.pop("headers", {})}
        return await self._call(method, f"{self.openapi_url}{path}", headers=headers, **kwargs)

    @staticmethod
    def _sent(body: dict[str, Any]) -> SentMessage:
        data = body.get("data") or {}
        sent = data.get("sent_time")
        return SentMessage(
            message_id=str(data.get("message_id", "")),
            user_id=data.get("user_id"),
            sent_time_ms=int(sent) if isinstance(sent, str | int) and str(sent).isdigit() else None,
        )

    # -- messages ----------------------------------------------------------------------------
    async def send_text(
        self, token: str, *, user_id: str, text: str, quote_message_id: str | None = None
    ) -> list[SentMessage]:
        """A consultation text; split in order when longer than 2,000 characters (the quote
        goes on the first piece)."""
        sent = []
        for i, piece in enumerate(split_text(text)):
            message: dict[str, Any] = {"text": piece}
            if quote_message_id and i == 0:
                message["quote_message_id"] = quote_message_id
            body = await self._openapi(
                "POST",
                "/v3.0/oa/message/cs",
                token,
                json={"recipient": {"user_id": user_id}, "message": message},
            )
            sent.append(self._sent(body))
        return sent

    async def send_anonymous_text(
        self, token: str, *, anonymous_id: str, conversation_id: str, text: str
    ) -> list[SentMessage]:
        """A reply to a citizen writing without following the OA (v2 anonymous path)."""
        sent = []
        for piece in split_text(text):
            body = await self._openapi(
                "POST",
                "/v2.0/oa/message",
                token,
                json={
                    "recipient": {"anonymous_id": anonymous_id, "conversation_id": conversation_id},
                    "message": {"text": piece},
                },
            )
            sent.append(self._sent(body))
        return sent

    async def send_image(
        self,
        token: str,
        *,
        user_id: str,
        url: str | None = None,
        attachment_id: str | None = None,
        text: str | None = None,
    ) -> SentMessage:
        if (url is None) == (attachment_id is None):
            raise ValueError("give exactly one of url or attachment_id")
        element: dict[str, str] = {"media_type": "image"}
        element.update({"url": url} if url else {"attachment_id": str(attachment_id)})
        message: dict[str, Any] = {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "media", "elements": [element]},
            }
        }
        if text:
            message["text"] = split_text(text)[0]
        body = await self._openapi(
            "POST",
            "/v3.0/oa/message/cs",
            token,
            json={"recipient": {"user_id": user_id}, "message": message},
        )
        return self._sent(body)

    async def send_file(self, token: str, *, user_id: str, file_token: str) -> SentMessage:
        body = await self._openapi(
            "POST",
            "/v3.0/oa/message/cs",
            token,
            json={
                "recipient": {"user_id": user_id},
                "message": {"attachment": {"type": "file", "payload": {"token": file_token}}},
            },
        )
        return self._sent(body)

    async def upload_image(
        self, token: str, *, content: bytes, filename: str, content_type: str = "image/jpeg"
    ) -> str:
        body = await self._openapi(
            "POST",
            "/v2.0/oa/upload/image",
            token,
            files={"file": (filename, content, content_type)},
        )
        return str((body.get("data") or {})["attachment_id"])

    async def upload_file(
        self, token: str, *, content: bytes, filename: str, content_type: str = "application/pdf"
    ) -> str:
        body = await self._openapi(
            "POST", "/v2.0/oa/upload/file", token, files={"file": (filename, content, content_type)}
        )
        return str((body.get("data") or {})["token"])

    # -- reading -----------------------------------------------------------------------------
    async def user_detail(self, token: str, *, user_id: str) -> dict[str, Any]:
        body = await self._openapi(
            "GET", "/v3.0/oa/user/detail", token, params={"data": json.dumps({"user_id": user_id})}
        )
        return dict(body.get("data") or {})

    async def conversation(
        self, token: str, *, user_id: str, offset: int = 0, count: int = 10
    ) -> list[dict[str, Any]]:
        """Recent messages between the OA and a citizen (at most 10 per call): how a send
        whose outcome was lost is checked before trying again."""
        body = await self._openapi(
            "GET",
            "/v2.0/oa/conversation",
            token,
            params={
                "data": json.dumps({"user_id": user_id, "offset": offset, "count": min(count, 10)})
            },
        )
        data = body.get("data")
        return list(data) if isinstance(data, list) else []

    # -- OAuth v4 ----------------------------------------------------------------------------
    async def _token(self, *, secret_key: str, form: dict[str, str]) -> TokenPair:
        body = await self._call(
            "POST",
            f"{self.oauth_url}/v4/oa/access_token",
            headers={"secret_key": secret_key},
            data=form,
        )
        try:
            return TokenPair(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_in_s=int(str(body["expires_in"])),  # a string on the wire
            )
        except (KeyError, ValueError) as exc:
            raise PermanentError("token response without tokens") from exc

    async def refresh(self, *, app_id: str, secret_key: str, refresh_token: str) -> TokenPair:
        """Exchange a (single-use) refresh token for a new pair: persist it before use."""
        return await self._token(
            secret_key=secret_key,
            form={"refresh_token": refresh_token, "app_id": app_id, "grant_type": "refresh_token"},
        )

    async def exchange_code(
        self, *, app_id: str, secret_key: str, code: str, code_verifier: str
    ) -> TokenPair:
        return await self._token(
            secret_key=secret_key,
            form={
                "code": code,
                "app_id": app_id,
                "grant_type": "authorization_code",
                "code_verifier": code_verifier,
            },
        )
