"""Baselines measured in the same run as ingest:

* ``ceiling``: an HTTP handler that only parses the JSON body (what the web stack costs);
* ``minimal``: parse, then produce with acks=all to the same broker and answer (the least a
  durable webhook receiver must do);
* ``floor``: the least that the ingest issue asks of every request, written inline: parse with
  ids kept as text, verify the signature, pseudonymise and seal the citizen's ids, encode the
  ``zalo.events.v1`` value by hand with its envelope headers, produce it with acks=all exactly
  as the minimal handler does. No edge dedup, no journal, no spool, no validation by the
  contract's pydantic model, no metrics, no logging: a lower bound for ingest on this stack,
  for the bench's event type (``user_send_text``) only.

Same stack as ingest (a Starlette route in a FastAPI app on uvicorn with uvloop/httptools,
the same GC settings), one process each.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from starlette.routing import Route

from ketnoi_ingest.signature import compute_signature, signature_matches
from ketnoi_shared.contracts import ZALO_EVENTS
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import H_EVENT_ID, H_MODEL, H_OCCURRED, H_PRODUCED, H_SCHEMA
from ketnoi_shared.service import tune_gc

_DECODER = json.JSONDecoder(parse_int=str, parse_float=str)
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def ceiling() -> FastAPI:
    app = FastAPI()

    async def webhook(request: Request) -> Response:
        json.loads(await request.body())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.router.routes.insert(0, Route("/zalo/webhook", webhook, methods=["POST"]))
    return app


def _producing_app(bootstrap: str) -> tuple[FastAPI, dict[str, AIOKafkaProducer]]:
    """An app whose lifespan runs a plain acks=all producer, kept in the returned dict."""
    state: dict[str, AIOKafkaProducer] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=False
        )
        await producer.start()
        state["p"] = producer
        yield
        await producer.stop()

    return FastAPI(lifespan=lifespan), state


def minimal(bootstrap: str) -> FastAPI:
    app, state = _producing_app(bootstrap)

    async def webhook(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        await state["p"].send_and_wait("bench.minimal", raw, key=str(body["sender"]["id"]).encode())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.router.routes.insert(0, Route("/zalo/webhook", webhook, methods=["POST"]))
    return app


def floor_record(
    raw: bytes, signature: str, *, secret: str, protector: IdentityProtector
) -> tuple[bytes, bytes, list[tuple[str, bytes]]] | None:
    """(key, value, headers) of the ``zalo.events.v1`` record for a signed ``user_send_text``
    body, or None when the signature does not match."""
    body = _DECODER.decode(raw.decode())
    app_id, ts, name = body["app_id"], body["timestamp"], body["event_name"]
    expected = compute_signature(app_id=app_id, raw_body=raw, timestamp=ts, secret=secret)
    if not signature_matches(signature, expected):
        return None
    user_id, message = body["sender"]["id"], body["message"]
    by_app = body.get("user_id_by_app")
    pseudonym = protector.pseudonym(user_id)
    event_id = f"{name}:{message['msg_id']}"
    occurred = datetime.fromtimestamp(int(ts) / 1000, UTC).isoformat()
    produced = datetime.now(UTC).isoformat()
    value = {
        "event_id": event_id,
        "schema_version": 1,
        "occurred_at": occurred,
        "produced_at": produced,
        "correlation_id": event_id,
        "event_name": name,
        "original_event_name": None,
        "kind": "message",
        "app_id": app_id,
        "oa_id": body["recipient"]["id"],
        "citizen": {
            "pseudonym": pseudonym,
            "sealed_user_id": protector.seal(user_id, purpose="zalo_user_id"),
            "sealed_user_id_by_app": protector.seal(by_app, purpose="zalo_user_id_by_app")
            if by_app
            else None,
            "anonymous": False,
            "sealed_conversation_id": None,
        },
        "message": {
            "msg_id": message["msg_id"],
            "text": unicodedata.normalize("NFC", message["text"]),
            "attachments": [],
            "quote_msg_id": None,
            "msg_ids": [],
            "react_icon": None,
        },
        "submitted_info": None,
        "follow_source": None,
        "admin_id": None,
        "zalo_timestamp_ms": int(ts),
        "num_retry": 0,
        "source": "webhook",
    }
    headers = [
        (H_EVENT_ID, event_id.encode()),
        (H_SCHEMA, b"1"),
        (H_OCCURRED, occurred.encode()),
        (H_PRODUCED, produced.encode()),
        (H_MODEL, b"ZaloEvent"),
        ("correlation_id", event_id.encode()),
    ]
    return pseudonym.encode(), _ENCODE(value).encode(), headers


def floor(bootstrap: str) -> FastAPI:
    secret = os.environ["KETNOI_ZALO_OA_SECRET"]
    protector = IdentityProtector.from_keys(
        pseudonym_key=os.environ["KETNOI_PSEUDONYM_KEY"], seal_key=os.environ["KETNOI_SEAL_KEY"]
    )
    app, state = _producing_app(bootstrap)

    async def webhook(request: Request) -> Response:
        raw = await request.body()
        signature = next(
            (
                v.decode("latin-1")
                for k, v in request.scope["headers"]
                if k == b"x-zevent-signature"
            ),
            "",
        )
        record = floor_record(raw, signature, secret=secret, protector=protector)
        if record is None:
            return Response(b'{"error":"bad_signature"}', 401, media_type="application/json")
        key, value, headers = record
        await state["p"].send_and_wait(ZALO_EVENTS.name, value, key=key, headers=headers)
        return Response(b'{"status":"accepted"}', media_type="application/json")

    app.router.routes.insert(0, Route("/zalo/webhook", webhook, methods=["POST"]))
    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    apps = {"ceiling": ceiling, "minimal": minimal, "floor": floor}
    app = apps[kind](*sys.argv[3:])
    tune_gc()  # the same process-level GC settings as every Ketnoi service
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
