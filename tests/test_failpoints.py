"""Failpoints kill the process at the chosen pass, and only when armed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

SCRIPT = """
import asyncio
from ketnoi_shared.failpoints import failpoint

async def main():
    for i in range(1, 6):
        await failpoint("a.point")
        await failpoint("other.point")
        print("pass", i, flush=True)

asyncio.run(main())
"""


def _passes(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split()[1] for line in done.stdout.splitlines() if line.startswith("pass ")]


def _run(spec: str | None, script: str = SCRIPT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KETNOI_FAILPOINTS"}
    if spec is not None:
        env["KETNOI_FAILPOINTS"] = spec
    return subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_armed_point_kills_the_process_on_its_nth_pass() -> None:
    done = _run("a.point=3")
    assert done.returncode == -signal.SIGKILL
    assert _passes(done) == ["1", "2"]
    assert "failpoint reached" in done.stdout and "a.point" in done.stdout


def test_several_points_and_the_first_to_fire_wins() -> None:
    done = _run("a.point=4, other.point=2")
    assert done.returncode == -signal.SIGKILL
    assert _passes(done) == ["1"]
    assert "other.point" in done.stdout


def test_a_hanging_point_never_returns_and_the_process_goes_on() -> None:
    script = SCRIPT.replace(
        "asyncio.run(main())",
        "async def outer():\n"
        "    task = asyncio.create_task(main())\n"
        "    await asyncio.sleep(0.5)\n"
        "    print('alive', task.done(), flush=True)\n"
        "asyncio.run(outer())",
    )
    done = _run("a.point=2:hang", script)
    assert done.returncode == 0, done.stderr
    assert _passes(done) == ["1"]
    assert "alive False" in done.stdout, "the loop ran on; the hung pass never returned"


def test_nothing_happens_when_not_armed() -> None:
    for spec in (None, "", "unrelated.point=1"):
        done = _run(spec)
        assert done.returncode == 0, done.stderr
        assert _passes(done) == ["1", "2", "3", "4", "5"]
