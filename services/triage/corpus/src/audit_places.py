"""Heuristic audit: place names in text vs labels (review aid, not a validator)."""

import json
import re
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from build import WARDS, fold, strip_type

rows = [json.loads(l) for l in open(__file__.rsplit("/", 2)[0] + "/corpus.jsonl")]
short = {fold(strip_type(w).replace(" - Đà Lạt", "")): w for w in WARDS}
# strip 'Lâm Hà'/'Bảo Lộc' suffix forms too
for w in WARDS:
    s = strip_type(w)
    for suf in (" Lâm Hà", " Bảo Lộc"):
        if s.endswith(suf) and not s[0].isdigit():
            short[fold(s[: -len(suf)])] = w
landmarks = [
    "cho da lat",
    "cho dem",
    "ho xuan huong",
    "quang truong lam vien",
    "langbiang",
    "ho tuyen lam",
    "datanla",
    "prenn",
    "dambri",
    "mui ne",
    "ke ga",
    "poshanu",
    "bidoup",
    "ta nung",
    "cau dat",
]
for r in rows:
    f = " " + re.sub(r"[^a-z0-9\' ]", " ", fold(r["text"])) + " "
    hits = [k for k in short if re.search(r"(xa|phuong|p\.?|x\.?) " + re.escape(k) + r"\b", f)]
    lm = [k for k in landmarks if k in f]
    if (hits or lm) and not r["location_ward"] and not r["outside_province"]:
        print("NULL ", r["id"], hits, lm, "|", r["text"][:110])
    elif (
        hits
        and r["location_ward"]
        and all(short[h] != r["location_ward"] for h in hits)
        and not r["old_name_mentioned"]
    ):
        print("DIFF ", r["id"], hits, r["location_ward"], "|", r["text"][:110])
