"""Citizens' media like Zalo's CDN: photos, clips and files sent by the simulated phone are
served by the sandbox behind signed, expiring links; generated samples are realistic."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from PIL import ExifTags, Image

from ketnoi_sandbox.citizen import sign
from ketnoi_sandbox.media import (
    DA_LAT,
    MediaStore,
    MediaTooLargeError,
    sample_jpeg,
    sample_mp4,
    sample_pdf,
    sniff_content_type,
    thumbnail_jpeg,
)

from .conftest import APP_ID, NOON, OA, OA_SECRET, PDF, PNG, USER, Harness, MakeHarness

HOUR = 3600.0


def gps(data: bytes) -> tuple[float, float, dict[int, Any]]:
    """(latitude, longitude, GPS IFD) from a JPEG's EXIF."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
    ifd = dict(exif.get_ifd(ExifTags.IFD.GPSInfo))

    def decimal(dms: Any, ref: str, negative: str) -> float:
        value = float(dms[0]) + float(dms[1]) / 60 + float(dms[2]) / 3600
        return -value if ref == negative else value

    lat = decimal(ifd[ExifTags.GPS.GPSLatitude], ifd[ExifTags.GPS.GPSLatitudeRef], "S")
    lon = decimal(ifd[ExifTags.GPS.GPSLongitude], ifd[ExifTags.GPS.GPSLongitudeRef], "W")
    return lat, lon, ifd


async def send(sb: Harness, files: dict[str, Any] | None = None, **action: Any) -> dict[str, Any]:
    fields = {"oa_id": OA, "user_id": USER, **action}
    if files is None:
        r = await sb.client.post("/sandbox/citizen/send", json=fields)
    else:
        data = {k: str(v) for k, v in fields.items()}
        r = await sb.client.post("/sandbox/citizen/send", data=data, files=files)
    assert r.status_code == 200, r.text
    return r.json()


def delivered(sb: Harness) -> dict[str, Any]:
    """The last webhook, after checking its signature as ingest does."""
    request = sb.webhooks[-1]
    body = json.loads(request.content)
    expected = sign(
        app_id=APP_ID, body=request.content, timestamp=body["timestamp"], secret=OA_SECRET
    )
    assert request.headers["X-ZEvent-Signature"] == expected
    return body


def path_of(url: str) -> str:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "sandbox"
    return f"{parts.path}?{parts.query}"


# ------------------------------------------------------------------------- samples


def test_sample_jpeg_carries_camera_time_and_gps_exif():
    data = sample_jpeg(-33.8568, 151.2153, taken_at=NOON, seed=1)
    assert data.startswith(b"\xff\xd8\xff")
    lat, lon, ifd = gps(data)
    assert lat == pytest.approx(-33.8568, abs=1e-5)
    assert lon == pytest.approx(151.2153, abs=1e-5)
    assert ifd[ExifTags.GPS.GPSMapDatum] == "WGS-84"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.size == (1280, 960)
        exif = image.getexif()
        assert exif[ExifTags.Base.Make] == "samsung"
        when = exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal]
        assert when == "2026:01:02 05:00:00"  # UTC, with OffsetTimeOriginal beside it
    default_lat, default_lon, _ = gps(sample_jpeg(seed=2))
    assert (default_lat, default_lon) == pytest.approx(DA_LAT, abs=1e-5)


def test_thumbnails_are_small_jpegs_without_metadata():
    thumb = thumbnail_jpeg(sample_jpeg(seed=3))
    assert thumb is not None
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and max(image.size) <= 320
        assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert thumbnail_jpeg(PDF) is None


def test_samples_and_sniffing_use_real_magic_bytes():
    mp4, pdf = sample_mp4(), sample_pdf()
    assert mp4[4:8] == b"ftyp"
    assert pdf.startswith(b"%PDF-")
    assert sniff_content_type(mp4) == "video/mp4"
    assert sniff_content_type(pdf, "application/octet-stream") == "application/pdf"
    assert sniff_content_type(sample_jpeg(size=(64, 48)), "text/plain") == "image/jpeg"
    assert sniff_content_type(b"hello", None, "notes.txt") == "text/plain"
    assert sniff_content_type(b"hello", "application/msword", "a.doc") == "application/msword"
    assert sniff_content_type(b"\x00\x01") == "application/octet-stream"


def test_the_store_caps_its_bytes_and_single_items():
    now = [NOON]
    store = MediaStore(max_bytes=100, item_max_bytes=60, url_lifetime_s=10, clock=lambda: now[0])
    first = store.put(b"a" * 50, "image/jpeg")
    second = store.put(b"b" * 50, "image/jpeg")
    third = store.put(b"c" * 10, "image/jpeg")
    assert store.get(first.id) is None  # oldest dropped
    assert store.get(second.id) is not None and store.get(third.id) is not None
    assert store.size == 60
    with pytest.raises(MediaTooLargeError):
        store.put(b"d" * 61, "image/jpeg")
    query = parse_qs(urlsplit(store.url("http://x/", third.id)).query)
    assert store.link_ok(third.id, query["exp"][0], query["sig"][0])
    now[0] += 10
    assert not store.link_ok(third.id, query["exp"][0], query["sig"][0])


# ------------------------------------------------------------------------- links


async def test_a_photo_upload_becomes_a_webhook_link_serving_its_bytes(make_sandbox: MakeHarness):
    photo = sample_jpeg(11.95, 108.44, seed=4)
    async with make_sandbox(phone=True) as sb:
        answer = await send(
            sb, kind="image", text="ảnh hiện trường", files={"file": ("a.jpg", photo, "image/jpeg")}
        )
        assert answer["event_name"] == "user_send_image" and answer["webhook_status"] == 200
        body = delivered(sb)
        assert body["event_name"] == "user_send_image"
        assert body["message"]["text"] == "ảnh hiện trường"
        [attachment] = body["message"]["attachments"]
        assert attachment["type"] == "image"
        assert answer["attachments"] == [attachment]
        url, thumbnail = attachment["payload"]["url"], attachment["payload"]["thumbnail"]
        assert urlsplit(url).path.startswith("/media/")
        assert set(parse_qs(urlsplit(url).query)) == {"exp", "sig"}
        assert int(parse_qs(urlsplit(url).query)["exp"][0]) == int(NOON) + 6 * 3600

        served = await sb.client.get(path_of(url))
        assert served.status_code == 200
        assert served.content == photo  # as sent: EXIF and all
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["etag"] == f'"{hashlib.md5(photo).hexdigest()}"'
        assert gps(served.content)[:2] == pytest.approx((11.95, 108.44), abs=1e-5)

        thumb = await sb.client.get(path_of(thumbnail))
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert thumb.content != photo and thumb.content.startswith(b"\xff\xd8\xff")

        head = await sb.client.head(path_of(url))
        assert head.status_code == 200 and head.headers["content-length"] == str(len(photo))

        recorded = await sb.sent(user=USER, direction="user")
        assert recorded[-1]["kind"] == "image"
        assert recorded[-1]["attachments"][0]["url"] == url


async def test_links_expire_and_refuse_tampering_with_403(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True, media_url_lifetime_s=3600) as sb:
        await send(sb, kind="image", files={"file": ("p.png", PNG, "image/png")})
        url = delivered(sb)["message"]["attachments"][0]["payload"]["url"]
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}

        def variant(**changes: str) -> str:
            return f"{parts.path}?{urlencode({**query, **changes})}"

        ok = await sb.client.get(path_of(url))
        assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
        assert ok.content == PNG
        later = str(int(query["exp"]) + 86_400)
        other_id = parts.path.replace("/media/", "/media/x")
        for tampered in (
            variant(exp=later),
            variant(sig="0" * 64),
            variant(sig=query["sig"][:-1]),
            variant(exp="soon"),
            f"{parts.path}?exp={query['exp']}",
            parts.path,
            f"{other_id}?{parts.query}",
        ):
            refused = await sb.client.get(tampered)
            assert refused.status_code == 403, tampered
            assert "403 Forbidden" in refused.text

        sb.clock.advance(3600 - 1)
        assert (await sb.client.get(path_of(url))).status_code == 200
        sb.clock.advance(1)
        expired = await sb.client.get(path_of(url))
        assert expired.status_code == 403 and "403 Forbidden" in expired.text


async def test_a_dropped_item_is_404_and_a_reset_voids_links(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True, media_max_bytes=200_000) as sb:
        await send(sb, kind="file", files={"file": ("a.pdf", PDF + bytes(150_000), "x/y")})
        first = delivered(sb)["message"]["attachments"][0]["payload"]["url"]
        await send(sb, kind="file", files={"file": ("b.pdf", PDF + bytes(150_000), "x/y")})
        second = delivered(sb)["message"]["attachments"][0]["payload"]["url"]
        gone = await sb.client.get(path_of(first))
        assert gone.status_code == 404 and "404 Not Found" in gone.text
        assert (await sb.client.get(path_of(second))).status_code == 200
        await sb.client.post("/sandbox/reset")
        assert (await sb.client.get(path_of(second))).status_code == 403


async def test_the_sample_photo_is_taken_where_the_citizen_says(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True, public_url="https://sandbox.example/zalo") as sb:
        answer = await send(sb, kind="image", latitude=11.9429, longitude=108.4373)
        url = answer["attachments"][0]["payload"]["url"]
        assert url.startswith("https://sandbox.example/zalo/media/")
        served = await sb.client.get(url.removeprefix("https://sandbox.example/zalo"))
        assert served.headers["content-type"] == "image/jpeg"
        lat, lon, _ = gps(served.content)
        assert (lat, lon) == pytest.approx((11.9429, 108.4373), abs=1e-5)


async def test_files_and_videos_in_zalo_shapes(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True) as sb:
        doc = PDF + b"bien ban"
        await send(sb, kind="file", files={"file": ("biên_bản.pdf", doc, "application/pdf")})
        body = delivered(sb)
        assert body["event_name"] == "user_send_file" and "text" not in body["message"]
        payload = body["message"]["attachments"][0]["payload"]
        assert payload["name"] == "biên_bản.pdf" and payload["type"] == "pdf"
        assert payload["size"] == str(len(doc))
        assert payload["checksum"] == hashlib.md5(doc).hexdigest()
        served = await sb.client.get(path_of(payload["url"]))
        assert served.content == doc and served.headers["content-type"] == "application/pdf"

        await send(sb, kind="file")  # a generated PDF
        sample = delivered(sb)["message"]["attachments"][0]["payload"]
        assert sample["name"].endswith(".pdf")
        assert (await sb.client.get(path_of(sample["url"]))).content.startswith(b"%PDF-")

        await send(sb, kind="video", text="clip")
        body = delivered(sb)
        assert body["event_name"] == "user_send_video"
        video = body["message"]["attachments"][0]
        assert video["type"] == "video" and video["payload"]["description"] == "clip"
        clip = await sb.client.get(path_of(video["payload"]["url"]))
        assert clip.headers["content-type"] == "video/mp4" and clip.content[4:8] == b"ftyp"
        poster = await sb.client.get(path_of(video["payload"]["thumbnail"]))
        assert poster.headers["content-type"] == "image/jpeg"

        gif = b"GIF89a" + bytes(20)
        answer = await send(sb, kind="image", files={"file": ("a.gif", gif, "image/gif")})
        assert answer["event_name"] == "user_send_gif"
        assert delivered(sb)["message"]["attachments"][0]["type"] == "gif"


async def test_citizen_sends_are_checked(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True, media_item_max_bytes=1000) as sb:
        url = "/sandbox/citizen/send"
        base = {"oa_id": OA, "user_id": USER}
        too_big = await sb.client.post(
            url, data={**base, "kind": "file"}, files={"file": ("a.pdf", PDF + bytes(1000), "x")}
        )
        assert too_big.status_code == 413
        not_a_picture = await sb.client.post(
            url, data={**base, "kind": "image"}, files={"file": ("a.pdf", PDF, "image/jpeg")}
        )
        assert not_a_picture.status_code == 422
        text_with_file = await sb.client.post(
            url, data={**base, "kind": "text"}, files={"file": ("a.png", PNG, "image/png")}
        )
        assert text_with_file.status_code == 422
        wrong_part = await sb.client.post(
            url, data={**base, "kind": "image"}, files={"photo": ("a.png", PNG, "image/png")}
        )
        assert wrong_part.status_code == 422
        no_place = await sb.client.post(url, json={**base, "kind": "location", "latitude": 1})
        assert no_place.status_code == 422
        unknown_field = await sb.client.post(url, json={**base, "colour": "red"})
        assert unknown_field.status_code == 422
        assert (await sb.client.post(url, content=b"{")).status_code == 422
        assert sb.webhooks == []
