"""Figures for unit leads and supervisors, read through the viewer's scoped connection (so a
lead sees their unit, a supervisor the province), and small server-side SVG charts.

The charts are plain SVG built here (bars and stacked bars, ~60 lines): no JavaScript, nothing
from a CDN, allowed by the console's strict Content-Security-Policy, and readable in the
screenshots and the tests. A charting package would add a dependency for less control.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any, Final

import asyncpg

from ketnoi_shared.taxonomy import CATEGORY_VI, SUBCATEGORY_VI

from .cases import citizen_label
from .clocks import CLOCK_COLUMNS, VN, Policy, case_clocks, on_time_rate

__all__ = [
    "Dashboard",
    "bar_chart",
    "build_dashboard",
    "case_rows",
    "clock_rows",
    "stacked_chart",
]

TIP_CATEGORIES: Final = ("crime", "social_evils", "traffic", "public_order")
COLOURS: Final = {
    "crime": "#b3261e",
    "social_evils": "#7b3fa0",
    "traffic": "#0b6aa2",
    "public_order": "#c77700",
    "admin": "#2e7d32",
    "other": "#8a8f98",
}
REPLY_BUCKETS: Final = (
    ("< 15 phút", timedelta(minutes=15)),
    ("15–60 phút", timedelta(hours=1)),
    ("1–4 giờ", timedelta(hours=4)),
    ("4–24 giờ", timedelta(hours=24)),
    ("1–3 ngày", timedelta(days=3)),
    ("> 3 ngày", timedelta.max),
)


@dataclass
class Dashboard:
    days: list[date]
    per_day: dict[date, Counter[str]]
    per_unit: list[tuple[str, int]]
    reply_hist: list[tuple[str, int]]
    on_time: list[dict[str, Any]]
    procedures: dict[str, int]
    top_subcategories: list[tuple[str, int]]
    top_places: list[tuple[str, int]]
    week: dict[str, tuple[int, int]]
    clocks: list[dict[str, Any]] = field(default_factory=list)


async def case_rows(
    conn: asyncpg.Connection, *, since: datetime | None = None, open_only: bool = False
) -> list[asyncpg.Record]:
    """Tips and procedure questions with what their clocks need (for the dashboards: opened
    since ``since``; for the deadlines: the open ones)."""
    return await conn.fetch(
        f"""SELECT c.id, c.reference, c.category, c.subcategory, c.urgency, c.status, c.lane,
                  c.owner_unit_id, c.opened_at, c.location, c.citizen_pseudonym,
                  ou.name AS owner_name, {CLOCK_COLUMNS},
                  EXISTS (SELECT 1 FROM delivery_results d
                          WHERE d.case_id = c.id AND d.kind = 'answer'
                            AND d.status = 'sent') AS answered_automatically
           FROM cases c LEFT JOIN units ou ON ou.id = c.owner_unit_id
           WHERE c.lane IN ('tips', 'procedures')
             AND ($1::timestamptz IS NULL OR c.opened_at >= $1)
             AND (NOT $2 OR c.status IN ('new', 'acknowledged', 'verifying'))
           ORDER BY c.opened_at LIMIT 5000""",  # noqa: S608 - a constant fragment
        since,
        open_only,
    )


def clock_rows(
    rows: list[asyncpg.Record], policy: Policy, *, unit_id: str, now: datetime
) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        clocks = case_clocks(
            dict(r),
            policy,
            unit_kind=r["owner_kind"],
            first_reply_at=r["first_reply_at"],
            extensions=r["extensions"],
            now=now,
        )
        out.append(
            {
                "id": r["id"],
                "reference": r["reference"],
                "label": citizen_label(unit_id, r["citizen_pseudonym"]),
                "owner_unit_id": r["owner_unit_id"],
                "owner_name": r["owner_name"],
                "category": r["category"],
                "urgency": r["urgency"],
                "status": r["status"],
                "lane": r["lane"],
                "opened_at": r["opened_at"],
                "clocks": clocks,
                "late": any(c.late for c in clocks.values()),
                "due_soon": any(c.state == "due_soon" for c in clocks.values()),
            }
        )
    return out


def _reply_histogram(tips: list[asyncpg.Record]) -> list[tuple[str, int]]:
    hist: Counter[str] = Counter()
    for r in tips:
        if r["first_reply_at"] is None:
            continue
        waited = r["first_reply_at"] - r["opened_at"]
        hist[next(name for name, bound in REPLY_BUCKETS if waited < bound)] += 1
    return [(name, hist[name]) for name, _ in REPLY_BUCKETS]


def _on_time(clocked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_unit: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"closed": 0, "closed_on_time": 0, "open_overdue": 0, "open": 0}
    )
    for c in clocked:
        if c["lane"] != "tips":
            continue
        stats = by_unit[c["owner_name"] or c["owner_unit_id"]]
        if c["status"] in ("closed", "rejected"):
            stats["closed"] += 1
            stats["closed_on_time"] += c["clocks"]["resolution"].state == "met"
        else:
            stats["open"] += 1
            stats["open_overdue"] += c["late"]
    return [
        {
            "unit": unit,
            **s,
            "rate": on_time_rate(s["closed_on_time"], s["closed"], s["open_overdue"]),
        }
        for unit, s in sorted(by_unit.items())
    ]


def _procedures(recent: list[asyncpg.Record]) -> dict[str, int]:
    out = {"automatic": 0, "officers": 0, "waiting": 0}
    for r in recent:
        if r["lane"] != "procedures":
            continue
        if r["answered_automatically"]:
            out["automatic"] += 1
        elif r["first_reply_at"] is not None:
            out["officers"] += 1
        else:
            out["waiting"] += 1
    return out


def _week_over_week(rows: list[asyncpg.Record], today: date) -> dict[str, tuple[int, int]]:
    week_start = today - timedelta(days=today.weekday())
    this_week: Counter[str] = Counter()
    last_week: Counter[str] = Counter()
    for r in rows:
        if r["lane"] != "tips":
            continue
        d = r["opened_at"].astimezone(VN).date()
        if d >= week_start:
            this_week[r["category"]] += 1
        elif d >= week_start - timedelta(days=7):
            last_week[r["category"]] += 1
    return {c: (this_week[c], last_week[c]) for c in TIP_CATEGORIES}


async def build_dashboard(
    conn: asyncpg.Connection,
    policy: Policy,
    *,
    unit_id: str,
    days: int = 14,
    now: datetime | None = None,
) -> Dashboard:
    now = now or datetime.now(UTC)
    today = now.astimezone(VN).date()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), VN)
    rows = await case_rows(conn, since=min(since, now - timedelta(days=15)))
    recent = [r for r in rows if r["opened_at"] >= since]
    span = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    per_day: dict[date, Counter[str]] = {d: Counter() for d in span}
    for r in recent:
        d = r["opened_at"].astimezone(VN).date()
        if d in per_day and r["lane"] == "tips":
            per_day[d][r["category"]] += 1
    tips = [r for r in recent if r["lane"] == "tips"]
    clocked = clock_rows(recent, policy, unit_id=unit_id, now=now)
    return Dashboard(
        days=span,
        per_day=per_day,
        per_unit=Counter(r["owner_name"] or r["owner_unit_id"] for r in tips).most_common(12),
        reply_hist=_reply_histogram(tips),
        on_time=_on_time(clocked),
        procedures=_procedures(recent),
        top_subcategories=Counter(
            SUBCATEGORY_VI.get(r["subcategory"], r["subcategory"]) for r in tips if r["subcategory"]
        ).most_common(8),
        top_places=Counter(
            (json.loads(r["location"]) or {}).get("ward_name") or "Chưa rõ"
            for r in tips
            if r["location"]
        ).most_common(8),
        week=_week_over_week(rows, today),
        clocks=clocked,
    )


def bar_chart(items: list[tuple[str, int]], *, title: str, width: int = 520) -> str:
    """Horizontal bars with their labels and values."""
    row, left = 24, 190
    height = row * max(len(items), 1) + 30
    top = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(items):
        y = 20 + i * row
        w = int((width - left - 50) * value / top)
        parts.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{escape(str(label))[:32]}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{w}" height="16" fill="#0b4f8a"/>'
            f'<text x="{left + w + 6}" y="{y + 14}" font-size="12">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_chart(dash: Dashboard, *, title: str, width: int = 760, height: int = 240) -> str:
    """Tips per day, stacked by category, with a legend."""
    left, bottom, top_pad = 30, 40, 24
    n = max(len(dash.days), 1)
    step = (width - left - 10) / n
    peak = max((sum(c.values()) for c in dash.per_day.values()), default=0) or 1
    scale = (height - bottom - top_pad) / peak
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="4" y="{top_pad - 6}" font-size="11">{peak}</text>',
    ]
    for i, day in enumerate(dash.days):
        x = left + i * step
        y = height - bottom
        for cat in TIP_CATEGORIES:
            value = dash.per_day[day][cat]
            if not value:
                continue
            h = value * scale
            y -= h
            parts.append(
                f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{step - 4:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[cat]}"><title>{escape(CATEGORY_VI[cat])}: {value}</title></rect>'
            )
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{day.strftime("%d/%m")}</text>'
        )
    for j, cat in enumerate(TIP_CATEGORIES):
        lx = left + j * 170
        parts.append(
            f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="{COLOURS[cat]}"/>'
            f'<text x="{lx + 14}" y="{height - 7}" font-size="11">'
            f"{escape(CATEGORY_VI[cat].capitalize())}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
