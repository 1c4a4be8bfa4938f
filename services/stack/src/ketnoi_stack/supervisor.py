"""Runs the Ketnoi services as child processes, restarts a crashed one with backoff, and stops
them all on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from .embedded import set_pdeathsig

__all__ = ["Child", "Supervisor"]

log = structlog.get_logger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self._stopping = False

    def add(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Child:
        child = Child(name=name, argv=argv, env=env, log_path=log_path)
        self.children.append(child)
        return child

    async def _spawn(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with child.log_path.open("ab") as out:
            child.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ketnoi_shared",
                *child.argv,
                env=child.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=set_pdeathsig,
                start_new_session=True,  # Ctrl-C reaches us; we stop children in order
            )
        child.started_at = time.monotonic()

    async def _watch(self, child: Child) -> None:
        while not self._stopping:
            await self._spawn(child)
            assert child.process is not None
            code = await child.process.wait()
            if self._stopping:
                return
            child.restarts += 1
            ran = time.monotonic() - child.started_at
            delay = 1.0 if ran > 30 else min(30.0, 2.0 ** min(child.restarts, 5))
            log.error(
                "service exited, restarting",
                service=child.name,
                code=code,
                restarts=child.restarts,
                delay_s=delay,
                log=str(child.log_path),
            )
            await asyncio.sleep(delay)

    async def start(self) -> None:
        for child in self.children:
            child.task = asyncio.create_task(self._watch(child), name=f"watch-{child.name}")
        # let every child get spawned before returning
        while any(c.process is None for c in self.children):  # noqa: ASYNC110 - brief start-up poll
            await asyncio.sleep(0.02)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        procs = [c.process for c in self.children if c.process and c.process.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), timeout)
        except TimeoutError:
            for p in procs:
                if p.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in procs))
        for c in self.children:
            if c.task:
                c.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await c.task
