"""The status rule (lms.models.status) evaluated in Python and in SQL gives the same status: for
every combination of its facts, and for generated assignments built through the services, where
the progress service (Python), the roster from the stored columns and the fully computed roster
(SQL) must agree, and the stored columns must be what recomputing them gives. Run on SQLite, and
on PostgreSQL with LMS_TEST_DATABASE_URL."""
from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal, select

from lms.models import Assignment, Cycle, Member
from lms.models.assignment_state import STATE_COLUMNS, refresh_assignment_state
from lms.models.status import STATUSES, progress_case, progress_of, status_case, status_of
from lms.services import quiz as quiz_service
from lms.services.cycles import create_cycle, grant_exemption, lift_exemption, sync_audience
from lms.services.progress import mark_lesson_read, progress_for
from lms.services.records import void_acknowledgment
from lms.services.roster import RosterFilters, roster_rows
from lms.services.signing import SigningFacts, append_acknowledgment

TZ = "America/Chicago"
START = datetime(2031, 1, 5, 15, 0, tzinfo=timezone.utc)
DUE = date(2031, 3, 31)
DAYS = (date(2031, 2, 1), date(2031, 4, 2))  # before and after the due date
ON_TIME = datetime(2031, 2, 10, 15, 0, tzinfo=timezone.utc)
# 22:30 on 31 March in Chicago: the local date decides lateness, so this one is on time...
LAST_MINUTE = datetime(2031, 4, 1, 3, 30, tzinfo=timezone.utc)
LATE = datetime(2031, 4, 3, 15, 0, tzinfo=timezone.utc)


def test_every_combination_of_facts_gives_one_status_in_python_and_in_sql(db):
    facts = ("exempt", "signed_on_time", "signed", "past_due", "passed", "submitted", "started")
    combos = list(itertools.product((False, True), repeat=len(facts)))
    columns = [status_case(exempt=literal(c[0]), signed_on_time=literal(c[1]), signed=literal(c[2]),
                           past_due=literal(c[3]),
                           progress=progress_case(passed=literal(c[4]), submitted=literal(c[5]),
                                                  started=literal(c[6])))
               for c in combos]
    from_sql = []
    for chunk in range(0, len(columns), 32):  # a few statements, none with hundreds of columns
        from_sql += list(db.execute(select(*columns[chunk:chunk + 32])).one())
    in_python = [status_of(exempt=c[0], signed_on_time=c[1], signed=c[2], past_due=c[3],
                           progress=progress_of(passed=c[4], submitted=c[5], started=c[6])) for c in combos]
    assert from_sql == in_python
    assert set(in_python) == set(STATUSES)  # each status is reachable


def _answers(attempt, right: bool) -> dict:
    answers = {}
    for item in attempt.items:
        options = item.question.options
        answers[item.position] = ([o.id for o in options if o.correct] if right
                                  else [next(o.id for o in options if not o.correct)])
    return answers


#: One member's history in the cycle, as the services would write it.
histories = st.fixed_dictionaries({
    "lessons": st.integers(0, 3),
    "attempts": st.lists(st.sampled_from(["fail", "pass", "open"]), max_size=3),
    "signature": st.sampled_from([None, ON_TIME, LAST_MINUTE, LATE]),
    "voided": st.booleans(),
    "exemption": st.sampled_from([None, "granted", "lifted"]),
})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
def test_python_and_sql_agree_on_generated_assignments(app, db, make_member, history):
    cycle = db.scalar(select(Cycle).where(Cycle.year == 2031))
    if cycle is None:  # the first example: the cycle, and an HR member to void signatures
        hr = make_member(first="Hal", last="Resources", badge="90000", roles=("hr",))
        cycle = create_cycle(db, year=2031, due_date=DUE, today=START.date(), now=START)
        db.commit()
    hr = db.scalar(select(Member).where(Member.badge == "90000"))
    badge = f"9{db.scalar(select(Member.id).order_by(Member.id.desc()).limit(1)) + 1:04d}"
    member = make_member(first="Gen", last="Erated", badge=badge)
    sync_audience(db, today=START.date(), now=START)
    assignment = db.scalar(select(Assignment).where(Assignment.member_id == member.id))

    at = START + timedelta(days=1)
    lessons = assignment.policy_version.lessons
    # The quiz opens only once every lesson is read.
    for lesson in lessons if history["attempts"] else lessons[:history["lessons"]]:
        mark_lesson_read(db, assignment, lesson, at)
    passed = False
    for number, outcome in enumerate(history["attempts"][:assignment.policy_version.max_attempts]):
        attempt = quiz_service.start_attempt(db, assignment, at, rng=random.Random(number))
        if outcome == "open":
            break  # an attempt started and left open
        quiz_service.submit_attempt(db, attempt, _answers(attempt, right=outcome == "pass"), at)
        if outcome == "pass":
            passed = True
            break
    if passed and history["signature"] is not None:
        facts = SigningFacts(ip="10.0.0.1", user_agent="test", now=history["signature"], timezone=TZ,
                             department="Test PD")
        ack, _ = append_acknowledgment(db, assignment=assignment, member=member, printed_name="Gen Erated",
                                       facts=facts)
        if history["voided"]:
            void_acknowledgment(db, ack=ack, reason="signed on the wrong terminal", actor=hr, ip="10.0.0.2",
                                now=history["signature"] + timedelta(hours=1))
    if history["exemption"] is not None:
        exemption = grant_exemption(db, cycle=cycle, member=member, reason="Military leave", granted_by_id=None,
                                    now=at)
        if history["exemption"] == "lifted":
            lift_exemption(db, exemption, lifted_by_id=None, now=at + timedelta(days=1))
    db.commit()

    # The stored columns are what recomputing them from the source tables gives.
    def stored():
        db.expire_all()
        return db.execute(select(*[getattr(Assignment, c) for c in STATE_COLUMNS])
                          .where(Assignment.id == assignment.id)).one()

    kept = stored()
    refresh_assignment_state(db, [assignment.id])
    assert stored() == kept
    db.rollback()

    only = RosterFilters(cycle_id=cycle.id, search=badge)
    for today in DAYS:
        in_python = progress_for(db, assignment, today=today, tz=TZ).status
        from_stored = [row.status for row in roster_rows(db, only, today=today, tz=TZ)]
        computed = [row.status for row in roster_rows(db, only, today=today, tz=TZ, computed=True)]
        assert from_stored == computed == [in_python], (history, today)
