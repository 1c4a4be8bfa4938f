"""Delivery of one ``notify.requests.v1`` request, at most once.

For each request (its ``event_id`` is the request id):

1. the ledger row says whether it was already sent (a redelivery is answered from it) or
   whether an earlier attempt ended without knowing (then Zalo's conversation history is
   checked before sending again, so a timeout after the request was written does not send
   twice);
2. the interaction window is checked: no call to Zalo outside the 7 days (fail fast, the
   console tells the officer why);
3. the OA's access token comes from the token store (refreshed once across replicas); an OA
   that needs re-authorisation parks the request — it waits, it is not lost;
4. the text is sent (split in order past 2,000 characters) with jittered exponential retries
   on retryable errors, bounded in attempts and time (stamina); an invalid token is refreshed
   once and the send retried;
5. the outcome lands in the ledger and, through the outbox in the same transaction, in
   ``notify.results.v1`` with a plain-Vietnamese reason for officers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
import stamina
import structlog

from ketnoi_shared.contracts import (
    NOTIFY_RESULTS,
    DeliveryErrorKind,
    DeliveryStatus,
    NotifyRequest,
    NotifyResult,
)
from ketnoi_shared.db import enqueue
from ketnoi_shared.failpoints import failpoint
from ketnoi_shared.identity import IdentityProtector

from .ratelimit import SharedRateLimiter
from .tokens import NeedsReauthorisationError, TokenStore
from .zalo import (
    AmbiguousError,
    NeedsTokenError,
    OutsideWindowError,
    RateLimitedError,
    RetryableError,
    SentMessage,
    UnreachableError,
    ZaloClient,
    ZaloError,
)

__all__ = ["WINDOW", "Delivery", "RetriesExhaustedError"]

log = structlog.get_logger("ketnoi.notifier")

#: Consultation messages may go only to citizens who interacted in the last 7 days.
WINDOW: Final = timedelta(days=7)


class RetriesExhaustedError(Exception):
    """A request failed every attempt on retryable errors: settled as failed, and for the
    dead-letter topic, with its history."""

    def __init__(self, request_id: str, *, attempts: int, code: int | None, kind: str) -> None:
        super().__init__(f"{request_id}: {attempts} attempts, last {kind} {code}")
        self.history = {
            "request_id": request_id,
            "attempts": attempts,
            "last_code": code,
            "last_kind": kind,
        }


def _kind(exc: ZaloError) -> DeliveryErrorKind:
    if isinstance(exc, RateLimitedError):
        return DeliveryErrorKind.RATE_LIMITED
    if isinstance(exc, RetryableError):
        return DeliveryErrorKind.RETRYABLE
    if isinstance(exc, NeedsTokenError):
        return DeliveryErrorKind.NEEDS_TOKEN
    if isinstance(exc, OutsideWindowError):
        return DeliveryErrorKind.OUTSIDE_WINDOW
    return DeliveryErrorKind.PERMANENT


#: Sends retried with another token after Zalo refused one (-216/-220).
_TOKEN_RETRIES = 2


@dataclass
class Delivery:
    pool: asyncpg.Pool
    client: ZaloClient
    tokens: TokenStore
    protector: IdentityProtector
    attempts: int = 5
    timeout_s: float = 60.0
    limiter: SharedRateLimiter | None = None
    wait_initial_s: float = 0.2
    wait_max_s: float = 10.0
    wait_jitter_s: float = 1.0

    async def deliver(self, request: NotifyRequest) -> DeliveryStatus:
        """Deliver ``request`` unless the ledger says it already was; returns the outcome."""
        row = await self.pool.fetchrow(
            """INSERT INTO notify_ledger (request_id, oa_id, status) VALUES ($1, $2, 'sending')
               ON CONFLICT (request_id) DO UPDATE SET updated_at = now()
               RETURNING status, attempts, xmax <> 0 AS existed""",
            request.event_id,
            request.oa_id,
        )
        assert row is not None
        if row["status"] in (DeliveryStatus.SENT.value, DeliveryStatus.FAILED.value):
            return DeliveryStatus(row["status"])  # a redelivery: already settled
        user_id = self.protector.unseal(request.recipient.sealed_user_id, purpose="zalo_user_id")
        if row["existed"] and row["attempts"] > 0:
            # An earlier attempt may have reached Zalo: look before sending again.
            found = await self._already_delivered(request, user_id)
            if found:
                return await self._settle(
                    request, DeliveryStatus.SENT, found, None, attempt=row["attempts"]
                )
        if await self._outside_window(request):
            exc = OutsideWindowError("no interaction in 7 days", code=-230)
            return await self._settle(
                request, DeliveryStatus.FAILED, [], exc, attempt=row["attempts"] + 1
            )
        try:
            sent = await self._send(request, user_id)
        except (NeedsReauthorisationError, NeedsTokenError):
            # No usable token: the OA needs re-authorisation, or Zalo refused every token it
            # was given (a refresh each time). Not a property of the message: it waits, and
            # resume_parked tries again once the OA has a token that is not marked bad
            # (reliability finding 11: it was settled failed, and the citizen got nothing).
            await self.pool.execute(
                "UPDATE notify_ledger SET status = 'waiting_token', updated_at = now() "
                "WHERE request_id = $1",
                request.event_id,
            )
            await self._park(request)
            return DeliveryStatus.WAITING_TOKEN
        except RetryableError as exc:
            # The retry budget is spent: the request ends here, and goes to the DLQ too.
            await self._settle(request, DeliveryStatus.FAILED, [], exc, attempt=row["attempts"] + 1)
            attempts = await self.pool.fetchval(
                "SELECT attempts FROM notify_ledger WHERE request_id = $1", request.event_id
            )
            raise RetriesExhaustedError(
                request.event_id, attempts=attempts or 0, code=exc.code, kind=_kind(exc).value
            ) from exc
        except ZaloError as exc:
            return await self._settle(
                request, DeliveryStatus.FAILED, [], exc, attempt=row["attempts"] + 1
            )
        await failpoint("notifier.after_send")
        return await self._settle(
            request, DeliveryStatus.SENT, sent, None, attempt=row["attempts"] + 1
        )

    async def _outside_window(self, request: NotifyRequest) -> bool:
        last = await self.pool.fetchval(
            """SELECT last_interaction_at FROM interaction_window
               WHERE oa_id = $1 AND citizen_pseudonym = $2""",
            request.oa_id,
            request.recipient.pseudonym,
        )
        # Unknown (the window consumer may lag): let Zalo decide; -230 ends it anyway.
        return last is not None and datetime.now(UTC) - last > WINDOW

    async def _send(self, request: NotifyRequest, user_id: str) -> list[SentMessage]:
        refused: str | None = None  # the token Zalo said is invalid, if any
        refreshes = 0
        while True:
            token = await self.tokens.access_token(request.oa_id, invalid=refused)
            # Counted before the call: after a crash, a counted attempt may have reached Zalo.
            await self.pool.execute(
                "UPDATE notify_ledger SET attempts = attempts + 1, updated_at = now() "
                "WHERE request_id = $1",
                request.event_id,
            )
            failures = 0

            def retry(exc: Exception) -> bool:
                # Zalo's rate limit is per time window: a burst of -32 answers is waited out
                # within the time budget, not counted against the attempts (found by the
                # reliability harness: 15 rate-limited answers in a row failed
                # acknowledgements for good).
                # Zalo unreachable (nothing sent) is waited out the same way: an outage of
                # Zalo is not a property of the message (the harness's zalo_down: 20 s of
                # refused connections spent the attempts in 3 s and lost 20 of 112
                # acknowledgements to the DLQ).
                nonlocal failures
                if isinstance(exc, RateLimitedError | UnreachableError):
                    return True
                if isinstance(exc, RetryableError):
                    failures += 1
                    return failures < self.attempts
                return False

            try:
                async for attempt in stamina.retry_context(
                    on=retry,
                    attempts=None,
                    timeout=self.timeout_s,
                    wait_initial=self.wait_initial_s,
                    wait_max=self.wait_max_s,
                    wait_jitter=self.wait_jitter_s,
                ):
                    with attempt:
                        try:
                            return await self._call(request, token, user_id)
                        except AmbiguousError:
                            # It may have been delivered: look before sending it again.
                            found = await self._already_delivered(request, user_id)
                            if found:
                                return found
                            raise
            except NeedsTokenError:
                # Zalo says the token is invalid: take the one another replica refreshed, or
                # refresh it; a few times at most (replicas refreshing at once), then give up.
                refreshes += 1
                if refreshes > _TOKEN_RETRIES:
                    raise
                refused = token
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, request: NotifyRequest, token: str, user_id: str) -> list[SentMessage]:
        if self.limiter is not None:
            await self.limiter.acquire()
        recipient = request.recipient
        if recipient.anonymous and recipient.sealed_conversation_id:
            conversation = self.protector.unseal(
                recipient.sealed_conversation_id, purpose="zalo_conversation_id"
            )
            return await self.client.send_anonymous_text(
                token, anonymous_id=user_id, conversation_id=conversation, text=request.text
            )
        return await self.client.send_text(
            token, user_id=user_id, text=request.text, quote_message_id=request.quote_message_id
        )

    async def _already_delivered(self, request: NotifyRequest, user_id: str) -> list[SentMessage]:
        try:
            token = await self.tokens.access_token(request.oa_id)
            history = await self.client.conversation(token, user_id=user_id, count=10)
        except (ZaloError, NeedsReauthorisationError):
            return []
        wanted = request.text.strip()
        return [
            SentMessage(message_id=str(m.get("message_id", "")), user_id=user_id, sent_time_ms=None)
            for m in history
            if str(m.get("message") or m.get("text") or "").strip() == wanted
        ][:1]

    async def _park(self, request: NotifyRequest) -> None:
        await self.pool.execute(
            """INSERT INTO notify_parked (request_id, oa_id, request) VALUES ($1, $2, $3::jsonb)
               ON CONFLICT (request_id) DO NOTHING""",
            request.event_id,
            request.oa_id,
            request.model_dump_json(),
        )

    async def resume_parked(self) -> int:
        """Deliver parked requests of OAs that have a valid token again."""
        rows = await self.pool.fetch(
            """SELECT p.request FROM notify_parked p JOIN oa_tokens t ON t.oa_id = p.oa_id
               WHERE NOT t.needs_reauth ORDER BY p.parked_at LIMIT 100"""
        )
        done = 0
        for r in rows:
            request = NotifyRequest.model_validate(json.loads(r["request"]))
            # Every replica runs this: only the one that moves the request out of
            # waiting_token sends it (two sent it twice — reliability harness, token_expiry).
            # A claim left by a replica that died is taken again after 5 minutes.
            claimed = await self.pool.fetchval(
                """UPDATE notify_ledger SET status = 'sending', updated_at = now()
                   WHERE request_id = $1 AND (status = 'waiting_token'
                         OR (status = 'sending' AND updated_at < now() - interval '5 minutes'))
                   RETURNING true""",
                request.event_id,
            )
            if not claimed:
                continue
            if await self.deliver(request) != DeliveryStatus.WAITING_TOKEN:
                await self.pool.execute(
                    "DELETE FROM notify_parked WHERE request_id = $1", request.event_id
                )
                done += 1
        return done

    async def _settle(
        self,
        request: NotifyRequest,
        status: DeliveryStatus,
        sent: list[SentMessage],
        error: ZaloError | None,
        *,
        attempt: int,
    ) -> DeliveryStatus:
        ids = [s.message_id for s in sent]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE notify_ledger SET status = $2, zalo_message_ids = $3,
                     last_error_code = $4, updated_at = now() WHERE request_id = $1""",
                request.event_id,
                status.value,
                ids,
                error.code if error else None,
            )
            await enqueue(
                conn,
                NOTIFY_RESULTS,
                NotifyResult(
                    event_id=f"result:{request.event_id}:{status.value}",
                    occurred_at=datetime.now(UTC),
                    correlation_id=request.correlation_id,
                    request_id=request.event_id,
                    oa_id=request.oa_id,
                    recipient_pseudonym=request.recipient.pseudonym,
                    case_id=request.case_id,
                    kind=request.kind,
                    attempt=max(1, attempt),
                    status=status,
                    zalo_message_ids=tuple(ids),
                    error_code=error.code if error else None,
                    error_kind=_kind(error) if error else None,
                    error_message=error.message_vi if error else None,
                ),
            )
        log.info(
            "notification settled", status=status.value, error_code=error.code if error else None
        )
        return status
