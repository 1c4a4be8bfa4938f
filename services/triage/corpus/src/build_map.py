"""Print every pre-2025 ward/commune of former Lâm Đồng, Đắk Nông and Bình Thuận with the current unit it converts to
(from vietnamadminunits data). Output is kept in old_to_new_lamdong.txt; DIVIDED rows list all targets, * = default."""

import json
import os

import vietnamadminunits
from vietnamadminunits.database import query

d = json.load(
    open(os.path.join(os.path.dirname(vietnamadminunits.__file__), "data", "converter_2025.json"))
)
nd = d["DICT_PROVINCE_WARD_NO_DIVIDED"]["tinhlamdong"]
dv = d["DICT_PROVINCE_WARD_DIVIDED"].get("tinhlamdong", {})
newname = {
    r["wardKey"]: r["ward"]
    for r in query("select ward,wardKey from admin_units where provinceShort='Lâm Đồng'")
}
rev = {}
for nk, olds in nd.items():
    for o in olds:
        rev[o] = nk
rows = query(
    "select province,district,ward,provinceKey,districtKey,wardKey from admin_units_legacy where provinceKey in ('tinhlamdong','tinhdaknong','tinhbinhthuan') order by province,district,ward"
)
out = []
for r in rows:
    k = f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey']}"
    if k in rev:
        new = newname[rev[k]]
        div = ""
    elif k in dv:
        new = " | ".join(
            newname[w["newWardKey"]] + ("*" if w["isDefaultNewWard"] else "") for w in dv[k]
        )
        div = "DIVIDED"
    else:
        new = "??"
        div = ""
    out.append((r["province"], r["district"], r["ward"], new, div))
    print(r["province"].replace("Tỉnh ", ""), "|", r["district"], "|", r["ward"], "=>", new, div)
