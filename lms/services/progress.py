"""A member's progress through an assignment, and the status it adds up to."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    Cycle,
    Exemption,
    Lesson,
    LessonProgress,
    PolicyVersion,
    QuizAttempt,
)
from lms.models.assignment_state import extra_attempts
from lms.services.clock import local_date

STATUSES = ("not_started", "in_progress", "quiz_failed", "quiz_passed", "complete",
            "complete_late", "overdue", "exempt")
STATUS_LABELS = {
    "not_started": "Not started",
    "in_progress": "In progress",
    "quiz_failed": "Quiz not passed",
    "quiz_passed": "Quiz passed — ready to sign",
    "complete": "Complete",
    "complete_late": "Complete (late)",
    "overdue": "Overdue",
    "exempt": "Exempt",
}


class ProgressError(LookupError):
    """An action on a lesson or assignment that does not belong together."""


@dataclass
class AssignmentProgress:
    """Everything the officer's dashboard shows for one assignment."""

    assignment: Assignment
    lessons_total: int
    lessons_completed: int
    attempts: int
    best_score: int | None
    passed_attempt: QuizAttempt | None
    last_attempt_failed: bool
    acknowledgment: Acknowledgment | None
    status: str
    #: The pack's attempts plus those a coordinator granted.
    attempts_allowed: int = 0
    #: When no signature stands: the void of the latest one, which is why the member signs again.
    voided: AcknowledgmentVoid | None = None

    @property
    def percent(self) -> int:
        """Progress as a percentage: lessons, then the quiz, then the signature."""
        steps_total = self.lessons_total + 2
        steps = self.lessons_completed + (1 if self.passed_attempt else 0) + (1 if self.acknowledgment else 0)
        return round(100 * steps / steps_total)

    @property
    def lessons_done(self) -> bool:
        return self.lessons_completed >= self.lessons_total

    @property
    def attempts_left(self) -> int:
        """Attempts the member may still start (granted ones included)."""
        return max(0, self.attempts_allowed - self.attempts)

    @property
    def extra_attempts(self) -> int:
        """Attempts granted beyond the pack's limit."""
        return self.attempts_allowed - self.assignment.policy_version.max_attempts

    @property
    def at_attempt_limit(self) -> bool:
        """Every allowed attempt used without passing: the member needs a coordinator to go on."""
        return self.passed_attempt is None and self.attempts_left == 0


def status_for(*, due_date: date, today: date, signed_on: date | None, passed: bool,
               last_attempt_failed: bool, started: bool, exempt: bool = False) -> str:
    """The status a member has, from the facts of one assignment (product.md's definitions)."""
    if exempt:
        return "exempt"
    if signed_on is not None:
        return "complete" if signed_on <= due_date else "complete_late"
    if today > due_date:
        return "overdue"
    if passed:
        return "quiz_passed"
    if last_attempt_failed:
        return "quiz_failed"
    return "in_progress" if started else "not_started"


def progress_for(session: Session, assignment: Assignment, *, today: date, tz: str) -> AssignmentProgress:
    """The progress and status of one assignment."""
    lessons_total = session.scalars(select(func.count(Lesson.id)).where(
        Lesson.version_id == assignment.policy_version_id, Lesson.retired.is_(False))).one()
    lessons_completed = session.scalars(
        select(func.count(LessonProgress.id)).join(Lesson)
        .where(LessonProgress.assignment_id == assignment.id, Lesson.retired.is_(False))).one()
    attempts = list(session.scalars(
        select(QuizAttempt).where(QuizAttempt.assignment_id == assignment.id,
                                  QuizAttempt.submitted_at.is_not(None))
        .order_by(QuizAttempt.number)))
    passed = next((a for a in attempts if a.passed), None)
    ack = current_acknowledgment(session, assignment.id)
    started = lessons_completed > 0 or bool(attempts) or session.scalar(
        select(QuizAttempt.id).where(QuizAttempt.assignment_id == assignment.id).limit(1)) is not None
    exempt = session.scalar(select(Exemption.id).where(
        Exemption.cycle_id == assignment.cycle_id, Exemption.member_id == assignment.member_id,
        Exemption.lifted_at.is_(None))) is not None
    status = status_for(
        exempt=exempt, due_date=assignment.due_date, today=today,
        signed_on=local_date(ack.signed_at, tz) if ack else None,
        passed=passed is not None, last_attempt_failed=bool(attempts) and not attempts[-1].passed,
        started=started)
    return AssignmentProgress(
        assignment=assignment, lessons_total=lessons_total, lessons_completed=lessons_completed,
        attempts=len(attempts), best_score=max((a.score for a in attempts if a.score is not None), default=None),
        passed_attempt=passed, last_attempt_failed=bool(attempts) and not attempts[-1].passed,
        acknowledgment=ack, status=status, attempts_allowed=attempts_allowed(session, assignment),
        voided=latest_void(session, assignment.id) if ack is None else None)


def attempts_allowed(session: Session, assignment: Assignment) -> int:
    """The attempts an assignment allows: the content pack's limit plus every grant."""
    return assignment.policy_version.max_attempts + session.scalars(select(extra_attempts(assignment.id))).one()


def latest_void(session: Session, assignment_id: int) -> AcknowledgmentVoid | None:
    """The void of the assignment's latest voided signature, if any."""
    return session.scalar(
        select(AcknowledgmentVoid).join(Acknowledgment, Acknowledgment.id == AcknowledgmentVoid.acknowledgment_id)
        .where(Acknowledgment.assignment_id == assignment_id)
        .options(joinedload(AcknowledgmentVoid.acknowledgment))
        .order_by(Acknowledgment.generation.desc()).limit(1))


def current_acknowledgment(session: Session, assignment_id: int) -> Acknowledgment | None:
    """The signature that stands for an assignment, if any: the latest one not voided."""
    voided = select(AcknowledgmentVoid.acknowledgment_id)
    return session.scalar(
        select(Acknowledgment).where(Acknowledgment.assignment_id == assignment_id,
                                     Acknowledgment.id.not_in(voided))
        .order_by(Acknowledgment.generation.desc()).limit(1))


def member_assignments(session: Session, member_id: int) -> list[Assignment]:
    """A member's current assignments, newest cycle first (superseded ones live on in history)."""
    return list(session.scalars(
        select(Assignment).join(Cycle)
        .where(Assignment.member_id == member_id, Assignment.superseded_at.is_(None))
        .options(joinedload(Assignment.cycle),
                 joinedload(Assignment.policy_version).joinedload(PolicyVersion.policy))
        .order_by(Cycle.year.desc(), Assignment.policy_version_id)))


def member_assignment(session: Session, member_id: int, assignment_id: int) -> Assignment | None:
    """The assignment if it is this member's; None otherwise, so callers answer 404 either way."""
    return session.scalar(
        select(Assignment).where(Assignment.id == assignment_id, Assignment.member_id == member_id)
        .options(joinedload(Assignment.cycle),
                 joinedload(Assignment.policy_version).joinedload(PolicyVersion.policy)))


def completed_lesson_ids(session: Session, assignment_id: int) -> set[int]:
    """Ids of the lessons read for an assignment."""
    return set(session.scalars(select(LessonProgress.lesson_id)
                               .where(LessonProgress.assignment_id == assignment_id)))


def mark_lesson_read(session: Session, assignment: Assignment, lesson: Lesson, now: datetime) -> bool:
    """Record that a lesson was read; returns False if it already was (reading twice is harmless)."""
    if lesson.version_id != assignment.policy_version_id or lesson.retired:
        raise ProgressError("lesson does not belong to this assignment")
    exists = session.scalar(select(LessonProgress.id).where(
        LessonProgress.assignment_id == assignment.id, LessonProgress.lesson_id == lesson.id))
    if exists:
        return False
    session.add(LessonProgress(assignment_id=assignment.id, lesson_id=lesson.id, completed_at=now))
    session.flush()
    return True
