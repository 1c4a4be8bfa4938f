"""OA access tokens: sealed in PostgreSQL, refreshed once across every notifier replica.

Zalo's access tokens last about 25 hours (``expires_in`` arrives as a string) and refresh
tokens are single-use (../shared/zalo/README.md §4): two replicas refreshing at once would burn
the grant. So a refresh runs under a PostgreSQL advisory lock per OA, re-reads the row inside
the lock (another replica may have refreshed meanwhile), and commits the new pair before the
access token is used. A refresh that Zalo refuses marks the OA "needs re-authorisation": its
messages wait, and the state is visible to the console.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
import structlog
from prometheus_client import Counter, Gauge

from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.metrics import REGISTRY

from .zalo import NeedsTokenError, PermanentError, TokenPair, ZaloClient

__all__ = ["NeedsReauthorisationError", "TokenStore"]

log = structlog.get_logger("ketnoi.notifier")

REFRESHES: Final = Counter(
    "ketnoi_notifier_token_refreshes_total",
    "OA token refreshes, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
NEEDS_REAUTH: Final = Gauge(
    "ketnoi_notifier_oas_needing_reauthorisation",
    "OAs whose token cannot be refreshed.",
    registry=REGISTRY,
)
_PURPOSE_ACCESS: Final = "zalo_access_token"
_PURPOSE_REFRESH: Final = "zalo_refresh_token"


class NeedsReauthorisationError(Exception):
    """The OA's grant is lost: an administrator must run ``ketnoi zalo authorize``."""


@dataclass
class TokenStore:
    pool: asyncpg.Pool
    client: ZaloClient
    protector: IdentityProtector
    app_id: str
    app_secret: str
    #: Refresh this long before expiry (Zalo: 25 h tokens; refresh about 20 h in).
    margin: timedelta = timedelta(hours=5)
    #: A token read from the database is reused this long without reading it again (one
    #: query and one unseal less per send). A token another replica replaced meanwhile is
    #: refused by Zalo and read again at once (``invalid=``).
    cache_s: float = 10.0
    _cache: dict[str, tuple[float, str, datetime]] = field(
        default_factory=dict, init=False, repr=False
    )

    async def save(
        self, oa_id: str, pair: TokenPair, *, conn: asyncpg.Connection | None = None
    ) -> None:
        """Store a pair (sealed); clears the re-authorisation flag."""
        self._cache.pop(oa_id, None)
        sql = """INSERT INTO oa_tokens (oa_id, sealed_access, sealed_refresh, access_expires_at,
                                        refreshed_at, needs_reauth, last_error)
                 VALUES ($1, $2, $3, $4, now(), false, NULL)
                 ON CONFLICT (oa_id) DO UPDATE SET sealed_access = EXCLUDED.sealed_access,
                   sealed_refresh = EXCLUDED.sealed_refresh,
                   access_expires_at = EXCLUDED.access_expires_at, refreshed_at = now(),
                   needs_reauth = false, last_error = NULL"""
        args = (
            oa_id,
            self.protector.seal(pair.access_token, purpose=_PURPOSE_ACCESS),
            self.protector.seal(pair.refresh_token, purpose=_PURPOSE_REFRESH),
            datetime.now(UTC) + timedelta(seconds=pair.expires_in_s),
        )
        if conn is not None:
            await conn.execute(sql, *args)
        else:
            await self.pool.execute(sql, *args)

    async def access_token(
        self, oa_id: str, *, force_refresh: bool = False, invalid: str | None = None
    ) -> str:
        """A valid access token for ``oa_id``, refreshing it (once, across replicas) when it
        is about to expire or when Zalo said it is invalid (``force_refresh``).

        ``invalid``: the token Zalo just refused. When the stored token is already another
        one, a replica refreshed in the meantime: that one is used, not refreshed again (two
        replicas refreshing in turn would each invalidate the other's fresh token — found by
        the reliability harness: acknowledgements failed for good on token expiry)."""
        cached = self._cache.get(oa_id)
        if (
            cached is not None
            and not force_refresh
            and invalid is None
            and time.monotonic() - cached[0] < self.cache_s
            and cached[2] - self.margin > datetime.now(UTC)
        ):
            return cached[1]
        self._cache.pop(oa_id, None)
        row = await self.pool.fetchrow("SELECT * FROM oa_tokens WHERE oa_id = $1", oa_id)
        if row is None:
            raise NeedsReauthorisationError(f"no token stored for OA {oa_id}")
        if row["needs_reauth"]:
            raise NeedsReauthorisationError(f"OA {oa_id} needs re-authorisation")
        current = self.protector.unseal(row["sealed_access"], purpose=_PURPOSE_ACCESS)
        if invalid is None and not force_refresh:
            self._cache[oa_id] = (time.monotonic(), current, row["access_expires_at"])
        if invalid is not None:
            if current != invalid:
                REFRESHES.labels(outcome="done_by_another").inc()
                return current
            force_refresh = True
        if not force_refresh and row["access_expires_at"] - self.margin > datetime.now(UTC):
            return current
        return await self._refresh(oa_id, seen=row["sealed_access"])

    async def _refresh(self, oa_id: str, *, seen: str) -> str:
        refused: Exception | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"oa-token:{oa_id}"
            )
            row = await conn.fetchrow("SELECT * FROM oa_tokens WHERE oa_id = $1 FOR UPDATE", oa_id)
            if row is None or row["needs_reauth"]:
                raise NeedsReauthorisationError(f"OA {oa_id} needs re-authorisation")
            if row["sealed_access"] != seen:
                # Another replica refreshed while we waited for the lock: use its token.
                REFRESHES.labels(outcome="done_by_another").inc()
                return self.protector.unseal(row["sealed_access"], purpose=_PURPOSE_ACCESS)
            refresh_token = self.protector.unseal(row["sealed_refresh"], purpose=_PURPOSE_REFRESH)
            try:
                pair = await self.client.refresh(
                    app_id=self.app_id, secret_key=self.app_secret, refresh_token=refresh_token
                )
            except (PermanentError, NeedsTokenError) as exc:
                await conn.execute(
                    "UPDATE oa_tokens SET needs_reauth = true, last_error = $2 WHERE oa_id = $1",
                    oa_id,
                    f"{type(exc).__name__} {exc.code}",
                )
                REFRESHES.labels(outcome="refused").inc()
                NEEDS_REAUTH.set(
                    await conn.fetchval("SELECT count(*) FROM oa_tokens WHERE needs_reauth")
                )
                log.error(  # noqa: TRY400 - the code says why; a traceback adds nothing
                    "OA token refresh refused; the OA needs re-authorisation",
                    oa_id=oa_id,
                    code=exc.code,
                )
                refused = exc  # raised after the commit, so the flag is kept
            else:
                # The refresh token just used is dead: the new pair is committed before use.
                await self.save(oa_id, pair, conn=conn)
        if refused is not None:
            raise NeedsReauthorisationError(f"OA {oa_id} needs re-authorisation") from refused
        REFRESHES.labels(outcome="refreshed").inc()
        return pair.access_token
