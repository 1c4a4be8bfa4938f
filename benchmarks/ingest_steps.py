"""Where one webhook's CPU goes inside ingest, step by step, in one process and one thread (no
network, no broker, no database): what `benchmarks/ingest_bench.py` cannot separate.

Each step is timed over ``--n`` calls on Zalo's `user_send_text` fixture, next to two baselines
measured in the same run: the standard library's ``json.loads`` of the same body (what the
minimal handler of ingest_bench does besides producing) and a ``model_dump_json`` of the
event (the floor of any contract encoding). Figures are µs per call (median of 5 passes).

Usage: .venv/bin/python benchmarks/ingest_steps.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ketnoi_ingest.app import json_response, parse_body
from ketnoi_ingest.normalize import normalize, read_envelope
from ketnoi_ingest.signature import compute_signature, signature_matches
from ketnoi_shared.contracts import ZALO_EVENTS
from ketnoi_shared.identity import IdentityProtector
from ketnoi_shared.messaging import encode_for

FIXTURE = Path(__file__).resolve().parents[2] / "shared/zalo/fixtures/webhook/user_send_text.json"


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    passes = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        passes.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(passes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n

    loaded = json.loads(FIXTURE.read_bytes())
    body = loaded.get("payload", loaded) if "event_name" not in loaded else loaded
    raw = json.dumps(body, ensure_ascii=False).encode()
    protector = IdentityProtector(
        pseudonym_key=os.urandom(32), seal_kid="k1", seal_keys={"k1": AESGCM(os.urandom(32))}
    )
    parsed = parse_body(raw)
    env = read_envelope(parsed)
    event = normalize(parsed, env, oa_id="1", protect=protector, num_retry=0)
    assert event is not None

    def sign() -> bool:
        expected = compute_signature(
            app_id=env.app_id, raw_body=raw, timestamp=env.timestamp, secret="secret"
        )
        return signature_matches("0" * 64, expected)

    rows = [
        ("baseline: json.loads", lambda: json.loads(raw)),
        ("baseline: event.model_dump_json", event.model_dump_json),
        ("parse_body (ids kept as text)", lambda: parse_body(raw)),
        ("read_envelope", lambda: read_envelope(parsed)),
        ("signature (SHA-256, constant-time)", sign),
        (
            "normalize (contract, pseudonym, 2 seals)",
            lambda: normalize(parsed, env, oa_id="1", protect=protector, num_retry=0),
        ),
        ("encode_for (value, key, headers)", lambda: encode_for(ZALO_EVENTS, event)),
        ("pseudonym (HMAC-SHA-256)", lambda: protector.pseudonym("8123456789012345678")),
        ("seal (AES-256-GCM)", lambda: protector.seal("8123456789012345678", purpose="x")),
        ("json_response", lambda: json_response({"status": "accepted", "event_id": "e"}, 200)),
    ]
    print(f"body {len(raw)} bytes, {n} calls per pass, median of 5 passes\n")
    print("| step | µs per call |\n|---|---:|")
    for name, fn in rows:
        print(f"| {name} | {per_call_us(fn, n):.1f} |")


if __name__ == "__main__":
    main()
