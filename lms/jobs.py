"""Background jobs: Huey runs the workers and keeps the schedule; the ``job`` table (the outbox,
lms.services.jobs) holds the work itself.

- A request writes its rows and its job rows in one transaction, commits, then wakes a worker
  (``wake(app)``: a Huey task that drains the outbox). If the wake-up is lost, the worker's own
  poll finds the job within JOBS_POLL_SECONDS.
- ``flask --app app lms worker`` runs a Huey consumer (SQLite storage in the instance folder by
  default, Redis when JOBS_URL is ``redis://…``) plus a heartbeat thread that records the
  worker's last sign of life and wakes a drain whenever due jobs wait.
- Periodic work (SCHEDULE) is itself enqueued as a job with a key per time slot, so when several
  workers keep the schedule, a slot still runs once; it retries, and fails visibly, like any job.

docs/jobs.md explains the choice of engine and what a crash does to each kind of job.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session

from lms.db import get_database, utcnow
from lms.models import Job
from lms.services import jobs as jobs_service
from lms.services.audit import record_event
from lms.services.clock import local_date
from lms.services.links import public_url

log = logging.getLogger("lms.jobs")

#: The job kind of a periodic task's run.
PERIODIC = "periodic"


# --------------------------------------------------------------------------- handlers

def short_transaction(app: Flask):
    """A session of its own in one transaction: committed when the ``with`` block ends, rolled
    back if it raises. The worker's bookkeeping (progress, heartbeats, periodic runs) uses it;
    run_pending settles each job's own transactions in one loop."""
    return get_database(app).sessionmaker.begin()


@dataclass
class JobContext:
    """What a handler may use: the app's settings and instance folder, a mail transport shared by
    the batch, and a way to report progress that commits on its own."""

    app: Flask
    worker: str
    _transport: object | None = None

    @property
    def config(self):
        return self.app.config

    def transport(self):
        """The mail transport of this batch (one SMTP connection for many messages)."""
        if self._transport is None:
            from lms.services.mail import transport_from_config

            self._transport = transport_from_config(self.app.config, self.app.instance_path)
        return self._transport

    def drop_transport(self) -> None:
        """Close the transport (after a connection failure, or at the end of the batch)."""
        if self._transport is not None:
            try:
                self._transport.close()
            except OSError:
                pass
            self._transport = None

    def progress(self, job_id: int, done: int, total: int | None) -> None:
        """Record how far a long job has got, in its own small transaction (so the download page
        shows it while the job's own work is still uncommitted)."""
        with short_transaction(self.app) as session:
            job = session.get(Job, job_id)
            jobs_service.set_progress(session, job, done, total)


Handler = Callable[[JobContext, Session, Job], "dict | None"]


def _send_email(ctx: JobContext, session: Session, job: Job) -> dict:
    """Deliver the message a job carries; audit it in the transaction that marks the job done."""
    from lms.services.mail import message_of

    message = message_of(job.payload)
    transport = ctx.transport()
    refused = transport.send(message)
    result = {"message_id": job.payload.get("message_id"),
              "transport": getattr(transport, "name", type(transport).__name__)}
    if refused:
        result["refused"] = {address: [code, reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)]
                             for address, (code, reply) in refused.items()}
    _audit(session, job, outcome="success", extra=result)
    return result


def _audit(session: Session, job: Job, *, outcome: str, extra: dict) -> None:
    """The audit event a job asked for (e.g. "reminder.send"), with how it went."""
    audit = (job.payload or {}).get("audit")
    if not audit:
        return
    record_event(session, audit["action"], at=utcnow(), actor_id=audit.get("actor_id"),
                 target=audit.get("target"), ip=audit.get("ip"), outcome=outcome,
                 details={**(audit.get("details") or {}), **extra, "job_id": job.id, "attempts": job.attempts})


def _run_periodic(ctx: JobContext, session: Session, job: Job) -> dict | None:
    """Run one slot of a periodic task (the SCHEDULE entry named in the payload)."""
    entry = next((p for p in SCHEDULE if p.name == job.payload["name"]), None)
    if entry is None:
        raise LookupError(f"no periodic task named {job.payload['name']!r} in lms.jobs.SCHEDULE")
    return entry.run(ctx, session, utcnow())


def _export(ctx: JobContext, session: Session, job: Job) -> dict:
    """Build an export into the exports folder (written under a temporary name, then renamed, so
    a download never sees half a file); audited when done."""
    import secrets

    from lms.services import export_jobs

    folder = export_folder(ctx.app)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{job.id}-{secrets.token_hex(8)}.{job.payload['extension']}"
    partial = folder / f".{name}.part"
    job_id = job.id
    try:
        with partial.open("wb") as out:
            built = export_jobs.build(session, job.payload, out, tz=ctx.config["TIMEZONE"], now=utcnow(),
                                      progress=lambda done, total: ctx.progress(job_id, done, total))
        os.replace(partial, folder / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    result = {"file": name, "bytes": (folder / name).stat().st_size, **built}
    _audit(session, job, outcome="success", extra=result)
    return result


def export_folder(app: Flask) -> Path:
    """Where finished exports wait for their download (EXPORT_DIR, or instance/exports)."""
    return Path(app.config.get("EXPORT_DIR") or Path(app.instance_path) / "exports")


def remove_old_exports(ctx: JobContext, session: Session, now: datetime) -> dict:
    """Delete export files older than EXPORT_KEEP_HOURS (their pages then say they expired)."""
    folder = export_folder(ctx.app)
    cutoff = now.timestamp() - float(ctx.config["EXPORT_KEEP_HOURS"]) * 3600
    removed = 0
    for path in folder.glob("*") if folder.exists() else []:
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return {"removed": removed}


#: kind → handler. A handler does the work and writes its rows in ``session``; the runner marks
#: the job done in the same transaction and commits. An exception is a failed attempt.
HANDLERS: dict[str, Handler] = {
    "email": _send_email,
    PERIODIC: _run_periodic,
    "export": _export,
}


# --------------------------------------------------------------------------- periodic work

def crontab(**fields: str) -> Callable[[datetime], bool]:
    """``huey.crontab(**fields)``, built the first time the schedule is checked: importing Huey
    (and the Redis and SQLite storages it loads) costs about 0.1 s, which commands that never run
    the schedule need not pay at start-up."""
    built: list[Callable[[datetime], bool]] = []

    def when(moment: datetime) -> bool:
        if not built:
            from huey import crontab as huey_crontab

            built.append(huey_crontab(**fields))
        return built[0](moment)

    return when


@dataclass(frozen=True)
class Periodic:
    """Work the worker does on a schedule: ``run(ctx, session, now)`` in one transaction."""

    name: str
    #: A huey.crontab(...) in UTC, e.g. crontab(minute="5") for five past every hour.
    when: Callable
    run: Callable[[JobContext, Session, datetime], dict | None]


def switch_effective_versions(ctx: JobContext, session: Session, now: datetime) -> dict:
    """The daily effective-date switch: move open cycles onto policy versions that came into
    force (what ``lms init`` does at start). Runs hourly so it follows the department's local
    midnight wherever the server is; a run with nothing to do changes nothing."""
    from lms.services.personnel_history import apply_due_changes
    from lms.services.versions import reassign_superseded

    today = local_date(now, ctx.config["TIMEZONE"])
    made = reassign_superseded(session, today=today, now=now)
    if made:
        record_event(session, "cycle.version_switch", at=now, details={"assignments": made})
    # Personnel changes entered ahead of their effective date reach the member rows on the day.
    applied = apply_due_changes(session, today=today, now=now)
    return {"assignments": made, "personnel_changes": applied}


def remind_on_schedule(ctx: JobContext, session: Session, now: datetime) -> dict:
    """Queue the reminders each cycle's schedule calls for today, from REMINDER_HOUR (local) on;
    later runs the same day find everyone already reminded."""
    from zoneinfo import ZoneInfo

    from lms.services.reminders import run_campaigns

    tz = ctx.config["TIMEZONE"]
    if now.astimezone(ZoneInfo(tz)).hour < int(ctx.config["REMINDER_HOUR"]):
        return {"queued": 0, "skipped": "before REMINDER_HOUR"}
    queued = run_campaigns(session, now=now, today=local_date(now, tz), tz=tz,
                           department=ctx.config["DEPARTMENT_NAME"], sender=ctx.config["MAIL_SENDER"],
                           base_url=public_url(ctx.config, ""))
    return {"queued": queued}


def remove_old_personnel_uploads(ctx: JobContext, session: Session, now: datetime) -> dict:
    """Remove uploaded personnel files past PERSONNEL_UPLOAD_KEEP_DAYS (their hashes stay in the
    audit log)."""
    from lms.services.personnel import purge_expired_uploads

    return {"removed": purge_expired_uploads(session, now=now,
                                             keep_days=int(ctx.config["PERSONNEL_UPLOAD_KEEP_DAYS"]))}


def anchor_daily(ctx: JobContext, session: Session, now: datetime) -> dict:
    """Store the day's anchor over the chain head (a timestamp token from TSA_URL, or a signature
    with the department key): a rewrite of the whole chain then fails ``verify``."""
    from lms.services.anchoring import anchor_as_configured

    anchor = anchor_as_configured(session, config=ctx.config, instance_path=ctx.app.instance_path, now=now)
    return {"sequence": anchor.sequence, "method": anchor.method}


#: The worker's schedule (UTC). Adding periodic work is one line here: a function
#: ``run(ctx, session, now)`` that does its work in ``session`` without committing.
SCHEDULE: list[Periodic] = [
    Periodic("effective-date-switch", crontab(minute="5"), switch_effective_versions),
    Periodic("reminders", crontab(minute="20"), remind_on_schedule),
    Periodic("remove-old-exports", crontab(minute="40"), remove_old_exports),
    Periodic("anchor", crontab(hour="3", minute="30"), anchor_daily),
    Periodic("remove-old-personnel-uploads", crontab(hour="4", minute="10"), remove_old_personnel_uploads),
]


def enqueue_periodic(app: Flask, name: str, now: datetime) -> int | None:
    """Enqueue one run of a periodic task for the minute ``now`` falls in; None if another
    worker did already (the key is unique per task and minute)."""
    slot = now.replace(second=0, microsecond=0).isoformat()
    with short_transaction(app) as session:
        job_id = jobs_service.enqueue(session, PERIODIC, {"name": name}, key=f"periodic:{name}:{slot}", now=now,
                                      max_attempts=int(app.config["JOBS_MAX_ATTEMPTS"]))
    return job_id


# --------------------------------------------------------------------------- running jobs

@dataclass
class RunSummary:
    """What one drain of the outbox did."""

    done: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def retry_policy(config) -> jobs_service.RetryPolicy:
    """The retry settings (JOBS_MAX_ATTEMPTS, JOBS_RETRY_SECONDS, JOBS_LEASE_SECONDS)."""
    return jobs_service.RetryPolicy(max_attempts=int(config["JOBS_MAX_ATTEMPTS"]),
                                    base_seconds=float(config["JOBS_RETRY_SECONDS"]),
                                    lease_seconds=float(config["JOBS_LEASE_SECONDS"]))


def worker_name() -> str:
    """This process's name in heartbeats and job locks: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def run_pending(app: Flask, *, worker: str | None = None, limit: int | None = None,
                stop: threading.Event | None = None) -> RunSummary:
    """Claim and run due jobs until none is left (or ``limit`` ran, or ``stop`` is set).

    Each job: claim (committed), run its handler, then done and the handler's rows in one commit;
    on an exception, roll the handler's writes back and record the failed attempt (retry after
    the backoff, or failed for good). After a connection failure the batch stops sending e-mail:
    the next messages would fail the same way, and they keep their attempts for later.
    """
    worker = worker or worker_name()
    policy = retry_policy(app.config)
    summary = RunSummary()
    ctx = JobContext(app=app, worker=worker)
    skip: set[str] = set()
    try:
        with get_database(app).sessionmaker() as session:
            while (limit is None or len(summary.done) + len(summary.retrying) + len(summary.failed) < limit) \
                    and not (stop is not None and stop.is_set()):
                job = jobs_service.claim_next(session, worker=worker, now=utcnow(), policy=policy,
                                              exclude=tuple(skip))
                session.commit()
                if job is None:
                    break
                job_id, kind = job.id, job.kind
                try:
                    handler = HANDLERS.get(kind)
                    if handler is None:
                        raise LookupError(f"no handler for jobs of kind {kind!r}")
                    result = handler(ctx, session, job)
                    jobs_service.complete(session, job, now=utcnow(), result=result)
                    session.commit()
                    summary.done.append(job_id)
                except Exception as exc:  # noqa: BLE001 - any failure is a failed attempt, recorded
                    session.rollback()
                    failure = _judge(kind, exc)
                    if failure.connection:
                        ctx.drop_transport()
                        skip.add(kind)
                    job = session.get(Job, job_id, populate_existing=True)
                    retrying = jobs_service.fail(session, job, now=utcnow(), error=failure.error,
                                                 policy=policy, permanent=failure.permanent)
                    if not retrying:
                        _audit(session, job, outcome="failure", extra={"error": failure.error[:500]})
                    session.commit()
                    (summary.retrying if retrying else summary.failed).append(job_id)
                    log.warning("job %s (%s) attempt %s failed%s: %s", job_id, kind, job.attempts,
                                "; will retry" if retrying else "; given up", failure.error)
    finally:
        ctx.drop_transport()
    return summary


def _judge(kind: str, exc: BaseException):
    from lms.services.export_jobs import ExportRefused
    from lms.services.mail import Failure, judge

    if kind == "email":
        return judge(exc)
    if isinstance(exc, ExportRefused):  # trying again would refuse again; the message says why
        return Failure(str(exc), permanent=True, connection=False)
    return Failure(f"{type(exc).__name__}: {exc}", permanent=isinstance(exc, LookupError), connection=False)


# --------------------------------------------------------------------------- the engine

class Engine:
    """The app's Huey instance, built on first use, with the drain task and the schedule."""

    def __init__(self, app: Flask):
        self.app = app
        self._huey = None
        self._lock = threading.Lock()

    @property
    def huey(self):
        with self._lock:
            if self._huey is None:
                self._huey = _make_huey(self.app)
                self._register(self._huey)
            return self._huey

    def _register(self, huey) -> None:
        app = self.app

        @huey.task(name="drain")
        def drain():
            """Run the due jobs of the outbox."""
            summary = run_pending(app)
            return len(summary.done)

        for entry in SCHEDULE:
            def make(entry: Periodic):
                def periodic_slot():
                    if enqueue_periodic(app, entry.name, utcnow()) is not None:
                        drain()
                periodic_slot.__name__ = f"schedule_{entry.name.replace('-', '_')}"
                return periodic_slot
            huey.periodic_task(entry.when, name=f"schedule:{entry.name}")(make(entry))
        self.drain = drain

    def wake(self) -> bool:
        """Ask a worker to drain the outbox now. Never raises: if the broker is down, the workers'
        poll finds the jobs anyway (they are in the database). True if the wake-up was queued."""
        try:
            huey = self.huey
            # One waiting drain is enough; more would only queue empty runs.
            if huey.pending_count() > 2:
                return True
            self.drain()
            return True
        except Exception:  # noqa: BLE001 - a lost wake-up only delays the job by one poll
            log.warning("could not wake a worker; the next poll picks the jobs up", exc_info=True)
            return False


def _make_huey(app: Flask):
    """SqliteHuey in the instance folder (no other server needed), or RedisHuey for JOBS_URL
    redis://… (several worker machines)."""
    url = app.config.get("JOBS_URL") or ""
    name = app.config.get("JOBS_QUEUE_NAME") or "rollcall"
    if url.startswith(("redis://", "rediss://", "unix://")):
        from huey import RedisHuey

        return RedisHuey(name, url=url, results=False, utc=True)
    if url and not url.startswith("sqlite:///"):
        raise ValueError(f"JOBS_URL must be redis://… or sqlite:///…, not {url!r}")
    from huey import SqliteHuey

    filename = url[len("sqlite:///"):] if url else str(Path(app.instance_path) / "jobs.sqlite3")
    # Readable by its owner only, like the main database (SQLite gives its -wal/-shm the same mode).
    if Path(filename).parent.is_dir():
        os.close(os.open(filename, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(filename, 0o600)
    return SqliteHuey(name, filename=filename, results=False, utc=True)


def init_app(app: Flask) -> None:
    """Attach the job engine to the app (Huey itself is built on first use)."""
    app.extensions["lms.jobs"] = Engine(app)


def engine(app: Flask) -> Engine:
    """The app's job engine."""
    return app.extensions["lms.jobs"]


def wake(app: Flask) -> bool:
    """Wake a worker after committing jobs (see Engine.wake)."""
    return engine(app).wake()


# --------------------------------------------------------------------------- the worker process

def run_worker(app: Flask, *, threads: int, schedule: bool = True, parent_pid: int | None = None) -> None:
    """Run a worker until SIGINT (finish the running jobs) or SIGTERM: the Huey consumer with
    ``threads`` worker threads, the schedule (unless ``schedule`` is False) and the heartbeat.

    The heartbeat thread writes this worker's heartbeat every JOBS_HEARTBEAT_SECONDS and, every
    JOBS_POLL_SECONDS, wakes a drain if due jobs wait (a lost wake-up, a retry whose backoff has
    passed, a job whose worker died). With ``parent_pid`` the worker stops when that process is
    gone (``python app.py`` runs its worker so).
    """
    eng = engine(app)
    consumer = eng.huey.create_consumer(workers=threads, worker_type="thread", periodic=schedule,
                                        check_worker_health=True)
    stop = threading.Event()
    name = worker_name()
    started = utcnow()
    beat_every = float(app.config["JOBS_HEARTBEAT_SECONDS"])
    poll_every = float(app.config["JOBS_POLL_SECONDS"])
    policy = retry_policy(app.config)

    def heartbeat() -> None:
        last_poll = 0.0
        while not stop.is_set():
            try:
                now = utcnow()
                with short_transaction(app) as session:
                    jobs_service.beat(session, name, now=now, started_at=started)
                    due = (time.monotonic() - last_poll >= poll_every
                           and jobs_service.has_due_work(session, now=now, policy=policy))
                if due:
                    last_poll = time.monotonic()
                    eng.wake()
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the heartbeat
                log.warning("heartbeat failed", exc_info=True)
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("parent process %s is gone; stopping", parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            stop.wait(min(beat_every, poll_every))

    thread = threading.Thread(target=heartbeat, name="heartbeat", daemon=True)
    thread.start()
    try:
        consumer.run()
    finally:
        stop.set()
        thread.join(timeout=5)
