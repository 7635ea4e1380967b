"""Training cycles: which policy versions an audience must complete, and by when."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.models import Assignment, Cycle, Member, Policy, PolicyVersion


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
    if grace_days < 0:
        raise CycleError("grace days cannot be negative", "grace_days")
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


def audience_size(session: Session, cycle_id: int) -> int:
    """How many members a cycle assigns."""
    return session.scalar(select(func.count(func.distinct(Assignment.member_id)))
                          .where(Assignment.cycle_id == cycle_id))
