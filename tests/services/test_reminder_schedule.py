"""The reminder schedule's rule, checked against a day-by-day simulation (Hypothesis), and the
parsing of the coordinator's list of days."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lms.services.reminders import ScheduleError, due_by_schedule, format_days, parse_days

DUE = date(2031, 3, 31)


def _simulate(days: list[int], weekly: bool, start: int, end: int, missed: set[int] = frozenset()):
    """Run the rule once a day from due+start to due+end (skipping ``missed`` offsets, a worker
    that was down), reminding whenever it says so; the offsets reminded on."""
    last = None
    reminded = []
    for offset in range(start, end + 1):
        if offset in missed:
            continue
        today = DUE + timedelta(days=offset)
        if due_by_schedule([DUE], last, today, days, weekly):
            reminded.append(offset)
            last = today
    return reminded


@settings(max_examples=200, deadline=None)
@given(days=st.lists(st.integers(0, 60), max_size=6, unique=True), weekly=st.booleans())
def test_a_daily_worker_reminds_on_each_scheduled_day_and_weekly_while_overdue(days, weekly):
    days = sorted(days, reverse=True)
    reminded = _simulate(days, weekly, -60, 30)
    expected_before = sorted(-d for d in days)
    expected_after = list(range(1, 31, 7)) if weekly else []
    assert reminded == expected_before + expected_after


@settings(max_examples=200, deadline=None)
@given(days=st.lists(st.integers(1, 40), min_size=1, max_size=5, unique=True),
       missed=st.sets(st.integers(-45, 0), max_size=10))
def test_a_missed_day_is_made_up_and_nobody_gets_two_in_one_stage(days, missed):
    days = sorted(days, reverse=True)
    reminded = _simulate(days, False, -45, 0, missed)
    stages = sorted(-d for d in days)
    # Each stage that had a day the worker ran gets exactly one reminder, on or after it opened
    # and before the next stage opened.
    for n, opened in enumerate(stages):
        closes = stages[n + 1] if n + 1 < len(stages) else 1
        ran = [o for o in range(opened, closes) if o not in missed]
        inside = [o for o in reminded if opened <= o < closes]
        assert len(inside) == (1 if ran else 0)
        if ran:
            assert inside == [ran[0]]
    assert len(reminded) == len(set(reminded))


@given(st.lists(st.integers(0, 365), max_size=8))
def test_days_round_trip(values):
    parsed = parse_days(", ".join(str(v) for v in values))
    assert parsed == sorted(set(values), reverse=True)
    assert parse_days(format_days(parsed)) == parsed


@pytest.mark.parametrize("text, problem", [("14, seven", "“seven” is not a number"), ("400", "out of range"),
                                           ("-1", "“-1” is not a number"), ("1.5", "“1.5” is not a number"),
                                           ("٣", "is not a number")])
def test_bad_days_are_refused_by_name(text, problem):
    with pytest.raises(ScheduleError, match=problem):
        parse_days(text)


def test_empty_means_no_reminders_before_the_due_date():
    assert parse_days("") == [] and parse_days(" , ;") == []
    assert not due_by_schedule([DUE], None, DUE - timedelta(days=3), [], weekly_overdue=True)
    assert due_by_schedule([DUE], None, DUE + timedelta(days=1), [], weekly_overdue=True)
