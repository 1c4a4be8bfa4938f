"""Value types returned by the gazetteer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Level", "PlaceMatch", "ProvinceInfo", "UnitInfo"]

Level = Literal["ward", "district", "province"]


@dataclass(frozen=True, slots=True)
class ProvinceInfo:
    """A current (post-2025) province or centrally governed city."""

    code: str
    name: str
    short_name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """A current commune-level unit (xã, phường or đặc khu)."""

    code: str
    name: str
    short_name: str
    type: str
    province_code: str
    province_name: str
    lat: float
    lon: float
    area_km2: float | None


@dataclass(frozen=True, slots=True)
class PlaceMatch:
    """Where a message (or a point) is, as a current unit.

    ``level`` says how precise the mention was: ``"ward"`` for a commune or ward (current or
    pre-2025 name), ``"district"`` for a pre-2025 district, town or city name standing for the
    unit that holds its centre ("Di Linh", "Nha Trang"), ``"province"`` for a bare province
    name — then ``ward_code`` and ``ward_name`` are None. Province-level matches are only
    returned outside the caller's province (inside it they carry no routing information).

    ``alternatives`` lists other current units the mention may also mean (an old commune split
    between several new ones, or an ambiguous name); ``confidence`` is lowered accordingly.
    """

    ward_code: str | None
    ward_name: str | None
    province_code: str
    province_name: str
    matched_text: str | None
    old_name: str | None
    distance_km: float | None
    outside_province: bool
    confidence: float
    level: Level = "ward"
    alternatives: tuple[str, ...] = ()
    landmark: str | None = None  # the well-known place the match came from ("chợ Đà Lạt")
