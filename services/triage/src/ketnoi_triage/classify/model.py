"""The triage classifier: transparent cues plus a linear model on character and word n-grams.

Three linear SVMs share one feature space — character n-grams (3–5, within word
boundaries) and word uni/bigrams of the folded, teencode-expanded text, plus one feature per
cue of :mod:`.features` — and predict the category, the subcategory and the urgency. The
category is decided on the category model's margins blended with the best subcategory margin
of each category; the subcategory is chosen among those of that category. Emergency is
favoured: the threshold on its probability is set so that the emergency recall stays high (a missed
emergency costs far more than a false alarm). The explanation quotes the cues that fired and
the model's confidence, in Vietnamese for officers.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from .fastvec import CachedCharWB, FastWords
from .features import CUES, Prepared, match_cues, prepare
from .taxonomy import CATEGORY_VI, SUBCATEGORIES, SUBCATEGORY_VI, URGENCY_VI

__all__ = ["Prediction", "TriageModel", "corpus_path", "load_corpus"]

MODEL_VERSION: Final = "5"
#: Grouped 5-fold cross-validation on the training split: cues at half the weight of a unit
#: tf-idf block generalise better (macro-F1 0.844 → 0.853) — several cues are ambiguous once
#: folded ("ban" = bán/bạn, "dau xe" = đậu/dấu xe) and the n-grams around them decide.
CUE_WEIGHT: Final = 0.5
#: The word uni/bigram block weighs more than the character n-gram block (both are unit
#: tf-idf rows). Whole words ("chém", "ghi đề", "hòa giải") decide more often than fragments
#: of them. Grouped 5-fold cross-validation on the training split with batches 41–45 (2,174
#: lines, scenario keys as groups, 3 fold assignments), category macro-F1 with the blend
#: below at 2: word weight 1 → 1.6 → 2 → 2.5 → 3: 0.879 → 0.893 → 0.896 → 0.898 → 0.899;
#: 4 → 0.898 (blend 3). Chars cannot go: words alone 0.862.
WORD_WEIGHT: Final = 3.0
#: The category is decided on the category SVM's margins plus this weight times, for each
#: category, the best margin of its subcategories in the subcategory SVM (computed anyway).
#: The subcategory model sees the finer distinctions (dealing vs using, fight vs assault,
#: lost item vs theft) that the category model averages away. Same cross-validation, word
#: weight 1: no blend 0.849, blend 1 → 0.872, 2 → 0.879, 3 → 0.878, subcategories alone
#: 0.866. With word weight 3: blend 3 0.901 vs 2 0.899; over 6 more fold assignments
#: 0.899 vs 0.897 (2.5/2: 0.896), hence 3 and 3.
SUBCATEGORY_BLEND: Final = 3.0
#: 5-fold cross-validation on the training split put the model alone at 0.06 for an emergency
#: recall of 0.95 (precision 0.43). With the imminent-danger rule below catching the
#: deadline-and-threat messages the model rates "high", 0.1 keeps the recall at 0.96 on the
#: held-out split and 1.0 on the shared examples, with fewer false alarms (docs/triage.md).
#: Rechecked with model version 4: grouped cross-validation recall 0.958 at 0.1; with version
#: 5 and batches 41–48, 0.963 (three fold assignments: 0.960, 0.964, 0.964).
EMERGENCY_THRESHOLD: Final = 0.1
_CUE_INDEX: Final = {c.name: i for i, c in enumerate(CUES)}
#: Emergency by definition (TAXONOMY.md): happening now or about to happen, with danger to a
#: person. The model may rate such a message only "high"; these cues together overrule it.
IMMINENT: Final = frozenset({"now", "tonight", "threat_deadline"})
DANGER: Final = frozenset(
    {
        "extortion",
        "weapons",
        "weapon_drawn",
        "armed",
        "child_danger",
        "suspicious_device",
        "minor",
        "blood",
        "help",
        "fire_flood",
        "trafficking",
        "drunk",
    }
)

#: Emergencies whatever the time words say (TAXONOMY.md: "a child in danger"): a child in
#: danger, named as a child; a package or object that may explode.
SELF_EVIDENT: Final = (frozenset({"child_danger", "minor"}), frozenset({"suspicious_device"}))


def corpus_path() -> Path:
    """The labelled corpus shipped with the package (falls back to the repository copy)."""
    packaged = Path(__file__).resolve().parent.parent / "data" / "corpus.jsonl"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[3] / "corpus" / "corpus.jsonl"


def load_corpus(path: Path | None = None, *, split: str | None = None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (path or corpus_path()).read_text().splitlines() if line]
    return [r for r in rows if split is None or r.get("split") == split]


@dataclass(frozen=True, slots=True)
class Prediction:
    category: str
    subcategory: str
    urgency: str
    confidence: float
    cues: tuple[str, ...]
    explanation: str


def _cue_matrix(prepared: Sequence[Prepared]) -> sparse.csr_matrix:
    rows, cols = [], []
    for i, p in enumerate(prepared):
        for cue, _ in match_cues(p):
            rows.append(i)
            cols.append(_CUE_INDEX[cue.name])
    data = np.full(len(rows), CUE_WEIGHT)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(prepared), len(CUES)))


class TriageModel:
    """Train with :meth:`train`; predict with :meth:`predict_many` (fast, batched)."""

    def __init__(self) -> None:
        self.chars = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(3, 5),
            sublinear_tf=True,
            min_df=2,
            max_features=80_000,
            dtype=np.float32,
        )
        self.words = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=1,
            token_pattern=r"[a-z0-9]+",  # noqa: S106 - a regular expression, not a password
            max_features=60_000,
            dtype=np.float32,
        )
        self.category = LinearSVC(C=1.0, class_weight="balanced")
        self.subcategory = LinearSVC(C=0.5, class_weight="balanced")
        self.urgency = LinearSVC(C=0.5, class_weight="balanced")

    def _fast(self) -> tuple[CachedCharWB, FastWords]:
        """Prediction-time transforms equal to the fitted vectorisers (see fastvec)."""
        fast: tuple[CachedCharWB, FastWords] | None = self.__dict__.get("_transforms")
        if fast is None:
            fast = self.__dict__["_transforms"] = (CachedCharWB(self.chars), FastWords(self.words))
        return fast

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_transforms"}  # caches stay local

    # -- features ----------------------------------------------------------------------------
    def _features(self, prepared: Sequence[Prepared], *, fit: bool = False) -> sparse.csr_matrix:
        texts = [p.folded for p in prepared]
        if fit:
            self.__dict__.pop("_transforms", None)
            chars = self.chars.fit_transform(texts)
            words = self.words.fit_transform(texts)
        else:
            chars, words = (t.transform(texts) for t in self._fast())
        words.data *= WORD_WEIGHT  # a fresh matrix from the vectoriser: scaled in place
        return sparse.hstack([chars, words, _cue_matrix(prepared)], format="csr")

    # -- training ----------------------------------------------------------------------------
    def train(self, rows: Iterable[dict[str, Any]]) -> TriageModel:
        rows = list(rows)
        prepared = [prepare(r["text"]) for r in rows]
        x = self._features(prepared, fit=True)
        self.category.fit(x, [r["category"] for r in rows])
        self.subcategory.fit(x, [f"{r['category']}/{r['subcategory']}" for r in rows])
        self.urgency.fit(x, [r["urgency"] for r in rows])
        return self

    @classmethod
    def default(cls, cache_dir: Path | None = None, *, split: str | None = None) -> TriageModel:
        """The model trained on the shipped corpus, cached on disk when ``cache_dir`` is set.

        Production trains on every labelled message (``split=None``), as usual once the
        model has been chosen; ``ketnoi triage eval`` trains on the training split only, so
        its figures are on messages the model has not seen."""
        path = corpus_path()
        # The cache is keyed by the corpus and by the code that builds the model.
        here = Path(__file__).resolve().parent
        material = (
            path.read_bytes()
            + f"{MODEL_VERSION}/{split}".encode()
            + b"".join(
                (here / name).read_bytes() for name in ("model.py", "features.py", "taxonomy.py")
            )
        )
        digest = hashlib.sha256(material).hexdigest()[:16]
        cached = cache_dir / f"triage-model-{digest}.pkl" if cache_dir else None
        if cached is not None and cached.exists():
            with cached.open("rb") as f:
                model: TriageModel = pickle.load(f)  # noqa: S301 - our own file, keyed by hash
            return model
        model = cls().train(load_corpus(path, split=split))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            # A unique temporary file: several triage processes may train at once.
            with tempfile.NamedTemporaryFile(
                dir=cached.parent, prefix=cached.name, suffix=".tmp", delete=False
            ) as f:
                pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
            Path(f.name).replace(cached)
        return model

    # -- prediction --------------------------------------------------------------------------
    def predict(self, text: str) -> Prediction:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        prepared = [prepare(t) for t in texts]
        x = self._features(prepared)
        cats = list(self.category.classes_)
        subs = list(self.subcategory.classes_)
        urgs = list(self.urgency.classes_)
        # columns of the subcategory model that belong to each category, in category order
        groups = [[j for j, s in enumerate(subs) if s.split("/", 1)[0] == c] for c in cats]
        s_sub = self.subcategory.decision_function(x)
        best_sub = np.stack(
            [s_sub[:, g].max(axis=1) if g else np.full(len(texts), -np.inf) for g in groups],
            axis=1,
        )
        s_cat = (self.category.decision_function(x) + SUBCATEGORY_BLEND * best_sub) / (
            1.0 + SUBCATEGORY_BLEND
        )
        p_cat = _softmax(s_cat)
        p_sub = _softmax(s_sub)
        p_urg = _softmax(self.urgency.decision_function(x))
        emergency = urgs.index("emergency")
        out = []
        for i, prep in enumerate(prepared):
            ci = int(np.argmax(p_cat[i]))
            category = cats[ci]
            allowed = groups[ci]
            sj = max(allowed, key=lambda j: p_sub[i][j]) if allowed else None
            subcategory = (
                subs[sj].split("/", 1)[1] if sj is not None else SUBCATEGORIES[category][0]
            )
            urgency = urgs[int(np.argmax(p_urg[i]))]
            if p_urg[i][emergency] >= EMERGENCY_THRESHOLD:
                urgency = "emergency"
            cues = match_cues(prep)
            names = {c.name for c, _ in cues}
            if category != "admin" and (
                (names & IMMINENT and names & DANGER) or any(c <= names for c in SELF_EVIDENT)
            ):
                urgency = "emergency"
            out.append(
                Prediction(
                    category=category,
                    subcategory=subcategory,
                    urgency=urgency,
                    confidence=round(float(p_cat[i][ci]), 3),
                    cues=tuple(c.name for c, _ in cues),
                    explanation=_explain(category, subcategory, urgency, float(p_cat[i][ci]), cues),
                )
            )
        return out


def _softmax(scores: np.ndarray, temperature: float = 0.35) -> np.ndarray:
    """Margins of the linear SVMs as probabilities (a fixed temperature, checked on the
    held-out split: the confidence is an ordering for officers, not a calibrated risk)."""
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _explain(
    category: str, subcategory: str, urgency: str, confidence: float, cues: list[Any]
) -> str:
    kind = [f"«{m}» ({c.vi})" for c, m in cues if not c.label.startswith("urgency:")]
    urgent = [f"«{m}» ({c.vi})" for c, m in cues if c.label.startswith("urgency:")]
    parts = [
        f"Phân loại: {CATEGORY_VI[category]} / {SUBCATEGORY_VI.get(subcategory, subcategory)}, "
        f"độ tin cậy {confidence:.0%}."
    ]
    parts.append(
        "Dấu hiệu: " + ", ".join(kind) + "."
        if kind
        else "Không có từ khóa rõ ràng; dựa trên mô hình thống kê."
    )
    level = f"Mức độ: {URGENCY_VI[urgency]}"
    parts.append(level + (" — " + ", ".join(urgent) + "." if urgent else "."))
    return " ".join(parts)
