"""Quality of the knowledge-base retrieval on the labelled questions (services/news/eval).

Each line: ``{"q": question, "id": entry id or null (not in the base), "also": [ids]}``;
``also`` lists entries that answer an ambiguous question equally well. Figures:

* **top-1 accuracy**: in-scope questions whose best candidate is right (whatever the
  confidence);
* **fallback rate**: in-scope questions handed to officers (not confident);
* **answered accuracy**: of the in-scope questions answered automatically, how many were right;
* **out-of-scope answered**: questions the base cannot answer that were answered anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .retrieval import Retriever

__all__ = ["EvalReport", "default_questions_path", "evaluate", "load_questions"]


def default_questions_path() -> Path:
    return Path(__file__).resolve().parents[2] / "eval" / "questions.jsonl"


def load_questions(path: Path | None = None) -> list[dict[str, Any]]:
    lines = (path or default_questions_path()).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class EvalReport:
    in_scope: int = 0
    top1: int = 0
    answered: int = 0
    answered_right: int = 0
    out_of_scope: int = 0
    out_of_scope_answered: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def top1_accuracy(self) -> float:
        return self.top1 / self.in_scope if self.in_scope else 0.0

    @property
    def fallback_rate(self) -> float:
        return 1 - self.answered / self.in_scope if self.in_scope else 0.0

    @property
    def answered_accuracy(self) -> float:
        return self.answered_right / self.answered if self.answered else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "questions": self.in_scope + self.out_of_scope,
            "in_scope": self.in_scope,
            "top1_accuracy": round(self.top1_accuracy, 3),
            "fallback_rate": round(self.fallback_rate, 3),
            "answered_accuracy": round(self.answered_accuracy, 3),
            "out_of_scope": self.out_of_scope,
            "out_of_scope_answered": self.out_of_scope_answered,
        }


def evaluate(retriever: Retriever, questions: list[dict[str, Any]]) -> EvalReport:
    report = EvalReport()
    for item in questions:
        match = retriever.search(item["q"])
        best = match.best.entry_id if match.best else None
        if item.get("id") is None:
            report.out_of_scope += 1
            if match.confident:
                report.out_of_scope_answered += 1
                report.errors.append({"q": item["q"], "expected": None, "got": best})
            continue
        report.in_scope += 1
        right = best in {item["id"], *item.get("also", ())}
        report.top1 += right
        if match.confident:
            report.answered += 1
            report.answered_right += right
        if not right:
            report.errors.append(
                {
                    "q": item["q"],
                    "expected": item["id"],
                    "got": best,
                    "candidates": [(c.entry_id, c.score) for c in match.candidates],
                }
            )
    return report
