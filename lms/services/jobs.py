"""The job outbox: enqueue work in the caller's transaction, claim it in a worker, record how it
ended, retry with backoff, and the workers' heartbeats.

The rows in ``job`` are the truth about background work; the job engine (Huey, see ``lms.jobs``)
only wakes workers up and keeps the schedule. A request that writes rows and enqueues work commits
both or neither, so a crash never loses a message; a worker claims a job in a committed update
that only one worker can win, so two workers never run the same job at once. docs/jobs.md tells
the whole story, including what happens when a worker dies mid-job.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lms.models import Job, WorkerHeartbeat
from lms.services.audit import record_event

#: Longest wait between two attempts, whatever the backoff says.
MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing job is tried again."""

    #: Attempts in all, the first included.
    max_attempts: int = 5
    #: Wait before the second attempt; doubled for each further one (capped at MAX_BACKOFF).
    base_seconds: float = 60.0
    #: A running job whose worker has not finished it within this long is presumed abandoned
    #: (the worker died) and is run again.
    lease_seconds: float = 600.0

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: base, 2×base, 4×base, …"""
        return min(timedelta(seconds=self.base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def enqueue(session: Session, kind: str, payload: dict, *, key: str, now: datetime,
            created_by_id: int | None = None, max_attempts: int = 5,
            run_after: datetime | None = None) -> int | None:
    """Add a job in the caller's transaction; its id, or None when a job with ``key`` exists
    already (the same work enqueued twice is one job). Flushes, never commits."""
    dialect = session.get_bind().dialect.name
    insert: Callable[..., Any] | None = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise NotImplementedError(f"jobs have no conflict-free insert for {dialect}")
    statement = (insert(Job).values(kind=kind, key=key, payload=payload, status="pending", attempts=0,
                                    max_attempts=max_attempts, run_after=run_after or now,
                                    created_at=now, created_by_id=created_by_id, progress_done=0)
                 .on_conflict_do_nothing(index_elements=["key"]).returning(Job.id))
    return session.execute(statement).scalar()


def _claimable(now: datetime, policy: RetryPolicy):
    """Pending and due, or running past its lease (its worker died)."""
    stale = now - timedelta(seconds=policy.lease_seconds)
    return or_(and_(Job.status == "pending", Job.run_after <= now),
               and_(Job.status == "running", Job.locked_at < stale))


def claim_next(session: Session, *, worker: str, now: datetime, policy: RetryPolicy,
               exclude: tuple[str, ...] = ()) -> Job | None:
    """Take the next due job for ``worker``: pending → running, attempts + 1. The caller commits
    the claim before doing the work. The update is conditional on the row still being claimable,
    so when two workers race for a job exactly one wins; the loser tries the next one.

    A job taken over from a dead worker that has used up its attempts is failed instead. Kinds
    in ``exclude`` are left for later (e.g. e-mail after the mail server refused a connection).
    """
    query = select(Job.id).where(_claimable(now, policy)).order_by(Job.run_after, Job.id).limit(20)
    if exclude:
        query = query.where(Job.kind.not_in(exclude))
    for job_id in session.scalars(query).all():
        won = session.execute(  # type: ignore[attr-defined]  # DML gives a CursorResult
            update(Job).where(Job.id == job_id, _claimable(now, policy))
            # The limit in force now applies (a setting changed since enqueueing).
            .values(status="running", locked_by=worker, locked_at=now, attempts=Job.attempts + 1,
                    max_attempts=policy.max_attempts)
            .execution_options(synchronize_session=False)).rowcount
        if not won:
            continue
        job = session.get_one(Job, job_id, populate_existing=True)
        if job.attempts > job.max_attempts:
            # Only a worker that died while holding it can bring a job here.
            job.status, job.finished_at = "failed", now
            job.last_error = ((job.last_error + "\n") if job.last_error else "") + \
                "The worker stopped while running this job, and it has no attempts left."
            session.flush()
            continue
        return job
    return None


def complete(session: Session, job: Job, *, now: datetime, result: dict | None = None) -> None:
    """Record that ``job`` is done, in the transaction that records what it did."""
    job.status, job.finished_at, job.locked_by, job.locked_at = "done", now, None, None
    if result is not None:
        job.result = result
    session.flush()


def fail(session: Session, job: Job, *, now: datetime, error: str, policy: RetryPolicy,
         permanent: bool = False) -> bool:
    """Record a failed attempt: try again after the backoff, or, when the error is permanent or
    the attempts are used up, mark the job failed for the administrator. True if it will retry."""
    job.last_error = error[:2000]
    job.locked_by = job.locked_at = None
    if permanent or job.attempts >= job.max_attempts:
        job.status, job.finished_at = "failed", now
        session.flush()
        return False
    job.status, job.run_after = "pending", now + policy.delay(job.attempts)
    session.flush()
    return True


def set_progress(session: Session, job: Job, done: int, total: int | None) -> None:
    """Record how far long work has got (shown on its download page)."""
    job.progress_done, job.progress_total = done, total
    session.flush()


class JobError(Exception):
    """A job that cannot be retried (not failed), with the reason."""


def retry(session: Session, job: Job, *, now: datetime, actor_id: int | None, ip: str | None) -> None:
    """An administrator's retry of a failed job: it runs again as soon as a worker is free, with
    its attempts counted afresh. Audited as "job.retry"."""
    if job.status != "failed":
        raise JobError(f"Job {job.id} is {job.status}, not failed; only failed jobs are retried.")
    record_event(session, "job.retry", at=now, actor_id=actor_id, target=f"job:{job.id}", ip=ip,
                 details={"kind": job.kind, "key": job.key, "attempts": job.attempts,
                          "last_error": (job.last_error or "")[:500]})
    job.status, job.run_after, job.finished_at, job.attempts = "pending", now, None, 0
    session.flush()


def failed_jobs(session: Session, *, limit: int = 200) -> list[Job]:
    """Failed jobs, the latest first."""
    return list(session.scalars(select(Job).where(Job.status == "failed")
                                .order_by(Job.finished_at.desc(), Job.id.desc()).limit(limit)))


def status_counts(session: Session) -> dict[str, int]:
    """How many jobs are pending, running, done and failed."""
    return dict(session.execute(select(Job.status, func.count(Job.id)).group_by(Job.status)).all())


def has_due_work(session: Session, *, now: datetime, policy: RetryPolicy) -> bool:
    """Whether any job is waiting for a worker now (a cheap check before waking one)."""
    return session.scalar(select(Job.id).where(_claimable(now, policy)).limit(1)) is not None


def beat(session: Session, worker: str, *, now: datetime, started_at: datetime) -> None:
    """Record that ``worker`` is alive at ``now``."""
    row = session.get(WorkerHeartbeat, worker)
    if row is None:
        session.add(WorkerHeartbeat(name=worker, started_at=started_at, beat_at=now))
    else:
        row.beat_at = now
    session.flush()


def worker_heartbeat_age(session: Session, now: datetime | None = None) -> timedelta | None:
    """How long ago (before ``now``, the current time by default) the most recent worker heartbeat
    was; None if no worker ever beat.

    Workers beat every few seconds (JOBS_HEARTBEAT_SECONDS), so an age of more than a minute or
    two means no worker is running: /readyz can report the worker down past such a limit.
    """
    last = session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
    if last is None:
        return None
    if last.tzinfo is None:  # in case a driver hands back the aggregate without the column type
        last = last.replace(tzinfo=timezone.utc)
    return (now or datetime.now(timezone.utc)) - last


def live_workers(session: Session, *, now: datetime, within: timedelta) -> list[WorkerHeartbeat]:
    """Workers that beat within ``within`` of ``now``, newest first."""
    return list(session.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.beat_at >= now - within)
                                .order_by(WorkerHeartbeat.beat_at.desc())))
