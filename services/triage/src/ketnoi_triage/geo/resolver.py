"""Reading the place out of a message: one scan for names, then every reading of every
mention scored, and the best mention chosen.

Scores (0..1, higher is surer) start from how the name is written — after a unit prefix
("phường", "xã", "tt", "q.") or bare — and are raised by context: the old district named next
to an old commune ("phường 1 Đà Lạt"), "cũ" after an old name, the whole current name. For
names several places share, the reading inside the caller's province is preferred. Mentions are
then ranked: the more specific and the earlier first; a place the writer is going back to or
lives in ("về Di Linh", "tôi ở Bảo Lộc") only when nothing else is named.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from ketnoi_shared.text import NormalizedText

from .index import KIND_CUR, KIND_OLDD, KIND_OLDW, KIND_PROV, Entry, NameIndex
from .message import Hit, Message
from .tokens import tokenize
from .vocabulary import (
    CLASS_DISTRICT,
    CLASS_PROVINCE,
    CLASS_WARD,
    WEAK_PLAIN_PREFIXES,
)

__all__ = ["Candidate", "resolve", "scan"]

_CLASS_OF_KIND: Final = (CLASS_WARD, CLASS_WARD, CLASS_DISTRICT, CLASS_PROVINCE, CLASS_PROVINCE)
# Base scores by kind of reading (current unit, old commune, old district, province, old
# province): after a unit prefix, and bare.
_PREFIXED_BASE: Final = (0.8, 0.8, 0.65, 0.5, 0.5)
_BARE_BASE: Final = (0.6, 0.6, 0.55, 0.5, 0.5)
# Small preference between readings of one name: current name, then old commune, then others.
_KIND_TIE: Final = (0.02, 0.01, 0.0, 0.0, 0.0)
_IN_PROVINCE: Final = 0.1  # homonyms: the reading inside the caller's province
_FULL_NAME: Final = 0.15  # the whole current name, district suffix included
_CONTEXT_PROVINCE: Final = 0.05
_TYPE_MISMATCH: Final = 0.05  # "phường" before a commune that was a "xã"
_OLD_MARKER: Final = 0.05  # "cũ" after an old name (and -0.1 after a current one)
_AMBIGUOUS: Final = 0.05  # readings closer than this are ambiguous
_AMBIGUITY_FACTOR: Final = 0.6

_Scored = tuple[float, float, Entry, int]  # (preference, score, reading, end of mention)


class Candidate(NamedTuple):
    """The chosen reading of one mention."""

    entry: Entry
    score: float
    rank: float
    start: int  # first token of the mention, prefix included
    end: int
    alternatives: tuple[str, ...]


def resolve(
    index: NameIndex, norm: NormalizedText, province_code: str, toks: list[str] | None = None
) -> tuple[Candidate, Message] | None:
    """The best place mention of a normalised message (``toks``: its folded text already
    tokenised), or None."""
    toks = tokenize(norm.folded) if toks is None else toks
    hits = scan(index, toks)
    if not hits:
        return None
    msg = Message(norm, toks, hits, index.abbreviations)
    best: Candidate | None = None
    claimed_until = 0  # mentions do not overlap: "Bảo Lộc, bảo hiểm" holds no "Lộc Bảo"
    hits.sort(key=lambda h: (h[4], h[4] - h[1]))
    for hit in hits:
        if hit[4] < claimed_until:
            continue
        valid, cand = _evaluate(msg, hit, province_code)
        if valid:
            claimed_until = max(hit[1], cand.end if cand is not None else 0)
        if cand is not None and (best is None or cand.rank > best.rank):
            best = cand
    return None if best is None else (best, msg)


def scan(index: NameIndex, toks: list[str]) -> list[Hit]:
    """All name matches: distinctive names at every token, any name after a unit prefix."""
    hits: list[Hit] = []
    full, first = index.full, index.first
    n = len(toks)
    for i, tok in enumerate(toks):
        found = first.get(tok)
        if found is None:
            continue
        options, node = found
        if options is not None:
            for prefix in options:
                k = len(prefix.tokens)
                if k == 1 or (i + k <= n and toks[i + 1] == prefix.tokens[1]):
                    if i + k < n:
                        _walk(full.get(toks[i + k]), toks, i + k, hits, prefix=prefix, pstart=i)
                    break
        if node is not None:
            entries = node.get("")  # one-token forms: "dalat", "hcm"
            if entries is not None:
                hits.append((i, i + 1, entries, None, i))
            if i + 1 < n:
                child = node.get(toks[i + 1])
                if child is not None:
                    _walk(child, toks, i, hits, pstart=i, depth=2)
    return hits


def _walk(
    node: dict[str, object] | None,
    toks: list[str],
    start: int,
    hits: list[Hit],
    *,
    prefix: object = None,
    pstart: int,
    depth: int = 1,
) -> None:
    """Follow the trie from ``node`` along the tokens, recording every name that ends."""
    n = len(toks)
    j = start + depth
    while node is not None:
        entries = node.get("")
        if entries is not None:
            hits.append((start, j, entries, prefix, pstart))  # type: ignore[arg-type]
        if j >= n:
            return
        node = node.get(toks[j])  # type: ignore[assignment]
        j += 1


def _evaluate(msg: Message, hit: Hit, province_code: str) -> tuple[bool, Candidate | None]:
    """Whether a mention reads as a place at all, and its best reading scored and ranked
    (None when it names no commune to route to, such as "ở Lâm Đồng" or "ở Đà Lạt")."""
    start, end, entries, prefix, pstart = hit
    old_marker = msg.old_marker_after(end)
    entries = [e for e in entries if _may_fit(msg, hit, e, old_marker, province_code)]
    if not entries:
        return False, None
    if prefix is None:
        if msg.suppressed(start):
            return False, None
    elif not msg.prefix_ok(prefix, pstart):
        return False, None
    scored: list[_Scored] = []
    for entry in entries:
        fit = _score(msg, hit, entry, old_marker, province_code)
        if fit is not None:
            home = _IN_PROVINCE if entry.province == province_code else 0.0
            scored.append((fit[0] + home + _KIND_TIE[entry.kind], fit[0], entry, fit[1]))
    if prefix is None:
        scored = _bare_precedence(scored)
    if not scored:
        return False, None
    scored.sort(key=lambda s: -s[0])
    top_pref, score, top, span_end = scored[0]
    if not _routable(msg, top, hit, province_code):
        return True, None
    alternatives = _alternatives(top, scored, top_pref)
    if alternatives:
        score *= _AMBIGUITY_FACTOR
    rank = (
        score
        + (0.03 if top.province == province_code else 0.0)
        + 0.01 * (end - start)
        - msg.residence_penalty(pstart)
        - min(0.08, 0.003 * pstart)
    )
    return True, Candidate(top, min(score, 1.0), rank, pstart, span_end, alternatives)


def _routable(msg: Message, top: Entry, hit: Hit, province_code: str) -> bool:
    """Whether a place reading says where to route: not "ở Lâm Đồng" or "ở Đà Lạt" (the
    caller's own province or a city now split into several wards), nor a province one comes
    from or reads on a licence plate ("từ Sài Gòn lên", "biển Sài Gòn")."""
    if top.province == province_code and (top.kind >= KIND_PROV or top.urban):
        return False
    return not (top.kind >= KIND_PROV and hit[3] is None and msg.travel_or_plate(hit[4]))


def _score(
    msg: Message, hit: Hit, entry: Entry, old_marker: bool, province_code: str
) -> tuple[float, int] | None:
    """How well one reading of a name fits, and where its mention ends (a district named
    right after it is part of the mention); None if it does not fit at all."""
    start, end, _entries, prefix, _pstart = hit
    kind = entry.kind
    outside = entry.province != province_code
    if msg.broken(start, end):
        return None
    if prefix is not None:
        base = _prefixed_base(msg, hit, entry)
        if base is None:
            return None
    else:
        base = _BARE_BASE[kind]
    support, span_end = 0.0, end
    if entry.ctx_district >= 0 and kind != KIND_OLDD:
        support, span_end = msg.district_support(entry.ctx_district, start, end, prefix is not None)
    supported = old_marker or support > 0
    if kind < KIND_PROV and msg.province_named(entry):
        support += _CONTEXT_PROVINCE
    if prefix is None:
        if not _bare_ok(msg, hit, entry, supported, outside):
            return None
    elif outside and not support and _too_weak_for_far_away(msg, hit, entry):
        return None
    if not msg.accent_ok(entry.accented, start, end, lenient=prefix is not None):
        return None
    score = base + support + (_FULL_NAME if entry.full else 0.0)
    if old_marker:
        score += _OLD_MARKER if kind != KIND_CUR else -2 * _OLD_MARKER
    return score, span_end


def _too_weak_for_far_away(msg: Message, hit: Hit, entry: Entry) -> bool:
    """Whether a prefixed name elsewhere in the country, with no district or province to
    support it, has too little to go on: one syllable ("P. Vôi", "xa Tu"), or a weak prefix
    with the name typed plainly ("xa minh bao gio" is "far … when", not a commune in Yên
    Bái)."""
    start, end, _entries, prefix, pstart = hit
    assert prefix is not None
    if entry.kind <= KIND_OLDW and end - start == 1 and not entry.numeric:
        return True
    return prefix.tokens[0] in WEAK_PLAIN_PREFIXES and msg.casual(pstart, end)


def _may_fit(msg: Message, hit: Hit, entry: Entry, old_marker: bool, province_code: str) -> bool:
    """Cheap checks that rule a reading out before diacritics are looked at."""
    prefix = hit[3]
    if prefix is not None:
        return bool(prefix.classes & _CLASS_OF_KIND[entry.kind]) and (
            entry.numeric or not prefix.before_number_only
        )
    if entry.numeric:
        return False
    if entry.kind <= KIND_OLDW and entry.province != province_code and not old_marker:
        return not msg.context().empty  # a commune elsewhere needs its district or province
    return True


def _prefixed_base(msg: Message, hit: Hit, entry: Entry) -> float | None:
    """Base score of a reading after a unit prefix, None if the prefix does not fit it."""
    start, end, _entries, prefix, pstart = hit
    assert prefix is not None
    kind = entry.kind
    if not prefix.classes & _CLASS_OF_KIND[kind]:
        return None
    if prefix.before_number_only and not entry.numeric:
        return None
    base = _PREFIXED_BASE[kind]
    if prefix.unit_type and prefix.unit_type != entry.unit_type:
        if entry.numeric and not (kind == KIND_OLDD and entry.label is not None):
            return None  # "x10" is not "xã 10"; only "quận 9" is now "TP Thủ Đức"
        base -= _TYPE_MISMATCH
    if (
        entry.phrase is not None
        and prefix.tokens[0] in WEAK_PLAIN_PREFIXES
        and msg.plain(pstart, start)
        and msg.reads_as_phrase(entry.phrase, start, end)
    ):
        return None  # "xa trung tam": far from the centre, not "xã Trung Tâm"
    return base


def _bare_ok(msg: Message, hit: Hit, entry: Entry, supported: bool, outside: bool) -> bool:
    """Whether a name without a unit prefix can be read as this place at all.

    ``supported``: its old district is named too or it is marked "cũ". A name after a
    hamlet number ("thôn 4 Lộc An") counts as supported too, and a capitalised name after
    "ở"/"tại" ("ở Phú Quý") as a place even when it is also a common phrase.
    """
    start, end = hit[0], hit[1]
    if entry.phrase is not None and msg.reads_as_phrase(entry.phrase, start, end):
        return msg.locative_title(start, end)
    if supported or entry.kind >= KIND_PROV or msg.after_hamlet(start):
        return True
    if entry.kind <= KIND_OLDW and outside:
        return False  # a commune elsewhere needs its district or province named too
    if outside and not msg.after_locative(start) and msg.casual(start, end):
        return False  # "vu thu 3", "gay 1 cai rang": words typed plainly, not a far district
    if entry.needs_support or (entry.common and msg.plain(start, end)):
        return msg.locative_title(start, end)
    return True


def _bare_precedence(scored: list[_Scored]) -> list[_Scored]:
    """A bare name that is a province, or an old city split into several wards, means that
    rather than the ward of the same name ("Bình Thuận", "Phan Thiết")."""
    if any(s[2].kind >= KIND_PROV for s in scored):
        return [s for s in scored if s[2].kind >= KIND_PROV]
    if any(s[2].urban for s in scored):
        return [s for s in scored if s[2].kind == KIND_OLDD]
    return scored


def _alternatives(top: Entry, scored: list[_Scored], top_pref: float) -> tuple[str, ...]:
    """Other units the name may as well mean (readings scored within a whisker)."""
    others = [
        e.target
        for pref, _s, e, _end in scored[1:]
        if pref > top_pref - _AMBIGUOUS and e.target and e.target != top.target
    ]
    return tuple(dict.fromkeys(others))
