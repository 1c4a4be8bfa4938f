"""The three clocks of a case, from the response-time policy (rules/response_policy.yaml).

(a) acknowledgement: automatic, from the first message to the acknowledgement request;
(b) first human reply: target per urgency, counted in the unit's working hours unless the unit
    works 24/7 or the case is an emergency; it must also land inside Zalo's reply window;
(c) resolution: target per urgency, and the legal deadline for denunciations and crime reports
    (20 days, extendable to 2 months, then by up to 2 more months).

Working-hours arithmetic is small and specific (office hours with a lunch break, a holiday
list, one time zone), so it is written here rather than pulled from a business-time package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import yaml

__all__ = [
    "CLOCK_COLUMNS",
    "Clock",
    "Policy",
    "Schedule",
    "case_clocks",
    "default_policy_path",
    "on_time_rate",
    "parse_duration",
]

VN: Final = ZoneInfo("Asia/Ho_Chi_Minh")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNITS = {"m": 60, "h": 3600, "d": 86400}
OPEN: Final = frozenset({"new", "acknowledged", "verifying"})
#: What :func:`case_clocks` needs besides the case's own columns, for a query over ``cases c``
#: joined to its owner unit as ``ou``.
CLOCK_COLUMNS: Final = """c.closed_at, ou.kind AS owner_kind,
    (SELECT min(a.at) FROM case_actions a
      WHERE a.case_id = c.id AND a.kind = 'reply') AS first_reply_at,
    (SELECT count(*) FROM case_actions a
      WHERE a.case_id = c.id AND a.kind = 'extend') AS extensions"""


def default_policy_path() -> Path:
    return Path(__file__).resolve().parent / "rules" / "response_policy.yaml"


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use 15m, 4h or 20d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _hm(text: str) -> time:
    hours, minutes = (int(x) for x in text.split(":"))
    return time(hours, minutes)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Working periods in local time; an empty schedule means 24/7."""

    days: frozenset[int] = frozenset()
    periods: tuple[tuple[time, time], ...] = ()
    holidays: frozenset[date] = frozenset()

    @property
    def always(self) -> bool:
        return not self.periods

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """``start`` plus ``duration`` of working time."""
        if self.always:
            return start + duration
        remaining = duration
        local = start.astimezone(VN)
        for _ in range(400):  # at most ~a year of working days
            day = local.date()
            if day.weekday() in self.days and day not in self.holidays:
                for begin, end in self.periods:
                    period_start = datetime.combine(day, begin, VN)
                    period_end = datetime.combine(day, end, VN)
                    if local >= period_end:
                        continue
                    cursor = max(local, period_start)
                    available = period_end - cursor
                    if remaining <= available:
                        return (cursor + remaining).astimezone(UTC)
                    remaining -= available
                    local = period_end
            local = datetime.combine(day + timedelta(days=1), time(0), VN)
        raise ValueError("the schedule has no working time")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (for response-time statistics)."""
        if self.always or end <= start:
            return max(end - start, timedelta(0))
        total = timedelta(0)
        day = start.astimezone(VN).date()
        last = end.astimezone(VN).date()
        while day <= last:
            if day.weekday() in self.days and day not in self.holidays:
                for begin, finish in self.periods:
                    lo = max(start, datetime.combine(day, begin, VN))
                    hi = min(end, datetime.combine(day, finish, VN))
                    if hi > lo:
                        total += hi - lo
            day += timedelta(days=1)
        return total


@dataclass(frozen=True, slots=True)
class Policy:
    first_reply: dict[str, timedelta]
    resolution: dict[str, timedelta]
    legal_base: timedelta
    legal_extensions: tuple[timedelta, ...]
    due_soon: float
    reply_window_warning: timedelta
    schedules: dict[str, Schedule]
    unit_schedules: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        raw: dict[str, Any] = yaml.safe_load((path or default_policy_path()).read_text())
        holidays = frozenset(date.fromisoformat(str(d)) for d in raw.get("holidays") or ())
        schedules = {
            name: Schedule(
                days=frozenset(int(d) for d in (spec or {}).get("days", ())),
                periods=tuple((_hm(a), _hm(b)) for a, b in (spec or {}).get("hours", ())),
                holidays=holidays,
            )
            for name, spec in (raw.get("schedules") or {"always": {}}).items()
        }
        legal = raw.get("legal_deadline") or {}
        policy = cls(
            first_reply={k: parse_duration(v) for k, v in raw["first_reply"].items()},
            resolution={k: parse_duration(v) for k, v in raw["resolution"].items()},
            legal_base=parse_duration(legal.get("base", "20d")),
            legal_extensions=tuple(parse_duration(x) for x in legal.get("extensions", ())),
            due_soon=float(raw.get("due_soon", 0.25)),
            reply_window_warning=parse_duration(raw.get("reply_window_warning", "24h")),
            schedules=schedules,
            unit_schedules={str(k): str(v) for k, v in (raw.get("unit_schedules") or {}).items()},
        )
        for name in policy.unit_schedules.values():
            if name not in schedules:
                raise ValueError(f"unknown schedule {name!r} in unit_schedules")
        return policy

    def schedule_for(self, unit_id: str | None, unit_kind: str | None) -> Schedule:
        name = self.unit_schedules.get(unit_id or "") or self.unit_schedules.get(
            unit_kind or "", "always"
        )
        return self.schedules.get(name, Schedule())


@dataclass(frozen=True, slots=True)
class Clock:
    """One clock of a case: its target, when it stopped (if it did), and its state."""

    name: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    state: str  # running | due_soon | overdue | met | missed

    @property
    def late(self) -> bool:
        return self.state in ("overdue", "missed")


def _clock(
    name: str,
    start: datetime,
    due: datetime,
    stopped: datetime | None,
    *,
    now: datetime,
    due_soon: float,
) -> Clock:
    if stopped is not None:
        return Clock(name, start, due, stopped, "met" if stopped <= due else "missed")
    if now > due:
        return Clock(name, start, due, None, "overdue")
    total = (due - start).total_seconds()
    left = (due - now).total_seconds()
    state = "due_soon" if total > 0 and left / total < due_soon else "running"
    return Clock(name, start, due, None, state)


def case_clocks(
    case: dict[str, Any],
    policy: Policy,
    *,
    unit_kind: str | None,
    first_reply_at: datetime | None,
    extensions: int = 0,
    now: datetime | None = None,
) -> dict[str, Clock]:
    """The first-reply, resolution and legal-deadline clocks of a case (the acknowledgement is
    automatic: its time is shown, not tracked against a target)."""
    now = now or datetime.now(UTC)
    urgency = case["urgency"]
    opened: datetime = case["opened_at"]
    closed: datetime | None = case.get("closed_at")
    schedule = (
        Schedule()
        if urgency == "emergency"
        else policy.schedule_for(case.get("owner_unit_id"), unit_kind)
    )
    clocks = {
        "first_reply": _clock(
            "first_reply",
            opened,
            schedule.add(opened, policy.first_reply.get(urgency, policy.first_reply["normal"])),
            first_reply_at or (closed if case["status"] not in OPEN else None),
            now=now,
            due_soon=policy.due_soon,
        ),
        "resolution": _clock(
            "resolution",
            opened,
            schedule.add(opened, policy.resolution.get(urgency, policy.resolution["normal"])),
            closed if case["status"] not in OPEN else None,
            now=now,
            due_soon=policy.due_soon,
        ),
    }
    if case.get("category") in ("crime", "social_evils"):
        legal = policy.legal_base + sum(policy.legal_extensions[: max(0, extensions)], timedelta(0))
        clocks["legal"] = _clock(
            "legal",
            opened,
            opened + legal,
            closed if case["status"] not in OPEN else None,
            now=now,
            due_soon=policy.due_soon,
        )
    return clocks


def on_time_rate(closed_on_time: int, closed: int, open_overdue: int) -> float | None:
    """closed-on-time / (closed + open-overdue): open late cases count against the rate."""
    denominator = closed + open_overdue
    return None if denominator == 0 else closed_on_time / denominator
