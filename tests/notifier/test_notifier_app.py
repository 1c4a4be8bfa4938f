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


async def test_the_window_consumer_keeps_each_citizens_latest_interaction(
    kafka_bootstrap: str,
    database_url: str,
    pool: asyncpg.Pool,
    keys: dict[str, str],
    protector: IdentityProtector,
):
    """Events arrive in batches, out of order and redelivered; the window keeps the latest
    interaction per citizen and OA, ignores what is not an interaction, and a record that
    does not decode is dead-lettered without holding back the others."""
    from ketnoi_shared.contracts import ZALO_EVENTS, CitizenRef, EventKind, ZaloEvent  # noqa: PLC0415

    a, b = ("83" + str(uuid.uuid4().int)[:17] for _ in range(2))
    base = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

    def event(user: str, minute: int, kind: EventKind = EventKind.MESSAGE) -> ZaloEvent:
        return ZaloEvent(
            event_id=f"w:{uuid.uuid4().hex}",
            occurred_at=base.replace(minute=minute),
            correlation_id="c",
            event_name="user_send_text",
            kind=kind,
            app_id="1",
            oa_id=OA,
            citizen=CitizenRef(pseudonym=protector.pseudonym(user)),
            zalo_timestamp_ms=0,
        )

    late, early = event(a, 30), event(a, 10)
    events = [late, early, late, event(b, 5), event(b, 50, EventKind.SEEN)]
    since = now_ms()
    settings = NotifierSettings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        zalo_app_id="1",
        zalo_app_secret="S",
        **keys,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        producer = make_broker(CommonSettings(kafka_bootstrap=kafka_bootstrap), service="test")
        await producer.start()
        await producer.publish(b"{not json", topic=ZALO_EVENTS.name, key=b"x")
        for e in events:
            await publish(producer, ZALO_EVENTS, e)
        await producer.stop()
        query = (
            "SELECT citizen_pseudonym, last_interaction_at FROM interaction_window "
            "WHERE citizen_pseudonym = ANY($1::text[])"
        )
        names = [protector.pseudonym(a), protector.pseudonym(b)]
        for _ in range(200):
            rows = {r[0]: r[1] for r in await pool.fetch(query, names)}
            if len(rows) == 2:
                break
            await asyncio.sleep(0.05)
    assert rows == {
        protector.pseudonym(a): base.replace(minute=30),
        protector.pseudonym(b): base.replace(minute=5),  # "seen" is not an interaction
    }
    dead = [
        r
        for r in await read_topic(
            kafka_bootstrap, "zalo.events.v1.dlq", since_ms=since, timeout=20, idle=2
        )
        if r.value == b"{not json"
    ]
    assert [dict(r.headers)["x-dlq-consumer"] for r in dead].count(b"notifier-window") == 1
