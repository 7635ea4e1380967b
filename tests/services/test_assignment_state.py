"""Each assignment's stored progress (lms.models.assignment_state) against the fully computed
roster, through every transition a member's status can make."""
from __future__ import annotations

import importlib.util
import random
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update

from lms.config import PACKAGE_DIR
from lms.db import get_database
from lms.models import Assignment, Cycle, Lesson, Member, PolicyVersion
from lms.models.assignment_state import STATE_COLUMNS, refresh_assignment_state
from lms.services import quiz as quiz_service
from lms.services.attempt_grants import grant_attempts
from lms.services.cycles import create_cycle, grant_exemption, lift_exemption, return_from_leave, sync_audience
from lms.services.progress import mark_lesson_read
from lms.services.records import void_acknowledgment
from lms.services.roster import (
    SORTS,
    RosterFilters,
    member_values,
    roster_rows,
    roster_summary,
    status_counts,
    unit_summary,
)
from lms.services.signing import SigningFacts, append_acknowledgment
from lms.services.versions import reassign_superseded
from tests.conftest import PASSWORD, PG_URL
from tests.helpers import cycle_id_of

TZ = "America/Chicago"
START = datetime(2031, 1, 5, 15, 0, tzinfo=timezone.utc)
DUE = date(2031, 3, 31)
BEFORE_DUE, AFTER_DUE = date(2031, 2, 1), date(2031, 4, 2)


def stored_state(db) -> dict[int, tuple]:
    """Every assignment's stored columns, superseded ones included, read from the database."""
    db.expire_all()
    columns = [getattr(Assignment, name) for name in STATE_COLUMNS]
    return {row[0]: tuple(row[1:]) for row in db.execute(select(Assignment.id, *columns))}


def assert_stored_matches_computed(db, year: int = 2031, days=(BEFORE_DUE, AFTER_DUE)) -> dict[str, str]:
    """The roster from the stored progress equals the fully computed one, row for row, in every
    order, page, filter and count; and every assignment's stored columns are what recomputing
    them from the source tables gives. Returns badge -> status on the first of ``days``."""
    db.commit()
    kept = stored_state(db)
    refresh_assignment_state(db)
    assert stored_state(db) == kept, "the flush listener left an assignment's stored progress stale"
    db.rollback()
    first = None
    for today in days:
        filters = RosterFilters(cycle_id=cycle_id_of(db, year))
        stored = [tuple(r) for r in roster_rows(db, filters, today=today, tz=TZ)]
        computed = [tuple(r) for r in roster_rows(db, filters, today=today, tz=TZ, computed=True)]
        assert stored == computed
        assert roster_summary(db, filters, today=today, tz=TZ) == \
            roster_summary(db, filters, today=today, tz=TZ, computed=True)
        for sort in SORTS:
            for descending in (False, True):
                for offset in (1,):
                    kwargs = dict(today=today, tz=TZ, sort=sort, descending=descending, limit=3, offset=offset)
                    assert [tuple(r) for r in roster_rows(db, filters, **kwargs)] == \
                        [tuple(r) for r in roster_rows(db, filters, computed=True, **kwargs)], (sort, descending)
        statuses = {r[7] for r in stored}
        for status in statuses:
            narrowed = RosterFilters(cycle_id=cycle_id_of(db, year), statuses=[status])
            assert [tuple(r) for r in roster_rows(db, narrowed, today=today, tz=TZ, limit=50)] == \
                [tuple(r) for r in roster_rows(db, narrowed, today=today, tz=TZ, limit=50, computed=True)]
            assert status_counts(db, narrowed, today=today, tz=TZ) == \
                status_counts(db, narrowed, today=today, tz=TZ, computed=True)
        units = RosterFilters(cycle_id=cycle_id_of(db, year), units=["Traffic"])
        assert unit_summary(db, units, today=today, tz=TZ) == unit_summary(db, units, today=today, tz=TZ,
                                                                          computed=True)
        if first is None:
            first = {r[0]: r[7] for r in stored}
        db.rollback()
    return first


def _answers(attempt, right=True):
    answers = {}
    for item in attempt.items:
        options = item.question.options
        answers[item.position] = ([o.id for o in options if o.correct] if right
                                  else [next(o.id for o in options if not o.correct)])
    return answers


def _facts(when):
    return SigningFacts(ip="10.0.0.1", user_agent="test", now=when, timezone=TZ, department="Test PD")


@pytest.fixture
def one(db, make_member):
    """One member (and a colleague with nothing done) in a 2031 cycle; returns the member's
    assignment."""
    member = make_member(first="Sam", last="Ortiz", badge="801", unit="Traffic")
    make_member(first="Lee", last="Park", badge="802", unit=None)
    create_cycle(db, year=2031, due_date=DUE, today=START.date(), now=START)
    db.commit()
    return db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()


def test_every_step_from_not_started_to_signed_void_and_signed_again(db, one):
    at = START + timedelta(days=1)
    assert assert_stored_matches_computed(db)["801"] == "not_started"
    lessons = one.policy_version.lessons
    mark_lesson_read(db, one, lessons[0], at)
    assert assert_stored_matches_computed(db)["801"] == "in_progress"
    for lesson in lessons[1:]:
        mark_lesson_read(db, one, lesson, at)
    attempt = quiz_service.start_attempt(db, one, at, rng=random.Random(3))
    assert assert_stored_matches_computed(db)["801"] == "in_progress"  # started, not submitted
    quiz_service.submit_attempt(db, attempt, _answers(attempt, right=False), at)
    assert assert_stored_matches_computed(db)["801"] == "quiz_failed"
    attempt = quiz_service.start_attempt(db, one, at, rng=random.Random(4))
    assert assert_stored_matches_computed(db)["801"] == "quiz_failed"  # a second attempt open
    quiz_service.submit_attempt(db, attempt, _answers(attempt), at)
    statuses = assert_stored_matches_computed(db, days=(BEFORE_DUE,))
    assert statuses["801"] == "quiz_passed" and statuses["802"] == "not_started"
    assert assert_stored_matches_computed(db, days=(AFTER_DUE,))["801"] == "overdue"

    ack, _ = append_acknowledgment(db, assignment=one, member=one.member, printed_name="Sam Ortiz",
                                   facts=_facts(at))
    assert assert_stored_matches_computed(db)["801"] == "complete"
    assert assert_stored_matches_computed(db, days=(AFTER_DUE,))["801"] == "complete"
    hr = db.scalars(select(Member).where(Member.badge == "802")).one()
    void_acknowledgment(db, ack=ack, reason="signed on the wrong terminal", actor=hr, ip="10.0.0.2",
                        now=at + timedelta(hours=1))
    assert assert_stored_matches_computed(db)["801"] == "quiz_passed"
    # Signed again after the due date, late in the evening: the local date decides lateness.
    late = datetime(2031, 4, 1, 3, 30, tzinfo=timezone.utc)  # 22:30 on 31 March in Chicago
    append_acknowledgment(db, assignment=one, member=one.member, printed_name="Sam Ortiz", facts=_facts(late))
    assert assert_stored_matches_computed(db)["801"] == "complete"
    one.due_date = date(2031, 3, 30)  # a due date moved earlier: read as it stands
    assert assert_stored_matches_computed(db)["801"] == "complete_late"


def test_exemption_granted_and_lifted(db, one):
    cycle = db.scalars(select(Cycle)).one()
    mark_lesson_read(db, one, one.policy_version.lessons[0], START)
    exemption = grant_exemption(db, cycle=cycle, member=one.member, reason="Military leave",
                                granted_by_id=None, now=START + timedelta(days=2))
    assert assert_stored_matches_computed(db)["801"] == "exempt"
    assert assert_stored_matches_computed(db, days=(AFTER_DUE,))["801"] == "exempt"
    assert one.exemption_reason == "Military leave"  # a loaded assignment reads the new value
    lift_exemption(db, exemption, lifted_by_id=None, now=START + timedelta(days=3))
    assert assert_stored_matches_computed(db)["801"] == "in_progress"
    assert one.exemption_reason is None


def test_new_assignments_leave_and_return(db, one, make_member):
    cycle = db.scalars(select(Cycle)).one()
    away = make_member(first="Ana", last="Diaz", badge="803", status="leave")
    grant_exemption(db, cycle=cycle, member=away, reason="Extended leave", granted_by_id=None, now=START)
    db.commit()
    today, now = date(2031, 3, 20), datetime(2031, 3, 20, 15, 0, tzinfo=timezone.utc)
    return_from_leave(db, away, today=today, now=now)
    # The assignment made on return starts exempt: the exemption was granted before it existed.
    assert assert_stored_matches_computed(db)["803"] == "exempt"
    make_member(first="New", last="Hire", badge="804")
    assert sync_audience(db, today=today, now=now) == 1
    statuses = assert_stored_matches_computed(db, days=(date(2031, 4, 5), date(2031, 4, 30)))
    assert statuses["804"] == "not_started" and statuses["801"] == "overdue"
    one.member.status = "separated"  # not signed: leaves the audience, read as it stands
    assert "801" not in assert_stored_matches_computed(db)


def test_a_later_version_reassigns_and_keeps_the_old_signature(db, one):
    at = START + timedelta(days=1)
    for lesson in one.policy_version.lessons:
        mark_lesson_read(db, one, lesson, at)
    attempt = quiz_service.start_attempt(db, one, at, rng=random.Random(5))
    quiz_service.submit_attempt(db, attempt, _answers(attempt), at)
    append_acknowledgment(db, assignment=one, member=one.member, printed_name="Sam Ortiz", facts=_facts(at))
    old = one.policy_version
    later = PolicyVersion(policy_id=old.policy_id, effective=date(2031, 2, 1), text=old.text + "\nAmended.",
                          text_sha256="0" * 64, attestation=old.attestation, pass_mark=old.pass_mark,
                          draw_size=old.draw_size, max_attempts=old.max_attempts,
                          minimum_per_topic=old.minimum_per_topic, topics=old.topics)
    db.add(later)
    db.flush()
    db.add(Lesson(version_id=later.id, slug="only", position=1, title="Only", sections=[], minutes=5,
                  body_markdown="Read me."))
    assert reassign_superseded(db, today=date(2031, 2, 2), now=datetime(2031, 2, 2, 15, tzinfo=timezone.utc)) == 2
    statuses = assert_stored_matches_computed(db)
    assert statuses == {"801": "not_started", "802": "not_started"}
    assert one.superseded_at is not None and one.signed_on == date(2031, 1, 6)  # kept on record


def test_a_retired_lesson_no_longer_counts_as_started(db, one):
    lesson = one.policy_version.lessons[0]
    mark_lesson_read(db, one, lesson, START)
    assert assert_stored_matches_computed(db)["801"] == "in_progress"
    db.get(Lesson, lesson.id).retired = True
    assert assert_stored_matches_computed(db)["801"] == "not_started"


def test_attempts_granted_at_the_limit_are_stored_and_computed_alike(db, one, make_member):
    """A member who used every attempt without passing is quiz_failed; a grant adds to the
    attempts allowed (stored and computed rosters agree, also as of a date before the grant),
    and a further attempt, failed or passed, moves the status as any attempt does."""
    coordinator = make_member(first="Cora", last="Dinator", badge="803", roles=("coordinator",))
    at = START + timedelta(days=1)
    for lesson in one.policy_version.lessons:
        mark_lesson_read(db, one, lesson, at)
    limit = one.policy_version.max_attempts
    for n in range(limit):
        attempt = quiz_service.start_attempt(db, one, at, rng=random.Random(n))
        quiz_service.submit_attempt(db, attempt, _answers(attempt, right=False), at)
    db.commit()
    with pytest.raises(quiz_service.QuizError, match="all"):
        quiz_service.start_attempt(db, one, at)
    db.rollback()
    assert assert_stored_matches_computed(db)["801"] == "quiz_failed"

    def allowed(**kwargs):
        rows = roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031), **kwargs), today=BEFORE_DUE, tz=TZ)
        return {r.badge: (r.quiz_attempts, r.attempts_allowed) for r in rows}

    assert allowed()["801"] == (limit, limit)
    granted_at = START + timedelta(days=3)
    grant_attempts(db, assignment=one, granted_by=db.get(Member, coordinator.id), password=PASSWORD,
                   attempts=2, reason="Went over the lessons together", now=granted_at, ip="10.0.0.2")
    assert assert_stored_matches_computed(db)["801"] == "quiz_failed"
    assert allowed()["801"] == (limit, limit + 2)
    assert allowed(as_of=(START + timedelta(days=2)).date())["801"] == (limit, limit)
    assert stored_state(db)[one.id][STATE_COLUMNS.index("extra_attempts")] == 2
    later = granted_at + timedelta(hours=1)
    attempt = quiz_service.start_attempt(db, one, later, rng=random.Random(50))
    assert assert_stored_matches_computed(db)["801"] == "quiz_failed"  # the last submitted failed
    quiz_service.submit_attempt(db, attempt, _answers(attempt, right=True), later)
    assert assert_stored_matches_computed(db)["801"] == "quiz_passed"
    assert allowed()["801"] == (limit + 1, limit + 2)


def test_a_rolled_back_change_leaves_the_stored_progress_as_it_was(db, one):
    mark_lesson_read(db, one, one.policy_version.lessons[0], START)
    db.rollback()
    assert assert_stored_matches_computed(db)["801"] == "not_started"


def _migration(name: str):
    spec = importlib.util.spec_from_file_location(name, PACKAGE_DIR / "migrations" / "versions" / f"{name}.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    return migration


def test_the_migration_backfills_are_the_same_rule(db, one):
    """Revisions 0009 (progress) and 0010 (counts) fill the columns with their own copies of the
    rule, in SQL."""
    at = START + timedelta(days=1)
    for lesson in one.policy_version.lessons:
        mark_lesson_read(db, one, lesson, at)
    attempt = quiz_service.start_attempt(db, one, at, rng=random.Random(6))
    quiz_service.submit_attempt(db, attempt, _answers(attempt, right=False), at)
    quiz_service.start_attempt(db, one, at, rng=random.Random(7))  # open: counts for nothing yet
    read = len(one.policy_version.lessons)
    db.get(Lesson, one.policy_version.lessons[0].id).retired = True  # read, no longer counted
    other = db.scalars(select(Assignment).where(Assignment.id != one.id)).one()
    grant_exemption(db, cycle=one.cycle, member=other.member, reason="Light duty", granted_by_id=None, now=at)
    db.commit()
    expected = stored_state(db)
    assert expected[one.id][3:6] == (read - 1, 1, attempt.score)
    assert expected[other.id][3:6] == (0, 0, None)
    db.execute(update(Assignment).values(progress="quiz_passed", signed_on=date(2000, 1, 1),
                                         exemption_reason="stale", lessons_completed=9, quiz_attempts=9,
                                         quiz_best_score=1))
    postgres = db.get_bind().dialect.name == "postgresql"
    db.execute(text(_migration("0009_assignment_progress").BACKFILL.format(
        signed_on="CAST(substr(ack.signed_at_local, 1, 10) AS DATE)" if postgres
        else "substr(ack.signed_at_local, 1, 10)")))
    db.execute(text(_migration("0010_assignment_counts").BACKFILL))
    assert stored_state(db) == expected
    db.rollback()


def test_choices_and_empty_values_sort_alike_on_both_databases(db, one):
    assert member_values(db, Member.unit) == sorted(
        {u for u in db.scalars(select(Member.unit)) if u})
    assert member_values(db, Member.shift) == ["Day"]
    for descending in (False, True):
        rows = list(roster_rows(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=BEFORE_DUE, tz=TZ, sort="unit",
                                descending=descending, limit=10))
        assert rows[-1].unit is None  # no unit: last either way
    units = unit_summary(db, RosterFilters(cycle_id=cycle_id_of(db, 2031)), today=BEFORE_DUE, tz=TZ)
    assert units[-1][0] == "(no unit)"


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set LMS_TEST_DATABASE_URL (SQLite has one "
                    "writer at a time, so two transactions cannot change one assignment at once)")
def test_two_transactions_marking_lessons_read_at_once_both_count(app, db, one):
    """Two lessons marked read in two transactions at the same time: the one that commits last
    must count both, not only its own (the UPDATE that waited must not use its old snapshot)."""
    lessons = one.policy_version.lessons
    first, second = get_database(app).sessionmaker(), get_database(app).sessionmaker()
    try:
        mark_lesson_read(first, first.get(Assignment, one.id), first.get(Lesson, lessons[0].id), START)
        errors = []

        def mark_second():
            try:
                mark_lesson_read(second, second.get(Assignment, one.id), second.get(Lesson, lessons[1].id), START)
                second.commit()
            except Exception as exc:  # reported below, in the test's thread
                errors.append(exc)

        waiter = threading.Thread(target=mark_second)
        waiter.start()
        # The second transaction must be waiting for the first's lock before the first commits.
        for _ in range(200):
            waiting = db.scalar(text("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE wait_event_type = 'Lock' AND datname = current_database()"))
            db.rollback()
            if waiting:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second transaction never waited for the first")
        first.commit()
        waiter.join(timeout=30)
        assert not errors, errors
    finally:
        first.close()
        second.close()
    db.expire_all()
    assert db.get(Assignment, one.id).lessons_completed == 2
    assert_stored_matches_computed(db)
