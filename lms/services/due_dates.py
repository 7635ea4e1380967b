"""Due dates that move (a member back from leave, an edited cycle) and the due date that stood
on an earlier day: each move is appended with the day it took effect, so a roster "as of" that
day is judged against the due date of that day, not today's."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.models import Assignment, DueDateChange


def move_due_date(session: Session, assignment: Assignment, due: date, *, effective_on: date, now: datetime,
                  reason: str) -> DueDateChange | None:
    """Give ``assignment`` the due date ``due`` from ``effective_on`` (a local day) on, keeping the
    one it replaces; None when the date does not change."""
    if due == assignment.due_date:
        return None
    change = DueDateChange(assignment_id=assignment.id, due_before=assignment.due_date, due_after=due,
                           effective_on=effective_on, reason=reason, changed_at=now)
    assignment.due_date = due
    session.add(change)
    return change


def due_date_as_of(as_of: date):
    """SQL for the due date of the row's ``Assignment`` as it stood on ``as_of``: the date the
    first move after that day replaced, or the current one when it has not moved since."""
    replaced_later = (select(DueDateChange.due_before)
                      .where(DueDateChange.assignment_id == Assignment.id, DueDateChange.effective_on > as_of)
                      .order_by(DueDateChange.effective_on, DueDateChange.id)
                      .limit(1).correlate(Assignment).scalar_subquery())
    return func.coalesce(replaced_later, Assignment.due_date)


def history(session: Session, assignment_id: int) -> list[DueDateChange]:
    """Every move of an assignment's due date, oldest first."""
    return list(session.scalars(select(DueDateChange).where(DueDateChange.assignment_id == assignment_id)
                                .order_by(DueDateChange.effective_on, DueDateChange.id)))
