"""The in-memory name index built from the gazetteer data file.

Every name form — current unit names, pre-2025 commune/ward, district and province names and
their older aliases — is inserted into a token trie keyed by folded tokens. Messages are
scanned once, token by token: at each token the *bare* trie (names distinctive enough to count
without a unit prefix) is walked, and after a unit prefix ("phường", "xã", "tt", "q.") the
*full* trie (every name, including "1" for "Phường 1") is walked. Terminal nodes hold
:class:`Entry` readings, judged afterwards by the resolver.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ketnoi_shared.text import fold

from .model import ProvinceInfo, UnitInfo
from .tokens import joined, tokenize, y_variants
from .vocabulary import COMMON_PHRASES, COMMON_SYLLABLES, MIDDLE_NAMES, PREFIXES, SURNAMES

__all__ = ["KIND_CUR", "KIND_OLDD", "KIND_OLDP", "KIND_OLDW", "KIND_PROV", "Entry", "NameIndex"]

KIND_CUR = 0  # current unit
KIND_OLDW = 1  # pre-2025 commune / ward / town
KIND_OLDD = 2  # pre-2025 district / town / city
KIND_PROV = 3  # current province
KIND_OLDP = 4  # pre-2025 province

# Names shared by more distinct places than this need a unit prefix, "cũ" or a district.
_MAX_BARE_HOMONYMS = 3
# Run-together forms ("dalat", "baoloc") are indexed when at least this long.
_MIN_JOINED = 5
_URBAN_TYPES = frozenset({"Thành phố", "Thị xã", "Quận"})

Trie = dict[str, Any]  # token -> child node; "" -> list of entries ending here


class Entry(NamedTuple):
    """One reading of a name."""

    kind: int
    ref: int  # index into the list of its kind
    target: str | None  # official code of the current unit it stands for
    province: str  # current province code
    ctx_district: int  # old district that confirms this reading, -1 if none
    old_province: int  # old province index, -1 if none
    accented: tuple[str, ...] | None  # lower-case spelling with diacritics; None: unknown
    unit_type: str
    numeric: bool  # the name is a number ("Phường 1")
    full: bool  # a current name including its district suffix ("Nam Ban Lâm Hà")
    needs_support: bool  # generic or person-like: bare only with "cũ" or a district
    phrase: tuple[str, ...] | None  # common phrase of the same letters ("hòa bình")
    urban: bool  # an old city, town or urban district now split into several wards
    common: bool  # made of very frequent words ("la da"): bare only if written with diacritics
    label: str | None  # display name of an older alias ("Huyện Cát Tiên"), else None


@dataclass
class NameIndex:
    """Units, provinces, pre-2025 names and the tries over all their name forms."""

    provinces: dict[str, ProvinceInfo] = field(default_factory=dict)
    units: dict[str, UnitInfo] = field(default_factory=dict)
    old_ward_names: list[str] = field(default_factory=list)
    old_district_names: list[str] = field(default_factory=list)
    old_province_names: list[str] = field(default_factory=list)
    old_ward_others: list[tuple[str, ...]] = field(default_factory=list)
    district_province: list[int] = field(default_factory=list)
    old_province_new: list[str] = field(default_factory=list)
    full: Trie = field(default_factory=dict)
    bare: Trie = field(default_factory=dict)
    prefixes: dict[str, list[Any]] = field(default_factory=dict)
    # first token → (unit prefixes starting with it, bare-trie node), for a one-lookup scan
    first: dict[str, tuple[list[Any] | None, Trie | None]] = field(default_factory=dict)
    abbreviations: dict[str, frozenset[int]] = field(default_factory=dict)
    province_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, data: dict[str, Any]) -> NameIndex:
        """Index the data of a gazetteer file (see :mod:`ketnoi_triage.geo.sources`)."""
        builder = _Builder(cls())
        builder.provinces(data["provinces"])
        builder.units(data["units"])
        builder.old_provinces(data["old_provinces"])
        builder.old_districts(data["old_districts"])
        builder.current_names(data["units"])
        builder.old_wards(data["old_wards"])
        builder.finish()
        return builder.index


def _tokens_of(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(folded tokens, lower-case tokens with diacritics) of a name."""
    lower = tokenize(name.lower())
    return tuple(fold(t) for t in lower), tuple(lower)


def _province_type(name: str) -> str:
    return "Thành phố" if name.startswith("Thành phố") else "Tỉnh"


def _person_like(folded: tuple[str, ...]) -> bool:
    if not folded or folded[0] not in SURNAMES:
        return False
    return len(folded) == 2 or (len(folded) == 3 and folded[1] in MIDDLE_NAMES)


class _Builder:
    """Fills a :class:`NameIndex`; forms are collected first, then inserted with the flags
    that depend on all of them (how many places share a name)."""

    def __init__(self, index: NameIndex) -> None:
        self.index = index
        self.forms: list[tuple[tuple[str, ...], Entry, bool]] = []
        self.targets: dict[tuple[str, ...], set[str]] = defaultdict(set)
        self.districts_of_province: dict[str, list[tuple[tuple[str, ...], int]]] = defaultdict(list)
        self.syllables: set[str] = set()

    # -- records ---------------------------------------------------------------------------

    def provinces(self, rows: list[list[Any]]) -> None:
        for code, name, short, lat, lon, aliases in rows:
            self.index.provinces[code] = ProvinceInfo(code, name, short, lat, lon)
            for written in (name, short):
                self.index.province_names[" ".join(_tokens_of(written)[0])] = code
            entry = self._entry(KIND_PROV, int(code), None, code, _province_type(name))
            self._add_names(entry, [short], aliases, target_key=f"P{code}")

    def units(self, rows: list[list[Any]]) -> None:
        for code, name, short, type_word, prov, lat, lon, area, _variants in rows:
            province = self.index.provinces[prov]
            self.index.units[code] = UnitInfo(
                code, name, short, type_word, prov, province.name, lat, lon, area
            )

    def old_provinces(self, rows: list[list[Any]]) -> None:
        for ref, (_code, name, short, new_code, aliases) in enumerate(rows):
            self.index.old_province_names.append(name)
            self.index.old_province_new.append(new_code)
            entry = self._entry(KIND_OLDP, ref, None, new_code, _province_type(name))
            entry = entry._replace(old_province=ref)
            self._add_names(entry, [short], aliases, target_key=f"P{new_code}")

    def old_districts(self, rows: list[list[Any]]) -> None:
        for ref, row in enumerate(rows):
            _code, name, short, type_word, prov_idx, _lat, _lon, rep, aliases = row
            self.index.old_district_names.append(name)
            self.index.district_province.append(prov_idx)
            new_code = self.index.old_province_new[prov_idx]
            folded = _tokens_of(short)[0]
            self.districts_of_province[new_code].append((folded, ref))
            self._abbreviate(folded, ref)
            if rep is None:
                continue
            entry = self._entry(KIND_OLDD, ref, rep, new_code, type_word)
            entry = entry._replace(ctx_district=ref, old_province=prov_idx)
            self._add_names(entry, [short], aliases, target_key=rep)

    def current_names(self, rows: list[list[Any]]) -> None:
        """Current unit names, and for "Xuân Hương - Đà Lạt" the base "Xuân Hương"
        confirmed by a mention of "Đà Lạt"."""
        for code, _name, short, type_word, prov, *_rest, variants in rows:
            for written in [short, *variants]:
                folded, lower = _tokens_of(written)
                suffix = self._district_suffix(folded, prov)
                entry = self._entry(KIND_CUR, 0, code, prov, type_word)
                self._add_form(folded, lower, entry._replace(full=suffix is not None), code)
                if suffix is not None:
                    cut = len(folded) - suffix[0]
                    base = entry._replace(ctx_district=suffix[1])
                    self._add_form(folded[:cut], lower[:cut], base, code)

    def old_wards(self, rows: list[list[Any]]) -> None:
        for ref, row in enumerate(rows):
            _code, name, short, type_word, dist_idx, new_code, others, aliases = row
            self.index.old_ward_names.append(f"{name}, {self.index.old_district_names[dist_idx]}")
            self.index.old_ward_others.append(tuple(others))
            prov = self.index.units[new_code].province_code
            entry = self._entry(KIND_OLDW, ref, new_code, prov, type_word)
            entry = entry._replace(
                ctx_district=dist_idx, old_province=self.index.district_province[dist_idx]
            )
            self._add_names(entry, [short], aliases, target_key=new_code)

    # -- forms -----------------------------------------------------------------------------

    @staticmethod
    def _entry(kind: int, ref: int, target: str | None, prov: str, unit_type: str) -> Entry:
        urban = kind == KIND_OLDD and unit_type in _URBAN_TYPES
        return Entry(
            kind,
            ref,
            target,
            prov,
            -1,
            -1,
            None,
            unit_type,
            False,
            False,
            False,
            None,
            urban,
            False,
            None,
        )

    def _district_suffix(self, folded: tuple[str, ...], prov: str) -> tuple[int, int] | None:
        """(length, district) of an old district name the current name ends with."""
        for district, ref in self.districts_of_province[prov]:
            n = len(district)
            if 0 < n < len(folded) and folded[-n:] == district:
                return n, ref
        return None

    def _abbreviate(self, folded: tuple[str, ...], ref: int) -> None:
        if len(folded) >= 2 and all(t.isalpha() for t in folded):
            initials = "".join(t[0] for t in folded)
            old = self.index.abbreviations.get(initials, frozenset())
            self.index.abbreviations[initials] = old | {ref}

    def _add_names(
        self, entry: Entry, written: list[str], aliases: list[str], *, target_key: str
    ) -> None:
        for name in written:
            folded, lower = _tokens_of(name)
            self._add_form(folded, lower, entry, target_key)
        for alias in aliases:
            folded, lower = _tokens_of(alias)
            accented = lower if lower != folded else None
            self._add_form(folded, accented, entry._replace(label=alias), target_key)

    def _add_form(
        self,
        folded: tuple[str, ...],
        lower: tuple[str, ...] | None,
        entry: Entry,
        target_key: str,
    ) -> None:
        if not folded:
            return
        numeric = all(t.isdigit() for t in folded)
        entry = entry._replace(accented=lower, numeric=numeric)
        # One-token forms count bare only as province abbreviations ("hcm", not "hn" or "huế").
        bare_ok = not numeric and (
            len(folded) >= 2 or (entry.kind >= KIND_PROV and lower is None and len(folded[0]) >= 3)
        )
        if entry.kind == KIND_CUR and entry.ctx_district >= 0 and len(folded) < 2:
            bare_ok = False
        canonical = tuple(sorted(y_variants(t))[0] for t in folded)
        self.targets[canonical].add(target_key)
        self.forms.append((folded, entry, bare_ok))

    # -- insertion -------------------------------------------------------------------------

    def finish(self) -> None:
        self.syllables = {t for folded, _e, _b in self.forms for t in folded}
        spellings: dict[tuple[Any, ...], set[tuple[str, ...]]] = defaultdict(set)
        for folded, entry, _b in self.forms:
            if entry.accented is not None:
                spellings[folded].add(entry.accented)
                spellings[(entry.province, *folded)].add(entry.accented)
        current = {
            (e.province, *f): e.target
            for f, e, _b in self.forms
            if e.kind == KIND_CUR and (e.ctx_district < 0 or e.full)
        }
        for folded, form_entry, bare_ok in self.forms:
            entry = form_entry
            if entry.label is not None:
                entry = self._alias(folded, entry, spellings, current)
            canonical = tuple(sorted(y_variants(t))[0] for t in folded)
            generic = len(self.targets[canonical]) > _MAX_BARE_HOMONYMS and entry.kind < 3
            person = (
                entry.kind in (KIND_CUR, KIND_OLDW)
                and _person_like(folded)
                and len(self.targets[canonical]) > 1
            )
            phrase = COMMON_PHRASES.get(" ".join(folded))
            final = entry._replace(
                needs_support=generic or person,
                phrase=tuple(tokenize(phrase)) if phrase else None,
                common=all(t in COMMON_SYLLABLES for t in folded),
            )
            self._insert(folded, final, bare_ok)
        self._prefix_table()
        self.forms.clear()

    @staticmethod
    def _alias(
        folded: tuple[str, ...],
        entry: Entry,
        spellings: dict[tuple[Any, ...], set[tuple[str, ...]]],
        current: dict[tuple[str, ...], str | None],
    ) -> Entry:
        """An older alias ("cattien" of huyện Đạ Huoai): spelled like the place of that name
        in its province when there is one, shown under its own name, and standing for the
        current unit of that name if there is one (the old district's seat)."""
        accented = entry.accented
        if accented is None:
            known = spellings.get((entry.province, *folded)) or spellings.get(folded, set())
            accented = next(iter(known)) if len(known) == 1 else None
        words = accented or folded
        unit_type = entry.unit_type
        if all(w.isdigit() for w in words):  # "quan9": numbered districts and wards
            unit_type = "Quận" if entry.kind == KIND_OLDD else "Phường"
        label = f"{unit_type} {' '.join(w[:1].upper() + w[1:] for w in words)}"
        target = entry.target
        if entry.kind == KIND_OLDD:
            target = current.get((entry.province, *folded), target)
        return entry._replace(accented=accented, label=label, target=target)

    def _insert(self, folded: tuple[str, ...], entry: Entry, bare_ok: bool) -> None:
        for spelling in sorted(_spellings(folded)):
            _put(self.index.full, spelling, entry)
            if bare_ok:
                _put(self.index.bare, spelling, entry)
            word = joined(spelling)
            if (
                len(spelling) >= 2
                and len(word) >= _MIN_JOINED
                and not word.isdigit()
                and word not in self.syllables
            ):
                accented = (joined(entry.accented),) if entry.accented else None
                single = entry._replace(accented=accented)
                _put(self.index.full, (word,), single)
                _put(self.index.bare, (word,), single)

    def _prefix_table(self) -> None:
        table: dict[str, list[Any]] = defaultdict(list)
        for prefix in PREFIXES:
            table[prefix.tokens[0]].append(prefix)
        for options in table.values():
            options.sort(key=lambda p: -len(p.tokens))
        self.index.prefixes = dict(table)
        keys = set(self.index.prefixes) | set(self.index.bare)
        self.index.first = {
            k: (self.index.prefixes.get(k), self.index.bare.get(k)) for k in sorted(keys)
        }


_VIETNAMESE_ONSETS = frozenset(["ch", "gh", "gi", "kh", "ng", "nh", "ph", "qu", "th", "tr"])
_VOWEL_LETTERS = frozenset("aeiouy")


def _spellings(folded: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Ways a folded name is written: i/y variants ("Phú Quý" / "Phú Quí") and, for names of
    ethnic-minority origin, with or without the apostrophe after an initial consonant
    ("B'Lao" / "Blao", "Đưng KNớ" / "Đưng K'Nớ")."""
    forms = {folded}
    for i, tok in enumerate(folded[:-1]):
        if len(tok) == 1 and tok not in _VOWEL_LETTERS and folded[i + 1].isalpha():
            forms.add((*folded[:i], tok + folded[i + 1], *folded[i + 2 :]))
    for i, tok in enumerate(folded):
        if (
            len(tok) >= 3
            and tok[0] not in _VOWEL_LETTERS
            and tok[1] not in _VOWEL_LETTERS
            and tok[:2] not in _VIETNAMESE_ONSETS
            and tok.isalpha()
        ):
            forms.add((*folded[:i], tok[0], tok[1:], *folded[i + 1 :]))
    out: set[tuple[str, ...]] = set()
    for form in forms:
        out.update(tuple(v) for v in itertools.product(*(sorted(y_variants(t)) for t in form)))
    return out


def _put(trie: Trie, tokens: tuple[str, ...], entry: Entry) -> None:
    node = trie
    for tok in tokens:
        node = node.setdefault(tok, {})
    bucket: list[Entry] = node.setdefault("", [])
    if entry not in bucket:
        bucket.append(entry)
