"""Nearest-centroid lookup of current units on a coarse latitude/longitude grid."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from statistics import median
from typing import Final

from .model import UnitInfo

__all__ = ["PointIndex", "plausible_radius_km"]

_CELL_DEG: Final = 0.25  # about 27 km
# The plausible radius of the largest unit (about 1,100 km²) is under 50 km: two cells.
_MAX_RINGS: Final = 2


def plausible_radius_km(area_km2: float) -> float:
    """How far from its centroid a point can be and still lie in a unit of this area."""
    return 2.5 * math.sqrt(area_km2 / math.pi) + 3.0


class PointIndex:
    """Units bucketed by grid cell; a query looks at the cells around the point."""

    def __init__(self, units: Iterable[UnitInfo]) -> None:
        self._cells: dict[tuple[int, int], list[tuple[float, float, UnitInfo, float]]] = (
            defaultdict(list)
        )
        units = list(units)
        fallback = _median_areas(units)
        for u in units:
            area = u.area_km2 if u.area_km2 is not None else fallback[u.province_code]
            cell = (math.floor(u.lat / _CELL_DEG), math.floor(u.lon / _CELL_DEG))
            self._cells[cell].append((u.lat, u.lon, u, plausible_radius_km(area)))

    def nearest(self, lat: float, lon: float) -> tuple[UnitInfo, float, float] | None:
        """(unit, distance km, plausible radius km) of the unit whose centroid is nearest,
        among those within two grid cells; None if there is none."""
        row, col = math.floor(lat / _CELL_DEG), math.floor(lon / _CELL_DEG)
        scale = math.cos(math.radians(lat))
        best: tuple[float, UnitInfo, float] | None = None
        for dr in range(-_MAX_RINGS, _MAX_RINGS + 1):
            for dc in range(-_MAX_RINGS, _MAX_RINGS + 1):
                for ulat, ulon, unit, radius in self._cells.get((row + dr, col + dc), ()):
                    d2 = (ulat - lat) ** 2 + ((ulon - lon) * scale) ** 2
                    if best is None or d2 < best[0]:
                        best = (d2, unit, radius)
        if best is None:
            return None
        d2, unit, radius = best
        return unit, _haversine_km(lat, lon, unit.lat, unit.lon), radius


def _median_areas(units: list[UnitInfo]) -> dict[str, float]:
    """Median unit area per province, for the few units the data gives no area."""
    by_province: dict[str, list[float]] = defaultdict(list)
    for u in units:
        if u.area_km2 is not None:
            by_province[u.province_code].append(u.area_km2)
    return {code: median(areas) for code, areas in by_province.items()}


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))
