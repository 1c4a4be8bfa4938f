"""Notifier sends/s against the Zalo sandbox (a real HTTP server in its own process), next to
two baselines measured in the same run:

1. raw: bare httpx POSTs of the same message/cs request (what the sandbox itself can take);
2. client: the notifier's typed ZaloClient (NFC, splitting, error translation);
3. delivery: the whole per-request path — the at-most-once ledger in PostgreSQL, the
   interaction-window check, the shared rate limiter, the sealed token store, unsealing the
   recipient, the call, the ledger update.

Each pass sends the same number of messages with the same concurrency (the notifier's default
6 workers). PostgreSQL is the embedded one. The sandbox enforces Zalo's 4,000 calls a minute
per app, so the four passes together stay under it (700 messages each by default).

Usage: .venv/bin/python benchmarks/notifier_bench.py [--messages 700] [--concurrency 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from ketnoi_notifier.delivery import Delivery
from ketnoi_notifier.ratelimit import SharedRateLimiter
from ketnoi_notifier.tokens import TokenStore
from ketnoi_notifier.zalo import ZaloClient
from ketnoi_notifier.zalo.client import TokenPair
from ketnoi_shared.contracts import DeliveryStatus, NotifyKind, NotifyRecipient, NotifyRequest
from ketnoi_shared.db import apply_migrations
from ketnoi_shared.identity import IdentityProtector, generate_pseudonym_key, generate_seal_key
from ketnoi_stack.embedded import EmbeddedPostgres, free_port

OA = "4123456789012345678"
APP_ID = "1234567890123456789"
TEXT = (
    "Công an phường Xuân Hương - Đà Lạt đã tiếp nhận tin báo của bạn, mã tin báo: LD-7K2Q9. "
    "Thông tin và danh tính của bạn được giữ bí mật tuyệt đối."
)
USERS = [f"81{i:017d}" for i in range(200)]


async def timed(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await one(queue.get_nowait())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def run(sandbox: str, database_url: str, n: int, concurrency: int) -> list[tuple[str, float]]:
    protector = IdentityProtector.from_keys(
        pseudonym_key=generate_pseudonym_key(), seal_key=generate_seal_key("b1")
    )
    async with httpx.AsyncClient(base_url=sandbox, timeout=10) as admin:
        for user in USERS:
            await admin.post(
                "/sandbox/interactions", json={"oa_id": OA, "user_id": user, "kind": "message"}
            )
        pair = (await admin.post("/sandbox/tokens", json={"oa_id": OA})).json()
    token = pair["access_token"]
    results = []

    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=sandbox, timeout=10, limits=limits) as raw:

        async def raw_send(i: int) -> None:
            r = await raw.post(
                "/v3.0/oa/message/cs",
                headers={"access_token": token},
                json={"recipient": {"user_id": USERS[i % len(USERS)]}, "message": {"text": TEXT}},
            )
            assert r.json()["error"] == 0, r.text

        await timed(min(n, 200), concurrency, raw_send)  # warm-up, not counted
        results.append(("raw httpx POST (baseline)", await timed(n, concurrency, raw_send)))

    client = ZaloClient(openapi_url=sandbox, oauth_url=sandbox)

    async def client_send(i: int) -> None:
        await client.send_text(token, user_id=USERS[i % len(USERS)], text=TEXT)

    results.append(("notifier ZaloClient.send_text", await timed(n, concurrency, client_send)))

    pool = await asyncpg.create_pool(database_url, min_size=concurrency, max_size=concurrency + 4)
    tokens = TokenStore(
        pool=pool, client=client, protector=protector, app_id=APP_ID, app_secret="unused"
    )
    await tokens.save(OA, TokenPair(token, pair["refresh_token"], int(pair["expires_in"])))
    delivery = Delivery(
        pool=pool,
        client=client,
        tokens=tokens,
        protector=protector,
        limiter=SharedRateLimiter(pool, APP_ID, 1_000_000),
    )
    requests = [
        NotifyRequest(
            event_id=f"ack:{uuid.uuid4().hex}",
            occurred_at=datetime.now(UTC),
            correlation_id="bench",
            oa_id=OA,
            kind=NotifyKind.ACK,
            text=TEXT,
            recipient=NotifyRecipient(
                pseudonym=protector.pseudonym(USERS[i % len(USERS)]),
                sealed_user_id=protector.seal(USERS[i % len(USERS)], purpose="zalo_user_id"),
            ),
        )
        for i in range(n)
    ]

    async def deliver(i: int) -> None:
        status = await delivery.deliver(requests[i])
        assert status is DeliveryStatus.SENT, status

    results.append(("notifier Delivery.deliver (full path)", await timed(n, concurrency, deliver)))
    async with httpx.AsyncClient(base_url=sandbox, timeout=10, limits=limits) as raw:
        # The baseline again, last: how much the machine drifted during the run.
        results.append(("raw httpx POST (baseline, again)", await timed(n, concurrency, raw_send)))
    await client.aclose()
    await pool.close()
    return results


def main() -> None:
    from ketnoi_shared.logging import configure_logging  # noqa: PLC0415

    configure_logging("bench", level="WARNING", fmt="console")
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=700)
    parser.add_argument("--concurrency", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ketnoi-notifier-bench-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg").start()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")} | {
            "KETNOI_DATA_DIR": tmp,
            "KETNOI_HTTP_PORT": str(port),
            "KETNOI_LOG_LEVEL": "WARNING",
        }
        sandbox = subprocess.Popen(
            [sys.executable, "-m", "ketnoi_shared", "sandbox"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            apply_migrations(pg.url())
            for _ in range(100):
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            results = asyncio.run(run(url, pg.url(), args.messages, args.concurrency))
        finally:
            sandbox.terminate()
            sandbox.wait(10)
            pg.stop()
    base = results[0][1]
    print(
        f"\nNotifier against the sandbox ({os.cpu_count()} cores, sandbox in its own process, "
        f"embedded PostgreSQL), {args.messages} messages per pass, concurrency "
        f"{args.concurrency}:"
    )
    print(f"{'pass':<40} {'sends/s':>9} {'vs baseline':>12}")
    for name, rate in results:
        print(f"{name:<40} {rate:>9.0f} {rate / base:>11.0%}")


if __name__ == "__main__":
    main()
