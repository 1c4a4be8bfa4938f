"""Run ``ketnoi up`` as a newcomer does, on free ports and a private data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ketnoi_stack.embedded import free_port

__all__ = ["run_until_ready", "stack_env"]


def stack_env(data_dir: Path) -> dict[str, str]:
    """The environment of a stack that uses free ports for the broker and every service."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KETNOI_KAFKA_BOOTSTRAP", "KETNOI_DATABASE_URL")
    }
    env.update(
        {
            "KETNOI_DATA_DIR": str(data_dir),
            "KETNOI_EMBEDDED_KAFKA_PORT": str(free_port()),
            "KETNOI_LOG_FORMAT": "json",
        }
    )
    for ep in entry_points(group="ketnoi.services"):
        env[f"KETNOI_{ep.name.upper()}_PORT"] = str(free_port())
    return env


def run_until_ready(
    env: dict[str, str], data_dir: Path, timeout: float = 210
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketnoi_shared", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    state_file = data_dir / "endpoints.json"
    deadline = time.monotonic() + timeout
    while not state_file.exists():
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode()[-3000:] if proc.stdout else "")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"ketnoi up did not become ready in {timeout:.0f} s")
        time.sleep(0.2)
    return proc, json.loads(state_file.read_text())
