"""Failpoints: named places in the services where a process can be made to die on purpose, so
the reliability harness can kill it at a chosen point ("after the database commit, before the
offset commit") instead of at a random moment.

Off unless ``KETNOI_FAILPOINTS`` is set in the process's environment, e.g.
``KETNOI_FAILPOINTS=triage.after_commit=3`` (SIGKILL itself on the 3rd pass through
``triage.after_commit``), or ``triage.before_commit=3:hang`` (the 3rd pass never returns: a
handler that hangs while the process, its heartbeats included, goes on); several points
separated by commas. When it is not set, :func:`failpoint` is one lookup in an empty dict. Points
in the code:

==========================  =================================================================
``ingest.after_publish``    events acknowledged by the broker, claim not committed, no 200
``ingest.after_commit``     claim and journal committed, no 200 sent yet
``triage.before_commit``    a batch applied inside its transaction, not committed
``triage.after_commit``     a batch committed, its offsets not committed
``notifier.after_send``     Zalo accepted the message, the ledger and the result not written
==========================  =================================================================

Written here rather than taken from a library: the Python failpoint packages on PyPI are
unmaintained, and what is needed is a counter per name and ``os.kill``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Final

import structlog

__all__ = ["ENV", "failpoint"]

ENV: Final = "KETNOI_FAILPOINTS"

log = structlog.get_logger("ketnoi.failpoints")


@dataclass(slots=True)
class _Armed:
    passes_left: int
    action: str  # "kill" or "hang"


def _parse(spec: str) -> dict[str, _Armed]:
    points: dict[str, _Armed] = {}
    for item in spec.split(","):
        name, _, rest = item.strip().partition("=")
        count, _, action = rest.partition(":")
        if name:
            passes = max(1, int(count)) if count.strip().isdigit() else 1
            points[name] = _Armed(passes, action.strip() or "kill")
    return points


_ARMED: Final = _parse(os.environ.get(ENV, ""))


async def failpoint(name: str) -> None:
    """Die here (SIGKILL: no cleanup, no flush, as a crash), or hang here for good, if
    ``name`` is armed and this is its last pass."""
    point = _ARMED.get(name)
    if point is None:
        return
    point.passes_left -= 1
    if point.passes_left != 0:
        return
    if point.action == "hang":
        log.warning("failpoint reached: hanging", failpoint=name)
        await asyncio.Event().wait()
    log.warning("failpoint reached: killing the process", failpoint=name)
    os.kill(os.getpid(), signal.SIGKILL)
