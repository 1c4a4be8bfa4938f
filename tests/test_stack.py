"""`ketnoi up` as a newcomer runs it: everything ready, Ctrl-C leaves nothing behind, the
second start reuses the database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from ketnoi_sandbox.scenario import run_scenario
from tests.support.stack import run_until_ready, stack_env

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def _env(data_dir: Path) -> dict[str, str]:
    return stack_env(data_dir)


def _leftovers(data_dir: Path, env: dict[str, str]) -> list[str]:
    """Processes of this stack still alive: its postgres (by data dir) or broker (by port)."""
    broker_url = f"tcp://127.0.0.1:{env['KETNOI_EMBEDDED_KAFKA_PORT']}"
    found = []
    for proc in psutil.process_iter(["cmdline", "name", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if str(data_dir) in cmd or broker_url in cmd:
            found.append(f"{proc.pid} {cmd[:120]}")
    return found


def _run_until_ready(env: dict[str, str], data_dir: Path) -> tuple[subprocess.Popen, dict]:
    return run_until_ready(env, data_dir)


def test_up_ready_ctrl_c_clean_and_database_reused(tmp_path: Path):
    data_dir = tmp_path / "ketnoi-data"
    env = _env(data_dir)
    proc, state = _run_until_ready(env, data_dir)
    try:
        assert state["kafka_embedded"] and state["database_embedded"]
        assert set(state["services"]) >= {
            "ingest",
            "triage",
            "notifier",
            "sandbox",
            "media",
            "news",
            "console",
        }
        for name, svc in state["services"].items():
            assert svc["ready"], (name, Path(svc["log"]).read_text()[-3000:])
            assert httpx.get(svc["readyz"], timeout=5).status_code == 200, name
            assert httpx.get(svc["livez"], timeout=5).status_code == 200, name
            assert b"ketnoi_" in httpx.get(svc["metrics"], timeout=5).content, name
        secrets = data_dir / "secrets"
        assert oct(secrets.stat().st_mode & 0o777) == "0o700"
        for f in secrets.iterdir():
            assert oct(f.stat().st_mode & 0o777) == "0o600", f
        # Leave a mark in the database to find it again on the next start.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import asyncio, asyncpg, sys\n"
                "async def m():\n"
                "    c = await asyncpg.connect(sys.argv[1])\n"
                "    await c.execute(\"INSERT INTO inbox VALUES ('stack-test', 'mark')\")\n"
                "    await c.close()\n"
                "asyncio.run(m())",
                state["database_url"],
            ],
            check=True,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"Ketnoi is up" in out
    time.sleep(0.5)
    assert _leftovers(data_dir, env) == []
    assert not (data_dir / "endpoints.json").exists()

    env = _env(data_dir)  # new ports, same data directory
    proc, state = _run_until_ready(env, data_dir)
    try:
        check = subprocess.run(
            [
                sys.executable,
                "-c",
                "import asyncio, asyncpg, sys\n"
                "async def m():\n"
                "    c = await asyncpg.connect(sys.argv[1])\n"
                '    print(await c.fetchval("SELECT count(*) FROM inbox WHERE consumer = '
                "'stack-test'\"))\n"
                "    await c.close()\n"
                "asyncio.run(m())",
                state["database_url"],
            ],
            check=True,
            capture_output=True,
        )
        assert check.stdout.strip() == b"1", "the second start reuses the database"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"0 migration(s) applied" in out
    time.sleep(0.5)
    assert _leftovers(data_dir, env) == []


def test_a_citizen_tip_gets_exactly_one_acknowledgement_on_the_phone(tmp_path: Path):
    """End to end on the embedded stack: the simulated citizen sends text, a photo and a
    location to a commune OA; exactly one acknowledgement with the case reference arrives."""
    data_dir = tmp_path / "demo"
    env = _env(data_dir)
    proc, state = _run_until_ready(env, data_dir)
    sandbox = state["services"]["sandbox"]["url"]
    scenario = ROOT / "services" / "sandbox" / "scenarios" / "tip_text_photo_location.yaml"
    try:
        # Text, photo and location; the scenario checks that exactly one reply arrives and
        # that it carries the case reference, the promise of secrecy and the number 113.
        result = run_scenario(scenario, sandbox_url=sandbox)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    (ack,) = [r["text"] for r in result.replies]
    assert ack.startswith("Nếu đang có nguy hiểm"), "an emergency: 113/114/115 first"
    assert _leftovers(data_dir, env) == []
