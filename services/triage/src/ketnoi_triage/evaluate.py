"""Quality of triage on a labelled set: per-class precision/recall/F1, macro-F1, subcategory
and urgency accuracy, emergency recall, location accuracy and the confusion matrix."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .classify.taxonomy import CATEGORIES
from .engine import Triage, TriageResult

__all__ = ["Report", "evaluate"]


def _norm(name: str | None) -> str | None:
    return unicodedata.normalize("NFC", name).casefold().strip() if name else None


@dataclass
class Report:
    name: str
    n: int
    per_class: dict[str, tuple[float, float, float, int]]
    macro_f1: float
    subcategory_accuracy: float
    urgency_accuracy: float
    emergency_recall: float
    emergency_precision: float
    location_accuracy: float | None
    location_n: int
    confusion: dict[tuple[str, str], int]

    def markdown(self) -> str:
        lines = [f"### {self.name} ({self.n} messages)", ""]
        lines.append("| class | precision | recall | F1 | support |")
        lines.append("|---|---:|---:|---:|---:|")
        for c in CATEGORIES:
            p, r, f, s = self.per_class[c]
            lines.append(f"| {c} | {p:.3f} | {r:.3f} | {f:.3f} | {s} |")
        lines += [
            "",
            f"- macro-F1: **{self.macro_f1:.3f}**",
            f"- subcategory accuracy: {self.subcategory_accuracy:.3f}",
            f"- urgency accuracy: {self.urgency_accuracy:.3f}",
            f"- emergency recall: **{self.emergency_recall:.3f}** "
            f"(precision {self.emergency_precision:.3f})",
        ]
        if self.location_accuracy is not None:
            lines.append(
                f"- location accuracy: **{self.location_accuracy:.3f}** "
                f"(ward or 'no place' or 'outside the province', {self.location_n} messages)"
            )
        lines += ["", "Confusion matrix (rows: truth, columns: predicted):", ""]
        lines.append("| | " + " | ".join(CATEGORIES) + " |")
        lines.append("|---|" + "---:|" * len(CATEGORIES))
        for t in CATEGORIES:
            cells = " | ".join(str(self.confusion.get((t, p), 0)) for p in CATEGORIES)
            lines.append(f"| **{t}** | {cells} |")
        return "\n".join(lines) + "\n"


def _location_correct(row: dict[str, Any], result: TriageResult) -> bool:
    if row.get("outside_province"):
        return result.outside_province
    expected = _norm(row.get("location_ward"))
    got = _norm(result.location["ward_name"]) if result.location else None
    return expected == got and not result.outside_province


def evaluate(engine: Triage, rows: Sequence[dict[str, Any]], *, name: str) -> Report:
    results = engine.classify_many([r["text"] for r in rows])
    truth = [r["category"] for r in rows]
    pred = [x.category for x in results]
    confusion = Counter(zip(truth, pred, strict=True))
    per_class = {}
    for c in CATEGORIES:
        tp = confusion[(c, c)]
        fp = sum(v for (t, p), v in confusion.items() if p == c and t != c)
        fn = sum(v for (t, p), v in confusion.items() if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = (precision, recall, f1, tp + fn)
    present = [c for c in CATEGORIES if per_class[c][3]]
    emergencies = [
        x.urgency == "emergency"
        for x, r in zip(results, rows, strict=True)
        if r["urgency"] == "emergency"
    ]
    flagged = [
        r["urgency"] == "emergency"
        for x, r in zip(results, rows, strict=True)
        if x.urgency == "emergency"
    ]
    with_location = [(r, x) for r, x in zip(rows, results, strict=True) if "location_ward" in r]
    located = engine.gazetteer is not None and bool(with_location)
    return Report(
        name=name,
        n=len(rows),
        per_class=per_class,
        macro_f1=sum(per_class[c][2] for c in present) / len(present),
        subcategory_accuracy=sum(
            x.category == r["category"] and x.subcategory == r["subcategory"]
            for x, r in zip(results, rows, strict=True)
        )
        / len(rows),
        urgency_accuracy=sum(x.urgency == r["urgency"] for x, r in zip(results, rows, strict=True))
        / len(rows),
        emergency_recall=sum(emergencies) / len(emergencies) if emergencies else 1.0,
        emergency_precision=sum(flagged) / len(flagged) if flagged else 1.0,
        location_accuracy=(
            sum(_location_correct(r, x) for r, x in with_location) / len(with_location)
        )
        if located
        else None,
        location_n=len(with_location),
        confusion=dict(confusion),
    )
