"""Fixtures shared by the notifier's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest


@pytest.fixture
async def inside_a_minute() -> None:
    """Zalo's and the limiter's budgets are per calendar minute: start well inside one."""
    second = datetime.now(UTC).second
    if second >= 55:
        await asyncio.sleep(61 - second)


@pytest.fixture
async def replica_pool(database_url: str, inside_a_minute: None) -> AsyncIterator[asyncpg.Pool]:
    """The connections of a second notifier replica (the rate limit is shared by all)."""
    other = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield other
    await other.close()
