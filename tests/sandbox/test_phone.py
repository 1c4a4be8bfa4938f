"""The citizen simulator page (``/phone``): rendered with the stable selectors browser tests use,
its static files, and the conversation feed it polls."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from ketnoi_sandbox.phone import PRESET_CITIZENS

from .conftest import OA, OA2, USER, Harness, MakeHarness

#: Selector → (tag, attributes it must have).
SELECTORS: dict[str, tuple[str, dict[str, str]]] = {
    "phone-citizen": ("select", {}),
    "phone-oa": ("select", {}),
    "phone-text": ("input", {}),
    "phone-send": ("button", {}),
    "phone-photo": ("input", {"type": "file"}),
    "phone-sample-photo": ("button", {}),
    "phone-location": ("button", {}),
    "phone-lat": ("input", {"value": "11.9404"}),
    "phone-lon": ("input", {"value": "108.4583"}),
    "phone-follow": ("button", {}),
    "phone-messages": ("ul", {}),
}


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, tuple[str, dict[str, str | None]]] = {}
        self.options: list[dict[str, str | None]] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.by_id[str(found["id"])] = (tag, found)
        if tag == "option":
            self.options.append(found)
        if tag in {"script", "link"}:
            self.assets.append(str(found.get("src") or found.get("href")))


async def page(sb: Harness) -> tuple[str, Elements]:
    r = await sb.client.get("/phone")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    parsed = Elements()
    parsed.feed(r.text)
    return r.text, parsed


async def test_root_redirects_to_the_phone(sb: Harness):
    r = await sb.client.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/phone"


async def test_the_page_has_the_stable_selectors_in_vietnamese(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True) as sb:
        text, parsed = await page(sb)
    for element_id, (tag, attrs) in SELECTORS.items():
        assert element_id in parsed.by_id, element_id
        found_tag, found = parsed.by_id[element_id]
        assert found_tag == tag, element_id
        for key, value in attrs.items():
            assert found.get(key) == value, (element_id, key)
    assert '<html lang="vi">' in text
    for phrase in ("Người dân", "Quan tâm", "Gửi", "Ảnh mẫu", "Gửi vị trí", "Vĩ độ", "Kinh độ"):
        assert phrase in text
    values = [o.get("value") for o in parsed.options]
    for user_id, name in PRESET_CITIZENS:
        assert user_id in values and name in text
    assert "new" in values and "Người dân mới" in text
    assert OA in values and OA2 in values
    assert "Công an phường Bến Thành" in text
    assert "phone-notice" not in parsed.by_id  # the simulator is on
    assert not any(a.startswith(("http:", "https:", "//")) for a in parsed.assets)  # no CDN


async def test_static_files_are_served(sb: Harness):
    _, parsed = await page(sb)
    script = next(a for a in parsed.assets if a.endswith(".js"))
    style = next(a for a in parsed.assets if a.endswith(".css"))
    js = await sb.client.get(script)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    for needle in ("/sandbox/citizen/send", "/sandbox/citizen/conversation", "from-citizen"):
        assert needle in js.text
    assert "from-oa" in js.text and '"msg ' in js.text.replace("`", '"')
    css = await sb.client.get(style)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_without_a_webhook_the_page_says_sending_is_off(sb: Harness):
    _, parsed = await page(sb)
    assert "phone-notice" in parsed.by_id
    assert (await sb.client.post("/sandbox/citizen/send", json={})).status_code in {404, 405}


async def conversation(sb: Harness, user: str = USER, oa: str = OA) -> dict[str, Any]:
    r = await sb.client.get("/sandbox/citizen/conversation", params={"oa": oa, "user": user})
    assert r.status_code == 200
    return r.json()


async def test_the_conversation_shows_both_sides_in_order(make_sandbox: MakeHarness):
    async with make_sandbox(phone=True) as sb:
        assert (await conversation(sb)) == {
            "oa": {"id": OA, "name": "Công an phường Bến Thành"},
            "user": None,
            "messages": [],
        }
        send = {"oa_id": OA, "user_id": USER, "display_name": "Nguyễn Văn An"}
        await sb.client.post("/sandbox/citizen/send", json={**send, "kind": "follow"})
        await sb.client.post(
            "/sandbox/citizen/send", json={**send, "text": "Có người đánh nhau ở chợ"}
        )
        sb.clock.advance(1)
        token = await sb.token()
        await sb.text(token, "Đã tiếp nhận tin báo LD-ABCDE")
        await sb.client.post("/sandbox/citizen/send", json={**send, "kind": "image"})
        await sb.client.post(
            "/sandbox/citizen/send",
            json={**send, "kind": "location", "latitude": 11.9404, "longitude": 108.4583},
        )
        await sb.client.post(
            "/sandbox/citizen/send",
            json={"oa_id": OA, "user_id": "8999999999999999999", "text": "người khác"},
        )

        feed = await conversation(sb)
        assert feed["user"]["is_follower"] is True
        assert feed["user"]["display_name"] == "Nguyễn Văn An"
        shown = [(m["from"], m["kind"], m["text"]) for m in feed["messages"]]
        assert shown == [
            ("citizen", "text", "Có người đánh nhau ở chợ"),
            ("oa", "text", "Đã tiếp nhận tin báo LD-ABCDE"),
            ("citizen", "image", ""),
            ("citizen", "location", ""),
        ]
        image, location = feed["messages"][2]["attachments"], feed["messages"][3]["attachments"]
        assert image[0]["url"].startswith("http://sandbox/media/")
        photo = await sb.client.get(image[0]["url"].removeprefix("http://sandbox"))
        assert photo.headers["content-type"] == "image/jpeg"
        assert location == [{"type": "location", "latitude": "11.9404", "longitude": "108.4583"}]
        assert (await conversation(sb, oa=OA2))["messages"] == []

        await sb.client.post("/sandbox/citizen/send", json={**send, "kind": "unfollow"})
        assert (await conversation(sb))["user"]["is_follower"] is False
