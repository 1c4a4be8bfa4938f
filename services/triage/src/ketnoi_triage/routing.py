"""Routing of a case to the unit that owns it and the units that get an info-only copy,
from a YAML rules file (:file:`rules/routing.yaml`), reloaded when the file changes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

__all__ = ["Route", "RoutingRules", "default_rules_path"]

log = structlog.get_logger("ketnoi.triage")


def default_rules_path() -> Path:
    return Path(__file__).resolve().parent / "rules" / "routing.yaml"


@dataclass(frozen=True, slots=True)
class Route:
    owner_unit_id: str
    info_unit_ids: tuple[str, ...]
    lane: str
    location_unknown: bool


def _read_rules(path: Path) -> dict[str, Any]:
    rules = yaml.safe_load(path.read_text())
    if not isinstance(rules, dict) or "copies" not in rules:
        raise ValueError(f"{path}: not a routing rules file")
    return rules


def _matches(when: dict[str, Any], facts: dict[str, str]) -> bool:
    for key, expected in when.items():
        allowed = expected if isinstance(expected, list) else [expected]
        if facts.get(key) not in allowed:
            return False
    return True


@dataclass
class RoutingRules:
    path: Path
    _mtime: float = -1.0
    _rules: dict[str, Any] = field(default_factory=dict)

    def _current(self) -> dict[str, Any]:
        """The rules, re-read when the file changed. A broken edit keeps the rules in force
        (and says so in the log): a typo must not stop triage or dead-letter tips."""
        mtime = os.stat(self.path).st_mtime
        if mtime != self._mtime:
            try:
                rules = _read_rules(self.path)
            except (ValueError, yaml.YAMLError) as exc:
                if not self._rules:
                    raise
                log.error(  # noqa: TRY400 - the message says it all; no traceback needed
                    "routing rules not reloaded, keeping the previous ones", error=str(exc)[:200]
                )
                self._mtime = mtime
                return self._rules
            self._rules, self._mtime = rules, mtime
            log.info("routing rules loaded", path=str(self.path))
        return self._rules

    @property
    def reference_prefix(self) -> str:
        return str(self._current().get("reference_prefix", "KN"))

    @property
    def province(self) -> str:
        return str(self._current()["province"])

    def route(
        self,
        *,
        category: str,
        subcategory: str | None,
        urgency: str,
        ward_unit_id: str | None,
        oa_unit_id: str | None,
    ) -> Route:
        rules = self._current()
        facts = {"category": category, "subcategory": subcategory or "", "urgency": urgency}
        owner = ward_unit_id or oa_unit_id or rules["fallback_unit"]
        copies: list[str] = []
        for rule in rules.get("copies", []):
            if _matches(rule.get("when", {}), facts):
                copies.extend(u for u in rule["to"] if u != owner and u not in copies)
        lane = "tips"
        for name, categories in (rules.get("lanes") or {}).items():
            if category in categories:
                lane = name
        if urgency == "emergency" and lane == "none":
            lane = "tips"
        return Route(owner, tuple(copies), lane, location_unknown=ward_unit_id is None)
