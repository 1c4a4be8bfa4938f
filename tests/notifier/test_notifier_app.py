"""The notifier process on the real broker and PostgreSQL; Zalo played by respx."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import respx
import stamina

from ketnoi_notifier.app import create_app
from ketnoi_notifier.settings import NotifierSettings
from ketnoi_notifier.tokens import TokenStore
from ketnoi_notifier.zalo import TokenPair, ZaloClient
from ketnoi_shared.contracts import (
    NOTIFY_REQUESTS,
    NotifyKind,
    NotifyRecipient,
    NotifyRequest,
    NotifyResult,
)
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import make_broker, publish
from ketnoi_shared.settings import CommonSettings

from ..conftest import now_ms, read_topic

OA = "4123456789012345678"


async def test_a_request_on_the_topic_is_sent_once_and_reported(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    protector: IdentityProtector,
):
    user = "81" + str(uuid.uuid4().int)[:17]
    await TokenStore(
        pool=pool, client=ZaloClient(), protector=protector, app_id="1", app_secret="S"
    ).save(OA, TokenPair("A0", "R0", 90000))
    request = NotifyRequest(
        event_id=f"ack:{uuid.uuid4().hex}",
        occurred_at=datetime.now(UTC),
        correlation_id="c",
        oa_id=OA,
        kind=NotifyKind.ACK,
        text="Đã tiếp nhận tin báo.",
        recipient=NotifyRecipient(
            pseudonym=protector.pseudonym(user),
            sealed_user_id=protector.seal(user, purpose="zalo_user_id"),
        ),
    )
    other = "82" + str(uuid.uuid4().int)[:17]
    failing = request.model_copy(
        update={
            "event_id": f"ack:{uuid.uuid4().hex}",
            "recipient": NotifyRecipient(
                pseudonym=protector.pseudonym(other),
                sealed_user_id=protector.seal(other, purpose="zalo_user_id"),
            ),
        }
    )
    since = now_ms()
    settings = NotifierSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        zalo_app_id="1",
        zalo_app_secret="S",
        **keys,
    )
    app = create_app(settings)
    stamina.set_testing(True, attempts=2)  # no real backoff waits in the test
    with respx.mock(assert_all_mocked=False, assert_all_called=False) as zalo:

        def answer(req: httpx.Request) -> httpx.Response:
            if other in req.content.decode():
                return httpx.Response(503)  # Zalo keeps failing for this one
            return httpx.Response(
                200, json={"error": 0, "message": "Success", "data": {"message_id": "zm1"}}
            )

        cs = zalo.post("https://openapi.zalo.me/v3.0/oa/message/cs").mock(side_effect=answer)
        async with app.router.lifespan_context(app):
            producer = make_broker(CommonSettings(kafka_bootstrap=kafka_bootstrap), service="test")
            await producer.start()
            await publish(producer, NOTIFY_REQUESTS, request)
            await publish(producer, NOTIFY_REQUESTS, request)  # redelivered
            await publish(producer, NOTIFY_REQUESTS, failing)
            await producer.stop()
            for _ in range(400):  # both requests settled and every result relayed
                if await pool.fetchval(
                    "SELECT count(*) = 2 FROM notify_ledger WHERE status IN ('sent', 'failed')"
                ) and not await pool.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                ):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(1)
    stamina.set_testing(False)
    # Other tests share the broker and may leave requests on the topic: count this one's.
    ok_calls = [c for c in cs.calls if user in c.request.content.decode()]
    assert len(ok_calls) == 1, "sent once despite the redelivery"
    dead = [
        r
        for r in await read_topic(
            kafka_bootstrap, "notify.requests.v1.dlq", since_ms=since, timeout=30, idle=2
        )
        if NotifyRequest.model_validate_json(r.value).event_id == failing.event_id
    ]
    assert len(dead) == 1, "the request whose retries ran out is dead-lettered once"
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["x-dlq-reason"] == "retry_budget"
    assert json.loads(headers["x-notify-history"])["request_id"] == failing.event_id
    results = [
        NotifyResult.model_validate_json(r.value)
        # Other tests share the topic: read long enough to reach this test's records.
        for r in await read_topic(
            kafka_bootstrap, "notify.results.v1", since_ms=since, timeout=30, idle=2
        )
    ]
    mine = [r for r in results if r.request_id == request.event_id]
    assert [r.status.value for r in mine] == ["sent"]
    assert mine[0].zalo_message_ids == ("zm1",)
