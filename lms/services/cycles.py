"""Training cycles: which policy versions an audience must complete, and by when."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    AttemptGrant,
    Cycle,
    DueDateChange,
    Exemption,
    LessonProgress,
    Member,
    Policy,
    PolicyVersion,
    QuizAttempt,
    Reminder,
    ReminderSchedule,
)
from lms.services.audit import record_event
from lms.services.due_dates import move_due_date

#: A grace period for late joiners longer than a year is a typing mistake (and a far-off due date
#: overflows date arithmetic for every later import).
MAX_GRACE_DAYS = 365


class CycleError(ValueError):
    """A cycle that cannot be created as asked; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def version_in_force(session: Session, policy_id: str, on: date) -> PolicyVersion | None:
    """The version of a policy in force on a date: the latest effective on or before it."""
    return session.scalar(
        select(PolicyVersion)
        .where(PolicyVersion.policy_id == policy_id, PolicyVersion.effective <= on)
        .order_by(PolicyVersion.effective.desc())
        .limit(1)
    )


#: The latest a cycle may fall due: within its year or up to this many days into the next (an
#: annual cycle opened late in the year, due in the spring). Further is a typing mistake, as was a
#: "2031 cycle due 2027-01-01".
MAX_DAYS_AFTER_YEAR = 181
#: Longest cycle name (the column's width).
MAX_NAME_LENGTH = 120
#: The attributes an audience can narrow by, each a member column of the personnel records.
AUDIENCE_KEYS = ("units", "ranks", "shifts")
_AUDIENCE_COLUMNS = {"units": Member.unit, "ranks": Member.rank, "shifts": Member.shift}
_AUDIENCE_WORDS = {"units": "unit", "ranks": "rank", "shifts": "shift"}


def default_name(year: int) -> str:
    """The name a year's first cycle gets when none is given."""
    return f"{year} annual"


def describe(cycle: Cycle) -> str:
    """A cycle as a list of cycles shows it in a message: ``id 3 "2026 new hires" (2026)``."""
    return f'id {cycle.id} "{cycle.name}" ({cycle.year})'


def file_stem(cycle: Cycle, kind: str = "roster") -> str:
    """The start of an export's file name for a cycle: ``roster-2026-new-hires``."""
    return f"{kind}-" + (re.sub(r"[^a-z0-9]+", "-", cycle.name.lower()).strip("-") or str(cycle.id))


def find_cycle(session: Session, ref: str) -> Cycle:
    """The cycle ``ref`` names: its name (any case), its id, or its year when the year has one
    cycle. CycleError listing the cycles when ``ref`` names none or is ambiguous."""
    ref = (ref or "").strip()
    if not ref:
        raise CycleError("name the cycle (its name, id or year)", "cycle")
    named = session.scalar(select(Cycle).where(func.lower(Cycle.name) == ref.lower()))
    if named is not None:
        return named
    if ref.isascii() and ref.isdigit() and len(ref) <= 9:
        number = int(ref)
        by_id = session.get(Cycle, number)
        by_year = list(session.scalars(select(Cycle).where(Cycle.year == number).order_by(Cycle.id)))
        matches = {c.id: c for c in ([by_id] if by_id else []) + by_year}
        if len(matches) == 1:
            return next(iter(matches.values()))
        if len(matches) > 1:
            listed = "; ".join(describe(c) for c in matches.values())
            raise CycleError(f"{ref} names several cycles ({listed}); give the cycle's name", "cycle")
    every = "; ".join(describe(c) for c in session.scalars(select(Cycle).order_by(Cycle.year, Cycle.id)))
    raise CycleError(f"no cycle is named {ref!r} (cycles: {every or 'none'})", "cycle")


def _clean_audience(session: Session, units, ranks, shifts) -> dict[str, list[str]]:
    """The audience filters, deduplicated and sorted; CycleError naming any value that no member
    has in the personnel records (a mistyped unit would open a cycle for nobody)."""
    audience = {"units": sorted(set(units or [])), "ranks": sorted(set(ranks or [])),
                "shifts": sorted(set(shifts or []))}
    for key, values in audience.items():
        if not values:
            continue
        column = _AUDIENCE_COLUMNS[key]
        known = set(session.scalars(select(column).where(column.in_(values)).distinct()))
        unknown = [v for v in values if v not in known]
        if unknown:
            word = _AUDIENCE_WORDS[key]
            raise CycleError(f"no member's {word} is {', '.join(repr(u) for u in unknown)} in the personnel "
                             f"records; check the spelling", key)
    return audience


def audience_select(audience: dict):
    """The ids of the active members an audience ({"units", "ranks", "shifts"}) takes in."""
    query = select(Member.id).where(Member.status == "active")
    for key, column in _AUDIENCE_COLUMNS.items():
        if audience.get(key):
            query = query.where(column.in_(audience[key]))
    return query


def _check_name(session: Session, name: str, *, year: int, cycle: Cycle | None = None) -> str:
    """The name, trimmed; CycleError if it is blank, too long, all digits (a name must not read as
    an id or a year where ``--cycle`` takes either) or another cycle's (names are unique across
    years, so a name typed anywhere names one cycle)."""
    from lms.services.validators import text_problem

    name = " ".join((name or "").split())
    if not name:
        raise CycleError("give the cycle a name, e.g. " + repr(f"{year} new hires"), "name")
    problem = text_problem(name, max_length=MAX_NAME_LENGTH)
    if problem:
        raise CycleError(f"the name is {problem}" if problem.startswith("longer") else f"the name {problem}", "name")
    if not any(ch.isalpha() for ch in name):
        raise CycleError("the name needs a letter (e.g. " + repr(f"{year} remedial") + "), so it never "
                         "reads as a year or an id", "name")
    taken = session.scalar(select(Cycle).where(func.lower(Cycle.name) == name.lower(),
                                               Cycle.id != (cycle.id if cycle else -1)))
    if taken is not None:
        raise CycleError(f"another cycle is already named {taken.name!r} ({taken.year}); choose another name", "name")
    return name


def _check_due(due_date: date, *, year: int, today: date, unchanged: date | None = None) -> None:
    """A due date after the start and within reason for the year; CycleError otherwise. An edit
    that keeps the due date it had is not refused for it having passed."""
    if unchanged is not None and due_date == unchanged:
        return
    if due_date < today:
        raise CycleError(f"due date {due_date.isoformat()} is in the past", "due_date")
    latest = date(year, 12, 31) + timedelta(days=MAX_DAYS_AFTER_YEAR)
    if not date(year, 1, 1) <= due_date <= latest:
        raise CycleError(f"due date {due_date.isoformat()} does not fit a {year} cycle; choose a date "
                         f"from {year}-01-01 to {latest.isoformat()}", "due_date")


def _check_grace(grace_days: int) -> None:
    if not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise CycleError(f"grace days must be between 0 and {MAX_GRACE_DAYS}", "grace_days")


def _versions_for(session: Session, policy_ids: list[str] | None, today: date) -> list[PolicyVersion]:
    known = list(session.scalars(select(Policy.id).order_by(Policy.id)))
    policy_ids = list(dict.fromkeys(policy_ids or known))
    unknown = [p for p in policy_ids if p not in known]
    if unknown:
        raise CycleError(f"unknown policy {', '.join(unknown)} (known: {', '.join(known) or 'none'})", "policy")
    if not policy_ids:
        raise CycleError("no policies are loaded; run 'lms init' first", "policy")
    versions = []
    for policy_id in policy_ids:
        version = version_in_force(session, policy_id, today)
        if version is None:
            raise CycleError(f"policy {policy_id} has no version in force on {today.isoformat()}", "policy")
        versions.append(version)
    return versions


def _refuse_empty(count: int, audience: dict) -> None:
    if count == 0:
        narrowed = "; ".join(f"{_AUDIENCE_WORDS[k]} {', '.join(v)}" for k, v in audience.items() if v)
        raise CycleError("this audience matches no active member" + (f" ({narrowed})" if narrowed else "")
                         + "; widen it", "units")


@dataclass
class CyclePlan:
    """What opening a cycle would do, checked: shown for confirmation, then carried out."""

    year: int
    name: str
    due_date: date
    grace_days: int
    versions: list[PolicyVersion]
    audience: dict
    #: Active members the audience takes in now.
    members: int


def plan_cycle(session: Session, *, year: int, due_date: date, today: date, name: str | None = None,
               policy_ids: list[str] | None = None, units: list[str] | None = None,
               ranks: list[str] | None = None, shifts: list[str] | None = None,
               grace_days: int = 30) -> CyclePlan:
    """Check a new cycle (CycleError naming the input at fault) and count whom it would assign;
    changes nothing. The web's confirm step and the CLI's --dry-run show this."""
    if not 2000 <= year <= 2100:
        raise CycleError("year must be between 2000 and 2100", "year")
    if not (name or "").strip():
        existing = list(session.scalars(select(Cycle.name).where(Cycle.year == year).order_by(Cycle.id)))
        if existing:
            raise CycleError(f"{year} already has a cycle ({', '.join(existing)}); give this one a name of its "
                             f"own, e.g. {year} new hires", "name")
        name = default_name(year)
    name = _check_name(session, name or "", year=year)
    _check_due(due_date, year=year, today=today)
    _check_grace(grace_days)
    versions = _versions_for(session, policy_ids, today)
    audience = _clean_audience(session, units, ranks, shifts)
    members = session.scalars(select(func.count()).select_from(audience_select(audience).subquery())).one()
    _refuse_empty(members, audience)
    return CyclePlan(year=year, name=name, due_date=due_date, grace_days=grace_days, versions=versions,
                     audience=audience, members=members)


def create_cycle(session: Session, *, year: int, due_date: date, today: date, now: datetime,
                 name: str | None = None, policy_ids: list[str] | None = None, units: list[str] | None = None,
                 ranks: list[str] | None = None, shifts: list[str] | None = None, grace_days: int = 30,
                 created_by_id: int | None = None) -> Cycle:
    """Open a cycle for the versions in force today and assign it to its audience.

    The audience is every active member, narrowed to the given units, ranks and shifts when any
    are given. ``name`` defaults to "{year} annual" for a year's first cycle and is required after.
    """
    plan = plan_cycle(session, year=year, due_date=due_date, today=today, name=name, policy_ids=policy_ids,
                      units=units, ranks=ranks, shifts=shifts, grace_days=grace_days)
    cycle = Cycle(year=year, name=plan.name, due_date=due_date, grace_days=grace_days,
                  audience=plan.audience, created_at=now, created_by_id=created_by_id,
                  policy_versions=plan.versions)
    session.add(cycle)
    session.flush()
    member_ids = list(session.scalars(audience_select(plan.audience)))
    session.add_all(
        Assignment(cycle_id=cycle.id, member_id=member_id, policy_version_id=version.id,
                   due_date=due_date, assigned_at=now)
        for member_id in member_ids for version in plan.versions
    )
    session.flush()
    return cycle


def record_cycle_opened(session: Session, cycle: Cycle, *, members: int, actor_id: int | None,
                        ip: str | None, now: datetime, via: str) -> None:
    """Audit the opening of a cycle, the same from the web and the command line (actor None is the
    operator at the server's command line)."""
    record_event(session, "cycle.create", at=now, actor_id=actor_id, target=f"cycle:{cycle.id}", ip=ip,
                 details={"name": cycle.name, "year": cycle.year, "due_date": cycle.due_date.isoformat(),
                          "grace_days": cycle.grace_days,
                          "policies": [v.policy_id for v in cycle.policy_versions],
                          "versions": [v.effective.isoformat() for v in cycle.policy_versions],
                          "units": cycle.audience.get("units", []), "ranks": cycle.audience.get("ranks", []),
                          "shifts": cycle.audience.get("shifts", []), "members": members, "via": via})


# --- changing a cycle ----------------------------------------------------------------------------

def _current_versions(cycle: Cycle) -> list[PolicyVersion]:
    """The latest of the cycle's versions of each policy (a policy's later version joins the cycle
    when it comes into force; the earlier stays for the signatures given under it)."""
    latest: dict[str, PolicyVersion] = {}
    for version in cycle.policy_versions:
        if version.policy_id not in latest or version.effective > latest[version.policy_id].effective:
            latest[version.policy_id] = version
    return list(latest.values())


def _untouched(cycle_id: int):
    """The cycle's assignments nobody has started: no lesson read, no attempt, no signature (even
    voided), no grant and no exemption. Only these may ever be removed."""
    return select(Assignment.id).where(
        Assignment.cycle_id == cycle_id, Assignment.signed_on.is_(None), Assignment.exemption_reason.is_(None),
        ~select(LessonProgress.id).where(LessonProgress.assignment_id == Assignment.id).exists(),
        ~select(QuizAttempt.id).where(QuizAttempt.assignment_id == Assignment.id).exists(),
        ~select(Acknowledgment.id).where(Acknowledgment.assignment_id == Assignment.id).exists(),
        ~select(AttemptGrant.id).where(AttemptGrant.assignment_id == Assignment.id).exists())


@dataclass
class CycleChange:
    """What an edit changes, checked: shown for confirmation, then carried out and audited."""

    #: The cycle's name and audience after the edit, checked.
    name: str = ""
    audience: dict = field(default_factory=dict)
    #: Field -> (before, after), only for fields that change.
    changes: dict = field(default_factory=dict)
    #: Active members the new audience takes in.
    members: int = 0
    #: Members who get assignments because they joined the audience.
    added: int = 0
    #: Members outside the new audience whose untouched assignments go.
    removed: int = 0
    #: Members outside the new audience who keep their assignments because they started (or signed).
    kept: int = 0


def plan_edit(session: Session, cycle: Cycle, *, name: str, due_date: date, grace_days: int,
              units: list[str] | None, ranks: list[str] | None, shifts: list[str] | None,
              today: date) -> CycleChange:
    """Check an edit of ``cycle`` (CycleError naming the input at fault) and count what it would do;
    changes nothing."""
    if cycle.closed_at is not None:
        raise CycleError(f"the {cycle.name} cycle is closed; a closed cycle is not edited", None)
    name = _check_name(session, name, year=cycle.year, cycle=cycle)
    _check_due(due_date, year=cycle.year, today=today, unchanged=cycle.due_date)
    _check_grace(grace_days)
    audience = _clean_audience(session, units, ranks, shifts)
    before = {"name": cycle.name, "due_date": cycle.due_date.isoformat(), "grace_days": cycle.grace_days,
              **{k: sorted(cycle.audience.get(k) or []) for k in AUDIENCE_KEYS}}
    after = {"name": name, "due_date": due_date.isoformat(), "grace_days": grace_days, **audience}
    change = CycleChange(name=name, audience=audience,
                         changes={k: (before[k], after[k]) for k in before if before[k] != after[k]})
    wanted = audience_select(audience)
    change.members = session.scalars(select(func.count()).select_from(wanted.subquery())).one()
    _refuse_empty(change.members, audience)
    assigned = select(Assignment.member_id).where(Assignment.cycle_id == cycle.id)
    change.added = session.scalars(select(func.count()).select_from(
        wanted.where(Member.id.not_in(assigned)).subquery())).one()
    leaving = (select(Assignment.member_id).where(Assignment.cycle_id == cycle.id,
                                                  Assignment.member_id.not_in(wanted)).distinct())
    leaving_ids = set(session.scalars(leaving))
    touched = set(session.scalars(select(Assignment.member_id).where(
        Assignment.cycle_id == cycle.id, Assignment.member_id.in_(leaving_ids),
        Assignment.id.not_in(_untouched(cycle.id))).distinct())) if leaving_ids else set()
    change.kept, change.removed = len(touched), len(leaving_ids - touched)
    return change


def edit_cycle(session: Session, cycle: Cycle, *, name: str, due_date: date, grace_days: int,
               units: list[str] | None, ranks: list[str] | None, shifts: list[str] | None,
               today: date, now: datetime, actor_id: int | None, ip: str | None, via: str) -> CycleChange:
    """Change a cycle's name, due date, grace period and audience, audited "cycle.edit" with what
    changed (before/after). A new audience is synced at once: members it takes in are assigned;
    members it leaves out lose only assignments nobody started; anything started or signed stays.
    Unsigned assignments follow a new due date (a late joiner keeps a later one of their own)."""
    change = plan_edit(session, cycle, name=name, due_date=due_date, grace_days=grace_days, units=units,
                       ranks=ranks, shifts=shifts, today=today)
    old_due = cycle.due_date
    cycle.name, cycle.grace_days = change.name, grace_days
    cycle.audience = change.audience
    if due_date != old_due:
        cycle.due_date = due_date
        for assignment in session.scalars(select(Assignment).where(
                Assignment.cycle_id == cycle.id, Assignment.superseded_at.is_(None),
                Assignment.signed_on.is_(None))):
            moved = due_date if assignment.due_date == old_due else max(assignment.due_date, due_date)
            move_due_date(session, assignment, moved, effective_on=today, now=now, reason="cycle_edit")
    session.flush()
    wanted = audience_select(change.audience)
    if change.removed:
        gone = list(session.scalars(select(Assignment.id).where(
            Assignment.id.in_(_untouched(cycle.id)), Assignment.member_id.not_in(wanted))))
        session.execute(delete(DueDateChange).where(DueDateChange.assignment_id.in_(gone)))
        session.execute(delete(Assignment).where(Assignment.id.in_(gone)))
    if change.added:
        versions = _current_versions(cycle)
        assigned = select(Assignment.member_id).where(Assignment.cycle_id == cycle.id)
        due = max(cycle.due_date, today + timedelta(days=cycle.grace_days))
        session.add_all(Assignment(cycle_id=cycle.id, member_id=member_id, policy_version_id=version.id,
                                   due_date=due, assigned_at=now)
                        for member_id in list(session.scalars(wanted.where(Member.id.not_in(assigned))))
                        for version in versions)
    session.flush()
    record_event(session, "cycle.edit", at=now, actor_id=actor_id, target=f"cycle:{cycle.id}", ip=ip,
                 details={"name": cycle.name, "year": cycle.year,
                          "before": {k: b for k, (b, _) in change.changes.items()},
                          "after": {k: a for k, (_, a) in change.changes.items()},
                          "members_added": change.added, "members_removed": change.removed,
                          "members_kept": change.kept, "via": via})
    session.flush()
    return change


def close_cycle(session: Session, cycle: Cycle, *, now: datetime, actor_id: int | None, ip: str | None,
                via: str) -> None:
    """Close a cycle: no signatures after now; it stays readable and in the rosters. Audited."""
    if cycle.closed_at is not None:
        raise CycleError(f"the {cycle.name} cycle is already closed", None)
    cycle.closed_at, cycle.closed_by_id = now, actor_id
    record_event(session, "cycle.close", at=now, actor_id=actor_id, target=f"cycle:{cycle.id}", ip=ip,
                 details={"name": cycle.name, "year": cycle.year, "before": {"closed_at": None},
                          "after": {"closed_at": now.isoformat()}, "via": via})
    session.flush()


def cycle_started(session: Session, cycle: Cycle) -> bool:
    """Whether anybody has started anything in the cycle (a lesson, an attempt, a signature, a
    grant or an exemption), or a reminder about it has gone out: then it can no longer be deleted."""
    started = select(Assignment.id).where(Assignment.cycle_id == cycle.id, Assignment.id.not_in(_untouched(cycle.id)))
    return bool(session.scalar(select(started.exists()))
                or session.scalar(select(select(Exemption.id).where(Exemption.cycle_id == cycle.id).exists()))
                or session.scalar(select(select(Reminder.id).where(Reminder.cycle_id == cycle.id).exists())))


def delete_cycle(session: Session, cycle: Cycle, *, now: datetime, actor_id: int | None, ip: str | None,
                 via: str) -> None:
    """Delete a cycle nobody has started (CycleError otherwise: close it instead), with its
    assignments and reminder schedule. Audited "cycle.delete" with what it was."""
    if cycle_started(session, cycle):
        raise CycleError(f"members have started the {cycle.name} cycle (or were reminded of it), so it "
                         "cannot be deleted; close it instead", None)
    members = audience_size(session, cycle.id)
    details = {"name": cycle.name, "year": cycle.year, "due_date": cycle.due_date.isoformat(),
               "grace_days": cycle.grace_days, "policies": [v.policy_id for v in cycle.policy_versions],
               **{k: cycle.audience.get(k, []) for k in AUDIENCE_KEYS}, "members": members, "via": via}
    target = f"cycle:{cycle.id}"
    session.execute(delete(DueDateChange).where(DueDateChange.assignment_id.in_(
        select(Assignment.id).where(Assignment.cycle_id == cycle.id))))
    session.execute(delete(Assignment).where(Assignment.cycle_id == cycle.id))
    session.execute(delete(ReminderSchedule).where(ReminderSchedule.cycle_id == cycle.id))
    session.delete(cycle)  # with its cycle_policy rows (the relationship's secondary)
    session.flush()
    record_event(session, "cycle.delete", at=now, actor_id=actor_id, target=target, ip=ip, details=details)
    session.flush()


def audience_size(session: Session, cycle_id: int) -> int:
    """How many members a cycle assigns."""
    return session.scalars(select(func.count(func.distinct(Assignment.member_id)))
                           .where(Assignment.cycle_id == cycle_id)).one()


def in_audience(cycle: Cycle, member: Member) -> bool:
    """Whether a member fits the cycle's audience filters (status aside)."""
    return all(not cycle.audience.get(key) or getattr(member, key[:-1]) in cycle.audience[key]
               for key in AUDIENCE_KEYS)


def sync_audience(session: Session, *, today: date, now: datetime) -> int:
    """Give every active member who fits an open cycle's audience but has no assignment yet
    (a new hire, a transfer into a targeted unit) their own, due after the cycle's grace period
    if that is later than the cycle's due date. Returns how many assignments were made."""
    made = 0
    for cycle in session.scalars(select(Cycle).where(Cycle.due_date >= today, Cycle.closed_at.is_(None))):
        due = max(cycle.due_date, today + timedelta(days=cycle.grace_days))
        for version in cycle.policy_versions:
            assigned = select(Assignment.member_id).where(
                Assignment.cycle_id == cycle.id, Assignment.policy_version_id == version.id)
            for member in session.scalars(select(Member).where(Member.status == "active",
                                                               Member.id.not_in(assigned))):
                if in_audience(cycle, member):
                    session.add(Assignment(cycle_id=cycle.id, member_id=member.id,
                                           policy_version_id=version.id, due_date=due, assigned_at=now))
                    made += 1
    session.flush()
    return made


def return_from_leave(session: Session, member: Member, *, today: date, now: datetime) -> None:
    """A member back from leave gets the grace period on unfinished work in open cycles, and
    joins any open cycle they were not yet assigned."""
    member.status = "active"
    signed = select(Acknowledgment.assignment_id).where(
        Acknowledgment.id.not_in(select(AcknowledgmentVoid.acknowledgment_id)))
    for assignment in session.scalars(select(Assignment).join(Cycle).where(
            Assignment.member_id == member.id, Cycle.due_date >= today, Cycle.closed_at.is_(None),
            Assignment.superseded_at.is_(None), Assignment.id.not_in(signed))):
        grace_due = today + timedelta(days=assignment.cycle.grace_days)
        move_due_date(session, assignment, max(assignment.due_date, grace_due), effective_on=today, now=now,
                      reason="return_from_leave")
    session.flush()
    sync_audience(session, today=today, now=now)


class ExemptionError(ValueError):
    """An exemption that cannot be granted or lifted as asked."""


def exemption_reason(reason: str | None) -> str:
    """The reason for an exemption with its whitespace tidied; ExemptionError if too short or long."""
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise ExemptionError("give the reason for the exemption (e.g. military leave)")
    if len(reason) > 500:
        raise ExemptionError("the reason must be at most 500 characters")
    return reason


def grant_exemption(session: Session, *, cycle: Cycle, member: Member, reason: str,
                    granted_by_id: int | None, now: datetime) -> Exemption:
    """Excuse a member from a cycle; the reason is required and kept. Nobody excuses themselves."""
    if granted_by_id is not None and granted_by_id == member.id:
        raise ExemptionError("you cannot exempt yourself; another coordinator must grant it")
    reason = exemption_reason(reason)
    if current_exemption(session, cycle.id, member.id) is not None:
        raise ExemptionError(f"{member.full_name} is already exempt from the {cycle.name} cycle")
    exemption = Exemption(cycle_id=cycle.id, member_id=member.id, reason=reason,
                          granted_by_id=granted_by_id, granted_at=now)
    session.add(exemption)
    session.flush()
    return exemption


def lift_exemption(session: Session, exemption: Exemption, *, lifted_by_id: int | None,
                   now: datetime) -> None:
    """End an exemption; the row stays as the record that it was granted."""
    if exemption.lifted_at is not None:
        raise ExemptionError("this exemption was already lifted")
    exemption.lifted_at, exemption.lifted_by_id = now, lifted_by_id
    session.flush()


def current_exemption(session: Session, cycle_id: int, member_id: int) -> Exemption | None:
    """The exemption in force for a member in a cycle, if any."""
    return session.scalar(select(Exemption).where(
        Exemption.cycle_id == cycle_id, Exemption.member_id == member_id, Exemption.lifted_at.is_(None)))
