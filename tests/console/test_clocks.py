"""The response-time clocks: working hours in Asia/Ho_Chi_Minh, holidays, the legal deadline
and its extensions, the on-time formula."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ketnoi_console.clocks import Policy, Schedule, case_clocks, on_time_rate, parse_duration

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def policy() -> Policy:
    return Policy.load()


@pytest.fixture
def office(policy: Policy) -> Schedule:
    return policy.schedules["office"]


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("20d") == timedelta(days=20)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_office_hours_skip_lunch_nights_weekends_and_holidays(office: Schedule) -> None:
    # Friday 16:00 local + 2 h of office time: 1 h on Friday, then Monday 07:30 + 1 h.
    due = office.add(vn(2026, 11, 27, 16, 0), timedelta(hours=2))
    assert due.astimezone(VN) == vn(2026, 11, 30, 8, 30)
    # 11:00 + 1 h: 30 min before lunch, then 13:30 + 30 min.
    assert office.add(vn(2026, 11, 30, 11, 0), timedelta(hours=1)).astimezone(VN) == vn(
        2026, 11, 30, 14, 0
    )
    # Before opening: the clock starts at 07:30.
    assert office.add(vn(2026, 11, 30, 5, 0), timedelta(minutes=30)).astimezone(VN) == vn(
        2026, 11, 30, 8, 0
    )
    # 1 September and National Day (2 September 2026, a Wednesday) are skipped.
    due = office.add(vn(2026, 8, 31, 16, 30), timedelta(hours=1))
    assert due.astimezone(VN) == vn(2026, 9, 3, 8, 0)
    # A time given in UTC is the same instant: 09:00 UTC is 16:00 in Việt Nam.
    assert office.add(datetime(2026, 11, 27, 9, 0, tzinfo=UTC), timedelta(hours=2)) == due_utc(
        vn(2026, 11, 30, 8, 30)
    )
    assert office.between(vn(2026, 11, 27, 16, 0), vn(2026, 11, 30, 8, 30)) == timedelta(hours=2)


def due_utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


def test_always_schedule_is_calendar_time() -> None:
    start = vn(2026, 11, 28, 23, 50)
    assert Schedule().add(start, timedelta(minutes=15)) == start + timedelta(minutes=15)


def case(**kw: object) -> dict[str, object]:
    base = {
        "urgency": "normal",
        "opened_at": datetime(2026, 11, 2, 1, 0, tzinfo=UTC),
        "closed_at": None,
        "status": "new",
        "category": "crime",
        "owner_unit_id": "ld-xa-a",
    }
    return base | kw


def test_clock_states(policy: Policy) -> None:
    opened = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    running = case_clocks(
        case(), policy, unit_kind="commune", first_reply_at=None, now=opened + timedelta(hours=1)
    )
    assert running["first_reply"].state == "running"
    soon = case_clocks(
        case(), policy, unit_kind="commune", first_reply_at=None, now=opened + timedelta(hours=20)
    )
    assert soon["first_reply"].state == "due_soon"
    late = case_clocks(
        case(), policy, unit_kind="commune", first_reply_at=None, now=opened + timedelta(hours=25)
    )
    assert late["first_reply"].state == "overdue"
    met = case_clocks(
        case(),
        policy,
        unit_kind="commune",
        first_reply_at=opened + timedelta(hours=3),
        now=opened + timedelta(days=2),
    )
    assert met["first_reply"].state == "met"
    missed = case_clocks(
        case(),
        policy,
        unit_kind="commune",
        first_reply_at=opened + timedelta(hours=30),
        now=opened + timedelta(days=2),
    )
    assert missed["first_reply"].state == "missed"
    emergency = case_clocks(
        case(urgency="emergency"),
        policy,
        unit_kind="commune",
        first_reply_at=None,
        now=opened + timedelta(minutes=16),
    )
    assert emergency["first_reply"].state == "overdue"


def test_emergencies_ignore_office_hours(policy: Policy) -> None:
    office_policy = replace(policy, unit_schedules={"commune": "office"})
    saturday_night = vn(2026, 11, 28, 23, 0).astimezone(UTC)
    normal = case_clocks(
        case(opened_at=saturday_night),
        office_policy,
        unit_kind="commune",
        first_reply_at=None,
        now=saturday_night,
    )
    urgent = case_clocks(
        case(opened_at=saturday_night, urgency="emergency"),
        office_policy,
        unit_kind="commune",
        first_reply_at=None,
        now=saturday_night,
    )
    assert urgent["first_reply"].due_at == saturday_night + timedelta(minutes=15)
    # 24 working hours from Saturday night, 7.5 h a day from Monday: Thursday 09:00.
    assert normal["first_reply"].due_at.astimezone(VN) == vn(2026, 12, 3, 9, 0)


def test_legal_deadline_and_its_extensions(policy: Policy) -> None:
    opened = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    base = case_clocks(case(), policy, unit_kind="commune", first_reply_at=None, now=opened)
    assert base["legal"].due_at == opened + timedelta(days=20)
    once = case_clocks(
        case(), policy, unit_kind="commune", first_reply_at=None, extensions=1, now=opened
    )
    assert once["legal"].due_at == opened + timedelta(days=80)
    twice = case_clocks(
        case(), policy, unit_kind="commune", first_reply_at=None, extensions=5, now=opened
    )
    assert twice["legal"].due_at == opened + timedelta(days=140)  # at most two extensions
    traffic = case_clocks(
        case(category="traffic"), policy, unit_kind="commune", first_reply_at=None, now=opened
    )
    assert "legal" not in traffic


def test_on_time_rate_counts_open_late_cases() -> None:
    assert on_time_rate(closed_on_time=8, closed=10, open_overdue=0) == 0.8
    assert on_time_rate(closed_on_time=8, closed=10, open_overdue=6) == 0.5
    assert on_time_rate(0, 0, 0) is None


def test_shipped_holidays_parse(policy: Policy) -> None:
    assert date(2026, 9, 2) in policy.schedules["office"].holidays
