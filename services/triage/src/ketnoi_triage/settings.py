"""Triage settings (``KETNOI_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ketnoi_shared.settings import CommonSettings

__all__ = ["TriageSettings"]


class TriageSettings(CommonSettings):
    triage_quiet_gap_min: float = Field(
        default=30,
        description="Minutes of silence after which a citizen's next message opens a new case.",
    )
    triage_batch_max: int = Field(
        default=500, description="Most events triage applies in one transaction."
    )
    triage_province: str = Field(
        default="Lâm Đồng", description="Province of the OAs this deployment serves."
    )
    triage_rules: Path | None = Field(
        default=None,
        description="Routing rules YAML (default: the packaged Lâm Đồng rules); "
        "reloaded when the file changes.",
    )
    triage_units: Path | None = Field(
        default=None,
        description="Unit directory YAML loaded by `ketnoi units load` and on "
        "the first `ketnoi up` (default: the packaged Lâm Đồng directory).",
    )
    triage_units_overrides: Path | None = Field(
        default=None,
        description="YAML of partial unit entries (by id) merged over the "
        "directory, e.g. the real OA ids of a deployment.",
    )
