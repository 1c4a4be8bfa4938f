"""Routing rules: owner, info-only copies, lanes, hot reload of the YAML file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from ketnoi_triage.routing import RoutingRules, default_rules_path


@pytest.fixture
def rules(tmp_path: Path) -> RoutingRules:
    path = tmp_path / "routing.yaml"
    shutil.copy(default_rules_path(), path)
    return RoutingRules(path)


def test_owner_is_the_ward_police_else_the_oa_unit(rules: RoutingRules):
    located = rules.route(
        category="crime",
        subcategory="theft",
        urgency="normal",
        ward_unit_id="ld-xa-a",
        oa_unit_id="ld-xa-b",
    )
    assert located.owner_unit_id == "ld-xa-a"
    assert located.location_unknown is False
    unknown = rules.route(
        category="crime",
        subcategory="theft",
        urgency="normal",
        ward_unit_id=None,
        oa_unit_id="ld-xa-b",
    )
    assert unknown.owner_unit_id == "ld-xa-b"
    assert unknown.location_unknown is True
    nobody = rules.route(
        category="crime", subcategory="theft", urgency="normal", ward_unit_id=None, oa_unit_id=None
    )
    assert nobody.owner_unit_id == "ld-ca-tinh"


@pytest.mark.parametrize(
    ("category", "subcategory", "urgency", "copies"),
    [
        ("social_evils", "drug_use", "normal", {"ld-pc-ma-tuy"}),
        ("crime", "drug_trafficking", "high", {"ld-pc-ma-tuy"}),
        ("crime", "fraud_online", "normal", {"ld-pc-an-ninh-mang"}),
        ("traffic", "accident", "high", {"ld-pc-giao-thong"}),
        ("crime", "robbery_snatching", "emergency", {"ld-pc-hinh-su", "ld-truc-ban"}),
        ("public_order", "noise", "normal", set()),
        ("other", "unrelated", "emergency", {"ld-truc-ban"}),
    ],
)
def test_info_only_copies(
    rules: RoutingRules, category: str, subcategory: str, urgency: str, copies: set[str]
):
    route = rules.route(
        category=category,
        subcategory=subcategory,
        urgency=urgency,
        ward_unit_id="ld-xa-a",
        oa_unit_id="ld-xa-a",
    )
    assert set(route.info_unit_ids) == copies
    assert "ld-xa-a" not in route.info_unit_ids


def test_lanes(rules: RoutingRules):
    def lane(category: str, urgency: str = "low") -> str:
        return rules.route(
            category=category, subcategory=None, urgency=urgency, ward_unit_id=None, oa_unit_id="x"
        ).lane

    assert lane("admin") == "procedures"
    assert lane("crime", "normal") == "tips"
    assert lane("other") == "none"
    assert lane("other", "emergency") == "tips", "a fire or a flood is not hidden"


def test_rules_file_is_reloaded_when_it_changes(rules: RoutingRules):
    def copies() -> tuple[str, ...]:
        return rules.route(
            category="public_order",
            subcategory="noise",
            urgency="normal",
            ward_unit_id="ld-xa-a",
            oa_unit_id=None,
        ).info_unit_ids

    assert copies() == ()
    data = yaml.safe_load(rules.path.read_text())
    data["copies"].append({"when": {"subcategory": "noise"}, "to": ["ld-pc-qlhc"]})
    rules.path.write_text(yaml.safe_dump(data, allow_unicode=True))
    stat = rules.path.stat()
    os.utime(rules.path, (stat.st_atime, stat.st_mtime + 5))  # a later mtime, whatever the clock
    assert copies() == ("ld-pc-qlhc",)
    assert rules.reference_prefix == "LD"


def test_a_broken_rules_file_is_refused(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("- just a list\n")
    with pytest.raises(ValueError, match="not a routing rules file"):
        RoutingRules(path).route(
            category="crime", subcategory=None, urgency="low", ward_unit_id=None, oa_unit_id=None
        )


def test_a_broken_edit_keeps_the_rules_in_force(rules: RoutingRules):
    before = rules.route(
        category="traffic", subcategory="jam", urgency="low", ward_unit_id=None, oa_unit_id="x"
    )
    rules.path.write_text("copies: [unclosed\n")
    stat = rules.path.stat()
    os.utime(rules.path, (stat.st_atime, stat.st_mtime + 5))
    after = rules.route(
        category="traffic", subcategory="jam", urgency="low", ward_unit_id=None, oa_unit_id="x"
    )
    assert after == before
