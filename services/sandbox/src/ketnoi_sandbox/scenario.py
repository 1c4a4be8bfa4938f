"""Scripted citizens: a YAML scenario of actions on the simulated phone and expectations on
what the OA answers, run against a running sandbox (``ketnoi sandbox scenario FILE``).

Steps: ``say: TEXT``, ``photo: CAPTION`` (a generated JPEG with GPS EXIF, hosted by the
sandbox), ``location: [LAT, LON]``, ``follow: true``,
``wait: SECONDS``, and ``expect_replies: N`` (with ``within: SECONDS`` and ``contains:
[TEXT, ...]``) which waits for the phone to have exactly N replies from the OA.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

__all__ = ["ScenarioError", "ScenarioResult", "run_scenario"]


class ScenarioError(AssertionError):
    """An expectation of the scenario was not met."""


@dataclass
class ScenarioResult:
    user: str
    replies: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


def _replies(http: httpx.Client, oa: str, user: str) -> list[dict[str, Any]]:
    answer = http.get("/sandbox/messages", params={"user": user, "oa": oa})
    answer.raise_for_status()
    return list(answer.json())


def _action(step: dict[str, Any]) -> dict[str, Any] | None:
    """The phone action of a step, or None for a step that is not one."""
    if "say" in step:
        return {"kind": "text", "text": step["say"]}
    if "photo" in step:
        return {"kind": "image", "text": step["photo"]}
    if "location" in step:
        lat, lon = step["location"]
        return {"kind": "location", "latitude": lat, "longitude": lon}
    if step.get("follow"):
        return {"kind": "follow"}
    return None


def _expect(http: httpx.Client, oa: str, user: str, step: dict[str, Any]) -> list[dict[str, Any]]:
    want = int(step["expect_replies"])
    deadline = time.monotonic() + float(step.get("within", 30))
    replies = _replies(http, oa, user)
    while len(replies) < want and time.monotonic() < deadline:
        time.sleep(0.5)
        replies = _replies(http, oa, user)
    time.sleep(float(step.get("grace", 2)))  # an extra reply would show by now
    replies = _replies(http, oa, user)
    if len(replies) != want:
        raise ScenarioError(f"expected {want} replies, got {len(replies)}")
    for text in step.get("contains", []):
        if not any(text in (r.get("text") or "") for r in replies):
            raise ScenarioError(f"no reply contains {text!r}")
    return replies


def run_scenario(
    path: Path,
    *,
    sandbox_url: str,
    user: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ScenarioResult:
    spec = yaml.safe_load(path.read_text())
    oa = str(spec["oa"])
    user = user or str(spec.get("user") or f"8{random.randrange(10**17, 10**18)}")  # noqa: S311
    result = ScenarioResult(user=user)
    with httpx.Client(base_url=sandbox_url, timeout=10, transport=transport) as http:
        for step in spec["steps"]:
            action = _action(step)
            if action is not None:
                answer = http.post(
                    "/sandbox/citizen/send", json={"oa_id": oa, "user_id": user, **action}
                )
                answer.raise_for_status()
                result.log.append(
                    f"sent {action['kind']}: webhook {answer.json()['webhook_status']}"
                )
            elif "wait" in step:
                time.sleep(float(step["wait"]))
            elif "expect_replies" in step:
                result.replies = _expect(http, oa, user, step)
                result.log.append(f"received {len(result.replies)} reply(ies) as expected")
            else:
                raise ScenarioError(f"unknown step {step!r}")
    return result
