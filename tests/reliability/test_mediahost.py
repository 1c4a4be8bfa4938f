"""The harness's CDN (:class:`~.harness.MediaHost`) misbehaves as each path promises, and the
checker tells an attachment recorded as its URL requires from one recorded otherwise."""

from __future__ import annotations

import httpx
import pytest

from .harness import MIB, Load, MediaHost, media_counts


@pytest.fixture
async def host():
    h = await MediaHost(huge_bytes=3 * MIB, huge_video_bytes=5 * MIB).start()
    try:
        yield h
    finally:
        await h.stop()


async def test_good_photo_and_clip_are_served_whole(host):
    async with httpx.AsyncClient(timeout=5) as http:
        photo = await http.get(host.url("ok", "a"))
        clip = await http.get(host.url("video", "b"))
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.content[:2] == b"\xff\xd8"
    assert int(photo.headers["content-length"]) == len(photo.content)
    assert clip.content[4:8] == b"ftyp"
    assert host.hits == {"ok": 1, "video": 1}


async def test_missing_is_a_404(host):
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(host.url("missing", "c"))).status_code == 404


async def test_huge_streams_past_the_cap_without_a_length(host):
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", host.url("huge", "d")) as r,
    ):
        assert "content-length" not in r.headers
        size = 0
        async for chunk in r.aiter_bytes():
            size += len(chunk)
    assert size == 3 * MIB


async def test_huge_video_declares_its_length(host):
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", host.url("huge_video", "e")) as r,
    ):
        assert int(r.headers["content-length"]) == 5 * MIB


@pytest.mark.parametrize("kind", ["hang", "stall"])
async def test_hang_and_stall_never_finish(host, kind):
    timeout = httpx.Timeout(5, read=0.5)
    async with httpx.AsyncClient(timeout=timeout) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(host.url(kind, "f"))


def test_media_counts_compare_rows_with_the_url_kinds():
    load = Load(
        acked={"m1", "m2", "m3", "m4", "m5"},
        media={"m1": "ok", "m2": "missing", "m3": "hang", "m4": "huge", "m5": "ok", "m6": "ok"},
        media_sent={"m1": 100.0},
    )
    rows = [
        {"msg_id": "m1", "status": "stored", "error": None, "at": 103.4},
        {"msg_id": "m2", "status": "rejected", "error": "not_found", "at": 0},
        {"msg_id": "m3", "status": "failed", "error": "timeout", "at": 0},
        {"msg_id": "m4", "status": "failed", "error": "timeout", "at": 0},  # should be too_large
    ]
    counts = media_counts(load, rows)
    assert counts["media"] == 5  # m6 was never accepted by ingest
    assert counts["media_as_expected"] == 3
    assert counts["media_wrong"] == 1
    assert counts["media_missing"] == 1  # m5
    assert counts["media_stored_lag_max_s"] == 3
