"""Effective-dated personnel history: a member's status, unit, shift, rank and supervisor as they
stood on any date.

Every change is appended to ``personnel_change`` with the date it takes effect; nothing is
overwritten. The member row keeps the values in force today, so the roster of now reads only the
member row; rosters and evidence as of a date read the history through ``as_of_columns``.

The rule, in one place (``state_subquery``): a member's value of an attribute on date D is the value of
the latest change of it effective on or before D (of two on the same date, the one written later);
before the member's first recorded change, their first recorded value. A member with no history
at all (created outside these services, e.g. by a bulk loader) reads as their member row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from lms.models import TRACKED_FIELDS, Member, PersonnelChange
from lms.services.validators import date_problem, text_problem


@dataclass(frozen=True)
class MemberState:
    """A member's tracked personnel attributes on one date."""

    status: str | None
    unit: str | None
    shift: str | None
    rank: str | None
    supervisor_id: int | None

    def value(self, field: str):
        """The value of a tracked field by its history name (``supervisor`` is the id)."""
        return self.supervisor_id if field == "supervisor" else getattr(self, field)

    @classmethod
    def of(cls, member: Member) -> MemberState:
        """The values on the member row (those in force today)."""
        return cls(member.status, member.unit, member.shift, member.rank, member.supervisor_id)


@dataclass(frozen=True)
class PeopleColumns:
    """SQL expressions for a member's tracked attributes, for a query over Member: the member
    row's own columns for now, or the history's values on a date."""

    status: Any
    unit: Any
    shift: Any
    rank: Any
    supervisor_id: Any


#: Members looked up per statement when a caller names many.
CHUNK = 500

#: The roster of now: the member row.
CURRENT = PeopleColumns(Member.status, Member.unit, Member.shift, Member.rank, Member.supervisor_id)


def state_subquery(day: date):
    """One row per member: ``member_id`` and their ``status``, ``unit``, ``shift``, ``rank`` and
    ``supervisor_id`` on ``day``.

    The rule: for each field, the latest change effective by ``day``, the later written of a tie;
    before the member's first change of the field, their first recorded value; with no history of
    it at all, the member row. Each is one lookup in the (member_id, field, effective, id) index
    per member and field, made once (only the join reads it): about 0.2 s for 50,000 members on
    SQLite, against 1 s for ranking every change with a window function.
    """
    def chosen(field: str):
        return chosen_change(Member.id, field, day).label(f"{field}_change")

    columns = {"status": "status", "unit": "unit", "shift": "shift", "rank": "rank", "supervisor": "supervisor_id"}
    ids = select(Member.id.label("member_id"), *(getattr(Member, c).label(f"row_{c}") for c in columns.values()),
                 *(chosen(f) for f in TRACKED_FIELDS)).subquery("personnel_ids")
    rows = {f: aliased(PersonnelChange, name=f"{f}_change") for f in TRACKED_FIELDS}
    values = [case((rows[f].id.is_(None), ids.c[f"row_{c}"]),
                   else_=rows[f].supervisor_id if f == "supervisor" else rows[f].value).label(c)
              for f, c in columns.items()]
    query = select(ids.c.member_id, *values).select_from(ids)
    for f in TRACKED_FIELDS:
        query = query.outerjoin(rows[f], rows[f].id == ids.c[f"{f}_change"])
    return query.subquery("personnel_as_of")


def chosen_change(member_id, field: str, day: date):
    """SQL: the id of the change that gives the member ``member_id`` (a column) their value of
    ``field`` on ``day`` (the rule above: the latest effective by then, the later written of a
    tie, else their first), or NULL when they have no history of it. Two lookups in the
    (member_id, field, effective, id) index."""
    change = aliased(PersonnelChange)
    mine = (change.member_id == member_id, change.field == field)
    # Correlated with the member's query however deep it is used (supervisor_on nests it twice).
    latest = (select(change.id).where(*mine, change.effective <= day)
              .order_by(change.effective.desc(), change.id.desc()).limit(1).correlate_except(change)
              .scalar_subquery())
    first = (select(change.id).where(*mine).order_by(change.effective, change.id).limit(1)
             .correlate_except(change).scalar_subquery())
    return func.coalesce(latest, first)


def supervisor_on(member, day: date):
    """SQL, for a query over ``member`` (Member or an alias): the id of their supervisor on ``day``,
    by the same rule as state_subquery, looked up for this member alone (a walk down the chain
    of command asks it only of the members it reaches)."""
    chosen = chosen_change(member.id, "supervisor", day)
    row = aliased(PersonnelChange)
    return case((chosen.is_(None), member.supervisor_id),
                else_=select(row.supervisor_id).where(row.id == chosen).scalar_subquery())


def as_of_columns(day: date):
    """(subquery, PeopleColumns): outer-join the subquery on ``member_id == Member.id`` and read the
    columns for each member's attributes as they stood on ``day``."""
    state = state_subquery(day)
    return state, PeopleColumns(state.c.status, state.c.unit, state.c.shift, state.c.rank, state.c.supervisor_id)


def states_on(session: Session, day: date, member_ids: list[int] | None = None) -> dict[int, MemberState]:
    """Every member's (or the given members') attributes on ``day``."""
    state, columns = as_of_columns(day)
    query = (select(Member.id, columns.status, columns.unit, columns.shift, columns.rank, columns.supervisor_id)
             .outerjoin(state, state.c.member_id == Member.id))
    if member_ids is not None:
        query = query.where(Member.id.in_(member_ids))
    return {row[0]: MemberState(*row[1:]) for row in session.execute(query)}


def state_on(session: Session, member_id: int, day: date) -> MemberState | None:
    """One member's attributes on ``day``; None if there is no such member."""
    return states_on(session, day, [member_id]).get(member_id)


def tracked_members(session: Session, member_ids: list[int] | None = None) -> set[int]:
    """The members (of those given) who have any recorded history."""
    query = select(PersonnelChange.member_id).distinct()
    if member_ids is not None:
        query = query.where(PersonnelChange.member_id.in_(member_ids))
    return set(session.scalars(query))


def _append(session: Session, member_id: int, field: str, value, *, effective: date, now: datetime,
            today: date, actor_id: int | None, source: str) -> None:
    session.add(PersonnelChange(
        member_id=member_id, field=field, value=None if field == "supervisor" else value,
        supervisor_id=value if field == "supervisor" else None, effective=effective, recorded_at=now,
        recorded_on=today, recorded_by_id=actor_id, source=source[:255]))


def record_initial(session: Session, member: Member, *, effective: date, now: datetime, today: date,
                   actor_id: int | None, source: str) -> None:
    """Record a member's values (from their row) as holding from ``effective``: a new member's
    first record, or the baseline written before the first change of a member with none."""
    state = MemberState.of(member)
    for field in TRACKED_FIELDS:
        _append(session, member.id, field, state.value(field), effective=effective, now=now, today=today,
                actor_id=actor_id, source=source)


def baseline_date(member: Member, effective: date) -> date:
    """When the values of a member without history are taken to hold from: their hire date or the
    date of their row, if earlier than the first change."""
    dates = [effective, member.hire_date, member.created_at.date() if member.created_at else None]
    return min(d for d in dates if d is not None)


def record_changes(session: Session, member: Member, values: dict, *, effective: date, today: date,
                   now: datetime, actor_id: int | None, source: str, before: MemberState | None = None,
                   tracked: bool | None = None, sync: bool = True) -> dict[str, tuple]:
    """Append a change for each of ``values`` (tracked field -> new value; ``supervisor`` is a
    member id) that differs from the member's value on ``effective``, then bring the member row to
    the values in force ``today``. Returns {field: (old, new)} of what was appended.

    ``before`` and ``tracked`` (the member's state on ``effective`` and whether they have history)
    may be given by a caller that looked them up for many members at once; such a caller passes
    ``sync=False`` and calls ``sync_rows`` once for them all.
    """
    unknown = set(values) - set(TRACKED_FIELDS)
    if unknown:
        raise ValueError(f"not a tracked personnel field: {', '.join(sorted(unknown))}")
    if tracked is None:
        tracked = bool(tracked_members(session, [member.id]))
    if before is None:
        before = (state_on(session, member.id, effective) if tracked else None) or MemberState.of(member)
    diff = {field: (before.value(field), new) for field, new in values.items() if before.value(field) != new}
    if not diff:
        return diff
    if not tracked:
        record_initial(session, member, effective=baseline_date(member, effective), now=now, today=today,
                       actor_id=None, source="baseline")
    for field, (_, new) in diff.items():
        _append(session, member.id, field, new, effective=effective, now=now, today=today, actor_id=actor_id,
                source=source)
    session.flush()
    if sync:
        sync_rows(session, [member.id], today=today)
    return diff


def sync_rows(session: Session, member_ids: list[int] | None, *, today: date) -> list[tuple[Member, str]]:
    """Bring the member rows of ``member_ids`` (None: every member with history) to the values
    their history gives for ``today``. Returns (member, previous status) for each row that
    changed, so the caller can apply what a change of status does to assignments."""
    tracked = tracked_members(session)
    ids = sorted(tracked if member_ids is None else tracked & set(member_ids))
    if not ids:
        return []
    # Bounded IN lists: SQLite refuses statements with more than 32,766 parameters.
    states = states_on(session, today, ids if len(ids) <= CHUNK else None)
    moved = []
    for start in range(0, len(ids), CHUNK):
        for member in session.scalars(select(Member).where(Member.id.in_(ids[start:start + CHUNK]))):
            state = states[member.id]
            if state != MemberState.of(member):
                moved.append((member, member.status))
            for name in ("status", "unit", "shift", "rank", "supervisor_id"):
                if getattr(member, name) != getattr(state, name):
                    setattr(member, name, getattr(state, name))
    session.flush()
    return moved


def apply_due_changes(session: Session, *, today: date, now: datetime) -> int:
    """Apply to the member rows the changes written ahead of their effective date whose date has
    come (run daily with ``init``): members back from leave get the grace period, and members who
    now fit an open cycle's audience their assignments. Returns how many members changed."""
    from lms.services.cycles import return_from_leave, sync_audience

    due = list(session.scalars(select(PersonnelChange.member_id).distinct().where(
        PersonnelChange.effective > PersonnelChange.recorded_on, PersonnelChange.effective <= today)))
    if not due:
        return 0
    moved = sync_rows(session, due, today=today)
    for member, previous in moved:
        if previous == "leave" and member.status == "active":
            return_from_leave(session, member, today=today, now=now)
    sync_audience(session, today=today, now=now)
    return len(moved)


@dataclass
class HistoryEntry:
    """One change on a member's record, for display."""

    change: PersonnelChange
    #: The new value as shown: the supervisor's badge and name for a supervisor change.
    shown: str


def member_history(session: Session, member_id: int) -> list[HistoryEntry]:
    """A member's recorded changes, newest effective first (the later written first on a tie)."""
    changes = list(session.scalars(select(PersonnelChange).where(PersonnelChange.member_id == member_id)
                                   .order_by(PersonnelChange.effective.desc(), PersonnelChange.id.desc())))
    supervisors: dict[int | None, Member] = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_(
        {c.supervisor_id for c in changes if c.supervisor_id is not None})))}
    entries = []
    for change in changes:
        if change.field == "supervisor":
            boss = supervisors.get(change.supervisor_id)
            shown = f"{boss.badge} {boss.full_name}" if boss else "(none)"
        else:
            shown = change.value if change.value is not None else "(empty)"
        entries.append(HistoryEntry(change, shown))
    return entries


class PersonnelChangeError(ValueError):
    """An edit refused; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def effective_problem(effective: date, today: date) -> str | None:
    """Why ``effective`` cannot be a change's effective date, or None: within the years any date may
    be (validators.date_problem), and no more than ten years ahead (further is a typing mistake,
    not a plan)."""
    if date_problem(effective) or effective > date(today.year + 10, 12, 31):
        return (f"{effective.isoformat()} is not a plausible effective date: give one between 1900-01-01 "
                f"and {today.year + 10}-12-31")
    return None


def edit_personnel(session: Session, member: Member, *, status: str, unit: str | None, shift: str | None,
                   rank: str | None, supervisor_badge: str | None, effective: date, today: date,
                   now: datetime, actor_id: int | None, ranks: list[str],
                   ip: str | None = None) -> dict[str, tuple]:
    """An administrator's edit of a member's status, unit, shift, rank and supervisor, effective on
    ``effective``: what differs from the member's values on that date is appended to their history
    (nothing is overwritten), audited. Returns {field: (old, new)}, supervisors by badge."""
    from lms.models import MEMBER_STATUSES
    from lms.services.audit import record_event

    def text(value: str | None, limit: int, name: str) -> str | None:
        value = " ".join((value or "").split()) or None
        problem = text_problem(value, max_length=limit) if value is not None else None
        if problem:
            raise PersonnelChangeError(f"{name}: {problem}", name)
        return value

    if status not in MEMBER_STATUSES:
        raise PersonnelChangeError(f"status must be one of {', '.join(MEMBER_STATUSES)}", "status")
    unit, shift = text(unit, 80, "unit"), text(shift, 40, "shift")
    rank = text(rank, 40, "rank")
    if rank is not None and ranks and rank not in ranks:
        raise PersonnelChangeError(f"{rank!r} is not a known rank ({', '.join(ranks)})", "rank")
    supervisor = None
    badge = text(supervisor_badge, 20, "supervisor")
    if badge is not None:
        supervisor = session.scalar(select(Member).where(Member.badge == badge))
        if supervisor is None:
            raise PersonnelChangeError(f"no member has badge {badge}", "supervisor")
        if supervisor.id == member.id:
            raise PersonnelChangeError("a member cannot supervise themselves", "supervisor")
    problem = effective_problem(effective, today)
    if problem:
        raise PersonnelChangeError(problem, "effective")
    diff = record_changes(session, member, {"status": status, "unit": unit, "shift": shift, "rank": rank,
                                            "supervisor": supervisor.id if supervisor else None},
                          effective=effective, today=today, now=now, actor_id=actor_id, source="admin")
    if "supervisor" in diff:
        old = session.get(Member, diff["supervisor"][0]) if diff["supervisor"][0] else None
        diff["supervisor"] = (old.badge if old else None, supervisor.badge if supervisor else None)
    if diff:
        record_event(session, "admin.personnel_change", at=now, actor_id=actor_id, target=f"member:{member.id}", ip=ip,
                     details={"badge": member.badge, "effective": effective.isoformat(),
                              "changes": {name: list(values) for name, values in diff.items()}})
        session.flush()
    return diff
