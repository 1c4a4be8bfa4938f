"""Ingest benchmark: signed webhooks per second and ack latency for one ingest process on the
embedded stack, next to baselines measured in the same run.

Targets (issue #3): >= 2,000 verified webhooks/s, p99 ack < 50 ms, and >= 70 % of the rate of
a minimal handler that parses and produces with acks=all to the same broker.

Usage: .venv/bin/python benchmarks/ingest_bench.py [--requests 8000] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from ketnoi_ingest.zalo_tools import sign_body
from ketnoi_shared.contracts import TopicSpec, all_topics
from ketnoi_shared.db import apply_migrations
from ketnoi_shared.identity import generate_pseudonym_key, generate_seal_key
from ketnoi_shared.messaging import ensure_topics
from ketnoi_stack.embedded import EmbeddedPostgres, TansuBroker, free_port

sys.path.insert(0, str(Path(__file__).parent))
from loadgen import LoadResult, build_request, run_load

HERE = Path(__file__).parent
SECRET = "BENCHOASECRETKEY0001"
OA = "4123456789012345678"


def bodies(n: int, tag: str) -> list[bytes]:
    out = []
    for i in range(n):
        body = {
            "app_id": "1234567890123456789",
            "sender": {"id": f"81{i % 5000:017d}"},
            "user_id_by_app": f"51{i % 5000:017d}",
            "recipient": {"id": OA},
            "event_name": "user_send_text",
            "message": {
                "text": "Có nhóm thanh niên tụ tập đua xe ở đường 3/2, phường 1 Đà Lạt",
                "msg_id": f"{tag}{i:012d}",
            },
            "timestamp": str(1767225600000 + i),
        }
        out.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    return out


def requests_for(port: int, raws: list[bytes]) -> list[bytes]:
    return [
        build_request(
            "127.0.0.1",
            port,
            "/zalo/webhook",
            raw,
            {"X-ZEvent-Signature": sign_body(raw, secret=SECRET)},
        )
        for raw in raws
    ]


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def measure(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    port: int,
    ready_path: str,
    n: int,
    connections: int,
) -> LoadResult:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}")
        warm = requests_for(port, bodies(500, f"w{name[:3]}"))
        asyncio.run(run_load("127.0.0.1", port, warm, connections=connections))
        reqs = requests_for(port, bodies(n, f"m{name[:3]}"))
        return asyncio.run(run_load("127.0.0.1", port, reqs, connections=connections))
    finally:
        proc.terminate()
        proc.wait(10)


async def raw_produce(bootstrap: str, n: int) -> tuple[float, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    payload = bodies(1, "raw")[0]
    try:
        t0 = time.perf_counter()
        for i in range(n // 4):
            await producer.send_and_wait("bench.minimal", payload, key=str(i % 50).encode())
        sequential = (n // 4) / (time.perf_counter() - t0)
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                await producer.send_and_wait("bench.minimal", payload, key=str(i % 50).encode())

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        concurrent = n / (time.perf_counter() - t0)
    finally:
        await producer.stop()
    return sequential, concurrent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-") as tmp:
        broker = TansuBroker(port=free_port()).start()
        pg = EmbeddedPostgres(Path(tmp) / "pg", database="bench").start()
        try:
            extra = TopicSpec("bench.minimal", 12, "sender", None, 3_600_000, "benchmark")
            asyncio.run(ensure_topics(broker.bootstrap, [*all_topics(), extra]))
            apply_migrations(pg.url())
            seq, conc = asyncio.run(raw_produce(broker.bootstrap, args.requests))

            py = sys.executable
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")}
            ports = {k: free_port() for k in ("ceiling", "minimal", "ingest", "ingest_nodb")}
            ingest_env = base_env | {
                "KETNOI_KAFKA_BOOTSTRAP": broker.bootstrap,
                "KETNOI_ZALO_OA_SECRET": SECRET,
                "KETNOI_PSEUDONYM_KEY": generate_pseudonym_key(),
                "KETNOI_SEAL_KEY": generate_seal_key(),
                "KETNOI_LOG_LEVEL": "WARNING",
                "KETNOI_LOG_FORMAT": "json",
                "KETNOI_DATA_DIR": tmp,
            }
            results: dict[str, LoadResult] = {}
            bench = HERE / "baseline_servers.py"
            kw = {"n": args.requests, "connections": args.connections}
            results["ceiling: parse JSON only"] = measure(
                "ceiling",
                [py, str(bench), "ceiling", str(ports["ceiling"])],
                env=base_env,
                port=ports["ceiling"],
                ready_path="/docs",
                **kw,
            )
            results["minimal: parse + produce acks=all"] = measure(
                "minimal",
                [py, str(bench), "minimal", str(ports["minimal"]), broker.bootstrap],
                env=base_env,
                port=ports["minimal"],
                ready_path="/docs",
                **kw,
            )
            results["ingest without PostgreSQL (no edge dedup)"] = measure(
                "ingest_nodb",
                [py, "-m", "ketnoi_shared", "ingest"],
                env=ingest_env | {"KETNOI_HTTP_PORT": str(ports["ingest_nodb"])},
                port=ports["ingest_nodb"],
                ready_path="/readyz",
                **kw,
            )
            results["ingest (verify, seal, edge dedup, acks=all)"] = measure(
                "ingest",
                [py, "-m", "ketnoi_shared", "ingest"],
                env=ingest_env
                | {"KETNOI_HTTP_PORT": str(ports["ingest"]), "KETNOI_DATABASE_URL": pg.url()},
                port=ports["ingest"],
                ready_path="/readyz",
                **kw,
            )
        finally:
            broker.stop()
            pg.stop()

    print(
        f"\nIngest benchmark — {args.requests} signed webhooks, {args.connections} "
        f"connections, one server process, embedded Tansu + PostgreSQL, {os.cpu_count()} cores"
    )
    print(
        f"raw aiokafka produce acks=all: {seq:,.0f} msg/s one at a time, "
        f"{conc:,.0f} msg/s with 32 in flight\n"
    )
    ceiling = next(iter(results.values())).rate
    minimal = list(results.values())[1].rate
    print(
        f"{'server':<46} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs ceiling':>10} "
        f"{'vs minimal':>10}  statuses"
    )
    for name, r in results.items():
        print(
            f"{name:<46} {r.rate:>8,.0f} {r.p50:>7.1f} {r.pct(0.99):>7.1f} "
            f"{r.rate / ceiling:>10.0%} {r.rate / minimal:>10.0%}  {r.statuses}"
        )


if __name__ == "__main__":
    main()
