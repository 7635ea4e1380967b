"""The compliance roster: one row per member of a cycle's audience and policy, with the status
product.md defines, computed in SQL so 50,000 members take one query, not 50,000."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, cast, false, func, or_, select, text, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Select

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


def _grouped_counts(before, cycle_id):
    """(lessons read, attempts submitted, best score) subqueries grouped over the whole cycle,
    for a caller that reads every row: hashed once, cheaper than three lookups per row."""
    in_cycle = aliased(Assignment)
    lessons = (select(LessonProgress.assignment_id, func.count(LessonProgress.id).label("n"))
               .join(Lesson, Lesson.id == LessonProgress.lesson_id)
               .join(in_cycle, in_cycle.id == LessonProgress.assignment_id)
               .where(in_cycle.cycle_id == cycle_id, Lesson.retired.is_(False),
                      before(LessonProgress.completed_at))
               .group_by(LessonProgress.assignment_id).subquery())
    in_cycle = aliased(Assignment)
    submitted = and_(QuizAttempt.submitted_at.is_not(None), before(QuizAttempt.submitted_at))
    attempts = (select(QuizAttempt.assignment_id, func.count(case((submitted, 1))).label("submitted"),
                       func.max(case((submitted, QuizAttempt.score))).label("best"))
                .join(in_cycle, in_cycle.id == QuizAttempt.assignment_id)
                .where(in_cycle.cycle_id == cycle_id, before(QuizAttempt.started_at))
                .group_by(QuizAttempt.assignment_id).subquery())
    return lessons, attempts


def roster_select(filters: RosterFilters, *, today: date, tz: str, whole: bool = False) -> Select:
    """The roster as a SELECT with one labelled column per contract column, plus ``member_id``,
    ``assignment_id``, ``policy`` and ``signed_on``; filters applied, unsorted.

    Shaped for 50,000 members (docs/performance.md). Only the filtered cycle's rows are read, and
    each assignment's live signature comes from an index. Everything else about a row (its
    lessons and quiz attempts, its supervisor's badge) is a correlated subquery, which SQLite
    and PostgreSQL alike run only where a row needs it: a status for the rows CASE reaches (not
    exempt, signed or overdue: a few thousand of 50,000), a count only for the rows returned, after
    any LIMIT, and neither when a caller only counts statuses. Aggregating the lesson, attempt and
    signature tables up front, as this did before, cost every query all cycles' history.
    ``whole`` says the caller reads every row (an export): the counts and supervisors are then
    joined, grouped over the cycle once, rather than looked up row by row. Same rows either way.
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
    supervisor = aliased(Member)

    # The row's assignment's lessons read and quiz attempts (correlated on Assignment.id).
    read = (select(LessonProgress.id).join(Lesson, Lesson.id == LessonProgress.lesson_id)
            .where(LessonProgress.assignment_id == Assignment.id, Lesson.retired.is_(False),
                   before(LessonProgress.completed_at))
            .correlate(Assignment))  # explicit: it is also used two levels down
    started = and_(QuizAttempt.assignment_id == Assignment.id, before(QuizAttempt.started_at))
    submitted = and_(QuizAttempt.submitted_at.is_not(None), before(QuizAttempt.submitted_at))
    if whole:
        lessons, attempts = _grouped_counts(before, cycle_id)
        lessons_completed = func.coalesce(lessons.c.n, 0)
        quiz_attempts, quiz_best = func.coalesce(attempts.c.submitted, 0), attempts.c.best
        supervisor_badge = supervisor.badge
    else:
        lessons_completed = read.with_only_columns(func.count(LessonProgress.id)).scalar_subquery()
        quiz_attempts = select(func.count(QuizAttempt.id)).where(started, submitted).scalar_subquery()
        quiz_best = select(func.max(QuizAttempt.score)).where(started, submitted).scalar_subquery()
        supervisor_badge = (select(supervisor.badge).where(supervisor.id == Member.supervisor_id)
                            .scalar_subquery())
    # The status of a row neither exempt nor signed nor overdue: one subquery over its attempts.
    # (Separate EXISTS tests would make PostgreSQL hash every attempt of every cycle, per test.)
    progress_status = (select(case(
        (func.count(case((and_(submitted, QuizAttempt.passed.is_(True)), 1))) > 0, "quiz_passed"),
        (func.count(case((submitted, 1))) > 0, "quiz_failed"),
        (or_(func.count(QuizAttempt.id) > 0, read.exists()), "in_progress"),
        else_="not_started")).where(started).scalar_subquery())

    # ISO date strings compare correctly on both databases; the local date of signing is the
    # first ten characters of the recorded local time.
    signed_on = func.substr(ack.signed_at_local, 1, 10)
    due = cast(Assignment.due_date, String)
    status = case(
        (exemptions.c.reason.is_not(None), "exempt"),
        (and_(ack.id.is_not(None), signed_on <= due), "complete"),
        (ack.id.is_not(None), "complete_late"),
        (Assignment.due_date < today, "overdue"),
        else_=progress_status,
    )
    query = (
        select(
            Member.badge.label("badge"), Member.last_name.label("last_name"),
            Member.first_name.label("first_name"), Member.rank.label("rank"),
            Member.unit.label("unit"), Member.shift.label("shift"),
            supervisor_badge.label("supervisor_badge"), status.label("status"),
            lessons_completed.label("lessons_completed"),
            func.coalesce(live_lessons.c.n, 0).label("lessons_total"),
            quiz_best.label("quiz_best_score"), quiz_attempts.label("quiz_attempts"),
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
    if whole:
        query = (query.outerjoin(lessons, lessons.c.assignment_id == Assignment.id)
                 .outerjoin(attempts, attempts.c.assignment_id == Assignment.id)
                 .outerjoin(supervisor, supervisor.id == Member.supervisor_id))
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


def _execute(session: Session, query: Select):
    """Run a roster query. On PostgreSQL, without JIT compilation for the rest of this transaction:
    the planner prices each row's subqueries as if every row ran them, past jit_above_cost, and
    compiling took 0.5-1.5 s, several times as long as running the query (docs/performance.md)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
    return session.execute(query)


def roster_rows(session: Session, filters: RosterFilters, *, today: date, tz: str,
                sort: str = "last_name", descending: bool = False, limit: int | None = None,
                offset: int = 0):
    """Roster rows (named tuples with the contract columns), sorted and optionally paged."""
    if sort not in SORTS:
        raise RosterError(f"cannot sort by {sort!r}; use one of {', '.join(SORTS)}")
    inner = roster_select(filters, today=today, tz=tz, whole=limit is None).subquery()
    key = inner.c[sort]
    order = [key.desc() if descending else key.asc(), inner.c.last_name, inner.c.first_name,
             inner.c.badge, inner.c.policy]
    query = select(*inner.c).order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return _execute(session, query)


def status_counts(session: Session, filters: RosterFilters, *, today: date, tz: str) -> dict[str, int]:
    """Rows per status, every status present (zeros included)."""
    inner = roster_select(filters, today=today, tz=tz).subquery()
    counts = {status: 0 for status in STATUSES}
    for status, n in _execute(session, select(inner.c.status, func.count()).group_by(inner.c.status)):
        counts[status] = n
    return counts


def unit_summary(session: Session, filters: RosterFilters, *, today: date, tz: str) -> list[tuple[str, int, int]]:
    """(unit, rows, complete rows) per unit, complete counting late and exempt as done."""
    inner = roster_select(filters, today=today, tz=tz).subquery()
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
    inner = roster_select(filters, today=today, tz=tz).subquery()
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
