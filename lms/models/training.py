"""Training cycles, the assignments they make, and each member's progress through them."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import Base, UTCDateTime
from lms.models.people import Member
from lms.models.policies import Lesson, PolicyVersion, Question


class Cycle(Base):
    """An annual training cycle: policy versions assigned to an audience with a due date."""

    __tablename__ = "cycle"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(120))
    due_date: Mapped[date]
    #: Days a member who joins the audience late (new hire, back from leave) has to complete.
    grace_days: Mapped[int] = mapped_column(default=30)
    #: {"units": [...], "ranks": [...]}; empty lists mean every active member.
    audience: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))

    policy_versions: Mapped[list[PolicyVersion]] = relationship(
        secondary="cycle_policy", order_by="PolicyVersion.policy_id"
    )


class CyclePolicy(Base):
    """A policy version that a cycle assigns."""

    __tablename__ = "cycle_policy"

    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"), primary_key=True)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_version.id"), primary_key=True)


class Assignment(Base):
    """One member's duty to complete one policy version in one cycle."""

    __tablename__ = "assignment"
    __table_args__ = (
        UniqueConstraint("cycle_id", "member_id", "policy_version_id"),
        # Everything the roster's counts read of a cycle's current assignments, so they come from
        # the index alone (migration 0009, docs/performance.md).
        Index("ix_assignment_cycle_id_state", "cycle_id", "superseded_at", "member_id", "due_date",
              "signed_on", "progress", "exemption_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_version.id"))
    #: The cycle's due date, or later for a member who joined the audience late.
    due_date: Mapped[date]
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when a later version of the policy came into force during the cycle and replaced this
    #: assignment; a signature already given stays on record.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Stored progress, kept up to date in the same transaction by lms.models.assignment_state
    # whenever lessons read, attempts, signatures, voids or exemptions change, so the roster of
    # "now" needs no pass over those tables. Only the part that does not depend on the date is
    # stored; the roster adds overdue, complete and exempt when it reads these.
    #: not_started, in_progress, quiz_failed or quiz_passed, from the lessons read and attempts.
    progress: Mapped[str] = mapped_column(String(20), default="not_started", server_default="not_started")
    #: The department's local date of the signature that stands (not voided); None if none.
    signed_on: Mapped[date | None]
    #: The reason of the member's exemption in force in this cycle; None when not exempt.
    exemption_reason: Mapped[str | None] = mapped_column(String(500))
    # The roster's counts, kept by the same listener and rule (migration 0010), so an export of
    # every row reads them from the assignment instead of grouping the cycle's lessons read and
    # attempts on every run (docs/performance.md, "Stored counts").
    #: Lessons read that are still in the pack (retired lessons do not count).
    lessons_completed: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Quiz attempts submitted.
    quiz_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    #: The best score of a submitted attempt, a percentage; None before the first is submitted.
    quiz_best_score: Mapped[int | None]
    #: Extra quiz attempts granted by coordinators (the sum of ``AttemptGrant.attempts``, migration
    #: 0012); the member may submit the pack's ``max_attempts`` plus these.
    extra_attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    cycle: Mapped[Cycle] = relationship()
    member: Mapped[Member] = relationship()
    policy_version: Mapped[PolicyVersion] = relationship()


class LessonProgress(Base):
    """A lesson a member has read for an assignment."""

    __tablename__ = "lesson_progress"
    __table_args__ = (UniqueConstraint("assignment_id", "lesson_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"), index=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id"))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    lesson: Mapped[Lesson] = relationship()


class QuizAttempt(Base):
    """One attempt at a version's quiz; the drawn questions are fixed when it starts."""

    __tablename__ = "quiz_attempt"
    __table_args__ = (
        UniqueConstraint("assignment_id", "number"),
        # What the roster reads of an assignment's attempts (migration 0008, docs/performance.md).
        Index("ix_quiz_attempt_assignment_id_started_at", "assignment_id", "started_at", "submitted_at",
              "score", "passed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"), index=True)
    #: 1 for the first attempt of the assignment, then 2, 3…
    number: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    correct_count: Mapped[int | None]
    #: Percentage 0–100, rounded down, set at submission.
    score: Mapped[int | None]
    passed: Mapped[bool | None]

    assignment: Mapped[Assignment] = relationship()
    items: Mapped[list[AttemptItem]] = relationship(
        back_populates="attempt", order_by="AttemptItem.position", lazy="selectin"
    )


class AttemptItem(Base):
    """A question drawn into an attempt, the order its options were shown, and what was chosen."""

    __tablename__ = "attempt_item"
    __table_args__ = (UniqueConstraint("attempt_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempt.id"))
    position: Mapped[int]
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    #: Option ids in the order they were shown.
    option_order: Mapped[list] = mapped_column(JSON)
    #: Option ids chosen; None until submission.
    chosen: Mapped[list | None] = mapped_column(JSON)
    correct: Mapped[bool | None]
    #: Option ids the member has chosen so far in an open attempt, saved as they answer so an idle
    #: sign-out or a dropped connection loses nothing; None until they choose.
    saved: Mapped[list | None] = mapped_column(JSON)
    saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempt: Mapped[QuizAttempt] = relationship(back_populates="items")
    question: Mapped[Question] = relationship(lazy="joined")


class AttemptGrant(Base):
    """Extra quiz attempts a coordinator granted a member for one assignment, with the reason; a
    record (append-only): a grant given in error is answered by the member not using it."""

    __tablename__ = "attempt_grant"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"), index=True)
    #: How many attempts this grant adds (at least 1).
    attempts: Mapped[int]
    reason: Mapped[str] = mapped_column(String(500))
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    assignment: Mapped[Assignment] = relationship()
    granted_by: Mapped[Member] = relationship(foreign_keys=[granted_by_id])


class Exemption(Base):
    """A member excused from a cycle (leave, military, light duty), with the reason and who
    granted it; lifting it sets ``lifted_at`` rather than deleting the row."""

    __tablename__ = "exemption"

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))

    member: Mapped[Member] = relationship(foreign_keys=[member_id])
    granted_by: Mapped[Member | None] = relationship(foreign_keys=[granted_by_id])


class Reminder(Base):
    """A reminder e-mail sent to a member; at most one per member per local day."""

    __tablename__ = "reminder"
    __table_args__ = (UniqueConstraint("member_id", "sent_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    #: The department's local date of sending: the once-a-day rule is about the member's day.
    sent_on: Mapped[date]
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    #: The status that prompted it, e.g. overdue or not_started.
    status: Mapped[str] = mapped_column(String(20))
