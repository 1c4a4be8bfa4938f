"""Fixtures for the media worker: a tiny local HTTP server playing Zalo's CDN (real sockets,
real streaming, real stalls), test images with metadata, and Zalo events made by ingest's own
normaliser from the shared fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from PIL import Image, ImageCms
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ketnoi_ingest.normalize import normalize, read_envelope
from ketnoi_shared.contracts import ZaloEvent
from ketnoi_shared.identity import IdentityProtector

OA = "4123456789012345678"
TOKEN = "s1gN4tur3T0k3n"  # must never reach a log line
GPS_IFD = 0x8825
ORIENTATION = 0x0112
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description GPSLatitude="11,56.574N"/></x:xmpmeta>'


def jpeg_with_gps() -> bytes:
    """A 64×32 photo, EXIF orientation 6 (shown 32×64), GPS position, camera, ICC, XMP, comment."""
    img = Image.new("RGB", (64, 32), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, 16, 32))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "Apple"
    exif[0x0110] = "iPhone 15"
    exif[GPS_IFD] = {1: "N", 2: (11.0, 56.0, 34.44), 3: "E", 4: (108.0, 26.0, 14.28)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, icc_profile=icc, comment=b"Nguyen Van A", xmp=XMP)
    return out.getvalue()


def png_with_alpha() -> bytes:
    img = Image.new("RGBA", (20, 10), (0, 255, 0, 128))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("P", (10, 10), i) for i in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=b"who", loop=0)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'
EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00" + b"\x00" * 200
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 200


@dataclass
class Cdn:
    """What the fake CDN served: hits per path and bytes streamed per path."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    streamed: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"{self.base}{path}?exp=1767225660&sig={TOKEN}"


#: Paths whose name starts with one of these answer like a failing CDN.
_FIXED = {"expired": (403, b"link expired"), "missing": (404, b""), "broken": (503, b"oops")}


def _cdn_app(cdn: Cdn) -> Starlette:
    async def endless(path: str) -> AsyncIterator[bytes]:
        """No Content-Length: the cap is found by counting. 64 MiB if read to the end."""
        for _ in range(64):
            cdn.streamed[path] += 1 << 20
            yield b"\x00\x00\x00\x18ftypmp42" + b"\x00" * ((1 << 20) - 12)

    async def media(request: Request) -> Response:
        path = request.url.path
        cdn.hits[path] += 1
        name = path.rsplit("/", 1)[-1]
        prefix = re.match(r"[a-z]*", name)
        behaviour = prefix.group(0) if prefix else ""
        if behaviour in _FIXED:
            status, body = _FIXED[behaviour]
            return Response(body, status_code=status)
        if behaviour == "hang":
            await asyncio.sleep(1)
            return Response(b"late")
        if behaviour == "forever":  # a host that never answers
            await asyncio.sleep(3600)
        if behaviour == "slow":  # answers the file, a second late
            await asyncio.sleep(1)
        if behaviour == "endless":
            return StreamingResponse(endless(path), media_type="video/mp4")
        if behaviour == "huge":  # declares its size up front
            return Response(b"\x00" * (3 << 20), media_type="video/mp4")
        body = cdn.files.get(name)
        return Response(body or b"", status_code=200 if body else 404)

    return Starlette(routes=[Route("/media/{name:path}", media)])


@pytest.fixture(scope="session")
async def cdn_server() -> AsyncIterator[Cdn]:
    cdn = Cdn(base="")
    config = uvicorn.Config(
        _cdn_app(cdn),
        host="127.0.0.1",
        port=0,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    cdn.base = f"http://127.0.0.1:{port}/media/"
    yield cdn
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


@pytest.fixture
def cdn(cdn_server: Cdn) -> Cdn:
    cdn_server.hits.clear()
    cdn_server.streamed.clear()
    return cdn_server


class Events:
    """Zalo events as ingest publishes them, from the shared webhook fixtures."""

    def __init__(self, fixtures_dir: Path, protector: IdentityProtector) -> None:
        self.dir = fixtures_dir / "webhook"
        self.protector = protector
        self.counter = 0

    def message(
        self, attachments: list[dict[str, Any]], *, user: str = "8123456789012345678"
    ) -> ZaloEvent:
        body = json.loads((self.dir / "user_send_image.json").read_text())
        self.counter += 1
        body["sender"]["id"] = user
        body["message"]["msg_id"] = f"media{self.counter:06d}{id(self) % 10000:04d}"
        body["message"]["attachments"] = attachments
        body["timestamp"] = str(1767225660456 + self.counter)
        event = normalize(body, read_envelope(body), oa_id=OA, protect=self.protector)
        assert event is not None
        return event


@pytest.fixture
def events(fixtures_dir: Path, protector: IdentityProtector) -> Events:
    return Events(fixtures_dir, protector)


def attachment(kind: str, url: str, **payload: Any) -> dict[str, Any]:
    return {"type": kind, "payload": {"url": url, **payload}}
