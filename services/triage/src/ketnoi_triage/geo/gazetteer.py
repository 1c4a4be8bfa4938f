"""Where is this message about? Current and pre-2025 Vietnamese place names → current units.

:class:`Gazetteer` is loaded once from the generated data file (``data/gazetteer.json.gz``,
written by ``python -m ketnoi_triage.geo.build``) and answers:

* :meth:`Gazetteer.resolve_text`: the place a citizen's message names, written in current or
  pre-2025 names, with or without diacritics, with abbreviations ("P.2 Đà Lạt", "tt Di Linh",
  "xã Lộc An cũ"), as a current commune/ward; or a place in another province;
* :meth:`Gazetteer.resolve_point`: the unit around a coordinate;
* lookups of units and provinces by code and of provinces by name.

How a message is read (see also :mod:`ketnoi_triage.geo.index`):

1. the folded text is tokenised and scanned once against the name tries — a unit prefix
   opens every name, otherwise only names distinctive enough to stand alone are found;
2. old district and province names found anywhere become context that confirms readings
   ("phường 1" + "Đà Lạt" is the old Phường 1 of Đà Lạt, not of Bảo Lộc);
3. every reading is scored: prefix or not, diacritics that agree, context, "cũ", a common
   phrase ("hòa bình") or a person's name read as such, the caller's province for homonyms;
4. the best mention wins — more specific first, then the earlier one, and a place the writer
   says they live in or are going back to ("tôi ở…", "về…") only when nothing else is named;
5. a well-known landmark ("chợ Đà Lạt", "quảng trường Lâm Viên", see
   :mod:`ketnoi_triage.geo.landmarks`) answers when no name was found, or when the name found
   is part of the landmark's own.
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from ketnoi_shared.text import NormalizedText, normalize

from .index import KIND_OLDD, KIND_OLDP, KIND_OLDW, Entry, NameIndex
from .landmarks import LANDMARKS, Landmark, LandmarkIndex
from .model import Level, PlaceMatch, ProvinceInfo, UnitInfo
from .points import PointIndex
from .resolver import Candidate, resolve
from .tokens import tokenize

__all__ = ["DATA_FILE", "Gazetteer"]

DATA_FILE: Final = Path(__file__).resolve().parent.parent / "data" / "gazetteer.json.gz"

_LEVEL_OF_KIND: Final[tuple[Level, ...]] = ("ward", "ward", "district", "province", "province")
_SPLIT_FACTOR: Final = 0.85  # an old commune split between several current ones


class Gazetteer:
    """Current units and provinces of Vietnam with their pre-2025 names; see the module doc."""

    def __init__(self, index: NameIndex) -> None:
        self._index = index
        self._points = PointIndex(index.units.values())
        self._by_province: dict[str, list[UnitInfo]] = {}
        for unit in index.units.values():
            self._by_province.setdefault(unit.province_code, []).append(unit)
        self._landmarks = LandmarkIndex()
        self._landmark_units = {u.name: u for u in index.units.values() if u.name in LANDMARKS}

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> Gazetteer:
        """The gazetteer of the generated data file, loaded once per process and path."""
        return _load_cached(Path(path) if path is not None else DATA_FILE)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Gazetteer:
        """A gazetteer over data in the format the generator writes."""
        return cls(NameIndex.build(data))

    # -- lookups ---------------------------------------------------------------------------

    def unit(self, code: str) -> UnitInfo:
        """The current unit with this official code (KeyError if there is none)."""
        return self._index.units[code]

    def province(self, code: str) -> ProvinceInfo:
        """The current province with this official code (KeyError if there is none)."""
        return self._index.provinces[code.zfill(2)]

    def units_in_province(self, code: str) -> list[UnitInfo]:
        """Current units of a province, by code."""
        return list(self._by_province.get(code.zfill(2), ()))

    def province_code_for_name(self, name: str) -> str | None:
        """Official code of a current province from its name ("Lâm Đồng", "tỉnh Lâm Đồng",
        "TP HCM"); a pre-2025 province gives the province it is now part of."""
        text = name.strip()
        if text.isdigit():
            code = text.zfill(2)
            return code if code in self._index.provinces else None
        folded = tokenize(normalize(text).folded)
        key = " ".join(folded)
        if key in self._index.province_names:
            return self._index.province_names[key]
        match = self.resolve_text(text, province_code="")
        if match is not None and match.level == "province":
            return match.province_code
        return None

    # -- text ------------------------------------------------------------------------------

    def resolve_text(self, text: str | NormalizedText, *, province_code: str) -> PlaceMatch | None:
        """The place a message is about, as a current unit, or None if it names none.

        ``text`` may be given already normalised (:func:`ketnoi_shared.text.normalize`) to
        save normalising it twice. Readings inside ``province_code`` are preferred for names
        several places share; a place clearly in another province gives a match with
        ``outside_province=True``. Mentions of ``province_code`` itself or of one of its old
        cities now split into several wards ("ở Lâm Đồng", "ở Đà Lạt") carry no commune and
        give None.
        """
        norm = text if isinstance(text, NormalizedText) else normalize(text)
        folded = tokenize(norm.folded)
        found = resolve(self._index, norm, province_code, folded)
        landmark = self._landmarks.find(norm, folded)
        if landmark is not None and (
            found is None or (found[0].start < landmark.end and landmark.start < found[0].end)
        ):
            return self._landmark_match(landmark, province_code)
        if found is None:
            return None
        cand, msg = found
        return self._match(cand, msg.original_span(cand.start, cand.end), province_code)

    def _landmark_match(self, landmark: Landmark, province_code: str) -> PlaceMatch:
        unit = self._landmark_units[landmark.unit_name]
        return _unit_match(
            unit,
            matched_text=landmark.written,
            distance_km=None,
            outside_province=unit.province_code != province_code,
            confidence=0.8,
            landmark=landmark.name,
        )

    def _match(self, cand: Candidate, matched: str | None, province_code: str) -> PlaceMatch:
        entry, index = cand.entry, self._index
        province = index.provinces[entry.province]
        alternatives = cand.alternatives
        confidence = cand.score
        if entry.kind == KIND_OLDW and index.old_ward_others[entry.ref]:
            alternatives = tuple(dict.fromkeys((*alternatives, *index.old_ward_others[entry.ref])))
            confidence *= _SPLIT_FACTOR
        unit = index.units[entry.target] if entry.target else None
        return PlaceMatch(
            ward_code=unit.code if unit else None,
            ward_name=unit.name if unit else None,
            province_code=province.code,
            province_name=province.name,
            matched_text=matched,
            old_name=self._old_name(entry),
            distance_km=None,
            outside_province=entry.province != province_code,
            confidence=round(confidence, 3),
            level=_LEVEL_OF_KIND[entry.kind],
            alternatives=alternatives,
        )

    def _old_name(self, entry: Entry) -> str | None:
        """The pre-2025 name a reading used, None for a current name."""
        if entry.label is not None:
            return entry.label
        if entry.kind == KIND_OLDW:
            return self._index.old_ward_names[entry.ref]
        if entry.kind == KIND_OLDD:
            return self._index.old_district_names[entry.ref]
        if entry.kind == KIND_OLDP:
            return self._index.old_province_names[entry.ref]
        return None

    # -- points ----------------------------------------------------------------------------

    def resolve_point(
        self, lat: float, lon: float, *, province_code: str | None = None
    ) -> PlaceMatch | None:
        """The current unit whose centroid is nearest to a point, if the point is plausibly
        inside it (within 2.5 × the radius of a disc of its area, plus 3 km), else None.
        ``outside_province`` is set relative to ``province_code`` when given."""
        found = self._points.nearest(lat, lon)
        if found is None:
            return None
        unit, distance, radius = found
        if distance > radius:
            return None
        return _unit_match(
            unit,
            matched_text=None,
            distance_km=round(distance, 3),
            outside_province=province_code is not None and unit.province_code != province_code,
            confidence=round(max(0.3, 1.0 - 0.7 * distance / radius), 3),
        )


def _unit_match(
    unit: UnitInfo,
    *,
    matched_text: str | None,
    distance_km: float | None,
    outside_province: bool,
    confidence: float,
    landmark: str | None = None,
) -> PlaceMatch:
    """A match on a current unit itself (a landmark, a point), with no old name."""
    return PlaceMatch(
        ward_code=unit.code,
        ward_name=unit.name,
        province_code=unit.province_code,
        province_name=unit.province_name,
        matched_text=matched_text,
        old_name=None,
        distance_km=distance_km,
        outside_province=outside_province,
        confidence=confidence,
        landmark=landmark,
    )


@lru_cache(maxsize=4)
def _load_cached(path: Path) -> Gazetteer:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return Gazetteer.from_data(data)
