"""Turn the hand-written batch files (batches/*.txt) into corpus.jsonl.

Batch line format (one message per line, '#' lines are comments):
    SUB URG | WARD | OLD | FLAGS | NOTE | TEXT
SUB   subcategory (category is implied), URG one of e/h/n/l
WARD  short current ward name ('Xuân Hương', 'Bảo Lâm 4') or '-'
OLD   old name as written in TEXT, optionally '~canonical old address' used
      to check the conversion with vietnamadminunits; '-' if none
FLAGS '-' or any of: 'o' (outside province), '@key' (scenario key shared by
      paraphrases so they land in the same split), 'T'/'R' to force test/train
TEXT  the message; a literal \\n stands for a line break.
This script only reformats; every text was written by hand.
"""

import glob
import hashlib
import json
import os
import re
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(__file__))
from vietnamadminunits import convert_address
from vietnamadminunits.database import query

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "corpus.jsonl")

SUB2CAT = {}
for cat, subs in {
    "crime": "theft robbery_snatching fraud fraud_online assault homicide weapons drug_trafficking loan_shark extortion property_damage trafficking_persons child_abuse",
    "social_evils": "drug_use gambling prostitution",
    "traffic": "accident street_racing drunk_driving overload obstruction road_hazard parking jam",
    "public_order": "fight noise dispute suspicious lost_found",
    "admin": "residence id_card vneid vehicle_registration passport criminal_record lost_documents how_to_report",
    "other": "greeting thanks spam unrelated",
}.items():
    for s in subs.split():
        SUB2CAT[s] = cat
URG = {"e": "emergency", "h": "high", "n": "normal", "l": "low"}

WARDS = [
    r["ward"] for r in query("select distinct ward from admin_units where provinceShort='Lâm Đồng'")
]
# spelling used by the shared examples (and by the vietnam-provinces package)
CANON = {"Phường Phú Thủy": "Phường Phú Thuỷ"}
PROV = {"LD": "Lâm Đồng", "DN": "Đắk Nông", "BT": "Bình Thuận"}


def strip_type(w):
    return re.sub(r"^(Phường|Xã|Đặc khu) ", "", w)


def resolve(short):
    short = unicodedata.normalize("NFC", short.strip()).replace("Thuỷ", "Thủy")
    exact = [w for w in WARDS if strip_type(w) == short or w == short]
    if len(exact) != 1:
        exact = [w for w in WARDS if strip_type(w).startswith(short)]
    if len(exact) != 1:
        raise ValueError(f"ward {short!r} -> {exact}")
    return CANON.get(exact[0], exact[0])


def fold(t):
    """lower-case, accent-free copy of t with the same length (one char per char)."""
    out = []
    for ch in unicodedata.normalize("NFC", t):
        base = unicodedata.normalize("NFD", ch)[0]
        out.append({"đ": "d", "Đ": "d"}.get(ch, base).lower())
    return "".join(out)


def as_written(name, text):
    """The substring of text that spells name, ignoring case and diacritics."""
    f = fold(text)
    i = f.find(fold(name))
    if i < 0:
        return None
    # keep the unit type the writer put in front of it ("tt Di Linh", "xã Tam Bố")
    m = re.search(r"(?:^|[\s,(])((?:thi tran|tt\.?|xa|phuong|p\.|khu|thon)\s+)$", f[:i])
    if m and not re.match(r"(thi tran|tt|xa|phuong|p\.|khu|thon)\b", fold(name)):
        i -= len(m.group(1))
        return text[i : i + len(m.group(1)) + len(name)]
    return text[i : i + len(name)]


def split_of(key):
    h = int(hashlib.md5(key.encode("utf-8")).hexdigest(), 16)
    return "test" if h % 100 < 20 else "train"


def main():
    rows, errors = [], []
    files = sorted(glob.glob(os.path.join(HERE, "batches", "*.txt")))
    for fn in files:
        for ln, line in enumerate(open(fn, encoding="utf-8"), 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = [p.strip() for p in line.split(" | ", 5)]
            where = f"{os.path.basename(fn)}:{ln}"
            if len(parts) != 6:
                errors.append(f"{where}: {len(parts)} fields")
                continue
            code, ward, old, flags, note, text = parts
            try:
                sub, u = code.split()
                cat = SUB2CAT[sub]
                urg = URG[u]
                wname = None if ward == "-" else resolve(ward)
            except Exception as e:
                errors.append(f"{where}: {e}")
                continue
            oldw = None
            if old != "-":
                oldw, _, canon = old.partition("~")
                oldw = as_written(oldw.strip(), unicodedata.normalize("NFC", text))
                if not oldw:
                    errors.append(f"{where}: old name {old!r} not in text")
                if canon.strip():
                    c = canon.strip()
                    for k, v in PROV.items():
                        c = re.sub(rf"\b{k}$", v, c)
                    got = convert_address(c).ward
                    if CANON.get(got, got) != wname:
                        errors.append(f"{where}: {c!r} converts to {got!r}, labelled {wname!r}")
            fl = flags.split()
            outside = "o" in fl
            key = next((f[1:] for f in fl if f.startswith("@")), None) or text
            split = "test" if "T" in fl else "train" if "R" in fl else split_of(key)
            text = unicodedata.normalize("NFC", text).replace("\\n", "\n")
            rows.append(
                {
                    "text": text,
                    "category": cat,
                    "subcategory": sub,
                    "urgency": urg,
                    "location_ward": wname,
                    "old_name_mentioned": oldw,
                    "outside_province": outside,
                    "split": split,
                    "note": note,
                }
            )
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    with open(OUT, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows, 1):
            r = {"id": f"c-{i:05d}", **r}
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} lines from {len(files)} batch files")


if __name__ == "__main__":
    main()
