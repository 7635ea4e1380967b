"""How long a member has left before an assignment is due, counted in the department's days."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

#: Statuses that need nothing more from the member: no countdown for them.
SETTLED = frozenset({"complete", "complete_late", "exempt"})


@dataclass(frozen=True)
class DueNotice:
    """The countdown to ``due_date`` as of the department's ``today``: ``days`` left, negative once overdue."""

    due_date: date
    days: int

    @property
    def overdue(self) -> bool:
        return self.days < 0

    @property
    def headline(self) -> str:
        """"Due in 12 days", "Due tomorrow", "Due today", "Overdue by 1 day"."""
        if self.days > 1:
            return f"Due in {self.days} days"
        if self.days == 1:
            return "Due tomorrow"
        if self.days == 0:
            return "Due today"
        late = -self.days
        return f"Overdue by {late} day{'s' if late != 1 else ''}"


def due_notice(*, due_date: date, status: str, today: date) -> DueNotice | None:
    """The countdown for an assignment, or None when it is complete or exempt.

    ``today`` is the department's local date (lms.services.clock.local_date), so a member in
    Chicago at 11 pm on the 30th is still "Due tomorrow" for the 31st, whatever UTC says.
    """
    if status in SETTLED:
        return None
    return DueNotice(due_date=due_date, days=(due_date - today).days)
