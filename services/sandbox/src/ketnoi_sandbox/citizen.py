"""The citizen side of the sandbox: a simulated phone that writes to an OA.

``POST /sandbox/citizen/send`` does what Zalo does when a citizen acts in the app: it records
the interaction (which opens the 7-day reply window, ../shared/zalo/README.md §3.4), builds the
webhook body in Zalo's shape (the fixtures), signs it with the OA secret key
(``sha256(app_id + body + timestamp + key)``, §2.1) and POSTs it to the webhook URL, retrying
a failed delivery on Zalo's schedule (30 s, 5 min, 15 min, 30 min, 1 h; scaled for demos and
tests) with the ``num_retry`` header. The OA's replies are read back from
``GET /sandbox/messages``.

The body is JSON (:class:`CitizenAction`) or ``multipart/form-data`` with the same fields plus
a ``file`` part: the photo, clip or document the citizen sends. Its bytes (or, without one, a
generated sample: a JPEG with GPS EXIF, an MP4, a PDF) are hosted by the sandbox behind signed,
expiring links (:mod:`ketnoi_sandbox.media`), which go into the webhook as Zalo's CDN links do.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from starlette.datastructures import UploadFile

from .media import (
    DA_LAT,
    MediaStore,
    MediaTooLargeError,
    sample_jpeg,
    sample_mp4,
    sample_pdf,
    sniff_content_type,
    thumbnail_jpeg,
)
from .settings import SandboxSettings

__all__ = ["CitizenAction", "WebhookTarget", "add_citizen_routes", "sign"]

ZALO_RETRY_SCHEDULE_S = (30.0, 300.0, 900.0, 1800.0, 3600.0)
#: Room for the form fields and part headers around the file of a multipart body.
_FORM_OVERHEAD_BYTES = 64 * 1024
SAMPLE_FILE_NAME = "anh_chup_tin_nhan.pdf"

MediaKind = Literal["image", "video", "file"]


def sign(*, app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    oa_secret: str
    retry_scale: float = 1.0
    #: Tests: deliver through this transport (e.g. ``httpx.MockTransport``) instead of the network.
    transport: httpx.AsyncBaseTransport | None = field(default=None, compare=False)


class CitizenAction(BaseModel):
    """What the citizen does. ``image``/``video``/``file`` carry the multipart ``file`` part
    or, without one, a generated sample (a photo taken at ``latitude, longitude`` when given,
    else in Đà Lạt); ``image_url`` sends an outside picture link as is instead. ``display_name``
    sets the citizen's Zalo name as the OA sees it (user/detail)."""

    model_config = ConfigDict(extra="forbid")

    oa_id: str
    user_id: str
    kind: Literal["text", "image", "video", "file", "location", "follow", "unfollow"] = "text"
    text: str | None = None
    image_url: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    display_name: str | None = None

    @model_validator(mode="after")
    def _location_has_coordinates(self) -> CitizenAction:
        if self.kind == "location" and (self.latitude is None or self.longitude is None):
            raise ValueError("a location needs latitude and longitude")
        return self


@dataclass(frozen=True, slots=True)
class SentFile:
    """The ``file`` part of a multipart send."""

    data: bytes
    filename: str | None
    content_type: str | None


def _event_name(action: CitizenAction, attachment: dict[str, Any] | None) -> str:
    if action.kind in ("follow", "unfollow"):
        return action.kind
    if attachment is not None and attachment["type"] == "gif":
        return "user_send_gif"
    return f"user_send_{action.kind}"


def _body(
    action: CitizenAction,
    *,
    app_id: str,
    timestamp: str,
    msg_id: str,
    attachment: dict[str, Any] | None,
) -> dict[str, Any]:
    by_app = "5" + action.user_id[1:]
    if action.kind in ("follow", "unfollow"):
        return {
            "oa_id": action.oa_id,
            "follower": {"id": action.user_id},
            "event_name": action.kind,
            "source": "oa_profile",
            "app_id": app_id,
            "timestamp": timestamp,
        }
    message: dict[str, Any] = {"msg_id": msg_id}
    if action.kind in ("text", "image", "location"):
        message["text"] = "" if action.kind == "location" else action.text or ""
    if attachment is not None:
        message["attachments"] = [attachment]
    return {
        "app_id": app_id,
        "sender": {"id": action.user_id},
        "user_id_by_app": by_app,
        "recipient": {"id": action.oa_id},
        "event_name": _event_name(action, attachment),
        "message": message,
        "timestamp": timestamp,
    }


async def _host(
    action: CitizenAction,
    sent: SentFile | None,
    *,
    store: MediaStore,
    base_url: str,
) -> dict[str, Any]:
    """The webhook attachment of a photo, clip or file (README §1.4), its bytes hosted."""
    if action.kind == "image" and sent is None and action.image_url:
        return {
            "type": "image",
            "payload": {"thumbnail": action.image_url, "url": action.image_url},
        }
    if sent is not None:
        data, filename = sent.data, sent.filename
        content_type = sniff_content_type(data, sent.content_type, filename)
    elif action.kind == "image":
        lat, lon = (
            (action.latitude, action.longitude)
            if action.latitude is not None and action.longitude is not None
            else DA_LAT
        )
        data = await asyncio.to_thread(sample_jpeg, lat, lon, taken_at=store.now())
        filename, content_type = None, "image/jpeg"
    elif action.kind == "video":
        data, filename, content_type = sample_mp4(), None, "video/mp4"
    else:
        data, filename, content_type = sample_pdf(), SAMPLE_FILE_NAME, "application/pdf"
    if action.kind == "image" and not content_type.startswith("image/"):
        raise HTTPException(422, f"not a picture ({content_type}); send it as a video or file")
    if action.kind == "video" and not content_type.startswith("video/"):
        raise HTTPException(422, f"not a video ({content_type}); send it as a file")
    try:
        item = store.put(data, content_type, filename)
    except MediaTooLargeError as exc:
        raise HTTPException(413, f"too large for the sandbox: {exc}") from None
    url = store.url(base_url, item.id)
    if action.kind == "file":
        name = filename or SAMPLE_FILE_NAME
        return {
            "type": "file",
            "payload": {
                "size": str(len(data)),
                "name": name,
                "checksum": item.md5,
                "type": name.rsplit(".", 1)[-1].lower() if "." in name else "",
                "url": url,
            },
        }
    if action.kind == "video":
        poster = await asyncio.to_thread(sample_jpeg, size=(640, 360))
        small = store.put(await asyncio.to_thread(thumbnail_jpeg, poster) or poster, "image/jpeg")
        thumb_url = store.url(base_url, small.id)
        return {
            "type": "video",
            "payload": {"thumbnail": thumb_url, "description": action.text or "", "url": url},
        }
    thumb = await asyncio.to_thread(thumbnail_jpeg, data)
    thumb_url = url if thumb is None else store.url(base_url, store.put(thumb, "image/jpeg").id)
    kind = "gif" if content_type == "image/gif" else "image"
    return {"type": kind, "payload": {"thumbnail": thumb_url, "url": url}}


def _location(action: CitizenAction) -> dict[str, Any]:
    """Coordinates as strings, like the fixture (README §1.4)."""
    coordinates = {"latitude": str(action.latitude), "longitude": str(action.longitude)}
    return {"type": "location", "payload": {"coordinates": coordinates}}


def _flat(attachment: dict[str, Any]) -> dict[str, Any]:
    """A webhook attachment as the sandbox records it: ``{"type", **payload}``."""
    payload = attachment["payload"]
    return {"type": attachment["type"], **payload.get("coordinates", payload)}


def _invalid(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [
            {**e, "loc": ("body", *e["loc"])}
            for e in exc.errors(include_url=False, include_context=False)
        ]
    )


async def _read_action(
    request: Request, item_max_bytes: int
) -> tuple[CitizenAction, SentFile | None]:
    """The action of a JSON or multipart body (with at most one ``file`` part)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        try:
            return CitizenAction.model_validate_json(await request.body()), None
        except ValidationError as exc:
            raise _invalid(exc) from None
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > item_max_bytes + _FORM_OVERHEAD_BYTES:
        raise HTTPException(413, f"too large for the sandbox: more than {item_max_bytes} bytes")
    async with request.form(max_files=1, max_fields=16) as form:
        fields: dict[str, str] = {}
        sent = None
        for name, value in form.multi_items():
            if isinstance(value, str):
                if value != "":
                    fields[name] = value
            elif name != "file":
                raise HTTPException(422, f"unexpected file part {name!r}; the file goes in 'file'")
            else:
                data = await value.read(item_max_bytes + 1)
                if len(data) > item_max_bytes:
                    raise HTTPException(413, f"too large for the sandbox: > {item_max_bytes} bytes")
                if data or value.filename:
                    sent = _sent_file(value, data)
    try:
        action = CitizenAction.model_validate(fields)
    except ValidationError as exc:
        raise _invalid(exc) from None
    if sent is not None and action.kind not in ("image", "video", "file"):
        raise HTTPException(422, "a file goes with kind image, video or file")
    return action, sent


def _sent_file(upload: UploadFile, data: bytes) -> SentFile:
    if not data:
        raise HTTPException(422, "the file is empty")
    return SentFile(data=data, filename=upload.filename or None, content_type=upload.content_type)


_SEND_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CitizenAction.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **CitizenAction.model_json_schema()["properties"],
                        "file": {"type": "string", "format": "binary"},
                    },
                    "required": ["oa_id", "user_id"],
                }
            },
        },
    }
}


def add_citizen_routes(
    app: FastAPI,
    *,
    settings: SandboxSettings,
    media: Callable[[], MediaStore],
    target: WebhookTarget,
    record: Callable[[CitizenAction, str, list[dict[str, Any]]], None],
) -> None:
    """Mount the simulated phone on ``app``. ``record(action, msg_id, attachments)`` records
    the interaction in the sandbox's state; ``media()`` is the current media store."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0), transport=target.transport)
    pending: set[asyncio.Task[None]] = set()

    async def post(raw: bytes, signature: str, attempt: int) -> int | None:
        headers = {"Content-Type": "application/json", "X-ZEvent-Signature": signature}
        if attempt:
            headers["num_retry"] = str(attempt)
        try:
            return (await http.post(target.url, content=raw, headers=headers)).status_code
        except httpx.HTTPError:
            return None

    async def retry_later(raw: bytes, signature: str) -> None:
        for attempt, delay in enumerate(ZALO_RETRY_SCHEDULE_S, start=1):
            await asyncio.sleep(delay * target.retry_scale)
            if await post(raw, signature, attempt) == 200:
                return

    @app.post("/sandbox/citizen/send", tags=["sandbox citizen"], openapi_extra=_SEND_BODY_DOC)
    async def citizen_send(request: Request) -> dict[str, Any]:
        """A citizen acts in Zalo: media hosted, interaction recorded, webhook signed and
        delivered. JSON or multipart (same fields, plus the ``file`` part)."""
        store = media()
        action, sent = await _read_action(request, store.item_max_bytes)
        attachment = None
        if action.kind in ("image", "video", "file"):
            base_url = settings.public_url or str(request.base_url)
            attachment = await _host(action, sent, store=store, base_url=base_url)
        elif action.kind == "location":
            attachment = _location(action)
        timestamp = str(int(time.time() * 1000))
        msg_id = secrets.token_hex(10)
        record(action, msg_id, [] if attachment is None else [_flat(attachment)])
        body = _body(
            action,
            app_id=settings.app_id,
            timestamp=timestamp,
            msg_id=msg_id,
            attachment=attachment,
        )
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        signature = sign(
            app_id=settings.app_id, body=raw, timestamp=timestamp, secret=target.oa_secret
        )
        status = await post(raw, signature, 0)
        if status != 200:
            task = asyncio.create_task(retry_later(raw, signature))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return {
            "msg_id": msg_id,
            "event_name": body["event_name"],
            "webhook_status": status,
            "attachments": body.get("message", {}).get("attachments", []),
        }
