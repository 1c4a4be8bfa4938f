"""Read the administrative-unit packages and assemble the gazetteer data (build time only).

Two installed packages are the only sources; nothing here is typed by hand:

* ``vietnam-provinces``: the official list of the 34 provinces and 3,321 communes, wards and
  special zones in force since 1 July 2025, with their official codes and names;
* ``vietnamadminunits``: the same current list with centroid coordinates and areas, the
  pre-2025 list (63 provinces, ~700 districts, ~10,000 communes and wards, with older aliases)
  and the old → new conversion tables (including old communes split between new ones).

The two packages disagree on the code of ~130 units (mostly swapped codes); the official code
of ``vietnam-provinces`` is used and the units are paired by name within their province.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ketnoi_shared.text import fold

from .tokens import split_tone, tokenize

__all__ = ["collect"]

# Type words that the older alias keys of vietnamadminunits start with ("huyencattien").
_ALIAS_TYPE_PREFIXES = (
    "thanhpho",
    "thixa",
    "thitran",
    "district",
    "phuong",
    "huyen",
    "quan",
    "ward",
    "xa",
    "tx",
    "tp",
    "tt",
    "q",
)
# Well-known alternative names of a current province that neither package lists.
_EXTRA_PROVINCE_ALIASES = {"79": ["Sài Gòn", "hcmc", "tphcm"], "01": ["tphn"]}
# The one pre-2025 city with a double name is called by either half ("ra Phan Rang").
_EXTRA_DISTRICT_ALIASES = {"Phan Rang - Tháp Chàm": ["phan rang", "thap cham"]}


def _clean_name(name: str) -> str:
    name = unicodedata.normalize("NFC", name).replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", name).strip()


def _clean_short(name: str, type_word: str | None = None) -> str:
    """A short name without the package's disambiguating note ("Yên Viên (Thị trấn)") and,
    for numbered units, without the type word the package keeps ("Phường 1" → "1")."""
    short = _clean_name(re.sub(r"\([^)]*\)", " ", name))
    if type_word:
        words = _clean_name(type_word).split(" ")
        parts = short.split(" ")
        if parts[: len(words)] == words and " ".join(parts[len(words) :]).isdigit():
            return " ".join(parts[len(words) :])
    return short


def _name_key(name: str) -> tuple[str, ...]:
    """A spelling-tolerant key: tone-mark placement and i/y spelling do not matter."""
    return tuple("".join(split_tone(t)) for t in tokenize(_clean_name(name).lower()))


def _folded_key(name: str) -> tuple[str, ...]:
    return tuple(tokenize(fold(_clean_name(name).lower())))


def _query(sql: str) -> list[dict[str, Any]]:
    from vietnamadminunits.database import query  # noqa: PLC0415 - build-time dependency

    return list(query(sql))


def _json_list(value: str | None) -> list[str]:
    return list(json.loads(value)) if value else []


@dataclass
class _Segmenter:
    """Splits a run-together folded key ("cattien") into known syllables ("cat tien")."""

    syllables: set[str] = field(default_factory=set)

    def add(self, name: str) -> None:
        self.syllables.update(_folded_key(name))

    def split(self, key: str) -> str | None:
        best: list[list[str] | None] = [None] * (len(key) + 1)
        best[0] = []
        for end in range(1, len(key) + 1):
            for start in range(max(0, end - 7), end):
                head = best[start]
                piece = key[start:end]
                if head is None or piece not in self.syllables:
                    continue
                if best[end] is None or len(head) + 1 < len(best[end] or []):
                    best[end] = [*head, piece]
        found = best[len(key)]
        return " ".join(found) if found else None


def _strip_alias_type(key: str, keys: list[str]) -> str | None:
    """The alias key without its leading type word, or None when it has none.

    A key is taken as typed when the list also holds it without the type word, or when what
    follows the type word is a number ("quan9"); a one-letter "q" only counts before a number.
    """
    for prefix in _ALIAS_TYPE_PREFIXES:
        rest = key[len(prefix) :]
        if not key.startswith(prefix) or not rest:
            continue
        if rest.isdigit() or rest in keys:
            return rest
        if len(prefix) > 1 and not any(k == prefix + key for k in keys):
            return rest
    return None


def _aliases(keys: list[str], own: str, segmenter: _Segmenter) -> list[str]:
    """Older names from alias keys, as space-separated folded syllables (own name excluded)."""
    own_joined = "".join(_folded_key(own))
    out: list[str] = []
    for key in keys:
        if any(key == p + k for p in _ALIAS_TYPE_PREFIXES for k in keys if k != key):
            continue  # "phuongtrungphung" when "trungphung" is also listed
        is_bare = any(k == p + key for p in _ALIAS_TYPE_PREFIXES for k in keys)
        rest = None if is_bare else _strip_alias_type(key, keys)
        text = None
        if rest is not None:
            text = rest.lstrip("0") if rest.isdigit() else segmenter.split(rest)
        if text is None:
            text = segmenter.split(key)
        if text and text.replace(" ", "") != own_joined and text not in out:
            out.append(text)
    return out


class _Current:
    """Current provinces and units, official codes paired with coordinates."""

    def __init__(self) -> None:
        from vietnam_provinces import Province, Ward  # noqa: PLC0415 - build-time dependency

        geo_rows = _query("SELECT * FROM admin_units")
        self.provinces: dict[str, list[Any]] = {}
        self.province_by_key: dict[str, str] = {}
        for row in geo_rows:
            code = f"{int(row['provinceCode']):02d}"
            self.province_by_key[row["provinceKey"]] = code
            if code not in self.provinces:
                aliases = [k for k in _json_list(row["provinceAlias"])]
                aliases += _EXTRA_PROVINCE_ALIASES.get(code, [])
                self.provinces[code] = [
                    code,
                    _clean_name(row["province"]),
                    _clean_name(row["provinceShort"]),
                    row["provinceLat"],
                    row["provinceLon"],
                    aliases,
                ]
        official = {f"{int(p.code):02d}" for p in Province.iter_all()}
        if official != set(self.provinces):
            raise ValueError("the two packages list different provinces")
        self.units, self.code_by_geo_key = self._pair_units(geo_rows, list(Ward.iter_all()))

    @staticmethod
    def _pair_units(
        geo_rows: list[dict[str, Any]], wards: list[Any]
    ) -> tuple[list[list[Any]], dict[tuple[str, str], str]]:
        by_key: dict[tuple[str, tuple[str, ...]], list[Any]] = defaultdict(list)
        by_folded: dict[tuple[str, tuple[str, ...]], list[Any]] = defaultdict(list)
        for w in wards:
            prov = f"{int(w.province_code):02d}"
            by_key[(prov, _name_key(w.name))].append(w)
            by_folded[(prov, _folded_key(w.name))].append(w)
        units: list[list[Any]] = []
        code_by_geo_key: dict[tuple[str, str], str] = {}
        used: set[int] = set()
        for row in geo_rows:
            prov = f"{int(row['provinceCode']):02d}"
            found = by_key.get((prov, _name_key(row["ward"]))) or by_folded.get(
                (prov, _folded_key(row["ward"]))
            )
            if not found or len(found) != 1 or int(found[0].code) in used:
                raise ValueError(f"cannot pair {row['ward']} ({prov}) with an official unit")
            ward = found[0]
            used.add(int(ward.code))
            code = f"{int(ward.code):05d}"
            code_by_geo_key[(row["provinceKey"], row["wardKey"])] = code
            units.append(_unit_record(code, prov, ward, row))
        if len(units) != len(wards):
            raise ValueError("the two packages list different units")
        units.sort(key=lambda u: u[0])
        return units, code_by_geo_key


def _unit_record(code: str, prov: str, ward: Any, row: dict[str, Any]) -> list[Any]:
    """[code, name, short name, type, province code, lat, lon, area km², other spellings]."""
    name = _clean_name(ward.name)
    geo_name = _clean_name(row["ward"])
    if name.lower() == geo_name.lower():
        name = geo_name  # the official list has a few case slips ("Xã Đắk song")
    type_word = str(ward.division_type.value).capitalize()
    short = name[len(type_word) :].strip() if name.startswith(type_word) else name
    geo_short = _clean_short(row["wardShort"])
    variants = [geo_short] if geo_short != short else []
    return [
        code,
        name,
        short,
        type_word,
        prov,
        round(row["wardLat"], 5),
        round(row["wardLon"], 5),
        None if row["wardAreaKm2"] is None else round(row["wardAreaKm2"], 2),
        variants,
    ]


class _Legacy:
    """Pre-2025 provinces, districts and wards, and where each went."""

    def __init__(self, current: _Current) -> None:
        from vietnamadminunits.converter import converter_2025 as conv  # noqa: PLC0415

        rows = _query("SELECT * FROM admin_units_legacy")
        segmenter = _Segmenter()
        for row in rows:
            for col in ("provinceShort", "districtShort", "wardShort"):
                if row[col]:
                    segmenter.add(row[col])
        for unit in current.units:
            segmenter.add(unit[2])
        new_prov_of_old = {
            old: current.province_by_key[new]
            for new, olds in conv.DICT_PROVINCE.items()
            for old in olds
        }
        self.provinces: list[list[Any]] = []
        self.districts: list[list[Any]] = []
        self.wards: list[list[Any]] = []
        prov_idx: dict[str, int] = {}
        dist_idx: dict[tuple[str, str], int] = {}
        for row in rows:
            pk, dk = row["provinceKey"], row["districtKey"]
            if pk not in prov_idx:
                prov_idx[pk] = len(self.provinces)
                self.provinces.append(
                    [
                        row["provinceCode"],
                        _clean_name(row["province"]),
                        _clean_name(row["provinceShort"]),
                        new_prov_of_old[pk],
                        _aliases(_json_list(row["provinceAlias"]), row["provinceShort"], segmenter),
                    ]
                )
            if (pk, dk) not in dist_idx:
                dist_idx[(pk, dk)] = len(self.districts)
                self.districts.append(
                    [
                        row["districtCode"],
                        _clean_name(row["district"]),
                        _clean_short(row["districtShort"], row["districtType"]),
                        _clean_name(row["districtType"]),
                        prov_idx[pk],
                        round(row["districtLat"], 5),
                        round(row["districtLon"], 5),
                        None,  # representative current unit, filled below
                        _aliases(_json_list(row["districtAlias"]), row["districtShort"], segmenter)
                        + _EXTRA_DISTRICT_ALIASES.get(_clean_name(row["districtShort"]), []),
                    ]
                )
            if row["ward"] is None:
                continue
            key = f"{pk}_{dk}_{row['wardKey']}"
            new_code, others = _new_units_of(key, new_prov_of_old[pk], conv, current)
            self.wards.append(
                [
                    row["wardCode"],
                    _clean_name(row["ward"]),
                    _clean_short(row["wardShort"], row["wardType"]),
                    _clean_name(row["wardType"]),
                    dist_idx[(pk, dk)],
                    new_code,
                    others,
                    _aliases(_json_list(row["wardAlias"]), row["wardShort"], segmenter),
                ]
            )
        self._choose_representatives(current, conv)

    def _choose_representatives(self, current: _Current, conv: Any) -> None:
        """The current unit a bare old district name stands for (see :func:`_representative`)."""
        wards_of: dict[int, list[list[Any]]] = defaultdict(list)
        for ward in self.wards:
            wards_of[ward[4]].append(ward)
        units = {u[0]: u for u in current.units}
        by_short: dict[tuple[str, tuple[str, ...]], str] = {
            (u[4], _folded_key(u[2])): u[0] for u in current.units
        }
        for idx, district in enumerate(self.districts):
            new_prov = self.provinces[district[4]][3]
            district[7] = _representative(district, wards_of[idx], new_prov, units, by_short)


def _new_units_of(key: str, new_prov: str, conv: Any, current: _Current) -> tuple[str, list[str]]:
    """Official code of the current unit an old ward went to, and of the other units that
    received part of it (old wards split between several new ones)."""
    new_prov_key = next(k for k, v in current.province_by_key.items() if v == new_prov)
    for new_key, olds in conv.DICT_PROVINCE_WARD_NO_DIVIDED.get(new_prov_key, {}).items():
        if key in olds:
            return current.code_by_geo_key[(new_prov_key, new_key)], []
    parts = conv.DICT_PROVINCE_WARD_DIVIDED.get(new_prov_key, {}).get(key)
    if not parts:
        raise ValueError(f"no current unit for old ward {key}")
    codes = [
        current.code_by_geo_key[(new_prov_key, p["newWardKey"])]
        for p in sorted(parts, key=lambda p: not p["isDefaultNewWard"])
    ]
    return codes[0], codes[1:]


def _representative(
    district: list[Any],
    wards: list[list[Any]],
    new_prov: str,
    units: dict[str, list[Any]],
    by_short: dict[tuple[str, tuple[str, ...]], str],
) -> str | None:
    """The current unit that a bare old district name most plausibly means.

    In order: a current unit of the same name ("Di Linh" → Xã Di Linh); the unit holding the
    old town of the same name; the unit holding the old town nearest the district's centre;
    for towns and cities without such a town, the unit that took most of the old urban wards
    (ties: nearest the district's centre).
    """
    same = by_short.get((new_prov, _folded_key(district[2])))
    if same:
        return same
    towns = [w for w in wards if w[3] == "Thị trấn"]
    named = [w for w in towns if _folded_key(w[2]) == _folded_key(district[2])]
    if named:
        return str(named[0][5])
    lat, lon = district[5], district[6]
    if towns:
        return str(min(towns, key=lambda w: _km(units[w[5]], lat, lon))[5])
    if not wards:
        return None
    urban: dict[str, int] = defaultdict(int)
    for w in wards:
        urban[w[5]] += 1 if w[3] == "Phường" else 0
    return min(urban, key=lambda c: (-urban[c], _km(units[c], lat, lon)))


def _km(unit: list[Any], lat: float, lon: float) -> float:
    dlat = unit[5] - lat
    dlon = (unit[6] - lon) * math.cos(math.radians(lat))
    return math.hypot(dlat, dlon) * 111.2


def _versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("vietnamadminunits", "vietnam-provinces")}


def collect() -> dict[str, Any]:
    """The gazetteer data: current provinces and units, and the pre-2025 names."""
    current = _Current()
    legacy = _Legacy(current)
    _attach_special_districts(legacy, current)
    return {
        "format": 1,
        "sources": _versions(),
        "provinces": sorted(current.provinces.values()),
        "units": current.units,
        "old_provinces": legacy.provinces,
        "old_districts": legacy.districts,
        "old_wards": legacy.wards,
    }


def _attach_special_districts(legacy: _Legacy, current: _Current) -> None:
    """Island districts had no wards; their representative is the special zone of that name."""
    for district in legacy.districts:
        if district[7] is None:
            new_prov = legacy.provinces[district[4]][3]
            match = [
                u[0]
                for u in current.units
                if u[4] == new_prov and _folded_key(u[2]) == _folded_key(district[2])
            ]
            district[7] = match[0] if match else None
