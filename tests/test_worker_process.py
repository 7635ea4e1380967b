"""A real worker process (``flask --app app lms worker``) sending reminders to a real SMTP server,
on SQLite with Huey's SQLite queue and, when LMS_TEST_DATABASE_URL is set, on PostgreSQL with the
Redis broker; killed mid-batch with SIGKILL and restarted; and the worker ``python app.py`` starts
beside the development server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from lms.config import PROJECT_ROOT
from lms.db import utcnow
from lms.jobs import engine
from lms.models import Job
from lms.services import jobs as jobs_service
from tests.conftest import PG_URL
from tests.smtp_server import free_port
from tests.test_jobs import _queue_reminders, smtp, team  # noqa: F401 - fixtures

REDIS_URL = os.environ.get("LMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")


def wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def broker(app):
    """The broker the worker and the web share: Huey's SQLite file in the instance folder, or
    Redis (its own queue name per test) in the PostgreSQL pass."""
    settings = {}
    if PG_URL:
        settings = {"JOBS_URL": REDIS_URL, "JOBS_QUEUE_NAME": f"rollcall-test-{uuid.uuid4().hex[:8]}"}
    app.config.update(settings)
    yield settings
    if PG_URL:
        engine(app).huey.flush()


class Worker:
    """``flask --app app lms worker`` in its own process, with the test app's settings."""

    def __init__(self, app, smtp_port: int, broker: dict, log: Path, **extra):
        self.env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "LMS_INSTANCE_PATH": app.instance_path,
                    "LMS_MAIL_TRANSPORT": "smtp", "LMS_SMTP_HOST": "127.0.0.1", "LMS_SMTP_PORT": str(smtp_port),
                    "LMS_SMTP_USE_TLS": "false", "LMS_JOBS_POLL_SECONDS": "1", "LMS_JOBS_HEARTBEAT_SECONDS": "1",
                    "LMS_SEED_DEMO_ON_FIRST_RUN": "false",
                    **{f"LMS_{k}": str(v) for k, v in {**broker, **extra}.items()}}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        handle = self.log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "lms", "worker", "--threads", "2"],
                                        cwd=PROJECT_ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        return self

    def stop(self, sig=signal.SIGINT) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def workers(app, broker, tmp_path):
    """Start workers; every one is stopped after the test."""
    started: list[Worker] = []

    def start(smtp_port: int, **extra) -> Worker:
        worker = Worker(app, smtp_port, broker, tmp_path / "worker.log", **extra).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(signal.SIGKILL)


def test_a_worker_process_sends_the_queued_reminders(app, client, auth, db, team, smtp, workers, tmp_path):
    cycle, officers, coordinator, _ = team
    server = smtp()
    worker = workers(server.port)
    wait_for(lambda: jobs_service.worker_heartbeat_age(db, utcnow()) is not None, what="the first heartbeat")

    assert _queue_reminders(client, auth, coordinator, cycle.id).status_code == 302
    wait_for(lambda: server.recorder.count() >= 5, what="five messages")
    db.expire_all()
    wait_for(lambda: db.scalar(select(Job.id).where(Job.status != "done")) is None, what="jobs done")
    assert server.recorder.recipients() == {m.email: 1 for m in officers}
    age = jobs_service.worker_heartbeat_age(db, utcnow())
    assert age is not None and age.total_seconds() < 10
    assert worker.stop() == 0, (tmp_path / "worker.log").read_text()[-3000:]


def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_at_most_the_message_in_flight(
        app, client, auth, db, team, smtp, workers, tmp_path):
    cycle, officers, coordinator, _ = team
    server = smtp(delay=0.6)  # slow, so the kill lands mid-batch
    # A short lease, so the restarted worker takes over the job the killed one was running.
    first = workers(server.port, JOBS_LEASE_SECONDS=2)
    wait_for(lambda: jobs_service.worker_heartbeat_age(db, utcnow()) is not None, what="the first heartbeat")
    _queue_reminders(client, auth, coordinator, cycle.id)
    wait_for(lambda: server.recorder.count() >= 2, what="two messages")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    db.expire_all()
    done_before = {j.payload["recipients"][0] for j in db.scalars(select(Job).where(Job.status == "done"))}
    in_flight = {j.payload["recipients"][0] for j in db.scalars(select(Job).where(Job.status == "running"))}
    assert 1 <= len(done_before) < 5 and len(in_flight) <= 2  # two threads: at most two in flight

    workers(server.port, JOBS_LEASE_SECONDS=2)
    wait_for(lambda: set(server.recorder.recipients()) == {m.email for m in officers}, what="every member's e-mail")
    db.expire_all()
    wait_for(lambda: (db.expire_all(), db.scalar(select(Job.id).where(Job.status != "done")))[1] is None,
             what="jobs done")
    got = server.recorder.recipients()
    # Everyone got theirs; the messages recorded as sent before the kill were never sent again;
    # a second copy is possible only for a message in flight at the kill (at-least-once), and it
    # carries the same Message-ID as the first.
    assert all(got[email] == 1 for email in done_before)
    duplicates = {email for email, n in got.items() if n > 1}
    assert duplicates <= in_flight and all(got[e] == 2 for e in duplicates)
    for email in duplicates:
        ids = {m["Message-ID"] for rcpts, m in server.recorder.messages if email in rcpts}
        assert len(ids) == 1


def test_python_app_py_runs_a_worker_beside_the_server_and_stops_it(tmp_path):
    instance = tmp_path / "instance"
    database = f"sqlite:///{instance / 'rollcall.sqlite3'}"
    port = free_port()
    env = {**os.environ, "LMS_INSTANCE_PATH": str(instance), "DATABASE_URL": database,
           "LMS_SEED_DEMO_ON_FIRST_RUN": "false", "LMS_JOBS_HEARTBEAT_SECONDS": "1"}
    env.pop("LMS_JOBS_URL", None)
    log = (tmp_path / "app.log").open("wb")
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=PROJECT_ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    engine_ = create_engine(database)
    try:
        def beating():
            try:
                with engine_.connect() as conn:
                    return conn.execute(text("SELECT name FROM worker_heartbeat")).scalars().all()
            except Exception:  # noqa: BLE001 - the schema is not there yet
                return []
        wait_for(lambda: bool(beating()), timeout=90, what="the worker's heartbeat")
        worker_pid = int(beating()[0].rpartition(":")[2])
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

        def gone():
            try:
                os.kill(worker_pid, 0)
            except ProcessLookupError:
                return True
            return False
        wait_for(gone, timeout=30, what="the worker to stop with the server")
    finally:
        if server.poll() is None:
            server.kill()
        log.close()
        engine_.dispose()
