"""Operator and test tools that act like Zalo: sign a body, post a webhook with Zalo's retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx

from .signature import compute_signature

__all__ = ["ZALO_RETRY_SCHEDULE_S", "Delivery", "send_webhook", "sign_body"]

#: Zalo re-sends a failed delivery after these delays (../shared/zalo/README.md §2.3).
ZALO_RETRY_SCHEDULE_S: Final = (30.0, 300.0, 900.0, 1800.0, 3600.0)


def sign_body(raw: bytes, *, secret: str) -> str:
    """The X-ZEvent-Signature value for ``raw``, reading app_id and timestamp from it."""
    body = json.loads(raw, parse_int=str, parse_float=str)
    return compute_signature(
        app_id=str(body["app_id"]), raw_body=raw, timestamp=str(body["timestamp"]), secret=secret
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    attempt: int
    status: int | None
    error: str | None


async def send_webhook(
    raw: bytes,
    *,
    url: str,
    secret: str,
    schedule: Sequence[float] = ZALO_RETRY_SCHEDULE_S,
    time_scale: float = 1.0,
    client: httpx.AsyncClient | None = None,
) -> list[Delivery]:
    """POST ``raw`` signed, as Zalo does: retry on non-200 or connection failure, with the
    ``num_retry`` header, following ``schedule`` (scaled by ``time_scale``)."""
    signature = sign_body(raw, secret=secret)
    own = client is None
    client = client or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    deliveries: list[Delivery] = []
    try:
        for attempt in range(len(schedule) + 1):
            headers = {"Content-Type": "application/json", "X-ZEvent-Signature": signature}
            if attempt:
                headers["num_retry"] = str(attempt)
            try:
                response = await client.post(url, content=raw, headers=headers)
                deliveries.append(Delivery(attempt, response.status_code, None))
                if response.status_code == 200:
                    break
            except httpx.HTTPError as exc:
                deliveries.append(Delivery(attempt, None, type(exc).__name__))
            if attempt < len(schedule):
                await asyncio.sleep(schedule[attempt] * time_scale)
    finally:
        if own:
            await client.aclose()
    return deliveries
