"""Baselines measured in the same run as ingest:

* ``ceiling``: an HTTP handler that only parses the JSON body (what the web stack costs);
* ``minimal``: parse, then produce with acks=all to the same broker and answer (the least a
  durable webhook receiver must do).

Same stack as ingest (a Starlette route in a FastAPI app on uvicorn with uvloop/httptools,
the same GC settings), one process each.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from starlette.routing import Route

from ketnoi_shared.service import tune_gc


def ceiling() -> FastAPI:
    app = FastAPI()

    async def webhook(request: Request) -> Response:
        json.loads(await request.body())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.router.routes.insert(0, Route("/zalo/webhook", webhook, methods=["POST"]))
    return app


def minimal(bootstrap: str) -> FastAPI:
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

    app = FastAPI(lifespan=lifespan)

    async def webhook(request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        await state["p"].send_and_wait("bench.minimal", raw, key=str(body["sender"]["id"]).encode())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.router.routes.insert(0, Route("/zalo/webhook", webhook, methods=["POST"]))
    return app


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    app = ceiling() if kind == "ceiling" else minimal(sys.argv[3])
    tune_gc()  # the same process-level GC settings as every Ketnoi service
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
