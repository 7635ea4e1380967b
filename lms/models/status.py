"""A member's status in a cycle, for one assignment: the rule of product.md, written once.

The rule is two rankings of facts; the first fact that holds gives the status:

- the cycle's status: exempt, then signed by the due date (complete), then signed later
  (complete_late), then past the due date unsigned (overdue), else the training's progress;
- the progress: a quiz attempt passed (quiz_passed), else one submitted (quiz_failed), else
  anything begun, a lesson read or an attempt started (in_progress), else not_started.

Two evaluators read the same rankings. :func:`status_case` and :func:`progress_case` build the
SQL CASE that every roster query composes from its own facts (the stored per-assignment columns,
the source tables as of a date, or the grouped facts of the roster's counts), and that
``lms.models.assignment_state`` stores; :func:`status_of` and :func:`progress_of` evaluate the same
rankings in Python for one assignment (``lms.services.progress``). ``tests/services/test_status_rule.py``
holds them to each other for generated assignments, on SQLite and PostgreSQL.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import case

from lms.models.training import Assignment

#: Every status, in the order pages list them.
STATUSES = ("not_started", "in_progress", "quiz_failed", "quiz_passed", "complete",
            "complete_late", "overdue", "exempt")

#: The training's progress, best first; none of the facts holding: not started.
PROGRESS_RANKING = (("passed", "quiz_passed"), ("submitted", "quiz_failed"), ("started", "in_progress"))
NOT_STARTED = "not_started"
#: The status in the cycle, first that holds; none holding: the progress.
STATUS_RANKING = (("exempt", "exempt"), ("signed_on_time", "complete"), ("signed", "complete_late"),
                  ("past_due", "overdue"))


def _sql(ranking, facts: dict, otherwise):
    return case(*[(facts[name], status) for name, status in ranking], else_=otherwise)


def _python(ranking, facts: dict, otherwise) -> str:
    return next((status for name, status in ranking if facts[name]), otherwise)


def progress_case(*, passed, submitted, started):
    """The progress as SQL, from three boolean expressions (a NULL counts as false)."""
    return _sql(PROGRESS_RANKING, {"passed": passed, "submitted": submitted, "started": started}, NOT_STARTED)


def progress_of(*, passed: bool, submitted: bool, started: bool) -> str:
    """The progress of one assignment, from its facts."""
    return _python(PROGRESS_RANKING, {"passed": passed, "submitted": submitted, "started": started}, NOT_STARTED)


def status_case(*, exempt, signed_on_time, signed, past_due, progress):
    """The status as SQL, from four boolean expressions (a NULL counts as false) and the progress
    (an expression giving one of the progress statuses)."""
    return _sql(STATUS_RANKING, {"exempt": exempt, "signed_on_time": signed_on_time, "signed": signed,
                                 "past_due": past_due}, progress)


def status_of(*, exempt: bool, signed_on_time: bool, signed: bool, past_due: bool, progress: str) -> str:
    """The status of one assignment, from its facts and its progress."""
    return _python(STATUS_RANKING, {"exempt": exempt, "signed_on_time": signed_on_time, "signed": signed,
                                    "past_due": past_due}, progress)


def stored_facts(today: date) -> dict:
    """The status's facts as expressions over an assignment's stored columns
    (lms.models.assignment_state), by name: only ``past_due`` changes with the date alone."""
    return {"exempt": Assignment.exemption_reason.is_not(None),
            "signed_on_time": Assignment.signed_on <= Assignment.due_date,
            "signed": Assignment.signed_on.is_not(None),
            "past_due": Assignment.due_date < today}


def stored_status(today: date):
    """A current assignment's status from its stored columns, as SQL."""
    return status_case(**stored_facts(today), progress=Assignment.progress)
