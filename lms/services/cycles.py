"""Training cycles: which policy versions an audience must complete, and by when."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.services.audit import record_event

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    Cycle,
    Exemption,
    Member,
    Policy,
    PolicyVersion,
)


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


def create_cycle(session: Session, *, year: int, due_date: date, today: date, now: datetime,
                 policy_ids: list[str] | None = None, units: list[str] | None = None,
                 ranks: list[str] | None = None, grace_days: int = 30,
                 created_by_id: int | None = None) -> Cycle:
    """Open a cycle for the versions in force today and assign it to its audience.

    The audience is every active member, narrowed to the given units and ranks when any are given.
    """
    if not 2000 <= year <= 2100:
        raise CycleError("year must be between 2000 and 2100", "year")
    if session.scalar(select(Cycle.id).where(Cycle.year == year)):
        raise CycleError(f"a cycle for {year} already exists", "year")
    if due_date < today:
        raise CycleError(f"due date {due_date.isoformat()} is in the past", "due_date")
    if not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise CycleError(f"grace days must be between 0 and {MAX_GRACE_DAYS}", "grace_days")
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
    units, ranks = sorted(set(units or [])), sorted(set(ranks or []))
    cycle = Cycle(year=year, name=f"{year} annual", due_date=due_date, grace_days=grace_days,
                  audience={"units": units, "ranks": ranks}, created_at=now,
                  created_by_id=created_by_id, policy_versions=versions)
    session.add(cycle)
    session.flush()
    audience = select(Member.id).where(Member.status == "active")
    if units:
        audience = audience.where(Member.unit.in_(units))
    if ranks:
        audience = audience.where(Member.rank.in_(ranks))
    member_ids = list(session.scalars(audience))
    session.add_all(
        Assignment(cycle_id=cycle.id, member_id=member_id, policy_version_id=version.id,
                   due_date=due_date, assigned_at=now)
        for member_id in member_ids for version in versions
    )
    session.flush()
    return cycle


def record_cycle_opened(session: Session, cycle: Cycle, *, members: int, actor_id: int | None,
                        ip: str | None, now: datetime, via: str) -> None:
    """Audit the opening of a cycle, the same from the web and the command line (actor None is the
    operator at the server's command line)."""
    record_event(session, "cycle.create", at=now, actor_id=actor_id, target=f"cycle:{cycle.year}", ip=ip,
                 details={"year": cycle.year, "due_date": cycle.due_date.isoformat(), "grace_days": cycle.grace_days,
                          "policies": [v.policy_id for v in cycle.policy_versions],
                          "versions": [v.effective.isoformat() for v in cycle.policy_versions],
                          "units": cycle.audience["units"], "ranks": cycle.audience["ranks"],
                          "members": members, "via": via})


def audience_size(session: Session, cycle_id: int) -> int:
    """How many members a cycle assigns."""
    return session.scalars(select(func.count(func.distinct(Assignment.member_id)))
                           .where(Assignment.cycle_id == cycle_id)).one()


def in_audience(cycle: Cycle, member: Member) -> bool:
    """Whether a member fits the cycle's audience filters (status aside)."""
    units, ranks = cycle.audience.get("units") or [], cycle.audience.get("ranks") or []
    return (not units or member.unit in units) and (not ranks or member.rank in ranks)


def sync_audience(session: Session, *, today: date, now: datetime) -> int:
    """Give every active member who fits an open cycle's audience but has no assignment yet
    (a new hire, a transfer into a targeted unit) their own, due after the cycle's grace period
    if that is later than the cycle's due date. Returns how many assignments were made."""
    made = 0
    for cycle in session.scalars(select(Cycle).where(Cycle.due_date >= today)):
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
            Assignment.member_id == member.id, Cycle.due_date >= today,
            Assignment.superseded_at.is_(None), Assignment.id.not_in(signed))):
        grace_due = today + timedelta(days=assignment.cycle.grace_days)
        assignment.due_date = max(assignment.due_date, grace_due)
    session.flush()
    sync_audience(session, today=today, now=now)


class ExemptionError(ValueError):
    """An exemption that cannot be granted or lifted as asked."""


def grant_exemption(session: Session, *, cycle: Cycle, member: Member, reason: str,
                    granted_by_id: int | None, now: datetime) -> Exemption:
    """Excuse a member from a cycle; the reason is required and kept. Nobody excuses themselves."""
    if granted_by_id is not None and granted_by_id == member.id:
        raise ExemptionError("you cannot exempt yourself; another coordinator must grant it")
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise ExemptionError("give the reason for the exemption (e.g. military leave)")
    if len(reason) > 500:
        raise ExemptionError("the reason must be at most 500 characters")
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
