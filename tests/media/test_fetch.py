"""The downloader against a real local HTTP server: caps, deadlines, retries, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ketnoi_media.fetch import Fetcher, RejectedError, TransientError

from .conftest import Cdn, jpeg_with_gps

MIB = 1 << 20


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    f = Fetcher(read_timeout_s=0.3, deadline_s=2.0, attempts=2, backoff_s=0.01)
    yield f
    await f.aclose()


async def test_a_body_is_fetched_whole(fetcher: Fetcher, cdn: Cdn):
    cdn.files["ok.jpg"] = photo = jpeg_with_gps()
    got = await fetcher.fetch(cdn.url("ok.jpg"), max_bytes=MIB)
    assert (got.body, got.attempts) == (photo, 1)


class CountingTransport(httpx.AsyncBaseTransport):
    """The real transport, counting the response bytes the client actually reads."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.read = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        transport = self

        class Counted(httpx.AsyncByteStream):
            async def __aiter__(self) -> AsyncIterator[bytes]:
                async for chunk in stream:
                    transport.read += len(chunk)
                    yield chunk

            async def aclose(self) -> None:
                await stream.aclose()

        return httpx.Response(
            response.status_code, headers=response.headers, stream=Counted(), request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_too_large_is_refused_without_reading_the_whole_body(fetcher: Fetcher, cdn: Cdn):
    counting = CountingTransport()
    capped = Fetcher(attempts=1, transport=counting)
    try:
        with pytest.raises(RejectedError) as err:
            await capped.fetch(cdn.url("endless.mp4"), max_bytes=MIB)
    finally:
        await capped.aclose()
    assert err.value.reason == "too_large"
    assert MIB < counting.read <= 2 * MIB + 65536, "stopped reading just past the cap"
    with pytest.raises(RejectedError) as err:
        await fetcher.fetch(cdn.url("huge.mp4"), max_bytes=MIB)
    assert err.value.reason == "too_large"


@pytest.mark.parametrize(
    ("name", "reason"),
    [("expired.jpg", "expired"), ("missing.jpg", "not_found")],
)
async def test_permanent_http_errors_are_not_retried(
    fetcher: Fetcher, cdn: Cdn, name: str, reason: str
):
    with pytest.raises(RejectedError) as err:
        await fetcher.fetch(cdn.url(name), max_bytes=MIB)
    assert err.value.reason == reason
    assert cdn.hits[f"/media/{name}"] == 1


async def test_transient_errors_are_retried_a_bounded_number_of_times(fetcher: Fetcher, cdn: Cdn):
    with pytest.raises(TransientError) as err:
        await fetcher.fetch(cdn.url("broken.jpg"), max_bytes=MIB)
    assert (err.value.reason, err.value.attempts) == ("http_5xx", 2)
    assert cdn.hits["/media/broken.jpg"] == 2
    # The read timeout (0.3 s) cut each attempt, not the 2 s deadline.
    with pytest.raises(TransientError) as err:
        await fetcher.fetch(cdn.url("hang.jpg"), max_bytes=MIB)
    assert (err.value.reason, err.value.attempts) == ("timeout", 2)
    with pytest.raises(TransientError) as err:
        await fetcher.fetch("http://127.0.0.1:9/media/x.jpg", max_bytes=MIB)
    assert err.value.reason == "connection"


async def test_the_overall_deadline_bounds_a_slow_attempt(cdn: Cdn):
    slow = Fetcher(read_timeout_s=10, deadline_s=0.3, attempts=1, backoff_s=0.01)
    try:
        with pytest.raises(TransientError) as err:
            await slow.fetch(cdn.url("hang.jpg"), max_bytes=MIB)
        assert err.value.reason == "deadline"
    finally:
        await slow.aclose()


async def test_urls_outside_http_or_the_allowed_hosts_are_refused(cdn: Cdn):
    strict = Fetcher(allowed_hosts=[".zadn.vn"], attempts=1)
    try:
        for url, reason in [
            (cdn.url("ok.jpg"), "host_not_allowed"),
            ("file:///etc/passwd", "bad_url"),
            ("ftp://f.zadn.vn/x", "bad_url"),
        ]:
            with pytest.raises(RejectedError) as err:
                await strict.fetch(url, max_bytes=MIB)
            assert err.value.reason == reason
    finally:
        await strict.aclose()
