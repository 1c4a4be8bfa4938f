"""Generate the geography data files: ``python -m ketnoi_triage.geo.build``.

Writes, into ``ketnoi_triage/data/``:

* ``gazetteer.json.gz`` — all 34 provinces and 3,321 current units with centroids and areas,
  and the pre-2025 provinces, districts and communes/wards mapped to current units;
* ``units_<province>.yaml`` — the police unit directory of one province (Lâm Đồng by default).

Both come only from the installed ``vietnamadminunits`` and ``vietnam-provinces`` packages.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

from .directory import _slug, directory, render
from .gazetteer import DATA_FILE
from .sources import collect

__all__ = ["main", "write_gazetteer"]


def write_gazetteer(data: dict[str, Any], path: Path) -> None:
    """Write gazetteer data as compact, reproducible (timestamp-free) gzipped JSON."""
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_FILE.parent)
    parser.add_argument("--province", default="68", help="official province code (default 68)")
    parser.add_argument("--prefix", default="ld", help="id prefix of the directory (default ld)")
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    data = collect()
    gazetteer_path = out_dir / DATA_FILE.name
    write_gazetteer(data, gazetteer_path)

    province = next(p for p in data["provinces"] if p[0] == args.province)
    entries = directory(data, args.province, args.prefix)
    yaml_path = out_dir / f"units_{_slug(province[2]).replace('-', '_')}.yaml"
    yaml_path.write_text(render(entries, province[1], args.prefix), encoding="utf-8")

    communes = sum(1 for e in entries if e["kind"] == "commune")
    sys.stdout.write(
        f"{gazetteer_path}: {len(data['provinces'])} provinces, {len(data['units'])} units, "
        f"{len(data['old_wards'])} old communes/wards, {len(data['old_districts'])} old "
        f"districts ({gazetteer_path.stat().st_size // 1024} KiB)\n"
        f"{yaml_path}: {len(entries)} entries, {communes} communes/wards/special zones\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
