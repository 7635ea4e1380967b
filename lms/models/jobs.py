"""Background work: the job outbox a request writes in its own transaction, the workers'
heartbeats, and each cycle's reminder schedule."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import Base, UTCDateTime

JOB_STATUSES = ("pending", "running", "done", "failed")


class Job(Base):
    """One piece of work to do outside a request: an e-mail to send, an export to build.

    Written in the same transaction as the rows it acts on, so a rolled-back request leaves no job
    and a committed one always has its job. Workers claim a row (pending → running, attempts + 1,
    committed) before the work and record the outcome (done or failed) in the transaction that
    records what the work did; a running row whose worker died is taken over once its lease ends.
    """

    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
        # The claim's scan: due work in order.
        Index("ix_job_status_run_after", "status", "run_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What to do: "email", "export.receipts", …; a handler per kind runs it.
    kind: Mapped[str] = mapped_column(String(40))
    #: Idempotency key, unique: enqueueing the same work twice yields one job.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    #: The handler's arguments (JSON): everything it needs, so the work does not depend on rows
    #: that may change between enqueueing and running.
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    #: Attempts started so far (a claim counts one).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    max_attempts: Mapped[int] = mapped_column(default=5, server_default="5")
    #: Not to be tried before this time (the retry backoff).
    run_after: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The worker holding a running job, and since when (its lease starts there).
    locked_by: Mapped[str | None] = mapped_column(String(120))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last failure, as "ExceptionType: message"; never a password.
    last_error: Mapped[str | None] = mapped_column(Text)
    #: What the work produced (a file name, refused recipients), for pages and the audit.
    result: Mapped[dict | None] = mapped_column(JSON)
    #: Progress of long work: items done of total.
    progress_done: Mapped[int] = mapped_column(default=0, server_default="0")
    progress_total: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkerHeartbeat(Base):
    """The last sign of life of each worker process, for /readyz and the administrator."""

    __tablename__ = "worker_heartbeat"

    #: host:pid of the worker process.
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderSchedule(Base):
    """When a cycle's members are reminded without anyone pressing a button."""

    __tablename__ = "reminder_schedule"

    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"), primary_key=True)
    #: Days before the due date, e.g. "14,7,1".
    days_before: Mapped[str] = mapped_column(String(100), default="")
    #: Once a week while a member is overdue.
    weekly_overdue: Mapped[bool] = mapped_column(default=True, server_default=true())
    #: Send the member's supervisor a copy.
    copy_supervisor: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
