"""Diacritic-insensitive lexical retrieval over the knowledge base (BM25, ``bm25s``).

Citizens write "lam cccd mat bao lau", "làm căn cước mất bao lâu" and "lm cc mất bn lâu" for the
same question. Every text — entries and questions alike — goes through the same analyser:

1. :func:`ketnoi_shared.text.normalize` (NFC, homoglyphs, lower case) and its ``folded`` view
   (no diacritics, "đ" → "d"), so both spellings meet;
2. teencode and abbreviations expanded ("ko" → "khong", "cccd" → "can cuoc", "gplx" → "giay
   phep lai xe"), then synonyms mapped onto the words the knowledge base uses ("passport" →
   "ho chieu", "ca vet" → "dang ky xe");
3. particles and pronouns dropped ("ạ", "ad", "cho em hỏi"), and word **bigrams** added:
   "tam tru" and "tam vang" share "tam", the bigrams tell them apart.

An entry is indexed as its title, example questions and keywords (weighted by repetition) and
its summary. The answer is automatic only when the best score is high enough *and* clearly
ahead of the runner-up (:class:`Thresholds`); otherwise the question goes to an officer with
the top candidates attached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

import bm25s
import numpy as np

from ketnoi_shared.text import normalize, tokens

from .kb import Entry, KnowledgeBase

__all__ = ["Candidate", "Match", "Retriever", "Thresholds", "analyse"]

#: Teencode, abbreviations and common misspellings (folded forms), one token → words.
TEENCODE: Final[dict[str, str]] = {
    "ko": "khong",
    "k": "khong",
    "kh": "khong",
    "khg": "khong",
    "hok": "khong",
    "hong": "khong",
    "hem": "khong",
    "dc": "duoc",
    "dk": "dang ky",
    "dky": "dang ky",
    "dki": "dang ky",
    "lm": "lam",
    "bn": "bao nhieu",
    "bnhieu": "bao nhieu",
    "ntn": "nhu the nao",
    "j": "gi",
    "v": "vay",
    "z": "vay",
    "vs": "voi",
    "r": "roi",
    "mk": "minh",
    "mn": "moi nguoi",
    "ad": "admin",
    "e": "em",
    "tgian": "thoi gian",
    "sdt": "so dien thoai",
    "cccd": "can cuoc",
    "cc": "can cuoc",
    "cmnd": "chung minh nhan dan",
    "cmt": "chung minh nhan dan",
    "gplx": "giay phep lai xe",
    "blx": "bang lai",
    "hc": "ho chieu",
    "passport": "ho chieu",
    "pasport": "ho chieu",
    "lltp": "ly lich tu phap",
    "xkld": "xuat khau lao dong",
    "nvqs": "nghia vu quan su",
    "bhyt": "bao hiem y te",
    "cavet": "ca vet",
    "cavel": "ca vet",
    "dkx": "dang ky xe",
    "ca": "cong an",
    "otp": "otp",
    "pass": "mat khau",
    "password": "mat khau",
    "mkhau": "mat khau",
    "onl": "online",
    "app": "ung dung",
    "tt": "thu tuc",
    "tthc": "thu tuc hanh chinh",
    "ct07": "xac nhan cu tru",
    "ct01": "to khai cu tru",
}
#: Multi-word synonyms (folded), applied after teencode: citizen wording → knowledge-base wording.
SYNONYMS: Final[tuple[tuple[str, str], ...]] = (
    ("chung minh nhan dan", "chung minh nhan dan can cuoc"),
    ("so ho khau", "ho khau thuong tru"),
    ("ho khau", "ho khau thuong tru"),
    ("nhap khau", "nhap khau thuong tru"),
    ("chuyen khau", "chuyen khau thuong tru"),
    ("ca vet", "ca vet dang ky xe"),
    ("bang lai", "bang lai giay phep lai xe"),
    ("tien an", "tien an ly lich tu phap"),
    ("tien su", "tien su ly lich tu phap"),
    ("ngu lai", "ngu lai luu tru"),
    ("qua dem", "qua dem luu tru"),
    ("o lai", "o lai luu tru"),
    ("danh roi", "danh roi mat"),
    ("rot mat", "mat"),
    ("luom duoc", "nhat duoc"),
    ("tim duoc", "nhat duoc"),
    ("o tro", "o tro tam tru"),
    ("thue tro", "thue tro tam tru"),
    ("bao an", "bao an to giac"),
    ("to cao", "to cao to giac"),
    ("cuu hoa", "cuu hoa 114"),
    ("cap cuu", "cap cuu 115"),
    ("hotline", "hotline so dien thoai lien he"),
    ("o to", "oto"),
    ("mat bao lau", "bao lau"),
    ("mat bao nhieu", "bao nhieu"),
    ("mat tien", "tien"),
    ("mat phi", "phi"),
    ("mat thoi gian", "thoi gian"),
    ("mat may ngay", "may ngay"),
)
#: How questions are asked, not what about (folded): removed so that "thủ tục X làm ở đâu"
#: is not answered with whichever entry says "thủ tục" and "ở đâu" most.
GENERIC_PHRASES: Final = (
    "thu tuc",
    "o dau",
    "bao lau",
    "bao nhieu",
    "nhu the nao",
    "the nao",
    "lam sao",
    "lam gi",
    "can gi",
    "can nhung gi",
)
#: Particles, pronouns and politeness (folded) that say nothing about the procedure.
STOPWORDS: Final = frozenset(
    [
        "a",
        "ah",
        "ak",
        "a~",
        "ad",
        "admin",
        "oi",
        "oi~",
        "nhe",
        "nha",
        "nhi",
        "ha",
        "hen",
        "giup",
        "voi",
        "minh",
        "toi",
        "tui",
        "em",
        "anh",
        "chi",
        "ban",
        "bac",
        "co",
        "chu",
        "cho",
        "hoi",
        "xin",
        "vay",
        "the",
        "thi",
        "la",
        "ma",
        "roi",
        "nhung",
        "cac",
        "nhung",
        "va",
        "cua",
        "de",
        "duoc",
        "ve",
        "luon",
        "nua",
        "ak",
        "u",
        "moi",
        "nguoi",
        "gi",
        "sao",
        "phai",
        "muon",
        "nao",
    ]
)
_PUNCT_RE: Final = re.compile(r"[^0-9a-z ]+")


def _expand(folded: str) -> str:
    words = [TEENCODE.get(w, w) for w in _PUNCT_RE.sub(" ", folded).split()]
    text = " " + " ".join(words) + " "
    for phrase, replacement in SYNONYMS:
        text = text.replace(f" {phrase} ", f" {replacement} ")
    for phrase in GENERIC_PHRASES:
        text = text.replace(f" {phrase} ", " ")
    return text


def analyse(text: str) -> list[str]:
    """Index/query terms of ``text``: folded words without stopwords, plus their bigrams."""
    words = [w for w in tokens(_expand(normalize(text).folded)) if w not in STOPWORDS]
    return words + [f"{a}_{b}" for a, b in pairwise(words)]


@dataclass(frozen=True, slots=True)
class Candidate:
    entry_id: str
    title: str
    score: float


@dataclass(frozen=True, slots=True)
class Match:
    """The ranked candidates and whether the best one may be sent without an officer."""

    candidates: tuple[Candidate, ...]
    confident: bool

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When an answer is automatic: the best score is at least ``min_score`` and at least
    ``min_ratio`` times the runner-up's — or, for short questions (few terms, low scores), at
    least ``short_score`` and ``short_ratio`` times the runner-up's. Calibrated on
    services/news/eval (docs/news.md)."""

    min_score: float = 5.0
    min_ratio: float = 1.1
    short_score: float = 3.0
    short_ratio: float = 2.0


class Retriever:
    def __init__(self, kb: KnowledgeBase, thresholds: Thresholds | None = None) -> None:
        self.kb = kb
        self.thresholds = thresholds or Thresholds()
        self._entries: list[Entry] = list(kb.entries)
        corpus = [self._document(e) for e in self._entries]
        self._bm25 = bm25s.BM25(k1=1.2, b=0.5)
        self._bm25.index(corpus, show_progress=False)
        self._vocab = set(self._bm25.vocab_dict)

    @staticmethod
    def _document(entry: Entry) -> list[str]:
        terms: list[str] = []
        terms += analyse(entry.title) * 2
        for q in entry.questions:
            terms += analyse(q)
        for k in entry.keywords:
            terms += analyse(k) * 2
        terms += analyse(entry.summary)
        return terms

    def scores(self, question: str) -> np.ndarray:
        query = [t for t in analyse(question) if t in self._vocab]
        if not query:
            return np.zeros(len(self._entries), dtype=np.float32)
        return self._bm25.get_scores(query)

    def search(self, question: str, *, k: int = 3) -> Match:
        scores = self.scores(question)
        order = np.argsort(-scores, kind="stable")[:k]
        candidates = tuple(
            Candidate(self._entries[i].id, self._entries[i].title, round(float(scores[i]), 3))
            for i in order
            if scores[i] > 0
        )
        if not candidates:
            return Match((), confident=False)
        best = candidates[0].score
        second = candidates[1].score if len(candidates) > 1 else 0.0
        t = self.thresholds
        confident = (best >= t.min_score and best >= t.min_ratio * second) or (
            best >= t.short_score and best >= t.short_ratio * second
        )
        return Match(candidates, confident=confident)
