"""Citizens' media as Zalo's CDN serves it: bytes in memory behind signed, expiring links.

When a citizen sends a photo, a clip or a file, the webhook carries ``url`` (and for pictures
and clips a ``thumbnail``) on Zalo's CDN (../shared/zalo/README.md §1.4). The sandbox hosts those
bytes itself: ``GET /media/<id>?exp=<unix seconds>&sig=<hex HMAC-SHA256 of "<id>:<exp>">``
answers the bytes with their Content-Type until ``exp``; an expired, unsigned or tampered link
gets 403 and an unknown (or evicted) one 404, as a CDN does, never a 500.

When a simulated citizen sends no bytes, realistic samples are generated: a JPEG photo with
EXIF (camera, time and **GPS tags**, so stripping them downstream can be tested), an MP4 header
with real magic bytes, and a one-page PDF.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import mimetypes
import random
import secrets
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse
from PIL import ExifTags, Image, ImageDraw, ImageFilter, ImageOps

__all__ = [
    "DA_LAT",
    "MediaItem",
    "MediaStore",
    "MediaTooLargeError",
    "add_media_routes",
    "sample_jpeg",
    "sample_mp4",
    "sample_pdf",
    "sniff_content_type",
    "thumbnail_jpeg",
]

#: Đà Lạt city centre (Lâm Đồng, the demo province): where sample photos are taken by default.
DA_LAT: Final = (11.9404, 108.4583)

_CDN_PAGE: Final = (
    "<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
    "<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class MediaTooLargeError(ValueError):
    """A single item over ``media_item_max_bytes``."""


@dataclass(frozen=True, slots=True)
class MediaItem:
    id: str
    data: bytes
    content_type: str
    filename: str | None
    created_at: float

    @property
    def md5(self) -> str:
        """Zalo's file ``checksum`` (README §1.4)."""
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


class MediaStore:
    """Bytes by id, at most ``max_bytes`` in all (oldest dropped first), and the link signer.

    The signing key is random per store: a sandbox reset (a new store) invalidates old links.
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        item_max_bytes: int,
        url_lifetime_s: int,
        clock: Callable[[], float],
    ) -> None:
        self.max_bytes = max_bytes
        self.item_max_bytes = min(item_max_bytes, max_bytes)
        self.url_lifetime_s = url_lifetime_s
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._items: OrderedDict[str, MediaItem] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def now(self) -> float:
        return self._clock()

    def put(self, data: bytes, content_type: str, filename: str | None = None) -> MediaItem:
        if len(data) > self.item_max_bytes:
            raise MediaTooLargeError(f"{len(data)} bytes > {self.item_max_bytes}")
        with self._lock:
            item = MediaItem(
                id=secrets.token_urlsafe(18),
                data=data,
                content_type=content_type,
                filename=filename,
                created_at=self._clock(),
            )
            self._items[item.id] = item
            self._size += len(data)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped.data)
            return item

    def get(self, media_id: str) -> MediaItem | None:
        with self._lock:
            return self._items.get(media_id)

    def signature(self, media_id: str, exp: int) -> str:
        return hmac.new(self._key, f"{media_id}:{exp}".encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, media_id: str) -> str:
        """A link to ``media_id`` valid for ``url_lifetime_s`` from now."""
        exp = int(self._clock()) + self.url_lifetime_s
        sig = self.signature(media_id, exp)
        return f"{base_url.rstrip('/')}/media/{media_id}?exp={exp}&sig={sig}"

    def link_ok(self, media_id: str, exp: str | None, sig: str | None) -> bool:
        """Signed for this id and expiry, and not expired."""
        if not exp or not sig or not exp.isdigit():
            return False
        if not hmac.compare_digest(sig.lower(), self.signature(media_id, int(exp))):
            return False
        return self._clock() < int(exp)


def add_media_routes(app: FastAPI, store: Callable[[], MediaStore]) -> None:
    """Mount ``GET /media/{id}`` (``store()`` is the current store: a reset replaces it)."""

    @app.api_route("/media/{media_id}", methods=["GET", "HEAD"], tags=["sandbox media (Zalo CDN)"])
    def media(media_id: str, exp: str | None = None, sig: str | None = None) -> Response:
        """A citizen's photo, clip or file, as Zalo's CDN serves it behind a webhook link."""
        current = store()
        if not current.link_ok(media_id, exp, sig):
            return HTMLResponse(_CDN_PAGE.format(status="403 Forbidden"), status_code=403)
        item = current.get(media_id)
        if item is None:
            return HTMLResponse(_CDN_PAGE.format(status="404 Not Found"), status_code=404)
        max_age = max(0, int(exp or 0) - int(current.now()))
        return Response(
            item.data,
            media_type=item.content_type,
            headers={
                "Cache-Control": f"private, max-age={max_age}",
                "ETag": f'"{item.md5}"',
                "Last-Modified": datetime.fromtimestamp(item.created_at, tz=UTC).strftime(
                    "%a, %d %b %Y %H:%M:%S GMT"
                ),
            },
        )


# ---------------------------------------------------------------------------------- content


def sniff_content_type(
    data: bytes, declared: str | None = None, filename: str | None = None
) -> str:
    """The media type of some bytes: from the content (Pillow for pictures, magic numbers for
    MP4 and PDF), else the declared type, else the file name's extension."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = Image.MIME.get(image.format or "")
    except (OSError, ValueError, Image.DecompressionBombError):
        found = None
    if found:
        return found
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:12] == b"qt  " else "video/mp4"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if declared and declared.split(";")[0].strip() not in {"", "application/octet-stream"}:
        return declared
    guessed, _ = mimetypes.guess_type(filename or "")
    return guessed or "application/octet-stream"


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 2)
    return float(degrees), float(minutes), seconds


def _scene(width: int, height: int, rng: random.Random) -> Image.Image:
    """A street at dusk, roughly: sky, hills, houses, a road, a motorbike's light; noisy like a
    phone camera's picture."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    top = (rng.randint(60, 120), rng.randint(90, 150), rng.randint(160, 220))
    bottom = (rng.randint(200, 250), rng.randint(150, 200), rng.randint(120, 170))
    horizon = int(height * rng.uniform(0.45, 0.6))
    for y in range(horizon):
        t = y / max(1, horizon - 1)
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    hills = [(0, horizon)]
    for x in range(0, width + 80, 80):
        hills.append((x, horizon - rng.randint(20, height // 6)))
    hills.append((width, horizon))
    draw.polygon(hills, fill=(40, rng.randint(70, 100), 50))
    draw.rectangle([0, horizon, width, height], fill=(70, 68, 64))
    x = 0
    while x < width:
        w = rng.randint(width // 12, width // 6)
        h = rng.randint(height // 8, height // 3)
        colour = (rng.randint(150, 240), rng.randint(120, 220), rng.randint(90, 200))
        draw.rectangle([x, horizon - h, x + w, horizon + 10], fill=colour)
        for wx in range(x + 8, x + w - 16, 28):
            draw.rectangle([wx, horizon - h + 12, wx + 12, horizon - h + 30], fill=(250, 230, 150))
        x += w + rng.randint(4, 24)
    road = [
        (width * 0.35, horizon + 10),
        (width * 0.65, horizon + 10),
        (width, height),
        (0, height),
    ]
    draw.polygon(road, fill=(45, 45, 48))
    for i in range(6):
        y = horizon + 20 + i * (height - horizon) // 6
        draw.rectangle(
            [width // 2 - 3 - i, y, width // 2 + 3 + i, y + 8 + i * 3], fill=(230, 230, 230)
        )
    bx, by = rng.randint(width // 4, width * 3 // 4), rng.randint(horizon + 40, height - 60)
    draw.ellipse([bx - 18, by - 18, bx + 18, by + 18], fill=(255, 250, 210))
    draw.rectangle([bx - 30, by + 14, bx + 30, by + 34], fill=(30, 30, 30))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    return Image.blend(image, noise, 0.08)


def sample_jpeg(
    latitude: float = DA_LAT[0],
    longitude: float = DA_LAT[1],
    *,
    taken_at: float | None = None,
    size: tuple[int, int] = (1280, 960),
    seed: int | None = None,
) -> bytes:
    """A phone-camera-like JPEG whose EXIF names the camera, the time and where it was taken
    (GPSLatitude/GPSLongitude with their refs, altitude, datum)."""
    rng = random.Random(seed)  # noqa: S311 (pictures, not secrets)
    image = _scene(1280, 960, rng)
    if image.size != size:
        image = image.resize(size)
    when = datetime.fromtimestamp(taken_at, tz=UTC) if taken_at is not None else datetime.now(UTC)
    stamp = when.strftime("%Y:%m:%d %H:%M:%S")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "samsung"
    exif[ExifTags.Base.Model] = "SM-A546E"
    exif[ExifTags.Base.Software] = "A546EXXU5CXK1"
    exif[ExifTags.Base.DateTime] = stamp
    exif[ExifTags.Base.Orientation] = 1
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = stamp
    details[ExifTags.Base.DateTimeDigitized] = stamp
    details[ExifTags.Base.OffsetTimeOriginal] = "+07:00"
    exif[ExifTags.Base.GPSInfo] = {
        ExifTags.GPS.GPSVersionID: b"\x02\x02\x00\x00",
        ExifTags.GPS.GPSLatitudeRef: "N" if latitude >= 0 else "S",
        ExifTags.GPS.GPSLatitude: _dms(latitude),
        ExifTags.GPS.GPSLongitudeRef: "E" if longitude >= 0 else "W",
        ExifTags.GPS.GPSLongitude: _dms(longitude),
        ExifTags.GPS.GPSAltitudeRef: b"\x00",
        ExifTags.GPS.GPSAltitude: 1496.0,
        ExifTags.GPS.GPSMapDatum: "WGS-84",
        ExifTags.GPS.GPSDateStamp: when.strftime("%Y:%m:%d"),
        ExifTags.GPS.GPSTimeStamp: (float(when.hour), float(when.minute), float(when.second)),
    }
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def thumbnail_jpeg(data: bytes, *, box: tuple[int, int] = (320, 320)) -> bytes | None:
    """A small JPEG of a picture, without metadata (like a CDN thumbnail); None if the bytes
    are not a picture Pillow reads."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            small = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    small.thumbnail(box)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=75)
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def sample_mp4(seed: int | None = None) -> bytes:
    """An MP4-shaped clip: real ``ftyp`` brand box (the magic bytes), a ``free`` box and an
    ``mdat`` of noise. Not playable; enough for type sniffing and downloads."""
    rng = random.Random(seed)  # noqa: S311 (test bytes)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    return ftyp + _box(b"free", b"") + _box(b"mdat", rng.randbytes(4096))


def sample_pdf(seed: int | None = None) -> bytes:
    """A real one-page PDF (a picture of a phone screen), written by Pillow."""
    rng = random.Random(seed)  # noqa: S311 (test bytes)
    page = Image.new("RGB", (600, 800), (245, 245, 245))
    draw = ImageDraw.Draw(page)
    draw.rectangle([0, 0, 600, 70], fill=(0, 104, 255))
    for i in range(8):
        y = 100 + i * 80
        left = i % 2 == 0
        x0, x1 = (30, rng.randint(250, 450)) if left else (rng.randint(150, 350), 570)
        draw.rounded_rectangle(
            [x0, y, x1, y + 56], radius=14, fill=(255, 255, 255) if left else (210, 230, 255)
        )
    out = io.BytesIO()
    page.save(out, "PDF", resolution=96.0)
    return out.getvalue()
