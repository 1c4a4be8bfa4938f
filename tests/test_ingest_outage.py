"""The broker goes away while webhooks arrive: every one is answered 200 in time, spooled in
PostgreSQL, and delivered exactly once when the broker is back."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from ketnoi_ingest.app import build_ingest, create_app
from ketnoi_shared.contracts import ZALO_EVENTS, ZaloEvent, all_topics
from ketnoi_shared.messaging import ensure_topics
from ketnoi_stack.embedded import TansuBroker, free_port

from .conftest import read_topic
from .test_ingest_webhook import compact, ingest_settings, signed

N = 200


def restart_on(port: int) -> TansuBroker:
    """A new, empty broker on the same port (the old socket may linger a moment)."""
    for attempt in range(3):
        try:
            return TansuBroker(port=port).start()
        except TimeoutError:
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


async def test_broker_down_spools_and_drains_exactly_once(
    database_url: str, keys: dict[str, str], fixtures_dir: Path, pool
):
    broker = TansuBroker(port=free_port()).start()
    await ensure_topics(broker.bootstrap, all_topics())
    settings = ingest_settings(broker.bootstrap, database_url, keys)
    svc = build_ingest(settings)
    app = create_app(settings, svc)

    await svc.start()
    base = json.loads((fixtures_dir / "webhook" / "user_send_text.json").read_text())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://i"
        ) as client:
            warm = compact(base)
            assert (await client.post("/zalo/webhook", content=warm, headers=signed(warm))).json()[
                "status"
            ] == "accepted"
            await asyncio.to_thread(broker.stop)  # the broker is gone (and its memory with it)

            async def deliver(i: int) -> tuple[int, float, str]:
                body = json.loads(json.dumps(base))
                body["message"]["msg_id"] = f"outage{i:05d}"
                body["sender"]["id"] = f"81234567890123{i:05d}"
                raw = compact(body)
                t0 = time.perf_counter()
                r = await client.post("/zalo/webhook", content=raw, headers=signed(raw))
                return r.status_code, time.perf_counter() - t0, r.json().get("status", "")

            sem = asyncio.Semaphore(20)

            async def bounded(i: int) -> tuple[int, float, str]:
                async with sem:
                    return await deliver(i)

            results = await asyncio.gather(*(bounded(i) for i in range(N)))
            assert [code for code, _, _ in results] == [200] * N
            assert max(latency for _, latency, _ in results) < 2.0
            assert {status for _, _, status in results} == {"spooled"}
            assert (
                await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == N
            )
            ready = (await client.get("/readyz")).json()
            assert ready["checks"] == {"broker": False, "spool": True}
            assert ready["status"] == "ready", "the spool still takes writes"

            # The broker comes back empty on the same port, its topics are created, and the
            # relay drains the spool. The relay is held back until the topics exist: a write
            # the embedded Tansu acknowledged while they were being created was then missing
            # from the topic (4 runs in 30 under CPU load) — a broker losing an acknowledged
            # write, which the reconciler covers in production, not what this test is about.
            assert svc.relay is not None
            await svc.relay.stop()
            broker = await asyncio.to_thread(restart_on, broker.port)
            await ensure_topics(broker.bootstrap, all_topics())
            await svc.relay.start()
            for _ in range(300):
                if (
                    await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                    == 0
                ):
                    break
                await asyncio.sleep(0.1)
            assert (
                len(await read_topic(broker.bootstrap, ZALO_EVENTS.name, until=N, timeout=30)) >= N
            )
            await asyncio.sleep(1.5)  # a late duplicate would have arrived by now
            # The broker restarted empty: the whole topic is what the spool delivered.
            records = await read_topic(broker.bootstrap, ZALO_EVENTS.name, timeout=10)
            ids = [ZaloEvent.model_validate_json(r.value).message.msg_id for r in records]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            assert len(ids) == N, f"every spooled event, none twice; duplicated: {dupes[:20]}"
            assert set(ids) == {f"outage{i:05d}" for i in range(N)}
            events = [ZaloEvent.model_validate_json(r.value) for r in records]
            assert {e.source for e in events} == {"spool"}
            # After the drain, new events go straight to Kafka again.
            for _ in range(40):
                if not svc.spooling:
                    break
                await asyncio.sleep(0.1)
            body = json.loads(json.dumps(base))
            body["message"]["msg_id"] = "after-outage"
            raw = compact(body)
            assert (await client.post("/zalo/webhook", content=raw, headers=signed(raw))).json()[
                "status"
            ] == "accepted"
    finally:
        await svc.stop()
        broker.stop()
