"""Counts for the coordinator's, HR's and administrator's home pages, aggregated in SQL."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.models import (
    Acknowledgment,
    Assignment,
    Cycle,
    Lesson,
    Member,
    MemberRole,
    PolicyVersion,
    Question,
)


@dataclass
class CycleCount:
    cycle: Cycle
    assigned: int
    signed: int


def cycle_counts(session: Session) -> list[CycleCount]:
    """Each cycle with its number of assignments and of signed acknowledgments."""
    assigned = (select(Assignment.cycle_id, func.count().label("n"))
                .group_by(Assignment.cycle_id).subquery())
    signed = (select(Acknowledgment.cycle_id, func.count(func.distinct(Acknowledgment.assignment_id)).label("n"))
              .group_by(Acknowledgment.cycle_id).subquery())
    rows = session.execute(
        select(Cycle, func.coalesce(assigned.c.n, 0), func.coalesce(signed.c.n, 0))
        .outerjoin(assigned, assigned.c.cycle_id == Cycle.id)
        .outerjoin(signed, signed.c.cycle_id == Cycle.id)
        .order_by(Cycle.year.desc(), Cycle.id.desc()))
    return [CycleCount(cycle, a, s) for cycle, a, s in rows]


def acknowledgments_per_version(session: Session) -> list[tuple[PolicyVersion, int]]:
    """Every policy version and how many acknowledgments of it are on record."""
    counts = (select(Acknowledgment.policy_version_id, func.count().label("n"))
              .group_by(Acknowledgment.policy_version_id).subquery())
    return list(session.execute(
        select(PolicyVersion, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.policy_version_id == PolicyVersion.id)
        .order_by(PolicyVersion.policy_id, PolicyVersion.effective)))


def content_summary(session: Session) -> list[tuple[PolicyVersion, int, int]]:
    """Each loaded policy version with its live lesson and question counts."""
    lessons = (select(Lesson.version_id, func.count().label("n")).where(Lesson.retired.is_(False))
               .group_by(Lesson.version_id).subquery())
    questions = (select(Question.version_id, func.count().label("n")).where(Question.retired.is_(False))
                 .group_by(Question.version_id).subquery())
    return list(session.execute(
        select(PolicyVersion, func.coalesce(lessons.c.n, 0), func.coalesce(questions.c.n, 0))
        .outerjoin(lessons, lessons.c.version_id == PolicyVersion.id)
        .outerjoin(questions, questions.c.version_id == PolicyVersion.id)
        .order_by(PolicyVersion.policy_id, PolicyVersion.effective)))


def personnel_summary(session: Session) -> dict[str, dict[str, int]]:
    """Members per status and per role."""
    statuses = {s: n for s, n in session.execute(select(Member.status, func.count()).group_by(Member.status))}
    roles = {r: n for r, n in session.execute(select(MemberRole.role, func.count()).group_by(MemberRole.role))}
    return {"status": statuses, "role": roles}
