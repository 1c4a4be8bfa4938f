"""OA Open API rules: authentication, text length, interaction window, rate limit, shapes,
uploads, users, conversation history, v2 paths, articles and broadcast."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import unicodedata
from typing import Any

import pytest

from .conftest import (
    ANON,
    APP_SECRET,
    DAY,
    JPEG,
    OA,
    OA2,
    PDF,
    PNG,
    USER,
    USER2,
    Harness,
    MakeHarness,
    load_fixture,
)

# ------------------------------------------------------------------------- authentication


async def test_bearer_header_alone_is_rejected(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    r = await sb.client.post(
        "/v3.0/oa/message/cs",
        json={"recipient": {"user_id": USER}, "message": {"text": "x"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    assert r.json() == {"error": -216, "message": "Access token is invalid"}
    assert await sb.sent() == []


async def test_access_token_as_query_parameter_is_not_read(sb: Harness) -> None:
    token = await sb.token()
    r = await sb.client.get(
        "/v3.0/oa/user/detail", params={"access_token": token, "data": '{"user_id":"1"}'}
    )
    assert r.json()["error"] == -216


async def test_bare_access_token_header_works_even_next_to_bearer(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    r = await sb.cs(token, {"text": "x"}, headers={"Authorization": "Bearer something-else"})
    assert r.json()["error"] == 0


async def test_expired_access_token_gives_minus_216(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    sb.clock.advance(90_000 - 1)
    await sb.interact()  # keep the window open
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0
    sb.clock.advance(1)
    assert (await sb.cs(token, {"text": "x"})).json() == {
        "error": -216,
        "message": "Access token is invalid",
    }
    tokens = (await sb.client.get("/sandbox/tokens")).json()
    assert tokens[0]["access_state"] == "expired"


async def test_expired_access_token_code_is_configurable(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(expired_token_error=-220, access_token_lifetime_s=60) as sb:
        token = await sb.token()
        await sb.interact()
        sb.clock.advance(61)
        assert (await sb.cs(token, {"text": "x"})).json()["error"] == -220


async def test_appsecret_proof(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(require_appsecret_proof=True) as sb:
        token = await sb.token()
        await sb.interact()
        proof = hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
        assert (await sb.cs(token, {"text": "x"})).json()["error"] == -242
        assert (await sb.cs(token, {"text": "x"}, headers={"appsecret_proof": "00" * 32})).json()[
            "error"
        ] == -242
        assert (await sb.cs(token, {"text": "x"}, headers={"appsecret_proof": proof})).json()[
            "error"
        ] == 0


async def test_token_of_one_oa_sends_only_as_that_oa(sb: Harness) -> None:
    token2 = await sb.token(OA2)
    await sb.interact(oa=OA)  # the user interacted with OA, not OA2 (user ids are OA-scoped)
    assert (await sb.cs(token2, {"text": "x"})).json()["error"] == -230
    await sb.interact(oa=OA2)
    assert (await sb.cs(token2, {"text": "x"})).json()["error"] == 0
    assert [m["oa_id"] for m in await sb.sent()] == [OA2]


# ------------------------------------------------------------------------- text and answers


async def test_text_limit_is_2000_characters_after_nfc(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    assert (await sb.cs(token, {"text": "a" * 2000})).json()["error"] == 0
    too_long = await sb.cs(token, {"text": "a" * 2001})
    assert too_long.json() == {"error": -210, "message": "Parameter exceeds allowable limit"}

    nfd = unicodedata.normalize("NFD", "ệ" * 2000)
    assert len(nfd) == 6000 and len(unicodedata.normalize("NFC", nfd)) == 2000
    assert (await sb.cs(token, {"text": nfd})).json()["error"] == 0
    nfd_long = unicodedata.normalize("NFD", "ệ" * 2001)
    assert (await sb.cs(token, {"text": nfd_long})).json()["error"] == -210
    # the media caption obeys the same limit
    media = {"media_type": "image", "url": "https://x.example/a.jpg"}
    template = {"type": "template", "payload": {"template_type": "media", "elements": [media]}}
    assert (await sb.cs(token, {"text": "a" * 2001, "attachment": template})).json()[
        "error"
    ] == -210
    texts = [m["text"] for m in await sb.sent()]
    assert texts == ["a" * 2000, nfd]  # recorded as sent, refused ones not recorded


async def test_each_send_gets_a_unique_message_id_and_is_recorded_in_order(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    await sb.interact(USER2)
    answers = [await sb.text(token, f"tin {i}", user=USER if i % 2 else USER2) for i in range(30)]
    ids = [a["data"]["message_id"] for a in answers]
    assert len(set(ids)) == 30
    assert all(len(i) == 20 for i in ids)
    mine = await sb.sent(user=USER, oa=OA)
    assert [m["text"] for m in mine] == [f"tin {i}" for i in range(30) if i % 2]
    assert [m["message_id"] for m in mine] == [ids[i] for i in range(30) if i % 2]
    first = answers[0]
    assert first["message"] == "Success" and set(first["data"]) == {
        "message_id",
        "user_id",
        "sent_time",
    }
    assert first["data"]["sent_time"] == str(int(sb.clock() * 1000))


async def test_recording_shows_attachments(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    image = (await sb.upload(token, "image", JPEG, "a.jpg", "image/jpeg"))["data"]["attachment_id"]
    template = {
        "type": "template",
        "payload": {
            "template_type": "media",
            "elements": [{"media_type": "image", "attachment_id": image}],
        },
    }
    assert (await sb.cs(token, {"text": "", "attachment": template})).json()["error"] == 0
    [sent] = await sb.sent(user=USER)
    assert sent["kind"] == "media"
    assert sent["attachments"] == [
        {
            "type": "image",
            "attachment_id": image,
            "filename": "a.jpg",
            "size": len(JPEG),
            "media_type": "image/jpeg",
        }
    ]
    assert sent["sent_time"] == str(int(sb.clock() * 1000))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"recipient": {"user_id": USER}}, -201),
        ({"message": {"text": "x"}}, -201),
        ({"recipient": {"user_id": int(USER)}, "message": {"text": "x"}}, -201),
        ({"recipient": {"user_id": USER, "extra": 1}, "message": {"text": "x"}}, -201),
        ({"recipient": {"user_id": USER}, "message": {"text": "x", "foo": 1}}, -201),
        ({"recipient": {"user_id": USER}, "message": {"text": ""}}, -201),
        ({"recipient": {"user_id": USER}, "message": {"text": 5}}, -201),
        ({"recipient": {"user_id": USER}, "message": {}}, -201),
        ({"recipient": {"user_id": USER}, "message": {"text": "x"}, "extra": True}, -201),
        (
            {
                "recipient": {"anonymous_id": ANON, "conversation_id": "c1"},
                "message": {"text": "x"},
            },
            -201,
        ),
        ({"recipient": {"message_id": "abc"}, "message": {"text": "x"}}, -201),
        (
            {
                "recipient": {"user_id": USER},
                "message": {
                    "text": "x",
                    "quote_message_id": "abc",
                    "attachment": {"type": "file", "payload": {"token": "t"}},
                },
            },
            -201,
        ),
        (
            {
                "recipient": {"user_id": USER},
                "message": {
                    "attachment": {
                        "type": "template",
                        "payload": {"template_type": "list", "elements": []},
                    }
                },
            },
            -233,
        ),
        (
            {
                "recipient": {"user_id": USER},
                "message": {
                    "attachment": {"type": "image", "payload": {"url": "https://x.example/a.jpg"}}
                },
            },
            -233,
        ),
        (
            {
                "recipient": {"user_id": USER},
                "message": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "media",
                            "elements": [
                                {
                                    "media_type": "image",
                                    "url": "https://a/x.jpg",
                                    "attachment_id": "z",
                                }
                            ],
                        },
                    }
                },
            },
            -201,
        ),
        (
            {
                "recipient": {"user_id": USER},
                "message": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "media",
                            "elements": [{"media_type": "image", "url": "ftp://a/x"}],
                        },
                    }
                },
            },
            -201,
        ),
        (
            {
                "recipient": {"user_id": USER},
                "message": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "request_user_info",
                            "elements": [
                                {
                                    "title": "t" * 101,
                                    "subtitle": "s",
                                    "image_url": "https://a.example/i.png",
                                }
                            ],
                        },
                    }
                },
            },
            -210,
        ),
    ],
)
async def test_invalid_cs_bodies_are_refused(sb: Harness, body: dict[str, Any], code: int) -> None:
    token = await sb.token()
    await sb.interact()
    r = await sb.client.post("/v3.0/oa/message/cs", json=body, headers={"access_token": token})
    assert r.status_code == 200
    assert r.json()["error"] == code, r.json()
    assert r.json()["message"]
    assert await sb.sent() == []


async def test_malformed_json_is_refused(sb: Harness) -> None:
    token = await sb.token()
    r = await sb.client.post(
        "/v3.0/oa/message/cs",
        content=b"{not json",
        headers={"access_token": token, "Content-Type": "application/json"},
    )
    assert r.json() == {"error": -201, "message": "body is invalid!"}


async def test_gif_and_sticker_elements(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    gif = (await sb.upload(token, "gif", b"GIF89a" + bytes(20), "a.gif", "image/gif"))["data"][
        "attachment_id"
    ]

    def media(element: dict[str, Any]) -> dict[str, Any]:
        return {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "media", "elements": [element]},
            }
        }

    ok = await sb.cs(
        token, media({"media_type": "gif", "attachment_id": gif, "width": 120, "height": 80})
    )
    assert ok.json()["error"] == 0
    no_size = await sb.cs(token, media({"media_type": "gif", "attachment_id": gif}))
    assert no_size.json()["error"] == -201
    sticker = await sb.cs(
        token, media({"media_type": "sticker", "attachment_id": "bfe458bf64fa8da4d4eb"})
    )
    assert sticker.json()["error"] == 0
    image_with_gif_id = await sb.cs(token, media({"media_type": "image", "attachment_id": gif}))
    assert image_with_gif_id.json()["error"] == -201


# ------------------------------------------------------------------------- interaction window


async def test_window_is_seven_days_from_the_last_interaction(sb: Harness) -> None:
    token = await sb.token()
    now = sb.clock()
    await sb.interact(at_s=now - 7 * DAY - 1)
    r = await sb.cs(token, {"text": "x"})
    assert r.json() == {
        "error": -230,
        "message": "User has not interacted with the OA in the past 7 days",
    }
    await sb.interact(at_s=now - 7 * DAY + 1)
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0
    sb.clock.advance(2)
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == -230
    await sb.interact(kind="chatnow")
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_unfollow_is_not_an_interaction_and_older_interactions_do_not_shrink_it(
    sb: Harness,
) -> None:
    token = await sb.token()
    await sb.interact(at_s=sb.clock() - 8 * DAY)
    await sb.interact(kind="unfollow")
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == -230
    await sb.interact(kind="follow")
    await sb.interact(at_s=sb.clock() - 30 * DAY)  # a late-recorded old event
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_sends_after_48_hours_are_marked_billed(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact(at_s=sb.clock() - 3600)
    await sb.text(token, "free")
    sb.clock.advance(3 * DAY)
    token = await sb.token()  # the first one lived 25 h
    assert (await sb.text(token, "billed"))["error"] == 0
    sent = await sb.sent()
    assert [(m["text"], m["billed"]) for m in sent] == [("free", False), ("billed", True)]
    assert sent[1]["interaction_age_s"] == pytest.approx(3 * DAY + 3600)


# ------------------------------------------------------------------------- rate limit


async def test_rate_limit_per_minute_with_headers(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(rate_limit_per_minute=3) as sb:
        token = await sb.token()
        await sb.interact()
        remains = []
        for _ in range(3):
            r = await sb.cs(token, {"text": "x"})
            assert r.json()["error"] == 0
            assert r.headers["X-RateLimit-Limit"] == "3"
            remains.append(r.headers["X-RateLimit-Remain"])
        assert remains == ["2", "1", "0"]
        r = await sb.cs(token, {"text": "x"})
        assert r.status_code == 200
        assert r.json() == {"error": -32, "message": "Your application reached limit call api"}
        assert r.headers["X-RateLimit-Remain"] == "0"
        # every OA API counts, not only sends
        detail = await sb.client.get(
            "/v3.0/oa/user/detail",
            params={"data": f'{{"user_id":"{USER}"}}'},
            headers={"access_token": token},
        )
        assert detail.json()["error"] == -32
        assert len(await sb.sent()) == 3
        sb.clock.advance(60)
        assert (await sb.cs(token, {"text": "x"})).json()["error"] == 0


async def test_default_rate_limit_header_is_4000(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    r = await sb.cs(token, {"text": "x"})
    assert r.headers["X-RateLimit-Limit"] == "4000"
    assert r.headers["X-RateLimit-Remain"] == "3999"


# ------------------------------------------------------------------------- uploads


async def test_upload_limits_and_types(sb: Harness) -> None:
    token = await sb.token()
    big = PNG + bytes(1024 * 1024)
    assert (await sb.upload(token, "image", big))["error"] == -210
    assert (await sb.upload(token, "image", PNG[:-1] + bytes(1024 * 1024 - len(PNG) + 1)))[
        "error"
    ] == 0
    assert (await sb.upload(token, "image", b"GIF89a" + bytes(10)))["error"] == -201
    assert (await sb.upload(token, "image", PDF, "a.pdf", "application/pdf"))["error"] == -201

    pdf = await sb.upload(token, "file", PDF, "a.pdf", "application/pdf")
    assert pdf["error"] == 0 and set(pdf["data"]) == {"token"}
    docx = await sb.upload(
        token, "file", b"PK\x03\x04" + bytes(30), "a.docx", "application/octet-stream"
    )
    assert docx["error"] == 0
    doc = await sb.upload(
        token,
        "file",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(30),
        "a.doc",
        "application/msword",
    )
    assert doc["error"] == 0
    assert (await sb.upload(token, "file", b"hello", "a.txt", "text/plain"))["error"] == -201
    assert (await sb.upload(token, "file", PNG, "a.pdf", "application/pdf"))["error"] == -201
    assert (
        await sb.upload(token, "file", PDF + bytes(5 * 1024 * 1024), "b.pdf", "application/pdf")
    )["error"] == -210


async def test_upload_needs_the_file_field(sb: Harness) -> None:
    token = await sb.token()
    wrong_field = await sb.client.post(
        "/v2.0/oa/upload/image",
        files={"image": ("a.png", PNG, "image/png")},
        headers={"access_token": token},
    )
    assert wrong_field.json() == {"error": -201, "message": "file is invalid!"}
    not_multipart = await sb.client.post(
        "/v2.0/oa/upload/image", content=PNG, headers={"access_token": token}
    )
    assert not_multipart.json()["error"] == -201


async def test_upload_bodies_are_parsed_strictly(sb: Harness) -> None:
    """python-multipart reads the body; anything but one complete ``file`` part is -201."""
    token = await sb.token()

    async def post(body: bytes, content_type: str = "multipart/form-data; boundary=XyZ") -> int:
        r = await sb.client.post(
            "/v2.0/oa/upload/image",
            content=body,
            headers={"access_token": token, "Content-Type": content_type},
        )
        assert r.status_code == 200
        return r.json()["error"]

    def part(name: str = "file", data: bytes = PNG, extra: str = "") -> bytes:
        head = f'Content-Disposition: form-data; name="{name}"; filename="a.png"{extra}'
        return b"--XyZ\r\n" + head.encode() + b"\r\nContent-Type: image/png\r\n\r\n" + data

    tricky = PNG + b"\r\n--XyZnot-a-boundary\r\n" + bytes(8)
    assert await post(part(data=tricky) + b"\r\n--XyZ--\r\n") == 0
    assert await post(part() + b"\r\n--XyZ--") == 0  # no CRLF after the closing line
    assert await post(part() + b"\r\n") == -201  # no closing delimiter
    assert await post(part()[:-10]) == -201  # truncated
    assert await post(part() + b"\r\n" + part() + b"\r\n--XyZ--\r\n") == -201  # two parts
    assert await post(part(name="photo") + b"\r\n--XyZ--\r\n") == -201
    assert await post(part(data=b"") + b"\r\n--XyZ--\r\n") == -201  # empty file
    no_name = b"--XyZ\r\nContent-Disposition: form-data\r\n\r\n" + PNG + b"\r\n--XyZ--\r\n"
    assert await post(no_name) == -201
    no_disposition = b"--XyZ\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n--XyZ--\r\n"
    assert await post(no_disposition) == -201
    whole = part() + b"\r\n--XyZ--\r\n"
    assert await post(whole, "multipart/form-data") == -201  # no boundary
    assert await post(whole, "multipart/mixed; boundary=XyZ") == -201
    assert await post(whole, "application/x-www-form-urlencoded") == -201
    assert await post(whole, 'multipart/form-data; boundary="XyZ"') == 0  # quoted boundary


async def test_uploaded_ids_expire_after_seven_days(sb: Harness) -> None:
    token = await sb.token()
    file_token = (await sb.upload(token, "file", PDF, "a.pdf", "application/pdf"))["data"]["token"]
    file_message = {"attachment": {"type": "file", "payload": {"token": file_token}}}
    sb.clock.advance(7 * DAY - 10)
    await sb.interact()
    token = await sb.token()
    assert (await sb.cs(token, file_message)).json()["error"] == 0
    sb.clock.advance(11)
    token = await sb.token()
    assert (await sb.cs(token, file_message)).json() == {
        "error": -100,
        "message": "attachment_id was expired",
    }
    unknown = {"attachment": {"type": "file", "payload": {"token": "nope"}}}
    assert (await sb.cs(token, unknown)).json()["error"] == -201


async def test_uploads_are_per_oa_and_capped_per_month(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(uploads_per_month=2) as sb:
        token = await sb.token()
        image = (await sb.upload(token, "image", PNG))["data"]["attachment_id"]
        assert (await sb.upload(token, "image", PNG))["error"] == 0
        assert (await sb.upload(token, "image", PNG))["error"] == -211
        other = await sb.token(OA2)
        await sb.interact(oa=OA2)
        element = {"media_type": "image", "attachment_id": image}
        message = {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "media", "elements": [element]},
            }
        }
        assert (await sb.cs(other, message)).json()["error"] == -201


# ------------------------------------------------------------------------- users and quota


async def test_user_detail_unknown_user_and_bad_data(sb: Harness) -> None:
    token = await sb.token()
    r = await sb.client.get(
        "/v3.0/oa/user/detail", params={"data": '{"user_id":"81"}'}, headers={"access_token": token}
    )
    assert r.json() == {"error": -201, "message": "user_id is invalid!"}
    r = await sb.client.get(
        "/v3.0/oa/user/detail", params={"data": "{bad"}, headers={"access_token": token}
    )
    assert r.json()["error"] == -201
    r = await sb.client.get("/v3.0/oa/user/detail", headers={"access_token": token})
    assert r.json()["error"] == -201


async def test_user_detail_of_a_plain_interacting_user(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    r = await sb.client.get(
        "/v3.0/oa/user/detail",
        params={"data": f'{{"user_id":"{USER}"}}'},
        headers={"access_token": token},
    )
    data = r.json()["data"]
    assert data["user_last_interaction_date"] == "02/01/2026"
    assert data["user_is_follower"] is True
    assert "shared_info" not in data  # only once the user shared it


async def test_getlist_filters_and_limits(sb: Harness) -> None:
    token = await sb.token()
    now = sb.clock()
    await sb.interact(USER, at_s=now)
    await sb.interact(USER2, at_s=now - DAY)
    await sb.interact("8123456789012345600", at_s=now - 10 * DAY, kind="follow")
    await sb.interact("8123456789012345601", at_s=now - 40 * DAY)
    await sb.interact("8123456789012345601", kind="unfollow")
    await sb.client.post(
        "/sandbox/users", json={"oa_id": OA, "user_id": USER2, "tag_names": ["Phường Bến Thành"]}
    )

    async def users(**data: Any) -> list[str]:
        query = {"offset": 0, "count": 50, **data}
        r = await sb.client.get(
            "/v3.0/oa/user/getlist",
            params={"data": json.dumps(query)},
            headers={"access_token": token},
        )
        body = r.json()
        assert body["error"] == 0, body
        assert body["data"]["total"] >= len(body["data"]["users"])
        return [u["user_id"] for u in body["data"]["users"]]

    assert await users() == [USER, USER2, "8123456789012345600", "8123456789012345601"]
    assert await users(is_follower="true") == [USER, USER2, "8123456789012345600"]
    assert await users(is_follower=False) == ["8123456789012345601"]
    assert await users(last_interaction_period="TODAY") == [USER]
    assert await users(last_interaction_period="YESTERDAY") == [USER2]
    assert await users(last_interaction_period="L7D") == [USER, USER2]
    assert await users(last_interaction_period="L30D") == [USER, USER2, "8123456789012345600"]
    assert (
        await users(last_interaction_period="2025_12_24:2025_12_31") == []
    )  # 10 days ago is 23/12
    assert await users(last_interaction_period="2025_12_20:2025_12_23") == ["8123456789012345600"]
    assert await users(tag_name="Phường Bến Thành") == [USER2]
    assert await users(offset=1, count=2) == [USER2, "8123456789012345600"]


@pytest.mark.parametrize(
    "data",
    [
        '{"offset":0,"count":51}',
        '{"offset":9952,"count":10}',
    ],
)
async def test_getlist_paging_limits(sb: Harness, data: str) -> None:
    token = await sb.token()
    r = await sb.client.get(
        "/v3.0/oa/user/getlist", params={"data": data}, headers={"access_token": token}
    )
    assert r.json()["error"] == -210


@pytest.mark.parametrize(
    "data",
    [
        '{"offset":0}',
        '{"offset":0,"count":0}',
        '{"offset":0,"count":5,"is_follower":"yes"}',
        '{"offset":0,"count":5,"x":1}',
        '{"offset":0,"count":5,"last_interaction_period":"2025_12_20_2025_12_31"}',
        '{"offset":0,"count":5,"last_interaction_period":"2025_02_30:2025_03_01"}',
        '{"offset":0,"count":5,"last_interaction_period":"L90D"}',
    ],
)
async def test_getlist_invalid(sb: Harness, data: str) -> None:
    token = await sb.token()
    r = await sb.client.get(
        "/v3.0/oa/user/getlist", params={"data": data}, headers={"access_token": token}
    )
    assert r.json()["error"] == -201


async def test_quota_reports_last_interaction(sb: Harness) -> None:
    token = await sb.token()
    at = sb.clock() - 5 * DAY
    await sb.interact(at_s=at)
    r = await sb.client.post(
        "/v3.0/oa/quota/message", json={"user_id": USER}, headers={"access_token": token}
    )
    assert r.json()["data"]["last_interaction"] == str(int(at * 1000))
    unknown = await sb.client.post(
        "/v3.0/oa/quota/message", json={"user_id": "1"}, headers={"access_token": token}
    )
    assert unknown.json()["error"] == -201


# ------------------------------------------------------------------------- conversation


async def test_conversation_lists_what_was_sent_newest_first(sb: Harness) -> None:
    token = await sb.token()
    got = await sb.interact(text="Tôi muốn phản ánh", msg_id="aaaabbbbccccddddeeee")
    assert got["msg_id"] == "aaaabbbbccccddddeeee"
    sb.clock.advance(1)
    first = (await sb.text(token, "Đã tiếp nhận"))["data"]["message_id"]
    sb.clock.advance(1)
    element = {"media_type": "image", "url": "https://x.example/a.jpg"}
    template = {"type": "template", "payload": {"template_type": "media", "elements": [element]}}
    second = (await sb.cs(token, {"text": "Ảnh", "attachment": template})).json()["data"][
        "message_id"
    ]

    async def page(offset: int, count: int) -> dict[str, Any]:
        data = f'{{"user_id":"{USER}","offset":{offset},"count":{count}}}'
        r = await sb.client.get(
            "/v2.0/oa/conversation", params={"data": data}, headers={"access_token": token}
        )
        return r.json()

    body = await page(0, 10)
    assert body["error"] == 0
    entries = body["data"]
    assert [e["message_id"] for e in entries] == [second, first, "aaaabbbbccccddddeeee"]
    assert [e["src"] for e in entries] == [0, 0, 1]
    assert entries[0]["type"] == "photo" and entries[0]["url"] == "https://x.example/a.jpg"
    assert entries[1] | {} == entries[1] and entries[1]["message"] == "Đã tiếp nhận"
    assert entries[1]["from_id"] == OA and entries[1]["to_id"] == USER
    assert entries[2]["from_id"] == USER and entries[2]["message"] == "Tôi muốn phản ánh"
    assert entries[1]["time"] == int((sb.clock() - 1) * 1000)
    assert [e["message_id"] for e in (await page(1, 1))["data"]] == [first]
    assert (await page(0, 11))["error"] == -210


async def test_conversation_unknown_user(sb: Harness) -> None:
    token = await sb.token()
    data = '{"user_id":"1","offset":0,"count":5}'
    r = await sb.client.get(
        "/v2.0/oa/conversation", params={"data": data}, headers={"access_token": token}
    )
    assert r.json()["error"] == -201


# ------------------------------------------------------------------------- v2 paths


async def test_reaction_requires_a_known_user_and_is_recorded(sb: Harness) -> None:
    token = await sb.token()
    body = {
        "recipient": {"user_id": USER},
        "sender_action": {"react_icon": "/-heart", "react_message_id": "m1"},
    }
    r = await sb.client.post("/v2.0/oa/message", json=body, headers={"access_token": token})
    assert r.json()["error"] == -201
    await sb.interact()
    r = await sb.client.post("/v2.0/oa/message", json=body, headers={"access_token": token})
    assert r.json()["error"] == 0
    [sent] = await sb.sent(user=USER)
    assert sent["kind"] == "reaction"
    assert sent["attachments"] == [
        {"type": "reaction", "react_icon": "/-heart", "react_message_id": "m1"}
    ]


async def test_v2_legacy_message_id_recipient_is_minus_240(sb: Harness) -> None:
    token = await sb.token()
    body = {"recipient": {"message_id": "abc"}, "message": {"text": "x"}}
    r = await sb.client.post("/v2.0/oa/message", json=body, headers={"access_token": token})
    assert r.json()["error"] == -240


async def test_anonymous_reply_on_v2(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact(ANON, conversation_id="conv-1", text="ẩn danh")

    async def reply(conversation_id: str) -> dict[str, Any]:
        body = {
            "recipient": {"anonymous_id": ANON, "conversation_id": conversation_id},
            "message": {"text": "Cảm ơn"},
        }
        r = await sb.client.post("/v2.0/oa/message", json=body, headers={"access_token": token})
        return r.json()

    ok = await reply("conv-1")
    assert ok["error"] == 0 and set(ok["data"]) == {"message_id"}
    assert (await reply("conv-2"))["error"] == -201
    sent = await sb.sent(user=ANON)
    assert [(m["text"], m["recipient"]) for m in sent] == [
        ("Cảm ơn", {"anonymous_id": ANON, "conversation_id": "conv-1"})
    ]
    sb.clock.advance(8 * DAY)
    token = await sb.token()
    assert (await reply("conv-1"))["error"] == -230


async def _article(sb: Harness, token: str, **overrides: Any) -> dict[str, Any]:
    body = load_fixture("article_create.request.json")["json"] | overrides
    r = await sb.client.post("/v2.0/article/create", json=body, headers={"access_token": token})
    return r.json()


async def test_article_verify_is_asynchronous(make_sandbox: MakeHarness) -> None:
    async with make_sandbox(article_processing_s=30) as sb:
        token = await sb.token()
        created = await _article(sb, token)
        verify = {"token": created["data"]["token"]}
        r = await sb.client.post(
            "/v2.0/article/verify", json=verify, headers={"access_token": token}
        )
        assert r.json() == {"error": -214, "message": "Article is being processed"}
        sb.clock.advance(30)
        first = (
            await sb.client.post(
                "/v2.0/article/verify", json=verify, headers={"access_token": token}
            )
        ).json()
        again = (
            await sb.client.post(
                "/v2.0/article/verify", json=verify, headers={"access_token": token}
            )
        ).json()
        assert first["error"] == 0 and first == again
        bad = await sb.client.post(
            "/v2.0/article/verify", json={"token": "x"}, headers={"access_token": token}
        )
        assert bad.json()["error"] == -201


async def test_article_validation(sb: Harness) -> None:
    token = await sb.token()
    assert (await _article(sb, token, title="t" * 151))["error"] == -210
    assert (await _article(sb, token, author="a" * 51))["error"] == -210
    assert (await _article(sb, token, status="public"))["error"] == -201
    assert (await _article(sb, token, body=[]))["error"] == -201
    assert (await _article(sb, token, extra=1))["error"] == -201
    video = {
        "type": "video",
        "title": "v",
        "description": "d",
        "video_id": "abc",
        "avatar": "https://a.example/x.jpg",
    }
    r = await sb.client.post("/v2.0/article/create", json=video, headers={"access_token": token})
    assert r.json()["error"] == 0


async def _broadcast(sb: Harness, token: str, article_id: str, target: Any) -> dict[str, Any]:
    element = {"media_type": "article", "attachment_id": article_id}
    body = {
        "recipient": {"target": target},
        "message": {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "media", "elements": [element]},
            }
        },
    }
    r = await sb.client.post("/v2.0/oa/message", json=body, headers={"access_token": token})
    return r.json()


async def test_broadcast_rules(sb: Harness) -> None:
    token = await sb.token()
    created = await _article(sb, token)
    verified = await sb.client.post(
        "/v2.0/article/verify",
        json={"token": created["data"]["token"]},
        headers={"access_token": token},
    )
    article_id = verified.json()["data"]["id"]
    for target in ({"cities": "4"}, {"cities": [4, 9]}, {"gender": 1, "ages": "2,3"}):
        assert (await _broadcast(sb, token, article_id, target))["error"] == 0
    assert (await _broadcast(sb, token, article_id, {"planet": "mars"}))["error"] == -201
    assert (await _broadcast(sb, token, article_id, {}))["error"] == -201
    assert (await _broadcast(sb, token, "ffffffffffffffffffff", {"cities": "4"}))["error"] == -201
    sb.clock.advance(10 * 3600)  # 22:00 Vietnam time
    token = await sb.token()
    night = await _broadcast(sb, token, article_id, {"cities": "4"})
    assert night == {"error": -234, "message": "This message cannot be sent at night (10PM–6AM)"}
    sent = await sb.sent(oa=OA)
    assert [m["kind"] for m in sent] == ["broadcast"] * 3
    assert sent[0]["user_id"] is None


# ------------------------------------------------------------------------- sandbox admin


async def test_reset_clears_everything(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    await sb.text(token)
    await sb.fault(api="message/cs", kind="http_500")
    assert (await sb.client.post("/sandbox/reset")).json() == {"reset": True}
    assert await sb.sent() == []
    assert (await sb.client.get("/sandbox/tokens")).json() == []
    assert (await sb.client.get("/sandbox/faults")).json() == []
    assert (await sb.client.get("/sandbox/users")).json() == []
    assert (await sb.cs(token, {"text": "x"})).json()["error"] == -216


async def test_clock_endpoint_moves_a_manual_clock(sb: Harness) -> None:
    r = await sb.client.post("/sandbox/clock", json={"advance_s": 60})
    assert r.json()["now"] == sb.clock() == 1_767_330_060.0
    health = (await sb.client.get("/sandbox/health")).json()
    assert health["ok"] is True and health["now_ms"] == "1767330060000"


async def test_admin_refuses_unknown_oa(sb: Harness) -> None:
    r = await sb.client.post("/sandbox/interactions", json={"oa_id": "999", "user_id": USER})
    assert r.status_code == 404
    r = await sb.client.post("/sandbox/tokens", json={"oa_id": "999"})
    assert r.status_code == 404


async def test_concurrent_sends_all_recorded(sb: Harness) -> None:
    token = await sb.token()
    await sb.interact()
    answers = await asyncio.gather(*(sb.text(token, str(i)) for i in range(50)))
    assert len({a["data"]["message_id"] for a in answers}) == 50
    assert sorted(m["text"] for m in await sb.sent()) == sorted(str(i) for i in range(50))
