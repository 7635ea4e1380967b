"""Roster statuses in SQL, checked against the per-assignment rule and an independent count."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lms.models import Assignment, Exemption
from lms.services import quiz as quiz_service
from lms.services.cycles import create_cycle
from lms.services.progress import mark_lesson_read, progress_for
from lms.services.roster import RosterError, RosterFilters, roster_rows, status_counts, unit_summary
from lms.services.signing import SigningFacts, append_acknowledgment
from tests.helpers import cycle_id_of

TZ = "America/Chicago"
START = datetime(2031, 1, 5, 15, 0, tzinfo=timezone.utc)
DUE = date(2031, 3, 31)


def _answers(attempt, right=True):
    answers = {}
    for item in attempt.items:
        options = item.question.options
        wanted = [o.id for o in options if o.correct] if right else [next(o.id for o in options if not o.correct)]
        answers[item.position] = wanted
    return answers


def _walk(db, assignment, target, at):
    lessons = assignment.policy_version.lessons
    if target == "not_started":
        return
    for lesson in lessons[: 1 if target == "in_progress" else None]:
        mark_lesson_read(db, assignment, lesson, at)
    if target == "in_progress":
        return
    attempt = quiz_service.start_attempt(db, assignment, at, rng=random.Random(1))
    quiz_service.submit_attempt(db, attempt, _answers(attempt, right=target != "quiz_failed"), at)
    if target in ("complete", "complete_late"):
        when = at if target == "complete" else datetime(2031, 4, 1, 12, 0, tzinfo=timezone.utc)
        facts = SigningFacts(ip="10.0.0.1", user_agent="test", now=when, timezone=TZ, department="Test PD")
        append_acknowledgment(db, assignment=assignment, member=assignment.member,
                              printed_name=assignment.member.full_name, facts=facts)


@pytest.fixture
def department(db, make_member):
    """Members walked to each status in a 2031 cycle."""
    targets = ["not_started", "in_progress", "quiz_failed", "quiz_passed", "complete", "complete_late", "exempt"]
    members = {}
    for n, target in enumerate(targets):
        members[target] = make_member(first=f"M{n}", last=target.replace("_", ""), badge=str(700 + n),
                                      unit="Traffic" if n % 2 else "Patrol North")
    make_member(first="On", last="Leave", badge="790", status="leave")
    cycle = create_cycle(db, year=2031, due_date=DUE, today=START.date(), now=START)
    db.flush()
    for target, member in members.items():
        assignment = db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()
        _walk(db, assignment, target if target != "exempt" else "in_progress", START + timedelta(days=3))
        if target == "exempt":
            db.add(Exemption(cycle_id=cycle.id, member_id=member.id, reason="Military leave",
                             granted_at=START + timedelta(days=4)))
    db.commit()
    return members


def test_each_status_in_sql_matches_the_rule(db, department):
    today = date(2031, 2, 1)
    rows = {r.badge: r for r in roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=today, tz=TZ)}
    assert "790" not in rows  # on leave: not in the audience
    for target, member in department.items():
        row = rows[member.badge]
        assert row.status == target, member.badge
        if target != "exempt":
            assignment = db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()
            assert progress_for(db, assignment, today=today, tz=TZ).status == target
    assert rows["705"].acknowledged_at.startswith("2031-04-01T") and rows["705"].policy_version == date(2013, 11, 26)
    assert rows["706"].exemption_reason == "Military leave"
    assert rows["702"].quiz_attempts == 1 and rows["702"].quiz_best_score == 0


def test_past_due_turns_unfinished_work_overdue(db, department):
    rows = {r.badge: r.status for r in roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)),
                                                   today=date(2031, 4, 2), tz=TZ)}
    assert rows["700"] == rows["701"] == rows["702"] == rows["703"] == "overdue"
    assert rows["704"] == "complete" and rows["705"] == "complete_late" and rows["706"] == "exempt"


def test_as_of_shows_the_roster_as_it_stood(db, department):
    before_anything = RosterFilters(cycle_id=cycle_id_of(db, 2031), as_of=date(2031, 1, 6))
    counts = status_counts(db, before_anything, today=date(2031, 6, 1), tz=TZ)
    assert counts["not_started"] == 7 and sum(counts.values()) == 7
    cycle_id = cycle_id_of(db, 2031)
    after_quiz = {r.badge: r.status for r in roster_rows(db, RosterFilters(cycle_id=cycle_id, as_of=date(2031, 1, 8)),
                                                         today=date(2031, 6, 1), tz=TZ)}
    assert after_quiz["704"] == "complete" and after_quiz["705"] == "quiz_passed"
    assert after_quiz["706"] == "in_progress"  # exempted a day later


def test_counts_filters_and_summary_agree_with_an_independent_count(db, department):
    today = date(2031, 2, 1)
    rows = list(roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=today, tz=TZ))
    counts = status_counts(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=today, tz=TZ)
    assert sum(counts.values()) == len(rows) == 7
    traffic = list(roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031), units=["Traffic"]), today=today, tz=TZ))
    assert {r.badge for r in traffic} == {m.badge for n, m in enumerate(department.values()) if n % 2}
    summary = dict((u, (t, c)) for u, t, c in unit_summary(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=today, tz=TZ))
    assert summary["Traffic"][0] == len(traffic)
    done = [r for r in rows if r.status in ("complete", "complete_late", "exempt")]
    assert sum(c for _, c in summary.values()) == len(done)
    only = list(roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031), statuses=["quiz_failed"]), today=today, tz=TZ))
    assert [r.badge for r in only] == ["702"]
    found = list(roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031), search="quizpa"), today=today, tz=TZ))
    assert [r.badge for r in found] == ["703"]
    with pytest.raises(RosterError):
        list(roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031), statuses=["bogus"]), today=today, tz=TZ))


def test_new_member_and_return_from_leave_get_their_own_due_date(db, department, make_member):
    from lms.models import Member
    from lms.services.cycles import return_from_leave, sync_audience

    today = date(2031, 3, 20)
    now = datetime(2031, 3, 20, 15, 0, tzinfo=timezone.utc)
    make_member(first="New", last="Hire", badge="795")
    assert sync_audience(db, today=today, now=now) == 1
    back = db.scalars(select(Member).where(Member.badge == "790")).one()
    return_from_leave(db, back, today=today, now=now)
    db.commit()
    rows = {r.badge: r for r in roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=date(2031, 4, 5), tz=TZ)}
    assert rows["795"].due_date == rows["790"].due_date == date(2031, 4, 19)  # 30 days' grace
    assert rows["795"].status == rows["790"].status == "not_started"
    assert rows["700"].status == "overdue"
    assert sync_audience(db, today=today, now=now) == 0


def test_exemption_is_granted_with_a_reason_and_can_be_lifted(db, department):
    from lms.models import Cycle
    from lms.services.cycles import ExemptionError, current_exemption, grant_exemption, lift_exemption

    cycle = db.scalars(select(Cycle)).one()
    member = department["not_started"]
    with pytest.raises(ExemptionError):
        grant_exemption(db, cycle=cycle, member=member, reason=" ", granted_by_id=None, now=START)
    exemption = grant_exemption(db, cycle=cycle, member=member, reason="Light duty", granted_by_id=None, now=START)
    with pytest.raises(ExemptionError):
        grant_exemption(db, cycle=cycle, member=member, reason="Again", granted_by_id=None, now=START)
    db.commit()
    rows = {r.badge: r.status for r in roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)),
                                                   today=date(2031, 2, 1), tz=TZ)}
    assert rows[member.badge] == "exempt"
    lift_exemption(db, exemption, lifted_by_id=None, now=START + timedelta(days=10))
    db.commit()
    assert current_exemption(db, cycle.id, member.id) is None
    rows = {r.badge: r.status for r in roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)),
                                                   today=date(2031, 2, 1), tz=TZ)}
    assert rows[member.badge] == "not_started"
    as_of = {r.badge: r.status for r in roster_rows(
        db, RosterFilters(cycle_id=cycle_id_of(db, 2031), as_of=date(2031, 1, 10)), today=date(2031, 2, 1), tz=TZ)}
    assert as_of[member.badge] == "exempt"
