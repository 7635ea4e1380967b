"""A supervisor's people: who reports to them (directly and through their sergeants) and how far
each cycle's training has come among those members. The chain of command itself is worked out in
SQL by lms.services.roster.reports_of, which the supervisor's roster, exports and reminders also
narrow by (RosterFilters.reports_to)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.models import Cycle, Member
from lms.services.roster import DONE_STATUSES, RosterFilters, reports_of, roster_summary


@dataclass
class SupervisedCycle:
    """One cycle as a supervisor sees it: their members' roster rows, done and overdue."""

    cycle: Cycle
    #: Roster rows of the supervisor's members (one per member and policy).
    rows: int
    #: Rows complete, complete late or exempt.
    done: int
    overdue: int

    @property
    def percent_done(self) -> int:
        return 100 * self.done // self.rows if self.rows else 0


def is_report(session: Session, supervisor_badge: str, member_id: int) -> bool:
    """Whether the member reports to the supervisor now, directly or through their sergeants."""
    reports = reports_of(supervisor_badge).subquery()
    return session.scalars(select(func.count()).select_from(reports)
                           .where(reports.c.member_id == member_id)).one() > 0


def report_counts(session: Session, supervisor_badge: str) -> tuple[int, int]:
    """(direct reports, all reports at any depth) now, active or not."""
    boss = select(Member.id).where(Member.badge == supervisor_badge).scalar_subquery()
    direct = session.scalars(select(func.count()).select_from(Member).where(Member.supervisor_id == boss)).one()
    everyone = session.scalars(select(func.count()).select_from(reports_of(supervisor_badge).subquery())).one()
    return direct, everyone


def supervised_cycles(session: Session, supervisor_badge: str, *, today: date, tz: str) -> list[SupervisedCycle]:
    """Every cycle, newest first, with the supervisor's members' rows in it, done and overdue
    (one grouped roster query per cycle; a department has a handful of cycles)."""
    overview = []
    for cycle in session.scalars(select(Cycle).order_by(Cycle.year.desc(), Cycle.id.desc())):
        counts = roster_summary(session, RosterFilters(cycle_id=cycle.id, reports_to=supervisor_badge),
                                today=today, tz=tz).counts
        overview.append(SupervisedCycle(cycle, rows=sum(counts.values()),
                                        done=sum(counts[s] for s in DONE_STATUSES), overdue=counts["overdue"]))
    return overview
