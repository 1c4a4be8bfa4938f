"""Classification plus location: what ``ketnoi triage classify`` prints and what the triage
consumer decides from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .classify import TriageModel
from .classify.features import prepare

__all__ = ["Triage", "TriageResult"]

DEFAULT_PROVINCE = "Lâm Đồng"


@dataclass(frozen=True, slots=True)
class TriageResult:
    category: str
    subcategory: str
    urgency: str
    confidence: float
    explanation: str
    location: dict[str, Any] | None
    outside_province: bool
    cues: tuple[str, ...]

    def as_json(self, id_: Any) -> dict[str, Any]:
        return {
            "id": id_,
            "category": self.category,
            "subcategory": self.subcategory,
            "urgency": self.urgency,
            "confidence": self.confidence,
            "location": self.location,
            "outside_province": self.outside_province,
            "explanation": self.explanation,
        }


@dataclass
class Triage:
    model: TriageModel
    gazetteer: Any | None
    province_code: str | None

    @classmethod
    def load(
        cls,
        *,
        province: str = DEFAULT_PROVINCE,
        cache_dir: Path | None = None,
        split: str | None = None,
    ) -> Triage:
        model = TriageModel.default(cache_dir, split=split)
        gazetteer = None
        code = None
        try:
            from .geo import Gazetteer  # noqa: PLC0415 - optional until the data is built

            gazetteer = Gazetteer.load()
            code = province if province.isdigit() else gazetteer.province_code_for_name(province)
        except ImportError:
            gazetteer = None
        return cls(model=model, gazetteer=gazetteer, province_code=code)

    def classify_many(self, texts: Sequence[str]) -> list[TriageResult]:
        predictions = self.model.predict_many(texts)
        results = []
        for text, p in zip(texts, predictions, strict=True):
            location, outside, where = self._locate(text)
            explanation = p.explanation + (f" Địa điểm: {where}." if where else "")
            results.append(
                TriageResult(
                    category=p.category,
                    subcategory=p.subcategory,
                    urgency=p.urgency,
                    confidence=p.confidence,
                    explanation=explanation,
                    location=location,
                    outside_province=outside,
                    cues=p.cues,
                )
            )
        return results

    def locate_point(self, lat: float, lon: float) -> tuple[dict[str, Any], bool] | None:
        """(location, outside the province) for coordinates, or None when nowhere near."""
        if self.gazetteer is None:
            return None
        match = self.gazetteer.resolve_point(lat, lon)
        if match is None:
            return None
        outside = match.province_code != self.province_code
        return (
            {
                "ward_code": match.ward_code,
                "ward_name": match.ward_name,
                "province_code": match.province_code,
                "latitude": lat,
                "longitude": lon,
                "distance_km": match.distance_km,
                "source": "attachment",
            },
            outside,
        )

    def _locate(self, text: str) -> tuple[dict[str, Any] | None, bool, str | None]:
        if self.gazetteer is None or self.province_code is None:
            return None, False, None
        # The classifier already normalised the text (cached): the resolver reuses it.
        match = self.gazetteer.resolve_text(
            prepare(text).normalized, province_code=self.province_code
        )
        if match is None:
            return None, False, None
        if match.outside_province:
            place = ", ".join(p for p in (match.ward_name, match.province_name) if p)
            return None, True, f"{place} (ngoài tỉnh)"
        where = match.ward_name + (f" (tên cũ: {match.old_name})" if match.old_name else "")
        if match.landmark:
            where += f" (xác định theo địa danh «{match.landmark}»)"
        return (
            {
                "ward_code": match.ward_code,
                "ward_name": match.ward_name,
                "province_code": match.province_code,
                "source": "text",
            },
            False,
            where,
        )
