"""Regenerate keda-scaledobject-v1alpha1.json (run by hand, not in CI).

The schema is derived from KEDA's official CustomResourceDefinition through the pydantic models
that ``cloudcoil-models-keda`` generates from it, then made strict: every object with declared
properties refuses unknown keys (the API server would silently prune a misspelt field).

    python -m venv /tmp/cc && /tmp/cc/bin/pip install cloudcoil-models-keda==2.16.1.0
    /tmp/cc/bin/python deploy/schemas/vendor_keda_schema.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cloudcoil.models.keda import v1alpha1  # type: ignore[import-not-found]


def _strict(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)


def main() -> None:
    schema = v1alpha1.ScaledObject.model_json_schema(by_alias=True, mode="validation")
    _strict(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = "KEDA ScaledObject keda.sh/v1alpha1 (cloudcoil-models-keda 2.16.1.0)"
    out = Path(__file__).with_name("keda-scaledobject-v1alpha1.json")
    out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
