"""The compliance roster: one row per member of a cycle's audience and policy, with the status
product.md defines, computed in SQL so 50,000 members take one query, not 50,000."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, exists, false, func, or_, select, text, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement, Select

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    Cycle,
    Exemption,
    Lesson,
    LessonProgress,
    Member,
    PolicyVersion,
    QuizAttempt,
)
from lms.services.progress import STATUSES

#: The roster CSV columns, in the contract's order.
ROSTER_COLUMNS = ["badge", "last_name", "first_name", "rank", "unit", "shift", "supervisor_badge",
                  "status", "lessons_completed", "lessons_total", "quiz_best_score", "quiz_attempts",
                  "acknowledged_at", "policy_version", "due_date", "exemption_reason"]
#: Statuses that count as done in the completion-by-unit figures.
DONE_STATUSES = ("complete", "complete_late", "exempt")
SORTS = ("last_name", "first_name", "badge", "rank", "unit", "shift", "supervisor_badge", "status",
         "due_date", "acknowledged_at", "quiz_best_score")


class RosterError(ValueError):
    """Filters that name something that does not exist."""


@dataclass
class RosterFilters:
    """What the coordinator narrowed the roster to; empty lists mean no narrowing."""

    year: int
    policy_id: str | None = None
    units: list[str] = field(default_factory=list)
    shifts: list[str] = field(default_factory=list)
    ranks: list[str] = field(default_factory=list)
    supervisor_badges: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    search: str | None = None
    #: The roster as it stood at the end of this local date; None for now.
    as_of: date | None = None


def end_of_day_utc(day: date, tz: str) -> datetime:
    """The first instant after ``day`` ends in the department's time zone, in UTC."""
    return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(tz)).astimezone(timezone.utc)


@dataclass
class _Progress:
    """An assignment's lessons and quiz attempts as expressions of the roster query."""

    lessons_completed: ColumnElement
    quiz_attempts: ColumnElement
    quiz_best_score: ColumnElement
    #: Status tests, asked only of rows neither exempt nor signed.
    passed: ColumnElement
    failed: ColumnElement
    begun: ColumnElement
    #: (selectable, ON clause) pairs to LEFT JOIN.
    joins: list = field(default_factory=list)


def _lessons_read(before) -> Select:
    """The row's assignment's lessons read (correlated on Assignment.id)."""
    return (select(LessonProgress.id).join(Lesson, Lesson.id == LessonProgress.lesson_id)
            .where(LessonProgress.assignment_id == Assignment.id, Lesson.retired.is_(False),
                   before(LessonProgress.completed_at))
            .correlate(Assignment))  # explicit: it is also used two levels down, in a LATERAL


def _attempt_tests(before):
    """(started, submitted): an attempt of the row's assignment, and one submitted."""
    started = and_(QuizAttempt.assignment_id == Assignment.id, before(QuizAttempt.started_at))
    return started, and_(QuizAttempt.submitted_at.is_not(None), before(QuizAttempt.submitted_at))


def _correlated_progress(before) -> _Progress:
    """Correlated subqueries everywhere. SQLite runs one only when a row needs its value: the
    status tests only for rows CASE reaches (no signature), the counts only for rows returned."""
    read = _lessons_read(before)
    started, submitted = _attempt_tests(before)
    return _Progress(
        lessons_completed=read.with_only_columns(func.count(LessonProgress.id)).scalar_subquery(),
        quiz_attempts=select(func.count(QuizAttempt.id)).where(started, submitted).scalar_subquery(),
        quiz_best_score=select(func.max(QuizAttempt.score)).where(started, submitted).scalar_subquery(),
        passed=exists().where(started, submitted, QuizAttempt.passed.is_(True)),
        failed=exists().where(started, submitted),
        begun=or_(read.exists(), exists().where(started)))


def _lateral_progress(before, undecided) -> _Progress:
    """PostgreSQL: the counts as correlated subqueries (run for the rows returned only, after a
    LIMIT), the status tests in a LATERAL subquery gated on the row being undecided, so a signed
    row's attempts are never read. (PostgreSQL would answer each EXISTS of the portable shape by
    hashing every attempt of every cycle.)"""
    portable = _correlated_progress(before)
    read = _lessons_read(before)
    started, submitted = _attempt_tests(before)
    tests = (select((func.count(case((and_(submitted, QuizAttempt.passed.is_(True)), 1))) > 0).label("passed"),
                    (func.count(case((submitted, 1))) > 0).label("failed"),
                    or_(func.count(QuizAttempt.id) > 0, and_(undecided, read.exists())).label("begun"))
             .where(started, undecided).lateral("progress"))
    return _Progress(portable.lessons_completed, portable.quiz_attempts, portable.quiz_best_score,
                     tests.c.passed, tests.c.failed, tests.c.begun, joins=[(tests, true())])


def _grouped_progress(before, cycle_id) -> _Progress:
    """PostgreSQL, every row wanted: counts grouped over the cycle's lessons read and attempts and
    hash-joined, cheaper than a lookup per row once every row needs them."""
    in_cycle = aliased(Assignment)
    lessons_done = (select(LessonProgress.assignment_id, func.count(LessonProgress.id).label("n"))
                    .join(Lesson, Lesson.id == LessonProgress.lesson_id)
                    .join(in_cycle, in_cycle.id == LessonProgress.assignment_id)
                    .where(in_cycle.cycle_id == cycle_id, Lesson.retired.is_(False),
                           before(LessonProgress.completed_at))
                    .group_by(LessonProgress.assignment_id).subquery())
    in_cycle = aliased(Assignment)
    submitted = and_(QuizAttempt.submitted_at.is_not(None), before(QuizAttempt.submitted_at))
    attempts = (select(QuizAttempt.assignment_id,
                       func.count(case((submitted, 1))).label("submitted"),
                       func.count(QuizAttempt.id).label("started"),
                       func.max(case((submitted, QuizAttempt.score))).label("best"),
                       func.count(case((and_(submitted, QuizAttempt.passed.is_(True)), 1))).label("passed"))
                .join(in_cycle, in_cycle.id == QuizAttempt.assignment_id)
                .where(in_cycle.cycle_id == cycle_id, before(QuizAttempt.started_at))
                .group_by(QuizAttempt.assignment_id).subquery())
    lessons_completed = func.coalesce(lessons_done.c.n, 0)
    return _Progress(
        lessons_completed=lessons_completed, quiz_attempts=func.coalesce(attempts.c.submitted, 0),
        quiz_best_score=attempts.c.best, passed=func.coalesce(attempts.c.passed, 0) > 0,
        failed=func.coalesce(attempts.c.submitted, 0) > 0,
        begun=or_(lessons_completed > 0, func.coalesce(attempts.c.started, 0) > 0),
        joins=[(lessons_done, lessons_done.c.assignment_id == Assignment.id),
               (attempts, attempts.c.assignment_id == Assignment.id)])


def roster_select(filters: RosterFilters, *, today: date, tz: str, dialect: str | None = None,
                  whole: bool = False) -> Select:
    """The roster as a SELECT with one labelled column per contract column, plus ``member_id``,
    ``assignment_id``, ``policy`` and ``signed_on``; filters applied, unsorted.

    Shaped for 50,000 members (docs/performance.md): only the filtered cycle's rows are read, each
    assignment's live signature comes from an index, and lessons and quiz attempts are looked up
    only where a row needs them: a signed row's status needs neither, and most rows are signed.
    ``dialect`` is the database's dialect name and picks how to ask; the rows are the same either
    way. None, or "sqlite", gives correlated subqueries, which work everywhere and which SQLite
    runs only for the rows and columns a caller uses. "postgresql" gives a LATERAL join, or with
    ``whole`` (the caller reads every row, as an export does) counts grouped over the cycle.
    """
    if filters.statuses and not set(filters.statuses) <= set(STATUSES):
        unknown = sorted(set(filters.statuses) - set(STATUSES))
        raise RosterError(f"unknown status {', '.join(unknown)}; use one of {', '.join(STATUSES)}")
    cutoff = end_of_day_utc(filters.as_of, tz) if filters.as_of else None
    today = filters.as_of or today

    def before(column):
        return column < cutoff if cutoff is not None else true()

    # Looked up once (an InitPlan on PostgreSQL), so every part can use the cycle_id indexes.
    cycle_id = select(Cycle.id).where(Cycle.year == filters.year).scalar_subquery()
    live_lessons = (select(Lesson.version_id, func.count(Lesson.id).label("n"))
                    .where(Lesson.retired.is_(False)).group_by(Lesson.version_id).subquery())
    voided = select(AcknowledgmentVoid.acknowledgment_id).where(before(AcknowledgmentVoid.voided_at))
    # The live signature, joined rather than aggregated: signing refuses a second one while one
    # stands (under the chain lock), so at most one row matches and the join adds no rows.
    ack = aliased(Acknowledgment, name="ack")
    exemptions = (select(Exemption.member_id, func.max(Exemption.reason).label("reason"))
                  .where(Exemption.cycle_id == cycle_id, before(Exemption.granted_at),
                         or_(Exemption.lifted_at.is_(None),
                             Exemption.lifted_at >= cutoff if cutoff is not None else false()))
                  .group_by(Exemption.member_id).subquery())
    undecided = and_(exemptions.c.reason.is_(None), ack.id.is_(None))  # status depends on progress
    if dialect == "postgresql":
        progress = _grouped_progress(before, cycle_id) if whole else _lateral_progress(before, undecided)
    else:
        progress = _correlated_progress(before)
    supervisor = aliased(Member)
    if dialect == "postgresql":
        supervisor_badge = supervisor.badge  # the planner drops this join where it goes unused
    else:
        # A subquery SQLite runs only for the rows it returns; a LEFT JOIN it would walk for
        # every row, even when only statuses are counted.
        supervisor_badge = (select(supervisor.badge).where(supervisor.id == Member.supervisor_id)
                            .scalar_subquery())
    # ISO date strings compare correctly on both databases; the local date of signing is the
    # first ten characters of the recorded local time.
    signed_on = func.substr(ack.signed_at_local, 1, 10)
    due = cast(Assignment.due_date, String)
    status = case(
        (exemptions.c.reason.is_not(None), "exempt"),
        (and_(ack.id.is_not(None), signed_on <= due), "complete"),
        (ack.id.is_not(None), "complete_late"),
        (Assignment.due_date < today, "overdue"),
        (progress.passed, "quiz_passed"),
        (progress.failed, "quiz_failed"),
        (progress.begun, "in_progress"),
        else_="not_started",
    )
    query = (
        select(
            Member.badge.label("badge"), Member.last_name.label("last_name"),
            Member.first_name.label("first_name"), Member.rank.label("rank"),
            Member.unit.label("unit"), Member.shift.label("shift"),
            supervisor_badge.label("supervisor_badge"), status.label("status"),
            progress.lessons_completed.label("lessons_completed"),
            func.coalesce(live_lessons.c.n, 0).label("lessons_total"),
            progress.quiz_best_score.label("quiz_best_score"), progress.quiz_attempts.label("quiz_attempts"),
            ack.signed_at_local.label("acknowledged_at"), ack.policy_effective.label("policy_version"),
            Assignment.due_date.label("due_date"), exemptions.c.reason.label("exemption_reason"),
            Member.id.label("member_id"), Assignment.id.label("assignment_id"),
            PolicyVersion.policy_id.label("policy"), signed_on.label("signed_on"),
        )
        .select_from(Assignment)
        .join(Member, Member.id == Assignment.member_id)
        .join(PolicyVersion, PolicyVersion.id == Assignment.policy_version_id)
        .outerjoin(live_lessons, live_lessons.c.version_id == Assignment.policy_version_id)
        .outerjoin(ack, and_(ack.assignment_id == Assignment.id, ack.cycle_id == cycle_id,
                             ack.id.not_in(voided), before(ack.signed_at)))
        .outerjoin(exemptions, exemptions.c.member_id == Assignment.member_id)
        .where(Assignment.cycle_id == cycle_id)
        # The audience: active members, and anyone who signed (their record counts even if they
        # have since left or gone on leave).
        .where(or_(Member.status == "active", ack.id.is_not(None)))
    )
    for joined, on in progress.joins:
        query = query.outerjoin(joined, on)
    if dialect == "postgresql":
        query = query.outerjoin(supervisor, supervisor.id == Member.supervisor_id)
    if cutoff is None:
        query = query.where(Assignment.superseded_at.is_(None))
    else:
        query = query.where(Assignment.assigned_at < cutoff,
                            or_(Assignment.superseded_at.is_(None), Assignment.superseded_at >= cutoff))
    if filters.policy_id:
        query = query.where(PolicyVersion.policy_id == filters.policy_id)
    if filters.units:
        query = query.where(Member.unit.in_(filters.units))
    if filters.shifts:
        query = query.where(Member.shift.in_(filters.shifts))
    if filters.ranks:
        query = query.where(Member.rank.in_(filters.ranks))
    if filters.supervisor_badges:
        query = query.where(Member.supervisor_id.in_(
            select(supervisor.id).where(supervisor.badge.in_(filters.supervisor_badges))))
    if filters.search and filters.search.strip():
        term = filters.search.strip().lower()
        query = query.where(or_(
            Member.badge == filters.search.strip(),
            func.lower(Member.last_name).startswith(term, autoescape=True),
            func.lower(Member.first_name).startswith(term, autoescape=True),
            func.lower(Member.first_name + " " + Member.last_name).startswith(term, autoescape=True)))
    if filters.statuses:
        inner = query.subquery()
        query = select(*inner.c).where(inner.c.status.in_(filters.statuses))
    return query


def check_cycle(session: Session, filters: RosterFilters) -> Cycle:
    """The filtered cycle, or RosterError naming what is missing."""
    cycle = session.scalar(select(Cycle).where(Cycle.year == filters.year))
    if cycle is None:
        years = ", ".join(str(y) for y in session.scalars(select(Cycle.year).order_by(Cycle.year)))
        raise RosterError(f"no cycle for {filters.year} (cycles: {years or 'none'})")
    if filters.policy_id and filters.policy_id not in {v.policy_id for v in cycle.policy_versions}:
        raise RosterError(f"the {filters.year} cycle does not assign policy {filters.policy_id}")
    return cycle


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _execute(session: Session, query: Select):
    """Run a roster query. On PostgreSQL, without JIT compilation for the rest of this transaction:
    its per-row index lookups add up to a plan cost past jit_above_cost, and compiling took
    longer (0.5-1.5 s) than running the query (docs/performance.md)."""
    if _dialect(session) == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
    return session.execute(query)


def roster_rows(session: Session, filters: RosterFilters, *, today: date, tz: str,
                sort: str = "last_name", descending: bool = False, limit: int | None = None,
                offset: int = 0):
    """Roster rows (named tuples with the contract columns), sorted and optionally paged."""
    if sort not in SORTS:
        raise RosterError(f"cannot sort by {sort!r}; use one of {', '.join(SORTS)}")
    inner = roster_select(filters, today=today, tz=tz, dialect=_dialect(session),
                          whole=limit is None).subquery()
    key = inner.c[sort]
    order = [key.desc() if descending else key.asc(), inner.c.last_name, inner.c.first_name,
             inner.c.badge, inner.c.policy]
    query = select(*inner.c).order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return _execute(session, query)


def status_counts(session: Session, filters: RosterFilters, *, today: date, tz: str) -> dict[str, int]:
    """Rows per status, every status present (zeros included)."""
    inner = roster_select(filters, today=today, tz=tz, dialect=_dialect(session)).subquery()
    counts = {status: 0 for status in STATUSES}
    for status, n in _execute(session, select(inner.c.status, func.count()).group_by(inner.c.status)):
        counts[status] = n
    return counts


def unit_summary(session: Session, filters: RosterFilters, *, today: date, tz: str) -> list[tuple[str, int, int]]:
    """(unit, rows, complete rows) per unit, complete counting late and exempt as done."""
    inner = roster_select(filters, today=today, tz=tz, dialect=_dialect(session)).subquery()
    done = func.count(case((inner.c.status.in_(DONE_STATUSES), 1)))
    rows = _execute(session, select(func.coalesce(inner.c.unit, "(no unit)"), func.count(), done)
                    .group_by(inner.c.unit).order_by(inner.c.unit))
    return [(unit, total, complete) for unit, total, complete in rows]


@dataclass
class RosterSummary:
    """The head of the roster: rows per status and completion per unit."""

    #: As status_counts returns them.
    counts: dict[str, int]
    #: As unit_summary returns them.
    units: list[tuple[str, int, int]]


def roster_summary(session: Session, filters: RosterFilters, *, today: date, tz: str) -> RosterSummary:
    """status_counts and unit_summary from one query, so a page showing both computes the roster
    once rather than twice (at 50,000 members each pass is most of the page's time)."""
    inner = roster_select(filters, today=today, tz=tz, dialect=_dialect(session)).subquery()
    rows = _execute(session, select(inner.c.unit, inner.c.status, func.count())
                    .group_by(inner.c.unit, inner.c.status).order_by(inner.c.unit))
    counts = {status: 0 for status in STATUSES}
    units: dict[str | None, list[int]] = {}  # in the database's order of units, as unit_summary
    for unit, status, n in rows:
        counts[status] += n
        totals = units.setdefault(unit, [0, 0])
        totals[0] += n
        totals[1] += n if status in DONE_STATUSES else 0
    return RosterSummary(counts, [(unit if unit is not None else "(no unit)", total, done)
                                  for unit, (total, done) in units.items()])
