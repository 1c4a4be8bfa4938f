"""The reliability harness, short: duplicates ×2–5 and out-of-order deliveries while PostgreSQL
is unreachable for 5 s; nothing lost, nothing duplicated, no identity leaked (``make test``).
The full set of scenarios, repeated, is ``make reliability``."""

from __future__ import annotations

import warnings

import pytest

from .harness import Stack
from .scenarios import SMOKE, run_scenario

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
async def test_smoke_duplicates_and_a_short_database_outage():
    warnings.filterwarnings("ignore", module="platformdirs")
    stack = Stack(layout={"ingest": 1, "triage": 1, "notifier": 1}, log_level="INFO")
    lines: list[str] = []
    try:
        await stack.start()
        result = await run_scenario(stack, SMOKE, 1, log=lines.append)
    finally:
        await stack.stop(keep_logs=False)
    c = result.counts
    assert c["sent"] > 0
    assert c["ingest_acked"] == c["sent"], lines
    assert c["lost"] == 0, lines
    assert c["dup_cases"] == c["dup_case_messages"] == c["dup_replies"] == 0, lines
    assert result.leaks == {}, lines
    assert result.unseen_end == 0
    assert result.recovery_s is not None, "unseen must come back to 0 after the outage"
