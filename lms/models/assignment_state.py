"""Each assignment's stored progress (``Assignment.progress``, ``signed_on``, ``exemption_reason``)
and counts (``lessons_completed``, ``quiz_attempts``, ``quiz_best_score``, ``extra_attempts``), recomputed from the
lessons read, quiz attempts, attempt grants, signatures, voids and exemptions whenever a flush changes one of them,
in the same transaction.

The roster of "now" reads these columns instead of aggregating those tables for every
member on every view (docs/performance.md, "The roster at 50,000 members"). They are kept here,
by a flush listener, rather than by calls in each service: every write that goes through the ORM
(the services, the demo seed, a test's fixture, a service added next year) keeps them right
without having to remember to, and the rule that turns the source rows into the columns lives in
one function, ``refresh_assignment_state``. Writes that bypass the ORM (bulk loads such as
``bench.seed``, migrations) call that function themselves. ``tests/services/test_assignment_state.py``
holds the stored columns to the fully computed roster through every transition.
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from sqlalchemy import Date, and_, case, cast, event, exists, func, inspect, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from lms.models.policies import Lesson
from lms.models.records import Acknowledgment, AcknowledgmentVoid
from lms.models.status import progress_case
from lms.models.training import Assignment, AttemptGrant, Exemption, LessonProgress, QuizAttempt

#: The stored columns, expired on loaded assignments after a refresh so they are read again.
STATE_COLUMNS = ("progress", "signed_on", "exemption_reason", "lessons_completed", "quiz_attempts",
                 "quiz_best_score", "extra_attempts")
#: Ids per UPDATE: SQLite caps the bound parameters of one statement.
_CHUNK = 500
_PENDING = "lms.assignment_state.pending"


def state_values(dialect: str) -> dict:
    """The stored columns as correlated subqueries on the assignment row being updated.

    The same rules as the fully computed roster (``lms.services.roster.roster_select`` with no
    ``as_of``): progress (lms.models.status) from every attempt and the lessons still in the pack; the local date of
    the signature not voided; the largest reason among the member's exemptions in the cycle not
    lifted; lessons read still in the pack, attempts submitted and their best score.
    """
    a = Assignment.__table__
    # Correlated explicitly: it sits two levels down, inside the subquery over attempts.
    read = exists().where(LessonProgress.assignment_id == a.c.id, Lesson.id == LessonProgress.lesson_id,
                          Lesson.retired.is_(False)).correlate(a)
    submitted = QuizAttempt.submitted_at.is_not(None)
    progress = select(progress_case(
        passed=func.count(case((and_(submitted, QuizAttempt.passed.is_(True)), 1))) > 0,
        submitted=func.count(case((submitted, 1))) > 0,
        started=or_(func.count(QuizAttempt.id) > 0, read),
    )).where(QuizAttempt.assignment_id == a.c.id).scalar_subquery()
    # The roster compares the first ten characters of the recorded local time (ISO 8601) with the
    # due date; stored as a date so both databases compare dates.
    signed_on: ColumnElement[Any] = func.substr(Acknowledgment.signed_at_local, 1, 10)
    if dialect == "postgresql":
        signed_on = cast(signed_on, Date)
    # Signing refuses a second live signature (under the chain lock), so max() picks the only one.
    signed = (select(func.max(signed_on))
              .where(Acknowledgment.cycle_id == a.c.cycle_id, Acknowledgment.assignment_id == a.c.id,
                     Acknowledgment.id.not_in(select(AcknowledgmentVoid.acknowledgment_id)))
              .scalar_subquery())
    reason = (select(func.max(Exemption.reason))
              .where(Exemption.cycle_id == a.c.cycle_id, Exemption.member_id == a.c.member_id,
                     Exemption.lifted_at.is_(None))
              .scalar_subquery())
    # The counts the roster shows, as the computed roster counts them: lessons read still in the
    # pack, attempts submitted, and the best of their scores.
    lessons_completed = (select(func.count(LessonProgress.id))
                         .join(Lesson, Lesson.id == LessonProgress.lesson_id)
                         .where(LessonProgress.assignment_id == a.c.id, Lesson.retired.is_(False))
                         .scalar_subquery())
    of_this = and_(QuizAttempt.assignment_id == a.c.id, submitted)
    return {"progress": progress, "signed_on": signed, "exemption_reason": reason,
            "lessons_completed": lessons_completed,
            "quiz_attempts": select(func.count(QuizAttempt.id)).where(of_this).scalar_subquery(),
            "quiz_best_score": select(func.max(QuizAttempt.score)).where(of_this).scalar_subquery(),
            "extra_attempts": extra_attempts(a.c.id)}


def extra_attempts(assignment_id):
    """The attempts granted to an assignment (``assignment_id`` a column or value), 0 if none."""
    return (select(func.coalesce(func.sum(AttemptGrant.attempts), 0))
            .where(AttemptGrant.assignment_id == assignment_id).scalar_subquery())


def refresh_assignment_state(bind: Session | Connection, assignment_ids: Iterable[int] | None = None,
                             *, cycle_id: int | None = None) -> None:
    """Recompute the stored progress of the given assignments (all of a cycle's with ``cycle_id``,
    every assignment when neither is given) from the source tables. Flushes nothing, commits
    nothing; loaded Assignment objects are expired so they read the new values."""
    a = Assignment.__table__
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    statement = update(a).values(**state_values(dialect))  # type: ignore[arg-type]  # __table__ is a Table
    if assignment_ids is None:
        bind.execute(statement.where(a.c.cycle_id == cycle_id) if cycle_id is not None else statement)
    else:
        ids = iter(sorted(set(assignment_ids)))
        while chunk := list(islice(ids, _CHUNK)):
            # Lock the rows first, in a statement of its own. Two transactions changing one
            # assignment's rows at once (two lessons marked read from two tabs) would otherwise
            # race on PostgreSQL: the later UPDATE waits for the earlier one's row lock, then
            # recomputes from its own statement's snapshot, without the rows the other has just
            # committed. After the lock, the UPDATE is a new statement and sees them. (SQLite has
            # one writer at a time; the lock clause is left out there.) FOR NO KEY UPDATE, so rows that
            # merely point at the assignment can still be inserted meanwhile; ordered by id: no deadlocks.
            bind.execute(select(a.c.id).where(a.c.id.in_(chunk)).order_by(a.c.id).with_for_update(key_share=True))
            bind.execute(statement.where(a.c.id.in_(chunk)))
    if isinstance(bind, Session):
        wanted = None if assignment_ids is None else set(assignment_ids)
        for obj in list(bind.identity_map.values()):
            if isinstance(obj, Assignment) and (
                    wanted is None and (cycle_id is None or obj.cycle_id == cycle_id)
                    or wanted is not None and obj.id in wanted):
                bind.expire(obj, STATE_COLUMNS)


def _values(obj, name: str) -> set:
    """An attribute's value now and before this flush (a row moved to another parent counts for
    both)."""
    history = inspect(obj).attrs[name].history
    values = {*history.added, *history.unchanged, *history.deleted, obj.__dict__.get(name)}
    return values - {None}


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _flush_context) -> None:
    """Note what this flush changed that the stored progress depends on. Runs while the flush's
    new, dirty and deleted objects and their attribute histories are still visible; the SQL waits
    for ``_refresh`` because a flush in progress is no place to run it."""
    assignments: set[int] = set()
    acknowledgments: set[int] = set()
    exemptions: set[tuple[int, int]] = set()
    lessons: set[int] = set()
    created: set[tuple[int, int, int]] = set()
    new = session.new  # a fresh set on every access
    for obj in (*new, *session.dirty, *session.deleted):
        if isinstance(obj, (LessonProgress, QuizAttempt, Acknowledgment, AttemptGrant)):
            assignments |= _values(obj, "assignment_id")
        elif isinstance(obj, AcknowledgmentVoid):
            acknowledgments |= _values(obj, "acknowledgment_id")
        elif isinstance(obj, Exemption):
            for cycle_id in _values(obj, "cycle_id"):
                exemptions |= {(cycle_id, member_id) for member_id in _values(obj, "member_id")}
        elif isinstance(obj, Assignment):
            # A new assignment starts as the column defaults say (nothing done; its lessons and
            # attempts, if any came in the same flush, are collected above) unless its member is
            # already exempt. One moved to another member or cycle is recomputed. Due dates and
            # supersession are read by the roster as they stand.
            if obj in new:
                created.add((obj.id, obj.cycle_id, obj.member_id))
            elif any(inspect(obj).attrs[n].history.has_changes() for n in ("member_id", "cycle_id")):
                assignments.add(obj.id)
        elif isinstance(obj, Lesson) and inspect(obj).attrs.retired.history.has_changes():
            # A retired lesson no longer counts as read: fewer lessons read, perhaps not started.
            lessons.add(obj.id)
    if assignments or acknowledgments or exemptions or lessons or created:
        pending = session.info.setdefault(_PENDING, [set(), set(), set(), set(), set()])
        for held, found in zip(pending, (assignments, acknowledgments, exemptions, lessons, created)):
            held |= found


@event.listens_for(Session, "after_flush_postexec")
def _refresh(session: Session, _flush_context) -> None:
    """Bring the stored progress of what the flush touched up to date, in the same transaction."""
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    assignments, acknowledgments, exemptions, lessons, created = pending
    ids = set(assignments)
    if created:
        # One query for the exemptions in force in the cycles concerned, rather than one UPDATE
        # per new assignment: opening a cycle for 50,000 members creates 50,000 of them.
        exempt = {(cycle_id, member_id) for cycle_id, member_id in session.execute(
            select(Exemption.cycle_id, Exemption.member_id)
            .where(Exemption.cycle_id.in_({cycle_id for _, cycle_id, _ in created}),
                   Exemption.lifted_at.is_(None)))}
        ids |= {assignment_id for assignment_id, cycle_id, member_id in created
                if (cycle_id, member_id) in exempt}
    if acknowledgments:
        ids |= set(session.scalars(select(Acknowledgment.assignment_id)
                                   .where(Acknowledgment.id.in_(acknowledgments))))
    for cycle_id, member_id in exemptions:
        ids |= set(session.scalars(select(Assignment.id).where(Assignment.cycle_id == cycle_id,
                                                               Assignment.member_id == member_id)))
    if lessons:
        ids |= set(session.scalars(select(LessonProgress.assignment_id).distinct()
                                   .where(LessonProgress.lesson_id.in_(lessons))))
    if ids:
        refresh_assignment_state(session, ids)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, _previous_transaction) -> None:
    """A flush that failed leaves nothing to refresh."""
    session.info.pop(_PENDING, None)
