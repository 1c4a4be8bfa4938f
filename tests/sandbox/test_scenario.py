"""The scenario runner's steps and expectations (the sandbox played by a MockTransport; the
real run is in tests/test_stack.py)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ketnoi_sandbox.scenario import ScenarioError, run_scenario


def fake_sandbox(replies: int) -> tuple[httpx.MockTransport, list[dict]]:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sandbox/citizen/send":
            sent.append(json.loads(request.content))
            return httpx.Response(200, json={"msg_id": "m", "webhook_status": 200})
        if request.url.path == "/sandbox/messages":
            return httpx.Response(200, json=[{"text": "mã tin báo LD-ABCDE"}] * replies)
        return httpx.Response(404)

    return httpx.MockTransport(handler), sent


def scenario(tmp_path: Path, expect: int) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"""oa: "1"
user: "8000"
steps:
  - say: "xin chào"
  - photo: "ảnh"
  - location: [11.9, 108.4]
  - follow: true
  - expect_replies: {expect}
    within: 0.1
    grace: 0
    contains: ["LD-"]
""")
    return path


def test_steps_become_phone_actions(tmp_path: Path):
    transport, sent = fake_sandbox(replies=1)
    result = run_scenario(scenario(tmp_path, 1), sandbox_url="http://sb", transport=transport)
    assert [s["kind"] for s in sent] == ["text", "image", "location", "follow"]
    assert sent[2]["latitude"] == 11.9
    assert {s["user_id"] for s in sent} == {"8000"}
    assert len(result.replies) == 1


def test_a_missing_or_extra_reply_fails_the_scenario(tmp_path: Path):
    transport, _ = fake_sandbox(replies=2)
    with pytest.raises(ScenarioError, match="expected 1 replies, got 2"):
        run_scenario(scenario(tmp_path, 1), sandbox_url="http://sb", transport=transport)
    transport, _ = fake_sandbox(replies=0)
    with pytest.raises(ScenarioError, match="got 0"):
        run_scenario(scenario(tmp_path, 1), sandbox_url="http://sb", transport=transport)
