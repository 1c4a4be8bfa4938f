"""The citizen side of the sandbox: a simulated phone that writes to an OA.

``POST /sandbox/citizen/send`` does what Zalo does when a citizen acts in the app: it records
the interaction (which opens the 7-day reply window, ../shared/zalo/README.md §3.4), builds the
webhook body in Zalo's shape (the fixtures), signs it with the OA secret key
(``sha256(app_id + body + timestamp + key)``, §2.1) and POSTs it to the webhook URL, retrying
a failed delivery on Zalo's schedule (30 s, 5 min, 15 min, 30 min, 1 h; scaled for demos and
tests) with the ``num_retry`` header. The OA's replies are read back from
``GET /sandbox/messages``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

__all__ = ["WebhookTarget", "add_citizen_routes", "sign"]

ZALO_RETRY_SCHEDULE_S = (30.0, 300.0, 900.0, 1800.0, 3600.0)


def sign(*, app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    oa_secret: str
    retry_scale: float = 1.0


class CitizenAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    oa_id: str
    user_id: str
    kind: Literal["text", "image", "location", "follow", "unfollow"] = "text"
    text: str | None = None
    image_url: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def _body(action: CitizenAction, *, app_id: str, timestamp: str, msg_id: str) -> dict[str, Any]:
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
    if action.kind == "text":
        message["text"] = action.text or ""
    elif action.kind == "image":
        url = action.image_url or "https://media.zalo-cdn.example/sandbox/photo.jpg"
        message["text"] = action.text or ""
        message["attachments"] = [{"type": "image", "payload": {"thumbnail": url, "url": url}}]
    else:
        message["text"] = ""
        message["attachments"] = [
            {
                "type": "location",
                "payload": {
                    "coordinates": {
                        "latitude": str(action.latitude),
                        "longitude": str(action.longitude),
                    }
                },
            }
        ]
    return {
        "app_id": app_id,
        "sender": {"id": action.user_id},
        "user_id_by_app": by_app,
        "recipient": {"id": action.oa_id},
        "event_name": f"user_send_{action.kind}",
        "message": message,
        "timestamp": timestamp,
    }


def add_citizen_routes(
    app: FastAPI, *, app_id: str, target: WebhookTarget, interaction: Any
) -> None:
    """Mount the simulated phone on ``app`` (``interaction(action, msg_id)`` records the
    interaction in the sandbox's state)."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
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

    @app.post("/sandbox/citizen/send", tags=["sandbox citizen"])
    async def citizen_send(action: CitizenAction) -> dict[str, Any]:
        """A citizen acts in Zalo: interaction recorded, webhook signed and delivered."""
        timestamp = str(int(time.time() * 1000))
        msg_id = secrets.token_hex(10)
        interaction(action, msg_id)
        raw = json.dumps(
            _body(action, app_id=app_id, timestamp=timestamp, msg_id=msg_id),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        signature = sign(app_id=app_id, body=raw, timestamp=timestamp, secret=target.oa_secret)
        status = await post(raw, signature, 0)
        if status != 200:
            task = asyncio.create_task(retry_later(raw, signature))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return {
            "msg_id": msg_id,
            "event_name": f"user_send_{action.kind}"
            if action.kind not in ("follow", "unfollow")
            else action.kind,
            "webhook_status": status,
        }
