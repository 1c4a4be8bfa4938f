#!/usr/bin/env python3
"""Validate corpus.jsonl and print its label distribution.

Usage:  python stats.py [path/to/corpus.jsonl] [--markdown]

Checks every line: exact field set, types, labels allowed by
shared/triage/TAXONOMY.md, unique ids, unique texts, ward names that exist in
the current (post-July-2025) Lâm Đồng list of the `vietnamadminunits` package
(the spelling of the `vietnam-provinces` package is accepted too, see
README.md), outside-province lines without a ward, and test items that are
near-duplicates of train items. Exits 1 on any problem, 2 when no
administrative-units package can be imported.
"""

import collections
import json
import os
import re
import sys
import unicodedata

FIELDS = [
    "id",
    "text",
    "category",
    "subcategory",
    "urgency",
    "location_ward",
    "old_name_mentioned",
    "outside_province",
    "split",
    "note",
]
# The label contract lives in the triage package (one source of truth).
from ketnoi_triage.classify.taxonomy import SUBCATEGORIES  # noqa: E402

TAXONOMY = {category: list(subs) for category, subs in SUBCATEGORIES.items()}
URGENCIES = ["emergency", "high", "normal", "low"]
SPLITS = ["train", "test"]
NEAR_DUP = 0.8  # char-4-gram Jaccard between a test and a train text


def current_wards():
    """Current Lâm Đồng wards/communes as spelled by the installed package(s)."""
    names = set()
    try:
        from vietnamadminunits.database import query

        names |= {
            r["ward"]
            for r in query("select distinct ward from admin_units where provinceShort = 'Lâm Đồng'")
        }
    except ImportError:
        pass
    try:
        import vietnam_provinces

        with open(vietnam_provinces.FLAT_DIVISIONS_JSON_PATH, encoding="utf-8") as f:
            names |= {d["name"] for d in json.load(f) if d["province_name"] == "Tỉnh Lâm Đồng"}
    except ImportError:
        pass
    return names


DIACRITIC = re.compile(
    r"[àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ]", re.I
)


def grams(t):
    t = re.sub(r"\s+", " ", unicodedata.normalize("NFC", t.lower()))
    return {t[i : i + 4] for i in range(max(1, len(t) - 3))}


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    path = (
        args[0]
        if args
        else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus.jsonl")
    )
    wards = current_wards()
    if not wards:
        print("ERROR: install vietnamadminunits (or vietnam-provinces) to check ward names")
        return 2
    problems, rows, ids, texts = [], [], set(), {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            where = f"line {n}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: bad JSON ({e})")
                continue
            if list(r) != FIELDS:
                problems.append(f"{where}: fields {list(r)} != {FIELDS}")
                continue
            if not re.fullmatch(r"c-\d{5}", str(r["id"])):
                problems.append(f"{where}: bad id {r['id']!r}")
            if r["id"] in ids:
                problems.append(f"{where}: duplicate id {r['id']}")
            ids.add(r["id"])
            if not isinstance(r["text"], str) or not r["text"].strip():
                problems.append(f"{where}: empty text")
            elif r["text"] in texts:
                problems.append(f"{where}: same text as line {texts[r['text']]}")
            else:
                texts[r["text"]] = n
            if r["category"] not in TAXONOMY:
                problems.append(f"{where}: category {r['category']!r}")
            elif r["subcategory"] not in TAXONOMY[r["category"]]:
                problems.append(f"{where}: subcategory {r['subcategory']!r} not in {r['category']}")
            if r["urgency"] not in URGENCIES:
                problems.append(f"{where}: urgency {r['urgency']!r}")
            if r["split"] not in SPLITS:
                problems.append(f"{where}: split {r['split']!r}")
            if not isinstance(r["outside_province"], bool):
                problems.append(f"{where}: outside_province must be a bool")
            w = r["location_ward"]
            if w is not None and w not in wards:
                problems.append(f"{where}: ward {w!r} is not a current Lâm Đồng unit")
            if r["outside_province"] is True and w is not None:
                problems.append(f"{where}: outside the province but ward {w!r}")
            o = r["old_name_mentioned"]
            if o is not None and (not isinstance(o, str) or not o.strip()):
                problems.append(f"{where}: old_name_mentioned must be a non-empty string or null")
            if isinstance(o, str) and o.lower() not in r["text"].lower():
                problems.append(f"{where}: old name {o!r} not found in text")
            if not isinstance(r["note"], str) or not r["note"].strip():
                problems.append(f"{where}: empty note")
            rows.append(r)

    # test items must not be near-duplicates of train items
    train = [grams(r["text"]) for r in rows if r["split"] == "train"]
    for r in rows:
        if r["split"] != "test":
            continue
        g = grams(r["text"])
        best = max((len(g & t) / len(g | t) for t in train), default=0)
        if best >= NEAR_DUP:
            problems.append(
                f"{r['id']}: test text is a near-duplicate of a train text ({best:.2f})"
            )

    report(rows, "--markdown" in argv)
    if problems:
        print(f"\n{len(problems)} PROBLEM(S):")
        print("\n".join(problems[:200]))
        return 1
    print(f"\nOK: {len(rows)} lines valid")
    return 0


def table(title, counter, total, md):
    if md:
        print(f"\n| {title} | count | % |\n|---|---:|---:|")
        for k, v in counter.most_common():
            print(f"| {k} | {v} | {100 * v / total:.1f} |")
    else:
        print(f"\n{title}:")
        for k, v in counter.most_common():
            print(f"  {k:<28}{v:>6}  {100 * v / total:5.1f}%")


def report(rows, md=False):
    n = len(rows) or 1
    C = collections.Counter
    table("category", C(r["category"] for r in rows), n, md)
    table("category/subcategory", C(f"{r['category']}/{r['subcategory']}" for r in rows), n, md)
    table("urgency", C(r["urgency"] for r in rows), n, md)
    table("split", C(r["split"] for r in rows), n, md)
    test = [r for r in rows if r["split"] == "test"]
    table("category in test split", C(r["category"] for r in test), len(test) or 1, md)
    table("category x urgency", C(f"{r['category']}/{r['urgency']}" for r in rows), n, md)
    no_diac = sum(1 for r in rows if not DIACRITIC.search(r["text"]))
    located = sum(1 for r in rows if r["location_ward"])
    old = sum(1 for r in rows if r["old_name_mentioned"])
    outside = sum(1 for r in rows if r["outside_province"])
    lens = sorted(len(r["text"]) for r in rows)
    long_ = sum(1 for x in lens if x >= 600)
    extra = C(
        {
            "lines": len(rows),
            "no diacritics": no_diac,
            "with location_ward": located,
            "with old_name_mentioned": old,
            "outside_province": outside,
            "texts >= 600 chars": long_,
            "texts <= 20 chars": sum(1 for x in lens if x <= 20),
            "distinct wards used": len({r["location_ward"] for r in rows if r["location_ward"]}),
        }
    )
    if md:
        print("\n| other facts | count | % |\n|---|---:|---:|")
        for k, v in extra.items():
            print(f"| {k} | {v} | {100 * v / n:.1f} |")
    else:
        print("\nother facts:")
        for k, v in extra.items():
            print(f"  {k:<28}{v:>6}  {100 * v / n:5.1f}%")
    if lens:
        print(f"  text length min/median/max: {lens[0]}/{lens[len(lens) // 2]}/{lens[-1]}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
