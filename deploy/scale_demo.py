"""Horizontal scaling on one machine: consumer groups share the partitions, survive crashes.

Starts the embedded Tansu broker and an embedded PostgreSQL, the Zalo sandbox, **2 ingest, 3
triage and 2 notifier processes** (each its own ``python -m ketnoi_shared <service>``, as a
container would run it), drives signed webhooks through both ingests in turn (one tip per
simulated citizen), **SIGKILLs one triage and one notifier process** in the middle, waits for
the acknowledgements, and prints what happened:

* sent: webhooks answered 200 by an ingest (retried on the other ingest as Zalo would retry);
* processed: tips stored as case messages by triage (PostgreSQL ``case_messages``);
* acknowledgements delivered: messages the sandbox received through the OA API;
* lost: tips answered 200 but with no case message or no acknowledgement (must be 0);
* duplicated effects: a case message, a case or an acknowledgement recorded twice (must be 0);
* rebalance: from each kill until the broker reports the group Stable again with one member
  fewer (the crashed member is only noticed when its session times out).

Usage: .venv/bin/python deploy/scale_demo.py [--tips 400] [--rate 10] [--kill-after 0.4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from ketnoi_notifier.bootstrap import authorize_sandbox
from ketnoi_sandbox.citizen import sign
from ketnoi_shared.contracts import all_topics
from ketnoi_shared.db import apply_migrations
from ketnoi_shared.messaging import ensure_topics
from ketnoi_stack.embedded import EmbeddedPostgres, TansuBroker, free_port, set_pdeathsig
from ketnoi_stack.secrets import ensure_local_secrets
from ketnoi_triage.bootstrap import bootstrap as load_units

APP_ID = "1234567890123456789"  # the fixtures' app, which the sandbox fakes
OA = "4123456789012345678"  # the demo OA: ward police of Xuân Hương - Đà Lạt
TEXTS = [
    "Có nhóm thanh niên đua xe bốc đầu ở đường 3/2, phường 1 Đà Lạt cũ",
    "cuop giat dien thoai o cho Da Lat, thang do chay ve huong ho Xuan Huong",
    "Tối nào cũng có đánh bạc ở chòi rẫy cuối thôn 2 xã Hòa Ninh",
    "xe tai cho qua tai lam hu duong lien thon o Di Linh",
]
LAYOUT = {"ingest": 2, "triage": 3, "notifier": 2}
GROUPS = {"triage": "triage", "notifier": "notifier"}


@dataclass
class Proc:
    name: str
    url: str
    popen: subprocess.Popen[bytes]


@dataclass
class Run:
    sent: dict[str, str] = field(default_factory=dict)  # user id -> msg id, answered 200
    refused: int = 0
    webhook_retries: int = 0
    kills: dict[str, float] = field(default_factory=dict)  # group -> monotonic kill time
    rebalanced: dict[str, float] = field(default_factory=dict)  # group -> seconds
    members: dict[str, tuple[int, int]] = field(default_factory=dict)  # before, after


def _spawn(name: str, argv: list[str], env: dict[str, str], port: int, logs: Path) -> Proc:
    with (logs / f"{name}.log").open("ab") as out:  # the child keeps its own descriptor
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "ketnoi_shared", *argv],
            env=env | {"KETNOI_HTTP_PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=set_pdeathsig,  # noqa: PLW1509 - only prctl, safe before exec
        )
    return Proc(name, f"http://127.0.0.1:{port}", popen)


async def _wait_ready(procs: list[Proc], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = {p.name: p for p in procs}
    async with httpx.AsyncClient(timeout=2) as http:
        while pending:
            for name, p in list(pending.items()):
                if p.popen.poll() is not None:
                    raise SystemExit(f"{name} exited with {p.popen.returncode}; see its log")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(p.url + "/readyz")).status_code == 200:
                        del pending[name]
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready after {timeout:.0f} s: {', '.join(pending)}")
            await asyncio.sleep(0.3)


async def _group_state(admin: AIOKafkaAdminClient, group: str) -> tuple[str, int]:
    response = (await admin.describe_consumer_groups([group]))[0]
    entry = response.groups[0]  # (error, group, state, protocol type, protocol, members, ...)
    return str(entry[2]), len(entry[5])


async def _watch_rebalance(bootstrap: str, run: Run) -> None:
    """Note each group's members before the kills (a notifier process has one consumer per
    worker), then poll until the group is Stable again with fewer members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="scale-demo")
    await admin.start()
    before: dict[str, int] = {}
    try:
        while len(run.rebalanced) < len(GROUPS):
            for group in GROUPS.values():
                if group in run.rebalanced:
                    continue
                with contextlib.suppress(Exception):
                    state, members = await _group_state(admin, group)
                    if group not in run.kills:
                        if state == "Stable":
                            before[group] = members
                    elif state == "Stable" and members < before.get(group, 0):
                        run.rebalanced[group] = time.monotonic() - run.kills[group]
                        run.members[group] = (before[group], members)
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _drive(
    ingests: list[Proc],
    sandbox: str,
    secret: str,
    run: Run,
    *,
    tips: int,
    rate: float,
    kill_at: int,
    kill: Any,
) -> None:
    prefix = str(int(time.time()))[-6:]
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(i: int) -> None:
            user = f"81{prefix}{i:011d}"
            msg_id = f"{prefix}{i:014d}"
            text = TEXTS[i % len(TEXTS)]
            # The citizen's message reaches Zalo first: it opens the 7-day reply window.
            await http.post(
                f"{sandbox}/sandbox/interactions",
                json={
                    "oa_id": OA,
                    "user_id": user,
                    "kind": "message",
                    "text": text,
                    "msg_id": msg_id,
                },
            )
            timestamp = str(int(time.time() * 1000))
            body = {
                "app_id": APP_ID,
                "sender": {"id": user},
                "user_id_by_app": f"51{prefix}{i:011d}",
                "recipient": {"id": OA},
                "event_name": "user_send_text",
                "message": {"text": text, "msg_id": msg_id},
                "timestamp": timestamp,
            }
            raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "X-ZEvent-Signature": "mac="
                + sign(app_id=APP_ID, body=raw, timestamp=timestamp, secret=secret),
            }
            # Round robin over the ingests, as a load balancer would; a failure is retried on
            # the next one (Zalo retries a webhook that did not get its 200).
            for attempt in range(4):
                target = ingests[(i + attempt) % len(ingests)]
                with contextlib.suppress(httpx.HTTPError):
                    r = await http.post(target.url + "/zalo/webhook", content=raw, headers=headers)
                    if r.status_code == 200:
                        run.sent[user] = msg_id
                        return
                run.webhook_retries += 1
                await asyncio.sleep(0.5)
            run.refused += 1

        start = time.perf_counter()
        tasks = []
        for i in range(tips):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == kill_at:
                kill()
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)


async def _count(db: str, sandbox: str, run: Run) -> dict[str, int]:
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            "SELECT msg_id, case_id FROM case_messages WHERE msg_id = ANY($1::text[])",
            list(run.sent.values()),
        )
        cases_per_citizen = await conn.fetch(
            "SELECT citizen_pseudonym, count(*) AS n FROM cases GROUP BY citizen_pseudonym"
        )
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=30) as http:
        acks = (await http.get(f"{sandbox}/sandbox/messages", params={"oa": OA})).json()
    per_msg = Counter(r["msg_id"] for r in rows)
    per_user = Counter(m["user_id"] for m in acks if m["user_id"] in run.sent)
    return {
        "processed": len(per_msg),
        "acks": sum(per_user.values()),
        "acked_citizens": len(per_user),
        "lost_case": sum(1 for m in run.sent.values() if m not in per_msg),
        "lost_ack": sum(1 for u in run.sent if u not in per_user),
        "dup_case_messages": sum(n - 1 for n in per_msg.values() if n > 1),
        "dup_cases": sum(r["n"] - 1 for r in cases_per_citizen if r["n"] > 1),
        "dup_acks": sum(n - 1 for n in per_user.values() if n > 1),
    }


async def _settle(db: str, sandbox: str, run: Run, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = await _count(db, sandbox, run)
        done = counts["lost_case"] == 0 and counts["lost_ack"] == 0
        if done or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(1)


async def main(args: argparse.Namespace) -> int:  # noqa: PLR0915 - one scenario, in order
    tmp = Path(tempfile.mkdtemp(prefix="ketnoi-scale-"))
    logs = tmp / "logs"
    logs.mkdir()
    ensure_local_secrets(tmp / "secrets")
    secret = (tmp / "secrets" / "ketnoi_zalo_oa_secret").read_text().strip()
    pg = await asyncio.to_thread(EmbeddedPostgres(tmp / "pg").start)
    broker = TansuBroker(port=free_port(), log_path=logs / "tansu.log")
    await asyncio.to_thread(broker.start)
    procs: list[Proc] = []
    try:
        db = pg.url()
        await ensure_topics(broker.bootstrap, all_topics())
        await asyncio.to_thread(apply_migrations, db)
        await load_units(db)
        sandbox_port = free_port()
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")} | {
            "KETNOI_DATA_DIR": str(tmp),
            "KETNOI_DATABASE_URL": db,
            "KETNOI_KAFKA_BOOTSTRAP": broker.bootstrap,
            "KETNOI_LOG_FORMAT": "json",
            "KETNOI_LOG_LEVEL": "WARNING",
            "KETNOI_ZALO_OPENAPI_URL": sandbox,
            "KETNOI_ZALO_OAUTH_URL": sandbox,
            "KETNOI_ZALO_APP_ID": APP_ID,
            "KETNOI_SANDBOX_URL": sandbox,
        }
        procs.append(_spawn("sandbox", ["sandbox"], env, sandbox_port, logs))
        await _wait_ready(procs, 60)
        await authorize_sandbox(env)
        t0 = time.monotonic()
        # triage-1 first: it trains the model into the shared cache the other two then load
        # (concurrent first trainings race on one temporary file name).
        procs.append(_spawn("triage-1", ["triage"], env, free_port(), logs))
        await _wait_ready(procs, 240)
        for service, count in LAYOUT.items():
            procs += [
                _spawn(f"{service}-{n + 1}", [service], env, free_port(), logs)
                for n in range(count)
                if f"{service}-{n + 1}" != "triage-1"
            ]
        await _wait_ready(procs, 240)
        print(f"up: {', '.join(p.name for p in procs)} ready in {time.monotonic() - t0:.1f} s")
        await asyncio.sleep(args.warmup)  # let both groups settle on their members first

        run = Run()
        victims = {"triage": "triage-2", "notifier": "notifier-2"}

        def kill() -> None:
            for group, name in victims.items():
                victim = next(p for p in procs if p.name == name)
                victim.popen.send_signal(signal.SIGKILL)
                run.kills[group] = time.monotonic()
            print(
                f"killed {', '.join(victims.values())} (SIGKILL) after the first "
                f"{int(args.tips * args.kill_after)} tips"
            )

        watcher = asyncio.create_task(_watch_rebalance(broker.bootstrap, run))
        t_send = time.monotonic()
        ingests = [p for p in procs if p.name.startswith("ingest")]
        await _drive(
            ingests,
            sandbox,
            secret,
            run,
            tips=args.tips,
            rate=args.rate,
            kill_at=int(args.tips * args.kill_after),
            kill=kill,
        )
        send_s = time.monotonic() - t_send
        counts = await _settle(db, sandbox, run, args.settle)
        drained_s = time.monotonic() - t_send
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher, 60)
        watcher.cancel()
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(15)
            if p.popen.poll() is None:
                p.popen.kill()
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(tmp / "pg", ignore_errors=True)  # the logs stay for a look

    lost = counts["lost_case"] + counts["lost_ack"]
    dups = counts["dup_case_messages"] + counts["dup_cases"] + counts["dup_acks"]
    print(
        f"\nScale demo: {', '.join(f'{n} {s}' for s, n in LAYOUT.items())} processes on "
        f"{os.cpu_count()} cores (embedded Tansu + PostgreSQL), {args.tips} tips at "
        f"{args.rate:g}/s, one triage and one notifier SIGKILLed mid-run"
    )
    print(
        f"  sent (200 from an ingest)      {len(run.sent):>6}   refused {run.refused}, "
        f"webhook retries {run.webhook_retries}, sending took {send_s:.1f} s"
    )
    print(f"  processed (case messages)      {counts['processed']:>6}")
    print(
        f"  acknowledgements delivered     {counts['acks']:>6}   to {counts['acked_citizens']} "
        f"citizens; all done {drained_s:.1f} s after the first tip"
    )
    print(
        f"  lost                           {lost:>6}   (no case message {counts['lost_case']}, "
        f"no acknowledgement {counts['lost_ack']})"
    )
    print(
        f"  duplicated effects             {dups:>6}   (case messages "
        f"{counts['dup_case_messages']}, cases {counts['dup_cases']}, acknowledgements "
        f"{counts['dup_acks']})"
    )
    for group in GROUPS:
        took = run.rebalanced.get(group)
        shown = f"{took:.1f} s" if took is not None else "not observed"
        before, after = run.members.get(group, (0, 0))
        print(
            f"  rebalance of group {group!r:<11} {shown:>8}   (kill → Stable again, "
            f"{before} → {after} consumers)"
        )
    print(f"  logs: {logs}")
    return 0 if lost == 0 and dups == 0 and len(run.sent) == args.tips else 1


if __name__ == "__main__":
    warnings.filterwarnings("ignore", module="platformdirs")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tips", type=int, default=400, help="webhooks to send, one per citizen")
    parser.add_argument("--rate", type=float, default=10.0, help="webhooks per second")
    parser.add_argument("--kill-after", type=float, default=0.4, help="fraction sent before kills")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before sending")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for effects")
    sys.exit(asyncio.run(main(parser.parse_args())))
