"""Scenarios of the reliability harness, run against one :class:`~.harness.Stack`, and the
table of results.

Each scenario runs a load of simulated citizens (:class:`~.harness.Driver`), injects its fault
while the load runs, lets the system drain (until every citizen who got a 200 from ingest has
every message persisted and a reply on the phone, or the drain window ends), then counts and
scans for leaks. ``unseen`` is counted once a second; *recovery* is the time from the end of
the fault until every citizen who started before it ended has everything (``unseen`` back to
0). The ingest p95 is over webhook attempts started during the fault (failed attempts count
with the time they took).

Usage: ``.venv/bin/python -m tests.reliability.scenarios [--reps 3] [--only NAME ...]``
(``make reliability``). The table is printed and written into docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from .faultproxy import FaultProxy
from .harness import (
    ROOT,
    Driver,
    Stack,
    count,
    dead_letters,
    leak_scan,
    percentile,
    poison,
    scan_coverage,
    unseen_before,
)

__all__ = ["DIAGNOSTIC", "SCENARIOS", "Result", "Scenario", "run_scenario", "worst"]

Fault = Callable[[Stack], Awaitable[Any]]


async def _nothing(_: Stack) -> None:
    return None


@dataclass
class Scenario:
    name: str
    title: str
    load_s: float = 15.0
    rate: float = 6.0  # citizens a second (each sends one or two tips)
    dup_ratio: float = 0.2
    fault_at: float = 4.0
    fault_s: float = 0.0  # how long the fault lasts before ``clear``
    fault: Fault = _nothing
    clear: Fault = _nothing
    poison: int = 0
    drain_s: float = 120.0
    #: Before the load and after the scan (e.g. a second triage replica, started and stopped).
    setup: Fault = _nothing
    teardown: Fault = _nothing
    #: Driver options: every n-th citizen sends a photo or clip, the URL kinds of the first
    #: ones (``MediaHost``), the skew of Zalo's timestamps per citizen index.
    media_every: int = 4
    media_plan: list[str] = field(default_factory=list)
    skew_ms: Callable[[int], int] | None = None
    #: Whether every attachment must be recorded as its URL requires for the run to pass.
    media_bar: bool = False
    media_first: bool = False  # the attachment before the citizen's texts (finding 8)


@dataclass
class Result:
    scenario: str
    rep: int
    counts: dict[str, int]
    dlq: dict[str, int]
    leaks: dict[str, int]
    recovery_s: float | None
    p95_s: float | None
    attempts_failed: int
    unseen_end: int
    notes: list[str] = field(default_factory=list)
    #: Media worker bar (``Scenario.media_bar``): every attachment recorded as its URL
    #: requires, once, and the worker neither restarted nor crashed.
    media_bar: bool = False
    restarts: dict[str, int] = field(default_factory=dict)  # processes that died on their own

    @property
    def media_ok(self) -> bool:
        c = self.counts
        return (
            c.get("media_missing", 0) == 0
            and c.get("media_wrong", 0) == 0
            and c.get("media_dup", 0) == 0
            and not self.restarts.get("media", 0)
        )

    @property
    def passed(self) -> bool:
        c = self.counts
        return (
            c["lost"] == 0
            and c["dup_cases"] == 0
            and c["dup_case_messages"] == 0
            and c["dup_replies"] == 0
            and not self.leaks
            and self.unseen_end == 0
            and (self.media_ok or not self.media_bar)
            # A fault that did not happen, or a load that stopped: not what the run says.
            and not any(n.startswith(("fault failed", "load failed")) for n in self.notes)
        )

    def badness(self) -> tuple[int, float]:
        c = self.counts
        bad = c["lost"] + c["dup_cases"] + c["dup_replies"] + sum(self.leaks.values())
        if self.media_bar:
            bad += c.get("media_missing", 0) + c.get("media_wrong", 0) + c.get("media_dup", 0)
        return bad, self.recovery_s or 0.0


# ------------------------------------------------------------------------------ the faults


def _proxy_down(which: str) -> tuple[Fault, Fault]:
    async def down(stack: Stack) -> None:
        await getattr(stack, which).down()

    async def up(stack: Stack) -> None:
        await getattr(stack, which).up()

    return down, up


async def _slow_db(stack: Stack) -> None:
    assert stack.pg_proxy is not None
    stack.pg_proxy.set_latency(3.0, 0.2, responses_only=True)


async def _fast_db(stack: Stack) -> None:
    assert stack.pg_proxy is not None
    stack.pg_proxy.clear()


async def _sandbox_faults(stack: Stack, faults: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for f in faults:
            (await http.post(f"{stack.sandbox}/sandbox/faults", json=f)).raise_for_status()


async def _zalo_errors(stack: Stack) -> None:
    await _sandbox_faults(
        stack,
        [
            {"api": "message/cs", "kind": "http_500", "count": 15},
            {"api": "message/cs", "kind": "rate_limited", "count": 15},
            {"api": "message/cs", "kind": "timeout_after_write", "value": 3, "count": 4},
            {"api": "message/cs", "kind": "timeout", "value": 3, "count": 4},
            {"api": "message/cs", "kind": "latency", "value": 0.5, "count": 30},
        ],
    )


async def _token_expiry(stack: Stack) -> None:
    await _sandbox_faults(stack, [{"api": "message/cs", "kind": "token_expired", "count": 4}])


async def _clear_sandbox(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await http.delete(f"{stack.sandbox}/sandbox/faults")


def _kill(name: str, *, sig: int = signal.SIGKILL, restart_after: float = 2.0) -> Fault:
    async def kill(stack: Stack) -> None:
        stack.kill(name, sig)
        await stack.restart(name, after_s=restart_after)

    return kill


async def _notifier_kill_in_flight(stack: Stack) -> None:
    """Sends written by Zalo whose answer hangs; the notifier dies while waiting for it."""
    await _sandbox_faults(
        stack, [{"api": "message/cs", "kind": "timeout_after_write", "value": 5, "count": 6}]
    )
    await asyncio.sleep(1.5)
    for name in [n for n in stack.procs if n.startswith("notifier")]:
        stack.kill(name, signal.SIGKILL)
    await asyncio.gather(
        *(stack.restart(n, after_s=2.0) for n in stack.procs if n.startswith("notifier"))
    )


def _die_at(
    name: str,
    point: str,
    *,
    passes: int = 4,
    action: str = "kill",
    env: dict[str, str] | None = None,
    within_s: float = 90,
) -> Fault:
    """``name`` killed by itself at a chosen point of its work (a failpoint), or hung there
    until its watchdog ends it; then restarted."""

    async def fault(stack: Stack) -> None:
        ran = await stack.die_at(
            name, point, passes=passes, action=action, env=env, within_s=within_s
        )
        stack.notes.append(
            f"{name}: {action} at {point} (pass {passes}), process ended {ran:.1f} s "
            "after its start"
        )

    return fault


async def _poison(stack: Stack) -> None:
    await poison(stack.bootstrap, 10)


async def _broker_restart(stack: Stack) -> None:
    await stack.restart_broker_empty(down_s=2.0)


def _proxy_fault(
    which: str, *, hang: bool = False, reset: float | None = None, slice_max: int = 0
) -> tuple[Fault, Fault]:
    """A fault on one proxy (``kafka_proxy``, ``pg_proxy``, ``zalo_proxy``) and its clearing:
    a black hole (``hang``), connections reset (``reset``: 0 once, else every that many
    seconds), writes sliced into pieces of at most ``slice_max`` bytes."""

    resetting: list[asyncio.Task[None]] = []

    async def keep_resetting(proxy: FaultProxy, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            proxy.reset()

    async def fault(stack: Stack) -> None:
        proxy: FaultProxy = getattr(stack, which)
        if slice_max:
            proxy.slice_writes(slice_max)
        if reset is not None:
            proxy.reset()
            if reset > 0:
                resetting.append(asyncio.create_task(keep_resetting(proxy, reset)))
        if hang:
            proxy.hang()

    async def heal(stack: Stack) -> None:
        while resetting:
            task = resetting.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        getattr(stack, which).clear()

    return fault, heal


_kafka_hang, _kafka_heal = _proxy_fault("kafka_proxy", hang=True)
_kafka_resets, _kafka_heal_resets = _proxy_fault("kafka_proxy", reset=0, slice_max=7)
_pg_hang, _pg_heal = _proxy_fault("pg_proxy", hang=True)
_pg_resets, _pg_heal_resets = _proxy_fault("pg_proxy", reset=2.0, slice_max=5)
_zalo_hang, _zalo_heal = _proxy_fault("zalo_proxy", hang=True)
_zalo_resets, _zalo_heal_resets = _proxy_fault("zalo_proxy", reset=2.0, slice_max=7)
_zalo_down, _zalo_up = _proxy_down("zalo_proxy")


async def _pg_stop(stack: Stack) -> None:
    await stack.stop_postgres("immediate")


async def _pg_start(stack: Stack) -> None:
    await stack.start_postgres()


async def _group(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, members) of a consumer group, as the broker reports it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="reliability-groups")
    await admin.start()
    try:
        entry = (await admin.describe_consumer_groups([group]))[0].groups[0]
        return str(entry[2]), len(entry[5])
    finally:
        await admin.close()


async def _wait_group(
    stack: Stack, group: str, members: int, timeout: float, state: str = "Stable"
) -> float | None:
    """Seconds until ``group`` is ``state`` with ``members`` members (None: not in time)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with contextlib.suppress(Exception):
            if await _group(stack.bootstrap, group) == (state, members):
                return time.monotonic() - t0
        await asyncio.sleep(0.5)
    return None


def _triages(stack: Stack) -> int:
    return sum(1 for n in stack.procs if n.startswith("triage-"))


async def _second_triage(stack: Stack) -> None:
    await stack.add("triage-2")
    seconds = await _wait_group(stack, "triage", 2, 60)
    stack.notes.append(f"triage group Stable with 2 members {seconds and round(seconds, 1)} s")


async def _no_second_triage(stack: Stack) -> None:
    await stack.remove("triage-2")
    # The next scenario starts with the group settled on the one replica left.
    await _wait_group(stack, "triage", _triages(stack), 60)


async def _freeze_triage(stack: Stack) -> None:
    """SIGSTOP triage-1: no poll, no heartbeat; the group must evict it after the session
    timeout and give its partitions to the other replica (if any)."""
    others = _triages(stack) - 1
    stack.kill("triage-1", signal.SIGSTOP)
    stack.notes.append(f"triage-1 frozen, {others} other replica(s)")
    if others:
        seconds = await _wait_group(stack, "triage", others, 40)
        stack.notes.append(f"rebalanced to {others} member(s) in {_r(seconds)} s")
    else:
        # Nobody is left to rebalance to: note what the broker reports of the group.
        await asyncio.sleep(20)
        with contextlib.suppress(Exception):
            state, members = await _group(stack.bootstrap, "triage")
            stack.notes.append(
                f"20 s into the freeze the broker reports {state}, {members} member(s)"
            )


async def _thaw_triage(stack: Stack) -> None:
    stack.kill("triage-1", signal.SIGCONT)
    seconds = await _wait_group(stack, "triage", _triages(stack), 60)
    stack.notes.append(f"triage-1 resumed; group Stable with all members after {_r(seconds)} s")


def _r(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f}"


def _skew_both_ways(index: int) -> int:
    """Zalo's clock 10 minutes ahead of ingest's, then behind, in turns of 4 citizens (so that
    both directions have citizens with one and two tips, a photo, a shared phone number)."""
    return 600_000 if (index // 4) % 2 else -600_000


kafka_down, kafka_up = _proxy_down("kafka_proxy")
pg_down, pg_up = _proxy_down("pg_proxy")
#: The URL kinds (``MediaHost``) of the first attachments of ``media_faults``; later ones are
#: good photos and clips, which must still be stored while the bad ones are retried.
MEDIA_FAULTS = [
    "ok",
    "missing",
    "hang",
    "huge",
    "ok",
    "stall",
    "huge_video",
    "missing",
    "video",
    "hang",
    "huge",
    "ok",
]

SCENARIOS: list[Scenario] = [
    Scenario(
        "duplicates",
        "duplicate webhooks ×2–5, retries after later events (no fault)",
        dup_ratio=1.0,
        load_s=12,
    ),
    Scenario(
        "zalo_api",
        "Zalo API: 5xx, 429/-32, timeouts (also after write), latency",
        fault=_zalo_errors,
        clear=_clear_sandbox,
        fault_s=15,
        load_s=15,
    ),
    Scenario(
        "token_expiry",
        "access token expired, two notifier replicas",
        fault=_token_expiry,
        clear=_clear_sandbox,
        fault_s=8,
        load_s=12,
    ),
    Scenario(
        "broker_down",
        "broker unreachable 30 s (proxy down: refused, open connections reset)",
        fault=kafka_down,
        clear=kafka_up,
        fault_s=30,
        load_s=40,
        rate=4,
    ),
    Scenario(
        "broker_blip",
        "broker unreachable 5 s, 2 s after the load starts (a young consumer group)",
        fault=kafka_down,
        clear=kafka_up,
        fault_at=2,
        fault_s=5,
        load_s=8,
        rate=3,
        drain_s=60,
    ),
    Scenario(
        "broker_hang",
        "broker hangs 15 s (black hole, nothing refused)",
        fault=_kafka_hang,
        clear=_kafka_heal,
        fault_s=15,
        load_s=25,
        rate=4,
    ),
    Scenario(
        "broker_resets",
        "broker connections reset, writes sliced into ≤7-byte pieces for 10 s",
        fault=_kafka_resets,
        clear=_kafka_heal_resets,
        fault_s=10,
        load_s=18,
    ),
    Scenario(
        "postgres_down",
        "PostgreSQL unreachable 30 s",
        fault=pg_down,
        clear=pg_up,
        fault_s=30,
        load_s=40,
        rate=4,
    ),
    Scenario(
        "slow_db",
        "slow database: 3 s (±0.2 s) on every PostgreSQL response for 20 s",
        fault=_slow_db,
        clear=_fast_db,
        fault_s=20,
        load_s=28,
        rate=4,
    ),
    Scenario(
        "postgres_hang",
        "PostgreSQL hangs 15 s (black hole: connections kept, nothing answered)",
        fault=_pg_hang,
        clear=_pg_heal,
        fault_s=15,
        load_s=25,
        rate=4,
    ),
    Scenario(
        "postgres_resets",
        "PostgreSQL connections reset every 2 s, writes sliced into ≤5-byte pieces for 10 s",
        fault=_pg_resets,
        clear=_pg_heal_resets,
        fault_s=10,
        load_s=18,
        # Finding 17: attachments downloaded while the database was unreachable waited out
        # their lease (up to 271 s); every one must now be settled within the drain.
        media_bar=True,
    ),
    Scenario(
        "zalo_down",
        "Zalo API unreachable 20 s (refused, open connections reset)",
        fault=_zalo_down,
        clear=_zalo_up,
        fault_s=20,
        load_s=28,
        rate=4,
    ),
    Scenario(
        "zalo_hang",
        "Zalo API hangs 15 s (requests written, no answer: ambiguous sends)",
        fault=_zalo_hang,
        clear=_zalo_heal,
        fault_s=15,
        load_s=25,
        rate=4,
    ),
    Scenario(
        "zalo_resets",
        "Zalo API connections reset every 2 s, writes sliced into ≤7-byte pieces for 10 s",
        fault=_zalo_resets,
        clear=_zalo_heal_resets,
        fault_s=10,
        load_s=18,
    ),
    Scenario("triage_kill", "triage SIGKILLed mid-load", fault=_kill("triage-1"), load_s=15),
    Scenario(
        "triage_kill_before_commit",
        "triage SIGKILLs itself inside a batch's transaction (applied, not committed)",
        fault=_die_at("triage-1", "triage.before_commit", passes=2),
        load_s=30,
        rate=4,
    ),
    Scenario(
        "triage_kill_after_commit",
        "triage SIGKILLs itself after a batch's commit, before its offsets are committed",
        fault=_die_at("triage-1", "triage.after_commit", passes=2),
        load_s=30,
        rate=4,
    ),
    Scenario(
        "triage_handler_hang",
        "triage's handler hangs inside a batch's transaction while the process and its "
        "heartbeats go on (the watchdog after 20 s of no progress ends it; restarted)",
        fault=_die_at(
            "triage-1",
            "triage.before_commit",
            action="hang",
            env={"KETNOI_CONSUMER_STALL_S": "20"},
            within_s=120,
        ),
        load_s=30,
        rate=3,
    ),
    Scenario(
        "ingest_kill_after_publish",
        "ingest SIGKILLs itself after the broker acknowledged a batch, before its claim "
        "commits and before any 200",
        fault=_die_at("ingest-1", "ingest.after_publish", passes=20),
        load_s=15,
    ),
    Scenario(
        "ingest_kill_after_commit",
        "ingest SIGKILLs itself after a batch's claim and journal committed, before its 200s",
        fault=_die_at("ingest-1", "ingest.after_commit", passes=20),
        load_s=15,
    ),
    Scenario(
        "notifier_kill_after_send",
        "a notifier SIGKILLs itself after Zalo accepted a message, before the ledger records it",
        fault=_die_at("notifier-1", "notifier.after_send", passes=3),
        # The unarmed notifier-1 is SIGTERMed first; a stop that meets a rebalance takes up
        # to KETNOI_SHUTDOWN_TIMEOUT_S (20 s, finding 16), and the armed process must still
        # find acknowledgements to send after it has joined (with 15 s of load it once found
        # none and never reached its failpoint).
        load_s=45,
    ),
    Scenario(
        "notifier_kill",
        "both notifiers SIGKILLed while Zalo holds written sends",
        fault=_notifier_kill_in_flight,
        clear=_clear_sandbox,
        load_s=15,
    ),
    Scenario(
        "ingest_term", "ingest SIGTERMed mid-load", fault=_kill("ingest-1", sig=signal.SIGTERM)
    ),
    Scenario("poison", "10 poison records on zalo.events and notify.requests", fault=_poison),
    Scenario(
        "broker_restart_empty",
        "broker killed and restarted empty mid-load (in-memory Tansu)",
        fault=_broker_restart,
        load_s=15,
        drain_s=90,
    ),
    Scenario(
        "postgres_restart",
        "PostgreSQL stopped (pg_ctl -m immediate: every backend gone, no checkpoint) 20 s, "
        "then started (crash recovery)",
        fault=_pg_stop,
        clear=_pg_start,
        fault_s=20,
        load_s=30,
        rate=4,
    ),
    Scenario(
        "consumer_stalled",
        "triage-1 frozen (SIGSTOP) 45 s, past its session timeout, a second triage replica "
        "running; then resumed (SIGCONT)",
        setup=_second_triage,
        teardown=_no_second_triage,
        fault=_freeze_triage,
        clear=_thaw_triage,
        fault_s=45,
        load_s=50,
        rate=3,
    ),
    Scenario(
        "consumer_stalled_alone",
        "the only triage frozen (SIGSTOP) 45 s, past its session timeout; then resumed",
        fault=_freeze_triage,
        clear=_thaw_triage,
        fault_s=45,
        load_s=50,
        rate=3,
    ),
    Scenario(
        "clock_skew",
        "Zalo's timestamps 10 min ahead of ingest's clock for half the citizens, 10 min behind "
        "for the other half; duplicates and out-of-order deliveries",
        skew_ms=_skew_both_ways,
        dup_ratio=0.5,
        load_s=12,
    ),
    Scenario(
        "media_faults",
        "attachment URLs that 404, hang, stall after the headers, or exceed the media "
        "worker's caps (streamed, declared), among good photos and clips",
        media_every=2,
        media_plan=MEDIA_FAULTS,
        media_bar=True,
        load_s=15,
        rate=4,
        drain_s=180,
    ),
]
#: Not in the default run (``--only NAME`` runs them): scenarios that show an open finding.
DIAGNOSTIC: list[Scenario] = [
    Scenario(
        "photo_first",
        "every other citizen sends a photo or clip, then 2 s later the tip's text "
        "(finding 8, no fault)",
        media_every=2,
        media_first=True,
        load_s=8,
        rate=3,
        dup_ratio=0.0,
    ),
]
# The smoke run in `make test`: PostgreSQL, not the broker, goes away. A short broker outage
# sometimes leaves triage's consumer stalled after "Marking the coordinator dead" (finding 4 in
# docs/reliability.md, open); until that is fixed it stays in `make reliability` only, so that
# the default suite does not fail at random.
SMOKE = Scenario(
    "smoke",
    "duplicates ×2–5 + PostgreSQL unreachable 5 s",
    dup_ratio=1.0,
    load_s=8,
    rate=3,
    fault_at=2,
    fault=pg_down,
    clear=pg_up,
    fault_s=5,
    drain_s=60,
)


# ------------------------------------------------------------------------------- the runner


async def run_scenario(
    stack: Stack, sc: Scenario, rep: int, *, log: Callable[[str], None]
) -> Result:
    await stack.heal()
    stack.notes.clear()
    try:
        await sc.setup(stack)
        return await _run(stack, sc, rep, log=log)
    finally:
        await sc.teardown(stack)


async def _run(stack: Stack, sc: Scenario, rep: int, *, log: Callable[[str], None]) -> Result:
    dlq_before = await dead_letters(stack.bootstrap)
    driver = Driver(
        stack,
        tag=f"r{sc.name[:6]}{rep}x{int(time.time()) % 100000}",
        dup_ratio=sc.dup_ratio,
        media_every=sc.media_every,
        media_plan=sc.media_plan,
        skew_ms=sc.skew_ms,
        media_first=sc.media_first,
    )
    pids = stack.pids()
    if stack.media_host is not None:
        stack.media_host.hits.clear()
    window: dict[str, float] = {}
    notes: list[str] = []

    async def inject() -> None:
        await asyncio.sleep(sc.fault_at)
        window["start"] = time.monotonic()
        await sc.fault(stack)
        if sc.fault_s:
            await asyncio.sleep(max(0.0, window["start"] + sc.fault_s - time.monotonic()))
        await sc.clear(stack)
        window["end"] = time.monotonic()

    t0 = time.monotonic()
    injector = asyncio.create_task(inject())
    timings: dict[str, float] = {}

    async def load() -> None:
        await driver.run(seconds=sc.load_s, rate=sc.rate)
        timings["load_s"] = time.monotonic() - t0

    load_task = asyncio.create_task(load())
    recovery: float | None = None
    unseen = 0
    deadline = None
    while True:
        await asyncio.sleep(1.0)
        if injector.done() and injector.exception() is not None:
            notes.append(f"fault failed: {injector.exception()!r}")
            window.setdefault("start", t0)
            window.setdefault("end", time.monotonic())
        end = window.get("end")
        pending = end is not None and recovery is None and sc.fault is not _nothing
        if pending and await unseen_before(stack, driver.load, end or 0.0) == 0:
            recovery = time.monotonic() - (end or 0.0)
        if load_task.done():
            deadline = deadline or time.monotonic() + sc.drain_s
            counts = await count(stack, driver.load)
            unseen = counts["lost"]
            settled = recovery is not None or sc.fault is _nothing
            media_done = not sc.media_bar or counts["media_missing"] == 0
            if (
                unseen == 0 and injector.done() and settled and media_done
            ) or time.monotonic() > deadline:
                break
    timings["drained_s"] = time.monotonic() - t0
    if load_task.done() and load_task.exception() is not None:
        notes.append(f"load failed: {load_task.exception()!r}")  # fails the run
    await asyncio.sleep(3)  # a late duplicate would show by now
    counts = await count(stack, driver.load)
    unseen = counts["lost"]
    dlq_after = await dead_letters(stack.bootstrap)
    dlq = {k: v - dlq_before.get(k, 0) for k, v in dlq_after.items() if v - dlq_before.get(k, 0)}
    t_scan = time.monotonic()
    leaks, console_views = scan_coverage(
        await leak_scan(stack, driver.load.canaries(), msg_ids=driver.load.msg_ids())
    )
    timings["scan_s"] = time.monotonic() - t_scan
    notes.append(", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    notes += stack.notes
    load = driver.load
    notes.append(
        f"submit_info {load.submit_info}, console views scanned {console_views}, "
        f"media {counts['media_as_expected']}/{counts['media']} as expected "
        f"(stored {counts['media_stored']}, rejected {counts['media_rejected']}, failed "
        f"{counts['media_failed']}, missing {counts['media_missing']}, wrong "
        f"{counts['media_wrong']}), longest wait of a stored one "
        f"{counts['media_stored_lag_max_s']} s"
    )
    if stack.media_host is not None:
        notes.append(f"media host requests {dict(stack.media_host.hits)}")
    if sc.skew_ms is not None:
        notes.append("citizens per skew (ms): " + str(dict(load.skews_ms)))
    now_pids = stack.pids()
    restarts: dict[str, int] = {}
    for name, pid in pids.items():
        proc = stack.procs.get(name)
        if proc is not None and (proc.popen.poll() is not None or now_pids.get(name) != pid):
            service = name.split("-")[0]
            restarts[service] = restarts.get(service, 0) + 1
    if restarts:
        notes.append(f"processes ended or replaced during the run: {restarts}")
    start, end = window.get("start", t0), window.get("end", t0 + sc.load_s)
    during = [a for a in driver.load.attempts if start <= a.started <= max(end, start + 1)]
    p95 = percentile([a.latency for a in during], 0.95)
    failed = sum(1 for a in driver.load.attempts if a.status != 200)
    result = Result(
        scenario=sc.name,
        rep=rep,
        counts=counts,
        dlq=dlq,
        leaks=leaks,
        recovery_s=recovery,
        p95_s=p95,
        attempts_failed=failed,
        unseen_end=unseen,
        notes=notes,
        media_bar=sc.media_bar,
        restarts=restarts,
    )
    log(
        f"{sc.name} #{rep}: {'PASS' if result.passed else 'FAIL'} {counts} dlq={dlq} "
        f"leaks={leaks} recovery={recovery} p95={p95} failed_attempts={failed} notes={notes}"
    )
    return result


def worst(results: list[Result]) -> Result:
    return max(results, key=lambda r: r.badness())


def _fmt(v: float | None, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def table(rows: list[tuple[Scenario, list[Result]]]) -> str:
    head = (
        "| scenario | runs | citizens | tips sent | ingest 200 | persisted | routed | replies "
        "| lost | dup cases | dup replies | dead-lettered | recovery s | ingest p95 s | leaks "
        "| attachments as expected | result |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for sc, results in rows:
        w = worst(results)
        c = w.counts
        dlq = ", ".join(f"{k} {v}" for k, v in sorted(w.dlq.items())) or "0"
        leaks = sum(w.leaks.values())
        passed = sum(r.passed for r in results)
        recoveries = [r.recovery_s for r in results]
        recovery = None if None in recoveries else max(r or 0.0 for r in recoveries)
        verdict = (
            "pass" if passed == len(results) else f"FAIL ({len(results) - passed}/{len(results)})"
        )
        lines.append(
            f"| {sc.name} — {sc.title} | {len(results)} | {c['citizens']} | {c['sent']} "
            f"| {c['ingest_acked']} | {c['persisted']} | {c['routed']} | {c['replies']} "
            f"| {c['lost']} | {c['dup_cases'] + c['dup_case_messages']} | {c['dup_replies']} "
            f"| {dlq} | {_fmt(recovery)} "
            f"| {_fmt(max((r.p95_s or 0) for r in results), 2)} | {leaks} "
            f"| {c.get('media_as_expected', 0)}/{c.get('media', 0)} | {verdict} |"
        )
    return head + "\n".join(lines) + "\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}){mem}, {system}"


MARK_START = "<!-- reliability-results:start -->"
MARK_END = "<!-- reliability-results:end -->"


def write_doc(text: str, path: Path) -> None:
    doc = path.read_text() if path.exists() else f"# Reliability\n\n{MARK_START}\n{MARK_END}\n"
    if MARK_START not in doc:
        doc += f"\n{MARK_START}\n{MARK_END}\n"
    before, rest = doc.split(MARK_START, 1)
    _, after = rest.split(MARK_END, 1)
    path.write_text(before + MARK_START + "\n" + text + MARK_END + after)


async def main(args: argparse.Namespace) -> int:
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    chosen += [s for s in DIAGNOSTIC if s.name in args.only]
    log = lambda line: print(line, flush=True)  # noqa: E731
    stack = Stack()
    t0 = time.monotonic()
    rows: list[tuple[Scenario, list[Result]]] = []
    try:
        await stack.start()
        log(f"stack up in {time.monotonic() - t0:.1f} s; logs in {stack.logs}")
        results: dict[str, list[Result]] = {s.name: [] for s in chosen}
        for rep in range(1, args.reps + 1):
            for sc in chosen:
                results[sc.name].append(await run_scenario(stack, sc, rep, log=log))
        rows = [(s, results[s.name]) for s in chosen]
    finally:
        await stack.stop()
    text = (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; {args.reps} run(s) per "
        f"scenario, worst run shown; {time.monotonic() - t0:.0f} s in all. Layout: "
        + ", ".join(f"{n} {s}" for s, n in stack.layout.items())
        + " process(es), embedded Tansu and PostgreSQL behind fault proxies.\n\n"
        + table(rows)
    )
    print("\n" + text)
    if args.write:
        write_doc(text, ROOT / "docs" / "reliability.md")
    return 0 if all(r.passed for _, rs in rows for r in rs) else 1


if __name__ == "__main__":
    warnings.filterwarnings("ignore", module="platformdirs")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--no-write", dest="write", action="store_false")
    sys.exit(asyncio.run(main(parser.parse_args())))
