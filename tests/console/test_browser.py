"""The console in a real browser (Debian's Chromium driven by Playwright) on the whole
embedded stack: an officer logs in, a citizen sends text, a photo and a location from the
simulated phone, the case appears in the inbox without a reload, the officer opens it, sees
the photo served by the console and the place, replies, and the reply reaches the phone."""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import run_until_ready, stack_env

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("KETNOI_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Set to a directory (e.g. docs/screenshots) to keep the screenshots.
SCREENSHOTS = os.environ.get("KETNOI_SCREENSHOTS_DIR")
# A point inside the ward of Xuân Hương - Đà Lạt, the demo OA's own unit.
LAT, LON = "11.9370", "108.4420"


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("browser") / "ketnoi"
    env = stack_env(data_dir)
    proc, state = run_until_ready(env, data_dir)
    try:
        for name, svc in state["services"].items():
            assert svc["ready"], name
        accounts = json.loads((data_dir / "secrets" / "console_demo_accounts.json").read_text())
        yield {"state": state, "accounts": accounts}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():  # noqa: ASYNC240 - one stat in a fixture
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.async_api import async_playwright  # noqa: PLC0415

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


async def _shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)


async def test_officer_sees_a_tip_arrive_live_and_replies(
    demo_stack: dict[str, Any], chromium: Any
) -> None:
    services = demo_stack["state"]["services"]
    console_url, sandbox_url = services["console"]["url"], services["sandbox"]["url"]
    marker = uuid.uuid4().hex[:6]
    tip = (
        f"Tối nào cũng có nhóm thanh niên tụ tập đánh bạc ăn tiền ở hẻm 12 Phan Đình Phùng, "
        f"phường Xuân Hương, ồn ào đến khuya (mã {marker})"
    )

    officer = await (await chromium.new_context(viewport={"width": 1360, "height": 900})).new_page()
    await officer.goto(console_url + "/inbox")
    assert "/login" in officer.url  # not logged in yet
    await officer.fill("#username", "canbo.xuanhuong")
    await officer.fill("#password", demo_stack["accounts"]["canbo.xuanhuong"])
    await officer.click("#login-submit")
    await officer.wait_for_url(re.compile(r".*/inbox.*"))
    assert await officer.locator("header .who").inner_text() != ""

    phone = await (await chromium.new_context(viewport={"width": 480, "height": 900})).new_page()
    await phone.goto(sandbox_url + "/")
    await phone.wait_for_selector("#phone-text")
    await phone.select_option("#phone-citizen", "new")
    await phone.fill("#phone-text", tip)
    await phone.click("#phone-send")
    await phone.click("#phone-sample-photo")
    await phone.fill("#phone-lat", LAT)
    await phone.fill("#phone-lon", LON)
    await phone.click("#phone-location")

    # The case appears in the officer's inbox without a reload (server-sent events).
    row = officer.locator("tr.case-row", has_text=marker)
    try:
        await row.wait_for(timeout=60_000)
    except Exception:
        # Keep what both screens showed, to tell a lost message from a missed refresh.
        await officer.screenshot(path="/tmp/ketnoi-officer-failure.png", full_page=True)
        await phone.screenshot(path="/tmp/ketnoi-phone-failure.png", full_page=True)
        raise
    reference = await row.get_attribute("data-reference")
    assert reference and reference.startswith("LD-")
    await _shot(officer, "console-inbox.png")

    await row.locator("a").first.click()
    await officer.wait_for_url(re.compile(r".*/cases/.*"))
    timeline = officer.locator("#timeline")
    await timeline.get_by_text(marker).wait_for()
    # The photo is served by the console itself, once the media worker fetched it.
    photo = timeline.locator("img.photo")
    for _ in range(60):
        if await photo.count():
            break
        await officer.wait_for_timeout(1000)
        await officer.reload()
    src = await photo.first.get_attribute("src")
    assert src and src.startswith("/cases/") and "zalo" not in src
    loaded = await photo.first.evaluate("img => img.complete && img.naturalWidth > 0")
    assert loaded, "the photo is shown"
    assert "Xuân Hương" in await timeline.locator(".att.location").first.inner_text()
    await _shot(officer, "console-case.png")

    reply = f"Cảm ơn bạn, tổ công tác phường đang xác minh ({marker})."
    await officer.fill("#reply-text", reply)
    await officer.click("#reply-send")
    await officer.wait_for_url(re.compile(r".*/cases/.*"))
    await officer.locator("#timeline .t-officer", has_text=marker).wait_for()

    # The reply reaches the simulated phone, after the automatic acknowledgement.
    await phone.locator("#phone-messages li.msg.from-oa", has_text=marker).wait_for(timeout=60_000)
    texts = await phone.locator("#phone-messages li.msg.from-oa").all_inner_texts()
    assert any(reference in t for t in texts), "the acknowledgement carries the reference"
    # The officer's page shows the delivery result when the notifier reports it.
    delivered = officer.locator("#timeline .t-officer .delivery[data-status='sent']")
    for _ in range(30):
        if await delivered.count():
            break
        await officer.wait_for_timeout(1000)
    assert await delivered.count() >= 1


async def test_administrator_reads_the_operators_dashboards(
    demo_stack: dict[str, Any], chromium: Any
) -> None:
    """The demo administrator opens /ops: every service ready, topics, lag, the OA token; a
    poison message appears in the dead-letter browser, its bytes only as a hex preview."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    state = demo_stack["state"]
    producer = AIOKafkaProducer(bootstrap_servers=state["kafka_bootstrap"])
    await producer.start()
    try:
        await producer.send_and_wait("zalo.events.v1", b"\x00 not an event", key=b"poison")
    finally:
        await producer.stop()

    page = await (await chromium.new_context(viewport={"width": 1360, "height": 900})).new_page()
    await page.goto(state["services"]["console"]["url"] + "/login")
    await page.fill("#username", "quantri")
    await page.fill("#password", demo_stack["accounts"]["quantri"])
    await page.click("#login-submit")
    await page.wait_for_url(re.compile(r".*/(inbox|audit|ops).*"))
    await page.click("header nav >> text=Vận hành")
    await page.wait_for_url(re.compile(r".*/ops$"))
    for name in state["services"]:
        await page.locator(f'tr[data-service="{name}"][data-state="ready"]').wait_for()
    await page.locator("#ops-tokens tr.token-valid").wait_for()
    dlq = page.locator('tr[data-dlq="zalo.events.v1.dlq"]')
    for _ in range(30):  # the consumers dead-letter the poison message within seconds
        if int(await dlq.get_attribute("data-count") or 0) > 0:
            break
        await page.wait_for_timeout(1000)
    assert int(await dlq.get_attribute("data-count") or 0) > 0
    # The live refresh has run: the produce rate is measured.
    await page.locator("#ops-updated", has_text="Cập nhật").wait_for(timeout=15_000)
    for _ in range(20):
        if "đang đo" not in await page.locator("#ops-topics").inner_text():
            break
        await page.wait_for_timeout(500)
    assert "bản ghi/giây" in await page.locator("#ops-topics").inner_text()
    await _shot(page, "console-ops.png")

    await dlq.locator("a").click()
    await page.wait_for_url(re.compile(r".*/ops/dlq.*"))
    record = page.locator("li.dlq-record").first
    await record.locator("summary").click()
    assert "00 20 6e 6f 74" in await record.locator("pre.dlq-value.hex").inner_text()
    assert "Không giải mã được" in await record.inner_text()
    await _shot(page, "console-ops-dlq.png")


async def test_unit_lead_reads_the_dashboards(demo_stack: dict[str, Any], chromium: Any) -> None:
    """The lead of the demo ward opens the figures: charts rendered server-side (SVG), the
    on-time table, and the deadlines and alerts pages."""
    console_url = demo_stack["state"]["services"]["console"]["url"]
    page = await (await chromium.new_context(viewport={"width": 1360, "height": 1000})).new_page()
    await page.goto(console_url + "/login")
    await page.fill("#username", "truong.xuanhuong")
    await page.fill("#password", demo_stack["accounts"]["truong.xuanhuong"])
    await page.click("#login-submit")
    await page.wait_for_url(re.compile(r".*/inbox.*"))
    await page.click("header nav >> text=Số liệu")
    await page.wait_for_url(re.compile(r".*/dashboard.*"))
    charts = page.locator("figure.panel svg.chart")
    assert await charts.count() == 3
    assert await page.locator("#on-time tbody tr").count() >= 1
    await _shot(page, "console-dashboard.png")
    await page.click("header nav >> text=Hạn xử lý")
    await page.wait_for_url(re.compile(r".*/deadlines$"))
    assert "Quá hạn" in await page.locator("main h2").first.inner_text()
