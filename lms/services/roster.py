"""The compliance roster: one row per member of a cycle's audience and policy, with the status
product.md defines, computed in SQL so 50,000 members take one query, not 50,000.

The roster of now reads each assignment's stored progress (lms.models.assignment_state) and adds
only what depends on the date; a roster as of a past date works everything out from the lessons,
attempts, signatures and exemptions as they stood then, and takes the members' status, unit, shift,
rank and supervisor from their effective-dated history (lms.services.personnel_history), so a
change recorded later leaves it as it was (docs/performance.md). The roster of now reads the
member rows and never the history."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, and_, case, cast, false, func, literal, or_, select, text, true, union
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import Join, Select

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    AttemptGrant,
    Cycle,
    Exemption,
    Lesson,
    LessonProgress,
    Member,
    PersonnelChange,
    PolicyVersion,
    QuizAttempt,
)
from lms.models.status import progress_case, status_case, stored_facts
from lms.models.status import stored_status as stored_status  # noqa: PLC0414 - the roster's own name too
from lms.services.due_dates import due_date_as_of
from lms.services.personnel_history import (
    CURRENT,
    PeopleColumns,
    as_of_columns,
    supervisor_on,
)
from lms.services.progress import STATUS_LABELS, STATUSES

#: The roster CSV columns, in the contract's order.
ROSTER_COLUMNS = ["badge", "last_name", "first_name", "rank", "unit", "shift", "supervisor_badge",
                  "status", "lessons_completed", "lessons_total", "quiz_best_score", "quiz_attempts",
                  "acknowledged_at", "policy_version", "due_date", "exemption_reason"]
#: Statuses that count as done in the completion-by-unit figures.
DONE_STATUSES = ("complete", "complete_late", "exempt")
#: A status filter that stands for every status short of done ("everyone not done").
NOT_DONE = "not_done"
NOT_DONE_STATUSES = tuple(s for s in STATUSES if s not in DONE_STATUSES)
#: What a status filter may name: each status, or NOT_DONE.
FILTER_STATUSES = STATUSES + (NOT_DONE,)
#: The status filters in words.
STATUS_FILTER_LABELS = {NOT_DONE: "Not done (anything short of complete, late or exempt)", **STATUS_LABELS}
SORTS = ("last_name", "first_name", "badge", "rank", "unit", "shift", "supervisor_badge", "status",
         "due_date", "acknowledged_at", "quiz_best_score")


class RosterError(ValueError):
    """Filters that name something that does not exist."""


@dataclass
class RosterFilters:
    """What the coordinator narrowed the roster to; empty lists mean no narrowing."""

    #: The cycle's id (a year can have several cycles, so the year no longer names one).
    cycle_id: int
    policy_id: str | None = None
    units: list[str] = field(default_factory=list)
    shifts: list[str] = field(default_factory=list)
    ranks: list[str] = field(default_factory=list)
    supervisor_badges: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    search: str | None = None
    #: The roster as it stood at the end of this local date; None for now.
    as_of: date | None = None
    #: Only the members who report to the member with this badge, directly or through their
    #: sergeants (a supervisor's roster; see reports_of); None for everyone.
    reports_to: str | None = None


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


def _check_statuses(filters: RosterFilters) -> None:
    if filters.statuses and not set(filters.statuses) <= set(FILTER_STATUSES):
        unknown = sorted(set(filters.statuses) - set(FILTER_STATUSES))
        raise RosterError(f"unknown status {', '.join(unknown)}; use one of {', '.join(FILTER_STATUSES)}")


def expand_statuses(statuses) -> list[str]:
    """The statuses a status filter stands for: NOT_DONE becomes every status short of done."""
    expanded: list[str] = []
    for status in statuses:
        for s in NOT_DONE_STATUSES if status == NOT_DONE else (status,):
            if s not in expanded:
                expanded.append(s)
    return expanded


def reports_of(badge: str, day: date | None = None) -> Select:
    """The ids of the members who report to the member with ``badge``, directly or through their
    own reports at any depth (a lieutenant's sergeants' squads): by the member rows now, or, with
    ``day``, by the supervisor each member had on that date (lms.services.personnel_history), so a
    transfer recorded later leaves an earlier roster as it was.

    One recursive query, a level of the chain of command per step, each step driven by indexes
    from the members reached (SQLite runs the step once per member reached, so a step that read
    every member would cost 50,000 × 50,000 reads for a commander). Now: the members whose row
    names the supervisor (the index on member.supervisor_id, migration 0019). On a date: the
    members whose row or any recorded change ever named them (the indexes on member.supervisor_id
    and personnel_change.supervisor_id), kept if their supervisor on that date
    (personnel_history.supervisor_on) is the one. UNION rather than UNION ALL drops a member
    reached twice, so a loop in the records (A over B over A) ends; the supervisor never counts
    among their own reports.
    """
    boss = select(Member.id).where(Member.badge == badge).scalar_subquery()
    member = aliased(Member, name="report")

    def reporting_to(supervisor_id):
        if day is None:
            return member.supervisor_id == supervisor_id
        named = aliased(PersonnelChange, name="named")
        row = aliased(Member, name="named_member")
        ever = union(select(named.member_id).where(named.field == "supervisor", named.supervisor_id == supervisor_id),
                     select(row.id).where(row.supervisor_id == supervisor_id))
        return and_(member.id.in_(ever), supervisor_on(member, day) == supervisor_id)

    reports = select(member.id.label("member_id")).where(reporting_to(boss)).cte("reports", recursive=True)
    reports = reports.union(select(member.id).select_from(reports).join(member, reporting_to(reports.c.member_id)))
    return select(reports.c.member_id).where(reports.c.member_id != boss)


def _narrow(query: Select, filters: RosterFilters, people: PeopleColumns = CURRENT) -> Select:
    """``query`` (over Assignment joined to Member) narrowed to the filters' policy, units,
    shifts, ranks, supervisors, search and chain of command; ``people`` gives the members' units,
    shifts, ranks and supervisors (now, or on the as-of date)."""
    if filters.reports_to is not None:
        query = query.where(Member.id.in_(reports_of(filters.reports_to, filters.as_of)))
    if filters.policy_id:
        query = query.where(Assignment.policy_version_id.in_(
            select(PolicyVersion.id).where(PolicyVersion.policy_id == filters.policy_id)))
    if filters.units:
        query = query.where(people.unit.in_(filters.units))
    if filters.shifts:
        query = query.where(people.shift.in_(filters.shifts))
    if filters.ranks:
        query = query.where(people.rank.in_(filters.ranks))
    if filters.supervisor_badges:
        supervisor = aliased(Member)
        query = query.where(people.supervisor_id.in_(
            select(supervisor.id).where(supervisor.badge.in_(filters.supervisor_badges))))
    if filters.search and filters.search.strip():
        term = filters.search.strip().lower()
        query = query.where(or_(
            Member.badge == filters.search.strip(),
            func.lower(Member.last_name).startswith(term, autoescape=True),
            func.lower(Member.first_name).startswith(term, autoescape=True),
            func.lower(Member.first_name + " " + Member.last_name).startswith(term, autoescape=True)))
    return query


def _current(query: Select, filters: RosterFilters, cycle_id) -> Select:
    """The cycle's current assignments whose members are in the audience: active members, and
    anyone with a signature that stands (it counts even if they have since left)."""
    query = (query.where(Assignment.cycle_id == cycle_id, Assignment.superseded_at.is_(None))
             .where(or_(Member.status == "active", Assignment.signed_on.is_not(None))))
    return _narrow(query, filters)


def _cycle_id(filters: RosterFilters):
    # A bound value (the filters carry the id), so every part can use the cycle_id indexes.
    return literal(filters.cycle_id, Integer)


def _contract_select(ack, *, supervisor_badge, status, lessons_completed, quiz_best, quiz_attempts,
                     exemption_reason, signed_on, extra_attempts, people: PeopleColumns = CURRENT,
                     people_source=None, due_date=Assignment.due_date) -> Select:
    """The roster's labelled columns over a cycle's assignments, their members and versions, from
    the given expressions for the parts the stored and the computed roster work out differently.
    ``people`` gives the members' rank, unit and shift (``people_source``, if given, is joined
    for them on ``member_id``). The caller joins ``ack`` (the signature that stands) and any
    other sources."""
    live_lessons = (select(Lesson.version_id, func.count(Lesson.id).label("n"))
                    .where(Lesson.retired.is_(False)).group_by(Lesson.version_id).subquery())
    query = (
        select(
            Member.badge.label("badge"), Member.last_name.label("last_name"),
            Member.first_name.label("first_name"), people.rank.label("rank"),
            people.unit.label("unit"), people.shift.label("shift"),
            supervisor_badge.label("supervisor_badge"), status.label("status"),
            lessons_completed.label("lessons_completed"),
            func.coalesce(live_lessons.c.n, 0).label("lessons_total"),
            quiz_best.label("quiz_best_score"), quiz_attempts.label("quiz_attempts"),
            ack.signed_at_local.label("acknowledged_at"), ack.policy_effective.label("policy_version"),
            due_date.label("due_date"), exemption_reason.label("exemption_reason"),
            Member.id.label("member_id"), Assignment.id.label("assignment_id"),
            PolicyVersion.policy_id.label("policy"), signed_on.label("signed_on"),
            # Not a contract column: the page shows it beside the attempts used.
            (PolicyVersion.max_attempts + extra_attempts).label("attempts_allowed"),
        )
        .select_from(Assignment)
        .join(Member, Member.id == Assignment.member_id)
        .join(PolicyVersion, PolicyVersion.id == Assignment.policy_version_id)
        .outerjoin(live_lessons, live_lessons.c.version_id == Assignment.policy_version_id)
    )
    if people_source is not None:
        query = query.outerjoin(people_source, people_source.c.member_id == Member.id)
    return query


def _stored_select(filters: RosterFilters, *, today: date, whole: bool, page: Select | None = None) -> Select:
    """The roster of now from each assignment's stored progress and counts: the same rows and
    columns as the computed roster, without reading any assignment's lessons, attempts or
    exemptions. A row's supervisor is looked up (correlated) or, with ``whole``, joined."""
    cycle_id = _cycle_id(filters)
    status = stored_status(today)
    ack = aliased(Acknowledgment, name="ack")
    supervisor = aliased(Member)
    supervisor_badge: Any  # a joined column, or a correlated subquery
    if whole:
        supervisor_badge = supervisor.badge
    else:
        supervisor_badge = (select(supervisor.badge).where(supervisor.id == Member.supervisor_id)
                            .scalar_subquery())
    # The counts are stored on the assignment too (migration 0010), so neither a page nor an
    # export reads the lessons read or the attempts: grouping them over the cycle was most of a
    # 50,000-row export's SQL time on PostgreSQL.
    query = (
        _contract_select(ack, supervisor_badge=supervisor_badge, status=status,
                         lessons_completed=Assignment.lessons_completed,
                         quiz_best=Assignment.quiz_best_score, quiz_attempts=Assignment.quiz_attempts,
                         exemption_reason=Assignment.exemption_reason,
                         signed_on=func.substr(ack.signed_at_local, 1, 10),
                         extra_attempts=Assignment.extra_attempts)
        # Only rows with a standing signature (signed_on) have one to join.
        .outerjoin(ack, and_(Assignment.signed_on.is_not(None), ack.assignment_id == Assignment.id,
                             ack.cycle_id == cycle_id,
                             ack.id.not_in(select(AcknowledgmentVoid.acknowledgment_id))))
    )
    if whole:
        query = query.outerjoin(supervisor, supervisor.id == Member.supervisor_id)
    if page is not None:
        # The page's rows were chosen, filters and all, by _page_ids.
        return query.where(Assignment.id.in_(page))
    query = _current(query, filters, cycle_id)
    if filters.statuses:
        query = query.where(status.in_(expand_statuses(filters.statuses)))
    return query


class _MembersFirst(Join):
    """An inner join that SQLite must run with its left side as the outer loop (SQLite's documented
    manual control of query plans: ``CROSS JOIN``); an ordinary join elsewhere.

    Without ANALYZE statistics (which Roll Call does not keep: they also change the tuned plans of
    the other roster queries), SQLite takes the cycle's assignments as the outer loop, the one
    equality it can see, and sorts every one of them by name to show 50: 35 ms at 50,000 members.
    Walking members in the name index and looking up each one's assignment stops after the page.
    """

    inherit_cache = True


@compiles(_MembersFirst, "sqlite")
def _members_first_sqlite(join, compiler, **kw):
    kw["asfrom"] = True
    return (f"{compiler.process(join.left, **kw)} CROSS JOIN {compiler.process(join.right, **kw)} "
            f"ON {compiler.process(join.onclause, **kw)}")


def _page_ids(filters: RosterFilters, *, today: date, sort: str, descending: bool, limit: int,
              offset: int) -> Select:
    """The assignment ids of one page of the roster of now, in the roster's order: decided from
    the members and the stored progress alone, so a page looks up its rows' counts and signatures
    for those rows only (SQLite computes every column of every row it sorts)."""
    cycle_id = _cycle_id(filters)
    supervisor = aliased(Member)
    ack = aliased(Acknowledgment)
    keys = {
        "last_name": Member.last_name, "first_name": Member.first_name, "badge": Member.badge,
        "rank": Member.rank, "unit": Member.unit, "shift": Member.shift, "status": stored_status(today),
        "due_date": Assignment.due_date,
        "supervisor_badge": select(supervisor.badge).where(supervisor.id == Member.supervisor_id)
        .scalar_subquery(),
        "acknowledged_at": select(func.max(ack.signed_at_local))
        .where(Assignment.signed_on.is_not(None), ack.assignment_id == Assignment.id, ack.cycle_id == cycle_id,
               ack.id.not_in(select(AcknowledgmentVoid.acknowledgment_id))).scalar_subquery(),
        "quiz_best_score": Assignment.quiz_best_score,
    }
    key = keys[sort].desc() if descending else keys[sort].asc()
    if sort in NULLABLE_SORTS:
        key = key.nulls_last()
    on = Member.id == Assignment.member_id
    joined = _MembersFirst(Member, Assignment, on) if sort == "last_name" else Join(Assignment, Member, on)
    query = (select(Assignment.id)
             .select_from(joined.join(PolicyVersion, PolicyVersion.id == Assignment.policy_version_id))
             .order_by(key, Member.last_name, Member.first_name, Member.badge, PolicyVersion.policy_id)
             .limit(limit).offset(offset))
    query = _current(query, filters, cycle_id)
    if filters.statuses:
        query = query.where(stored_status(today).in_(expand_statuses(filters.statuses)))
    return query


def roster_select(filters: RosterFilters, *, today: date, tz: str, whole: bool = False,
                  computed: bool = False) -> Select:
    """The roster as a SELECT with one labelled column per contract column, plus ``member_id``,
    ``assignment_id``, ``policy``, ``signed_on`` and ``attempts_allowed`` (the pack's attempts
    plus those granted); filters applied, unsorted.

    The roster of now (no ``as_of``) takes each row's status and counts from the assignment's
    stored progress (lms.models.assignment_state); ``whole`` then only joins the supervisors
    rather than looking them up row by row. A past date, or ``computed``, works every status and
    count out from the lessons, attempts, signatures and exemptions as they stood then, as
    follows.

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
    _check_statuses(filters)
    if filters.as_of is None and not computed:
        return _stored_select(filters, today=today, whole=whole)
    cutoff = end_of_day_utc(filters.as_of, tz) if filters.as_of else None
    today = filters.as_of or today

    def before(column):
        return column < cutoff if cutoff is not None else true()

    cycle_id = _cycle_id(filters)
    # As of a date, the members' status, unit, shift, rank and supervisor as they stood then
    # (lms.services.personnel_history); now (computed), their member rows.
    people_source, people = as_of_columns(filters.as_of) if filters.as_of else (None, CURRENT)
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
    # Joined columns, or correlated subqueries.
    lessons_completed: Any
    quiz_attempts: Any
    supervisor_badge: Any
    if whole:
        lessons, attempts = _grouped_counts(before, cycle_id)
        lessons_completed = func.coalesce(lessons.c.n, 0)
        quiz_attempts, quiz_best = func.coalesce(attempts.c.submitted, 0), attempts.c.best
        supervisor_badge = supervisor.badge
    else:
        lessons_completed = read.with_only_columns(func.count(LessonProgress.id)).scalar_subquery()
        quiz_attempts = select(func.count(QuizAttempt.id)).where(started, submitted).scalar_subquery()
        quiz_best = select(func.max(QuizAttempt.score)).where(started, submitted).scalar_subquery()
        supervisor_badge = (select(supervisor.badge).where(supervisor.id == people.supervisor_id)
                            .scalar_subquery())
    # Extra attempts granted by then.
    granted = (select(func.coalesce(func.sum(AttemptGrant.attempts), 0))
               .where(AttemptGrant.assignment_id == Assignment.id, before(AttemptGrant.granted_at))
               .scalar_subquery())
    # The status of a row neither exempt nor signed nor overdue: one subquery over its attempts.
    # (Separate EXISTS tests would make PostgreSQL hash every attempt of every cycle, per test.)
    progress_status = (select(progress_case(
        passed=func.count(case((and_(submitted, QuizAttempt.passed.is_(True)), 1))) > 0,
        submitted=func.count(case((submitted, 1))) > 0,
        started=or_(func.count(QuizAttempt.id) > 0, read.exists()),
    )).where(started).scalar_subquery())

    # ISO date strings compare correctly on both databases; the local date of signing is the
    # first ten characters of the recorded local time.
    signed_on = func.substr(ack.signed_at_local, 1, 10)
    # As of a date, the due date that stood then (a return from leave may have moved it since).
    due_date = due_date_as_of(filters.as_of) if filters.as_of is not None else Assignment.due_date
    due = cast(due_date, String)
    status = status_case(exempt=exemptions.c.reason.is_not(None),
                         signed_on_time=and_(ack.id.is_not(None), signed_on <= due),
                         signed=ack.id.is_not(None), past_due=due_date < today,
                         progress=progress_status)
    query = (
        _contract_select(ack, supervisor_badge=supervisor_badge, status=status,
                         lessons_completed=lessons_completed, quiz_best=quiz_best,
                         quiz_attempts=quiz_attempts, exemption_reason=exemptions.c.reason,
                         signed_on=signed_on, extra_attempts=granted, people=people,
                         people_source=people_source, due_date=due_date)
        .outerjoin(ack, and_(ack.assignment_id == Assignment.id, ack.cycle_id == cycle_id,
                             ack.id.not_in(voided), before(ack.signed_at)))
        .outerjoin(exemptions, exemptions.c.member_id == Assignment.member_id)
        .where(Assignment.cycle_id == cycle_id)
        # The audience: members active on the date, and anyone who signed (their record counts
        # even if they have since left or gone on leave).
        .where(or_(people.status == "active", ack.id.is_not(None)))
    )
    if whole:
        query = (query.outerjoin(lessons, lessons.c.assignment_id == Assignment.id)
                 .outerjoin(attempts, attempts.c.assignment_id == Assignment.id)
                 .outerjoin(supervisor, supervisor.id == people.supervisor_id))
    if cutoff is None:
        query = query.where(Assignment.superseded_at.is_(None))
    else:
        query = query.where(Assignment.assigned_at < cutoff,
                            or_(Assignment.superseded_at.is_(None), Assignment.superseded_at >= cutoff))
    query = _narrow(query, filters, people)
    if filters.statuses:
        inner = query.subquery()
        query = select(*inner.c).where(inner.c.status.in_(expand_statuses(filters.statuses)))
    return query


def member_values(session: Session, column) -> list[str]:
    """The distinct non-empty values of an indexed member column (unit, shift, rank), sorted.

    Read as a walk up the column's index, one step per value (each step the next value above the
    last), rather than ``SELECT DISTINCT``, which reads every member: a dozen values of 50,000
    members cost a dozen index lookups. Neither database does this walk on its own.
    """
    first = select(func.min(column).label("value")).where(column > "")
    values = first.cte("member_values", recursive=True)
    following = (select(select(func.min(column)).where(column > values.c.value).scalar_subquery())
                 .where(values.c.value.is_not(None)))
    values = values.union_all(following)
    return list(session.scalars(select(values.c.value).where(values.c.value.is_not(None))
                                .order_by(values.c.value)))


def check_cycle(session: Session, filters: RosterFilters) -> Cycle:
    """The filtered cycle, or RosterError naming what is missing."""
    cycle = session.get(Cycle, filters.cycle_id)
    if cycle is None:
        raise RosterError(f"no cycle has id {filters.cycle_id}")
    if filters.policy_id and filters.policy_id not in {v.policy_id for v in cycle.policy_versions}:
        raise RosterError(f"the {cycle.name} cycle does not assign policy {filters.policy_id}")
    return cycle


def _execute(session: Session, query: Select):
    """Run a roster query. On PostgreSQL, without JIT compilation for the rest of this transaction:
    the planner prices each row's subqueries as if every row ran them, past jit_above_cost, and
    compiling took 0.5-1.5 s, several times as long as running the query (docs/performance.md)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL jit = off"))
    # Core, not the ORM: these are plain columns, and the ORM path buffers every row and builds it
    # through a loader (about 0.1 s of 50,000 rows' CSV), for the same Row objects.
    return connection.execute(query)


#: Sort keys that can be empty: empty values go last whichever the direction, on both databases
#: (SQLite puts NULL first ascending, PostgreSQL last).
NULLABLE_SORTS = ("rank", "unit", "shift", "supervisor_badge", "acknowledged_at", "quiz_best_score")


def roster_rows(session: Session, filters: RosterFilters, *, today: date, tz: str,
                sort: str = "last_name", descending: bool = False, limit: int | None = None,
                offset: int = 0, computed: bool = False):
    """Roster rows (named tuples with the contract columns), sorted and optionally paged.
    ``computed`` works every status out from the source tables even for now (for checking the
    stored progress against)."""
    if sort not in SORTS:
        raise RosterError(f"cannot sort by {sort!r}; use one of {', '.join(SORTS)}")
    _check_statuses(filters)
    paged = limit is not None and filters.as_of is None and not computed
    if paged and limit is not None:
        page = _page_ids(filters, today=today, sort=sort, descending=descending, limit=limit, offset=offset)
        inner = _stored_select(filters, today=today, whole=False, page=page).subquery()
    else:
        inner = roster_select(filters, today=today, tz=tz, whole=limit is None, computed=computed).subquery()
    key = inner.c[sort].desc() if descending else inner.c[sort].asc()
    if sort in NULLABLE_SORTS:
        key = key.nulls_last()
    order = [key, inner.c.last_name, inner.c.first_name, inner.c.badge, inner.c.policy]
    query = select(*inner.c).order_by(*order)
    if limit is not None and not paged:
        query = query.limit(limit).offset(offset)
    elif offset and not paged:
        query = query.offset(offset)
    return _execute(session, query)


def _summary_rows(session: Session, filters: RosterFilters, *, today: date, tz: str,
                  computed: bool = False) -> list[tuple[str | None, str, int]]:
    """(unit, status, rows) for every unit and status present, units in order (no unit last).

    Now: from the assignment index and each row's member, nothing else. On PostgreSQL the rows
    are first grouped by the inputs of the status (unit, progress and four yes/no facts), whose
    few combinations the planner can estimate and hash in memory; grouped by the status CASE it
    expects one group per row and sorts every row, spilling to disk (docs/performance.md).
    SQLite has no hash aggregate, so more grouping columns only make its sort dearer; it groups
    by the status. A past date (or ``computed``) groups the fully computed roster.
    """
    _check_statuses(filters)
    unit: Any
    status: Any
    if filters.as_of is not None or computed:
        inner = roster_select(filters, today=today, tz=tz, computed=True).subquery()
        unit, status = inner.c.unit, inner.c.status
        query = select(unit, status, func.count()).group_by(unit, status)
    else:
        status = stored_status(today)
        query = _current(select().select_from(Assignment).join(Member, Member.id == Assignment.member_id),
                         filters, _cycle_id(filters))
        if filters.statuses:
            query = query.where(status.in_(expand_statuses(filters.statuses)))
        if session.get_bind().dialect.name == "postgresql":
            named = stored_facts(today)
            facts = [Member.unit.label("unit"), Assignment.progress.label("progress"),
                     *(fact.label(name) for name, fact in named.items())]
            grouped = query.add_columns(*facts, func.count().label("n")).group_by(*facts).subquery()
            unit = grouped.c.unit
            status = status_case(**{name: grouped.c[name] for name in named}, progress=grouped.c.progress)
            query = select(unit, status, func.sum(grouped.c.n)).group_by(unit, status)
        else:
            unit = Member.unit
            query = query.add_columns(unit, status, func.count()).group_by(unit, status)
    return [(u, st, int(n)) for u, st, n in _execute(session, query.order_by(unit.asc().nulls_last()))]


def status_counts(session: Session, filters: RosterFilters, *, today: date, tz: str,
                  computed: bool = False) -> dict[str, int]:
    """Rows per status, every status present (zeros included)."""
    return roster_summary(session, filters, today=today, tz=tz, computed=computed).counts


def unit_summary(session: Session, filters: RosterFilters, *, today: date, tz: str,
                 computed: bool = False) -> list[tuple[str, int, int]]:
    """(unit, rows, complete rows) per unit, complete counting late and exempt as done; units in
    order, members without a unit last as "(no unit)"."""
    return roster_summary(session, filters, today=today, tz=tz, computed=computed).units


@dataclass
class RosterSummary:
    """The head of the roster: rows per status and completion per unit."""

    #: As status_counts returns them.
    counts: dict[str, int]
    #: As unit_summary returns them.
    units: list[tuple[str, int, int]]


def roster_summary(session: Session, filters: RosterFilters, *, today: date, tz: str,
                   computed: bool = False) -> RosterSummary:
    """status_counts and unit_summary from one query, so a page showing both reads the roster
    once rather than twice."""
    counts = {status: 0 for status in STATUSES}
    units: dict[str | None, list[int]] = {}  # in the database's order of units, as unit_summary
    for unit, status, n in _summary_rows(session, filters, today=today, tz=tz, computed=computed):
        counts[status] += n
        totals = units.setdefault(unit, [0, 0])
        totals[0] += n
        totals[1] += n if status in DONE_STATUSES else 0
    return RosterSummary(counts, [(unit if unit is not None else "(no unit)", total, done)
                                  for unit, (total, done) in units.items()])
