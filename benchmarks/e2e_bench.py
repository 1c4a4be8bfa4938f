"""End-to-end latency on the embedded stack: tip webhook posted by the simulated citizen →
acknowledgement recorded by the sandbox (ingest → Kafka → triage → outbox → notifier → Zalo
API), at a fixed offered rate, with the webhook's own round trip (the baseline: what ingest
alone costs the sender) measured in the same run.

Target (issue #5): p99 under 1 s at 200 tips/s.

``--kind question`` sends procedure questions instead of tips and measures question → automatic
answer (ingest → triage → reports.triaged.v1 → news → notifier → Zalo API; issue #6).

Usage: .venv/bin/python benchmarks/e2e_bench.py [--rates 50,200] [--seconds 10]
       [--kind tip|question]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import psutil

from ketnoi_stack.embedded import free_port

OA = "4123456789012345678"
TEXTS = [
    "Có nhóm thanh niên đua xe bốc đầu ở đường 3/2, phường 1 Đà Lạt cũ",
    "cuop giat dien thoai o cho Da Lat, thang do chay ve huong ho Xuan Huong",
    "Tối nào cũng có đánh bạc ở chòi rẫy cuối thôn 2 xã Hòa Ninh",
    "xe tai cho qua tai lam hu duong lien thon o Di Linh",
]


QUESTIONS = [
    "lam cccd mat bao lau",
    "Cho em hỏi đăng ký tạm trú cần giấy tờ gì ạ",
    "mất căn cước thì làm lại ở đâu",
    "thủ tục cấp hộ chiếu phổ thông như nào vậy",
]


def pct(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))]


async def drive(
    sandbox: str, rate: int, seconds: float, run: str, texts: list[str]
) -> tuple[dict, list[float]]:
    sent_at: dict[str, float] = {}
    webhook_ms: list[float] = []
    n = int(rate * seconds)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64)) as http:

        async def one(i: int) -> None:
            user = f"8{run}{i:08d}"
            t0 = time.time()
            r = await http.post(
                f"{sandbox}/sandbox/citizen/send",
                json={"oa_id": OA, "user_id": user, "kind": "text", "text": texts[i % len(texts)]},
            )
            webhook_ms.append((time.time() - t0) * 1000)
            if r.json().get("webhook_status") == 200:
                sent_at[user] = t0

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return sent_at, webhook_ms


async def collect(sandbox: str, sent_at: dict[str, float], timeout: float = 120) -> list[float]:
    latencies: dict[str, float] = {}
    deadline = time.time() + timeout
    async with httpx.AsyncClient(timeout=30) as http:
        while time.time() < deadline:
            messages = (await http.get(f"{sandbox}/sandbox/messages", params={"oa": OA})).json()
            for m in messages:
                user = m["user_id"]
                if user in sent_at and user not in latencies:
                    at = datetime.fromisoformat(m["sent_at"]).timestamp()
                    latencies[user] = (at - sent_at[user]) * 1000
            if len(latencies) >= len(sent_at):
                break
            await asyncio.sleep(1)
    return list(latencies.values())


def stack_processes(root: int) -> dict[str, list[psutil.Process]]:
    """The processes of the stack under ``root`` (``ketnoi up``), by role: each service,
    PostgreSQL (all its backends), the broker, and the supervisor itself."""
    roles: dict[str, list[psutil.Process]] = {}
    for proc in psutil.Process(root).children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "ketnoi_shared" in cmd:
            role = cmd.split("ketnoi_shared", 1)[1].split()[0]
        elif "tansu" in cmd:
            role = "tansu"
        else:
            role = "other"
        roles.setdefault(role, []).append(proc)
    roles["ketnoi up"] = [psutil.Process(root)]
    roles["load generator (this script)"] = [psutil.Process()]
    return roles


def cpu_seconds(roles: dict[str, list[psutil.Process]], data_dir: str) -> dict[str, float]:
    """CPU time (user + system) used so far by each role; PostgreSQL backends come and go,
    so its processes are looked up again each time."""
    out: dict[str, float] = {}
    for role, procs in roles.items():
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        out[role] = total
    # The embedded PostgreSQL is started by pg_ctl (not a child of ``ketnoi up``) and forks a
    # backend per connection: its postmaster is found by data directory, and the CPU time of
    # its backends that ended is in the postmaster's children_* counters.
    pg = 0.0
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if data_dir in " ".join(p.info["cmdline"] or ()) and "postgres" in p.name():
                for q in [p, *p.children()]:
                    with contextlib.suppress(psutil.Error):
                        t = q.cpu_times()
                        pg += t.user + t.system
                t = p.cpu_times()
                pg += t.children_user + t.children_system
    out["postgres"] = pg
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--kind", choices=("tip", "question"), default="tip")
    args = parser.parse_args()
    texts = QUESTIONS if args.kind == "question" else TEXTS
    with tempfile.TemporaryDirectory(prefix="ketnoi-e2e-") as tmp:
        ports = {ep.name: free_port() for ep in entry_points(group="ketnoi.services")}
        ports["kafka"] = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")} | {
            "KETNOI_DATA_DIR": tmp,
            "KETNOI_EMBEDDED_KAFKA_PORT": str(ports["kafka"]),
            "KETNOI_LOG_LEVEL": "WARNING",
            **{f"KETNOI_{k.upper()}_PORT": str(v) for k, v in ports.items() if k != "kafka"},
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "ketnoi_shared", "up"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state_file = Path(tmp) / "endpoints.json"
        try:
            while not state_file.exists():
                if proc.poll() is not None:
                    raise SystemExit("ketnoi up failed")
                time.sleep(0.5)
            sandbox = json.loads(state_file.read_text())["services"]["sandbox"]["url"]
            rows = []
            cpu_rows = []
            roles = stack_processes(proc.pid)
            for run, rate in enumerate(int(r) for r in args.rates.split(",")):
                before = cpu_seconds(roles, tmp)
                sent_at, webhook_ms = asyncio.run(
                    drive(sandbox, rate, args.seconds, str(run), texts)
                )
                latencies = asyncio.run(collect(sandbox, sent_at))
                after = cpu_seconds(roles, tmp)
                rows.append((rate, len(sent_at), len(latencies), webhook_ms, latencies))
                cpu_rows.append(
                    (rate, len(sent_at), {k: after[k] - before.get(k, 0.0) for k in after})
                )
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    print(
        f"\nEnd to end on the embedded stack ({os.cpu_count()} cores, every service one "
        f"process), {args.seconds:.0f} s per rate, one tip per simulated citizen:"
    )
    what = "question → answer" if args.kind == "question" else "tip → acknowledgement"
    print(
        f"{args.kind + 's/s':>7} {'sent':>6} {'acked':>6} | webhook round trip p50/p99 ms | "
        f"{what} p50 / p95 / p99 ms"
    )
    for rate, sent, acked, webhook_ms, lat in rows:
        print(
            f"{rate:>7} {sent:>6} {acked:>6} | {statistics.median(webhook_ms):>8.0f} / "
            f"{pct(webhook_ms, 0.99):>6.0f}          | "
            f"{statistics.median(lat):>6.0f} / {pct(lat, 0.95):>6.0f} / {pct(lat, 0.99):>6.0f}"
        )
    print("\nCPU time per tip (ms, user + system), from the start of a rate to its last reply:")
    for rate, sent, cpu in cpu_rows:
        parts = sorted(cpu.items(), key=lambda kv: -kv[1])
        total = sum(cpu.values())
        print(
            f"{rate:>5}/s: total {total * 1000 / max(sent, 1):.1f} ms = "
            + ", ".join(f"{k} {v * 1000 / max(sent, 1):.2f}" for k, v in parts if v > 0)
        )


if __name__ == "__main__":
    main()
