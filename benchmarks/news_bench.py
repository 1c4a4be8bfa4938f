"""Knowledge-base answers per second ("Công vụ"), next to a baseline measured in the same run:
the shared Vietnamese normalisation alone on the same questions (the floor of any answer).

Usage: .venv/bin/python benchmarks/news_bench.py [--seconds 5]
The questions are the labelled citizen questions of services/news/eval, cycled.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from ketnoi_news.app import build_service
from ketnoi_news.evaluate import load_questions
from ketnoi_news.settings import NewsSettings
from ketnoi_shared.text import normalize


def rate(fn: Callable[[str], object], questions: list[str], seconds: float) -> tuple[float, float]:
    """(calls per second, p99 latency in ms) of ``fn`` over ``questions`` for ``seconds``."""
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn(questions[i % len(questions)])
        latencies.append(time.perf_counter() - t0)
        i += 1
    latencies.sort()
    return len(latencies) / sum(latencies), latencies[int(len(latencies) * 0.99)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    questions = [q["q"] for q in load_questions()]
    service = build_service(NewsSettings())
    rows = [
        ("baseline: normalise only", rate(normalize, questions, args.seconds)),
        ("retrieve (BM25, top 3)", rate(service.retriever.search, questions, args.seconds)),
        ("answer (retrieve + render)", rate(service.answer, questions, args.seconds)),
    ]
    base = rows[0][1][0]
    print(f"{len(questions)} questions, {args.seconds:.0f} s each, one core")
    print("| pass | answers/s | p99 ms | vs baseline |")
    print("|---|---:|---:|---:|")
    for name, (per_s, p99) in rows:
        print(f"| {name} | {per_s:,.0f} | {p99:.3f} | {per_s / base:.1%} |")


if __name__ == "__main__":
    main()
