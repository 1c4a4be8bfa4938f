"""Where the CPU of an ingest server goes under load, next to the minimal handler's: both
servers of ``ingest_bench.py`` are sampled with py-spy while the same signed webhooks are
posted to each, and the samples are summed by the library their innermost frame is in.

What ``ingest_steps.py`` (one thread, no network) cannot show: the web stack, the event loop,
aiokafka and the batcher as they run in the server, and how much more each costs per request
than in the minimal handler. Figures are µs of server CPU per request (the process's CPU time
over the load, split in proportion to the samples).

Usage: .venv/bin/python benchmarks/ingest_profile.py [--requests N] [--servers minimal,nopg,ingest]
(needs py-spy, a dev dependency; it attaches to a child process, which may need
``CAP_SYS_PTRACE`` or ``kernel.yama.ptrace_scope = 0``)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import ingest_bench as bench  # noqa: E402
from loadgen import LoadResult, run_load  # noqa: E402

from ketnoi_stack.embedded import free_port  # noqa: E402

#: (label, pattern on the innermost frame), first match wins.
CATEGORIES = [
    ("event loop and socket I/O (uvloop, native)", r"^Runner\.run |^$"),
    ("uvicorn (HTTP protocol, response writes)", r"uvicorn/"),
    ("starlette + fastapi (ASGI stack)", r"starlette/|fastapi/|opentelemetry|/trace/"),
    ("aiokafka (produce)", r"aiokafka/"),
    ("asyncpg (dedup, journal)", r"asyncpg/"),
    ("pydantic (contract validate, dump)", r"pydantic"),
    ("ingest: handler, normalise, batcher", r"ketnoi_ingest/"),
    ("shared: identity seals, encoding", r"ketnoi_shared/"),
    ("json, hashing, crypto", r"json/|hmac|hashlib|cryptography|secrets"),
    ("asyncio (Python part: futures, gather)", r"asyncio/"),
    ("metrics, logging", r"prometheus|structlog|logging/"),
    ("the baseline servers' own handlers", r"baseline_servers"),
]


def categorise(frame: str) -> str:
    for label, pattern in CATEGORIES:
        if re.search(pattern, frame):
            return label
    return "other"


def profile(
    name: str, argv: list[str], *, env: dict[str, str], port: int, ready: str, n: int
) -> tuple[LoadResult, float, dict[str, float], int]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out = Path(tempfile.mkdtemp(prefix="ketnoi-prof-")) / f"{name}.txt"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        bench.wait_ready(f"http://127.0.0.1:{port}{ready}", proc)
        warm = bench.requests_for(port, bench.bodies(1000, f"w{name}"))
        asyncio.run(run_load("127.0.0.1", port, warm, connections=32))
        reqs = bench.requests_for(port, bench.bodies(n, f"m{name}"))
        # Non-blocking sampling: the server is not paused (some stacks come out torn, which
        # the innermost-frame sums used here do not mind).
        sampler = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(proc.pid),
                "-f",
                "raw",
                "-o",
                str(out),
                "-r",
                "250",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        before = bench.cpu_seconds(proc.pid)
        load = asyncio.run(run_load("127.0.0.1", port, reqs, connections=32))
        cpu_us = (bench.cpu_seconds(proc.pid) - before) / n * 1e6
        sampler.send_signal(2)
        sampler.wait(30)
    finally:
        proc.terminate()
        proc.wait(10)
    counts: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frame = re.sub(r" \(.*?/(site-packages|src|lib/python3\.\d+)/", " (", stack.split(";")[-1])
        counts[categorise(frame)] += int(count)
    total = sum(counts.values()) or 1
    return load, cpu_us, {k: cpu_us * v / total for k, v in counts.items()}, total


#: --servers names → the names of ingest_bench's server table.
SERVERS = {
    "minimal": bench.MINIMAL,
    "floor": bench.FLOOR,
    "nopg": bench.NO_POSTGRES,
    "ingest": bench.INGEST,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--servers", default="minimal,floor,nopg,ingest", help=", ".join(SERVERS))
    args = parser.parse_args()
    results = {}
    with bench.bench_stack() as (broker, pg, tmp):
        table = bench.server_table(broker, pg, tmp)
        for name in args.servers.split(","):
            spec = table[SERVERS[name]]
            port = free_port()
            argv, env = bench.command_for(SERVERS[name], spec, port, broker.bootstrap)
            results[name] = profile(name, argv, env=env, port=port, ready=spec[2], n=args.requests)

    print(f"\n{args.requests} signed webhooks over 32 connections, {os.cpu_count()} cores")
    for name, (load, cpu_us, _, samples) in results.items():
        print(f"{name:>8}: {load.rate:,.0f} req/s, {cpu_us:.0f} µs CPU/req, {samples} samples")
    labels = sorted(
        {k for *_, parts, _ in results.values() for k in parts},
        key=lambda k: -max(r[2].get(k, 0) for r in results.values()),
    )
    print(f"\n{'µs of server CPU per request':<44}" + "".join(f"{n:>10}" for n in results))
    for label in labels:
        print(f"{label:<44}" + "".join(f"{r[2].get(label, 0):>10.1f}" for r in results.values()))
    print(f"{'total':<44}" + "".join(f"{r[1]:>10.1f}" for r in results.values()))


if __name__ == "__main__":
    main()
