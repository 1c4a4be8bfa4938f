"""Ingest benchmark: signed webhooks per second and ack latency for one ingest process on the
embedded stack, next to baselines measured in the same run.

Targets (issue #3): >= 2,000 verified webhooks/s, p99 ack < 50 ms, and >= 70 % of the rate of
a minimal handler that parses and produces with acks=all to the same broker.

Usage: .venv/bin/python benchmarks/ingest_bench.py [--requests 8000] [--connections 32]
    [--rounds 3]

The machine is shared and noisy, so every server is measured in each of ``--rounds`` rounds,
the order rotated from round to round (no server always runs first, or last on a broker that
holds the most data); the table gives per-server medians and the median of the per-round
ratios to the minimal handler, which move much less than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


@dataclass
class Measured:
    load: LoadResult
    #: CPU time of the server process (and of PostgreSQL's processes) per request, in µs:
    #: steadier than the rates on a shared machine, since waiting for a core is not counted.
    server_us: float
    db_us: float


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time of ``pids`` (Linux /proc; 0 for a process that has gone)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process by pid (a backend may come or go)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
            except OSError:
                continue
    return found


def measure(
    tag: str,
    argv: list[str],
    *,
    env: dict[str, str],
    port: int,
    ready_path: str,
    n: int,
    connections: int,
) -> Measured:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", proc)
        warm = requests_for(port, bodies(500, f"w{tag}"))
        asyncio.run(run_load("127.0.0.1", port, warm, connections=connections))
        reqs = requests_for(port, bodies(n, f"m{tag}"))
        server, db = cpu_seconds(proc.pid), postgres_cpu()
        result = asyncio.run(run_load("127.0.0.1", port, reqs, connections=connections))
        server = cpu_seconds(proc.pid) - server
        db = sum(t - db.get(pid, 0.0) for pid, t in postgres_cpu().items())
        return Measured(result, server / n * 1e6, db / n * 1e6)
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


@contextlib.contextmanager
def bench_stack() -> Iterator[tuple[TansuBroker, EmbeddedPostgres, str]]:
    """An embedded broker with every topic (and ``bench.minimal``) and a migrated embedded
    PostgreSQL, in a temporary directory: (broker, database, directory)."""
    with tempfile.TemporaryDirectory(prefix="ketnoi-bench-") as tmp:
        broker = TansuBroker(port=free_port()).start()
        pg = EmbeddedPostgres(Path(tmp) / "pg", database="bench").start()
        try:
            extra = TopicSpec("bench.minimal", 12, "sender", None, 3_600_000, "benchmark")
            asyncio.run(ensure_topics(broker.bootstrap, [*all_topics(), extra]))
            apply_migrations(pg.url())
            yield broker, pg, tmp
        finally:
            broker.stop()
            pg.stop()


def server_table(
    broker: TansuBroker, pg: EmbeddedPostgres, tmp: str
) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name → (argv, environment, readiness path) of every server measured; the port is added
    per measurement (an argument of the baselines, ``KETNOI_HTTP_PORT`` for ingest)."""
    py = sys.executable
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")}
    ingest_env = base_env | {
        "KETNOI_KAFKA_BOOTSTRAP": broker.bootstrap,
        "KETNOI_ZALO_OA_SECRET": SECRET,
        "KETNOI_PSEUDONYM_KEY": generate_pseudonym_key(),
        "KETNOI_SEAL_KEY": generate_seal_key(),
        "KETNOI_LOG_LEVEL": "WARNING",
        "KETNOI_LOG_FORMAT": "json",
        "KETNOI_DATA_DIR": tmp,
    }
    bench = str(HERE / "baseline_servers.py")
    return {
        CEILING: ([py, bench, "ceiling"], base_env, "/docs"),
        MINIMAL: ([py, bench, "minimal"], base_env, "/docs"),
        FLOOR: ([py, bench, "floor"], ingest_env, "/docs"),
        NO_POSTGRES: ([py, "-m", "ketnoi_shared", "ingest"], ingest_env, "/readyz"),
        INGEST: (
            [py, "-m", "ketnoi_shared", "ingest"],
            ingest_env | {"KETNOI_DATABASE_URL": pg.url()},
            "/readyz",
        ),
    }


def command_for(
    name: str, spec: tuple[list[str], dict[str, str], str], port: int, bootstrap: str
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of server ``name`` listening on ``port``."""
    argv, env, _ = spec
    if name in (CEILING, MINIMAL, FLOOR):
        return [*argv, str(port)] + ([bootstrap] if name != CEILING else []), env
    return argv, env | {"KETNOI_HTTP_PORT": str(port)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with bench_stack() as (broker, pg, tmp):
        seq, conc = asyncio.run(raw_produce(broker.bootstrap, args.requests))
        servers = server_table(broker, pg, tmp)
        names = list(servers)
        rounds: list[dict[str, Measured]] = []
        for r in range(args.rounds):
            results: dict[str, Measured] = {}
            for name in names[r % len(names) :] + names[: r % len(names)]:
                port = free_port()
                argv, env = command_for(name, servers[name], port, broker.bootstrap)
                ready = servers[name][2]
                results[name] = measure(
                    f"{names.index(name)}r{r}",
                    argv,
                    env=env,
                    port=port,
                    ready_path=ready,
                    n=args.requests,
                    connections=args.connections,
                )
            rounds.append(results)

    print(
        f"\nIngest benchmark — {args.requests} signed webhooks, {args.connections} "
        f"connections, one server process, embedded Tansu + PostgreSQL, {os.cpu_count()} cores, "
        f"{args.rounds} round(s), order rotated"
    )
    print(
        f"raw aiokafka produce acks=all: {seq:,.0f} msg/s one at a time, "
        f"{conc:,.0f} msg/s with 32 in flight\n"
    )
    print("per round: req/s (% of the minimal handler in the same round)")
    for i, results in enumerate(rounds):
        rates = {name: results[name].load.rate for name in names}
        cells = ", ".join(
            f"{SHORT[name]} {rate:,.0f} ({rate / rates[MINIMAL]:.0%})"
            for name, rate in rates.items()
        )
        print(f"  round {i + 1}: {cells}")
    print(
        f"\n{'server':<46} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs ceiling':>10} "
        f"{'vs minimal':>10} {'CPU µs/req':>10} {'+ PG':>5}  statuses"
    )
    for name in names:
        per = [r[name] for r in rounds]
        statuses: dict[int, int] = {}
        for one in per:
            for status, count in one.load.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        vs_ceiling = statistics.median(r[name].load.rate / r[CEILING].load.rate for r in rounds)
        vs_minimal = statistics.median(r[name].load.rate / r[MINIMAL].load.rate for r in rounds)
        print(
            f"{name:<46} {statistics.median(p.load.rate for p in per):>8,.0f} "
            f"{statistics.median(p.load.p50 for p in per):>7.1f} "
            f"{statistics.median(p.load.pct(0.99) for p in per):>7.1f} "
            f"{vs_ceiling:>10.0%} {vs_minimal:>10.0%} "
            f"{statistics.median(p.server_us for p in per):>10.0f} "
            f"{statistics.median(p.db_us for p in per):>5.0f}  {statuses}"
        )
    print(
        "(medians over the rounds; the ratios are medians of the per-round ratios; CPU: the "
        "server process, + PG: PostgreSQL's processes, per request)"
    )


CEILING = "ceiling: parse JSON only"
MINIMAL = "minimal: parse + produce acks=all"
FLOOR = "floor: + verify, seal, contract by hand"
INGEST = "ingest (verify, seal, edge dedup, acks=all)"
NO_POSTGRES = "ingest without PostgreSQL (no edge dedup)"
SHORT = {
    CEILING: "ceiling",
    MINIMAL: "minimal",
    FLOOR: "floor",
    NO_POSTGRES: "ingest-no-PG",
    INGEST: "ingest",
}


if __name__ == "__main__":
    main()
