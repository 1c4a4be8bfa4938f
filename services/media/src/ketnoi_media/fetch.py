"""Downloading one attachment: one long-lived httpx client, a byte cap read while streaming, an
overall deadline per attempt, bounded retries of transient failures (stamina).

Exception tree (``reason`` is the short machine code stored in ``media_objects.error``)::

    FetchError
    ├── RejectedError   permanent: expired link (401/403/410), not_found, other 4xx,
    │                   too_large, bad_url, host_not_allowed, redirects, empty, corrupt,
    │                   type_not_allowed, too_many_pixels
    └── TransientError  retried, then recorded as failed: timeout, deadline, connection,
                        http_429, http_5xx

Messages never carry the URL: attachment URLs hold signed tokens in their query strings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import stamina

__all__ = ["Download", "FetchError", "Fetcher", "RejectedError", "TransientError", "url_host"]

_EXPIRED = frozenset({401, 403, 410})


class FetchError(Exception):
    """An attachment could not be fetched or kept; ``reason`` is a short machine code."""

    def __init__(self, reason: str, *, content_type: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.content_type = content_type
        self.attempts = 1


class RejectedError(FetchError):
    """Permanent: trying again cannot help."""


class TransientError(FetchError):
    """The host or the network failed; another attempt may succeed."""


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    attempts: int
    seconds: float


def url_host(url: str) -> str:
    """The host of ``url``, the only part of it that is logged."""
    try:
        return urlsplit(url).hostname or "-"
    except ValueError:
        return "-"


class _NoQueryStrings(logging.Filter):
    """httpx logs each request with its URL (at INFO); keep host and path, drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                a.copy_with(query=None, fragment=None) if isinstance(a, httpx.URL) else a
                for a in record.args
            )
        return True


def _redact_httpx_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _NoQueryStrings) for f in logger.filters):
        logger.addFilter(_NoQueryStrings())


def _host_allowed(host: str, allowed: Sequence[str]) -> bool:
    if not allowed:
        return True
    return any(
        host == entry.lstrip(".") or (entry.startswith(".") and host.endswith(entry))
        for entry in allowed
    )


class Fetcher:
    """Fetches attachment URLs with explicit timeouts, limits, caps and deadlines."""

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 15.0,
        deadline_s: float = 60.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        max_connections: int = 8,
        allowed_hosts: Sequence[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.deadline_s = deadline_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.allowed_hosts = tuple(allowed_hosts)
        _redact_httpx_logs()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=connect_timeout_s,
                read=read_timeout_s,
                write=read_timeout_s,
                pool=deadline_s,
            ),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=True,
            max_redirects=3,
            headers={"User-Agent": "ketnoi-media/0.1"},
            event_hooks={"request": [self._check_request]},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _check_request(self, request: httpx.Request) -> None:
        """Every request, redirects included, goes to an http(s) host that is allowed."""
        if request.url.scheme not in ("http", "https"):
            raise RejectedError("bad_url")
        if not _host_allowed(request.url.host, self.allowed_hosts):
            raise RejectedError("host_not_allowed")

    async def fetch(self, url: str, *, max_bytes: int) -> Download:
        """The body of ``url``, at most ``max_bytes`` long; raises :class:`FetchError`."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise RejectedError("bad_url")
        started = time.monotonic()
        attempts = 0
        try:
            async for attempt in stamina.retry_context(
                on=TransientError,
                attempts=self.attempts,
                timeout=None,
                wait_initial=self.backoff_s,
                wait_max=max(self.backoff_s, 10.0),
                wait_jitter=self.backoff_s,
            ):
                with attempt:
                    attempts += 1
                    body = await self._once(url, max_bytes)
        except FetchError as exc:
            exc.attempts = attempts
            raise
        return Download(body=body, attempts=attempts, seconds=time.monotonic() - started)

    async def _once(self, url: str, max_bytes: int) -> bytes:
        try:
            async with (
                asyncio.timeout(self.deadline_s),
                self.client.stream("GET", url) as response,
            ):
                _check_status(response.status_code)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise RejectedError("too_large")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    if len(body) + len(chunk) > max_bytes:
                        raise RejectedError("too_large")  # the rest is never read
                    body += chunk
        except FetchError:
            raise
        except httpx.TimeoutException as exc:
            raise TransientError("timeout") from exc
        except TimeoutError as exc:  # asyncio.timeout: the overall deadline
            raise TransientError("deadline") from exc
        except httpx.TooManyRedirects as exc:
            raise RejectedError("redirects") from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise RejectedError("bad_url") from exc
        except httpx.DecodingError as exc:
            raise RejectedError("corrupt") from exc
        except httpx.TransportError as exc:
            raise TransientError("connection") from exc
        if not body:
            raise RejectedError("empty")
        return bytes(body)


def _check_status(status: int) -> None:
    if status == 200:
        return
    if status in _EXPIRED:
        raise RejectedError("expired")
    if status == 404:
        raise RejectedError("not_found")
    if status in (408, 429) or status >= 500:
        raise TransientError("http_5xx" if status >= 500 else f"http_{status}")
    raise RejectedError(f"http_{status}")
