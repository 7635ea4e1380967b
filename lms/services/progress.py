"""A member's progress through an assignment, and the status it adds up to."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, lazyload

from lms.models import (
    Acknowledgment,
    AcknowledgmentVoid,
    Assignment,
    Cycle,
    Lesson,
    LessonProgress,
    PolicyVersion,
    QuizAttempt,
)
from lms.models.assignment_state import extra_attempts
from lms.models.status import STATUSES, progress_of, status_of  # noqa: F401 - STATUSES: this module's name for it

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


def status_for(*, due_date: date, today: date, signed_on: date | None, passed: bool, submitted: bool,
               started: bool, exempt: bool = False) -> str:
    """The status a member has, from the facts of one assignment: the rule of lms.models.status,
    evaluated here rather than in SQL."""
    return status_of(exempt=exempt, signed_on_time=signed_on is not None and signed_on <= due_date,
                     signed=signed_on is not None, past_due=today > due_date,
                     progress=progress_of(passed=passed, submitted=submitted, started=started))


def progress_for(session: Session, assignment: Assignment, *, today: date, tz: str) -> AssignmentProgress:
    """The progress and status of one assignment."""
    return progresses_for(session, [assignment], today=today, tz=tz)[0]


def progresses_for(session: Session, assignments: list[Assignment], *, today: date,
                   tz: str) -> list[AssignmentProgress]:
    """The progress and status of each assignment, in the same order.

    Read from the progress and counts stored on each assignment (kept in the same transaction as
    every change by ``lms.models.assignment_state``, and held to the full computation by
    ``tests/services/test_assignment_state.py``), so a member's page costs the same whatever their
    history: at most four queries for any number of assignments, and no quiz questions loaded.
    ``tz`` is kept for callers; the stored signing date is already the department's local date.
    """
    if not assignments:
        return []
    lessons_total = dict(session.execute(
        select(Lesson.version_id, func.count(Lesson.id))
        .where(Lesson.version_id.in_({a.policy_version_id for a in assignments}), Lesson.retired.is_(False))
        .group_by(Lesson.version_id)).all())
    passed: dict[int, QuizAttempt] = {}
    with_pass = [a.id for a in assignments if a.progress == "quiz_passed"]
    if with_pass:
        # The attempt alone, for its score and number: its drawn questions stay unloaded.
        for attempt in session.scalars(
                select(QuizAttempt).where(QuizAttempt.assignment_id.in_(with_pass), QuizAttempt.passed.is_(True),
                                          QuizAttempt.submitted_at.is_not(None))
                .options(lazyload(QuizAttempt.items)).order_by(QuizAttempt.number.desc())):
            passed[attempt.assignment_id] = attempt  # the first passed attempt wins
    acknowledgments = current_acknowledgments(session, [a.id for a in assignments if a.signed_on is not None])
    voids = latest_voids(session, [a.id for a in assignments if a.signed_on is None])
    results = []
    for assignment in assignments:
        # The rule of lms.models.status over the stored facts, as the roster of now applies it.
        signed_on = assignment.signed_on
        status = status_of(exempt=assignment.exemption_reason is not None,
                           signed_on_time=signed_on is not None and signed_on <= assignment.due_date,
                           signed=signed_on is not None, past_due=today > assignment.due_date,
                           progress=assignment.progress)
        results.append(AssignmentProgress(
            assignment=assignment, lessons_total=lessons_total.get(assignment.policy_version_id, 0),
            lessons_completed=assignment.lessons_completed, attempts=assignment.quiz_attempts,
            best_score=assignment.quiz_best_score, passed_attempt=passed.get(assignment.id),
            last_attempt_failed=assignment.progress == "quiz_failed",
            acknowledgment=acknowledgments.get(assignment.id), status=status,
            attempts_allowed=assignment.policy_version.max_attempts + assignment.extra_attempts,
            voided=voids.get(assignment.id)))
    return results


def attempts_allowed(session: Session, assignment: Assignment) -> int:
    """The attempts an assignment allows: the content pack's limit plus every grant."""
    return assignment.policy_version.max_attempts + session.scalars(select(extra_attempts(assignment.id))).one()


def latest_voids(session: Session, assignment_ids: list[int]) -> dict[int, AcknowledgmentVoid]:
    """For each of the assignments that has one, the void of its latest voided signature."""
    if not assignment_ids:
        return {}
    voids = session.scalars(
        select(AcknowledgmentVoid).join(Acknowledgment, Acknowledgment.id == AcknowledgmentVoid.acknowledgment_id)
        .where(Acknowledgment.assignment_id.in_(assignment_ids))
        .options(joinedload(AcknowledgmentVoid.acknowledgment))
        .order_by(Acknowledgment.generation))
    return {void.acknowledgment.assignment_id: void for void in voids}  # the latest generation wins


def current_acknowledgments(session: Session, assignment_ids: list[int]) -> dict[int, Acknowledgment]:
    """For each of the assignments that has one, the signature that stands (the latest not voided)."""
    if not assignment_ids:
        return {}
    acknowledgments = session.scalars(
        select(Acknowledgment).where(Acknowledgment.assignment_id.in_(assignment_ids),
                                     Acknowledgment.id.not_in(select(AcknowledgmentVoid.acknowledgment_id)))
        .order_by(Acknowledgment.generation))
    return {ack.assignment_id: ack for ack in acknowledgments}  # the latest generation wins


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
        .order_by(Cycle.year.desc(), Cycle.id.desc(), Assignment.policy_version_id)))


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
