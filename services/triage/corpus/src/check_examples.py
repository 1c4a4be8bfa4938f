"""List corpus lines that are too close to the shared reference examples."""

import json
import re
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from build import fold


def grams(t):
    t = re.sub(r"\s+", " ", fold(t))
    return {t[i : i + 4] for i in range(max(1, len(t) - 3))}


ex = [json.loads(l)["text"] for l in open("/work/shared/triage/examples.jsonl")]
eg = [grams(t) for t in ex]
thr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3
for l in open(__file__.rsplit("/", 2)[0] + "/corpus.jsonl"):
    d = json.loads(l)
    g = grams(d["text"])
    best = max(range(len(ex)), key=lambda i: len(g & eg[i]) / len(g | eg[i]))
    s = len(g & eg[best]) / len(g | eg[best])
    if s >= thr:
        print(f"{s:.2f} {d['id']} | {d['text'][:90]}\n      EX: {ex[best][:90]}")
