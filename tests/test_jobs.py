"""Background jobs against a real SMTP server (aiosmtpd on 127.0.0.1): reminders are queued in the
coordinator's request and sent by the worker; a server that is down, refuses a recipient or is
slow; the administrator's failed-jobs page and its Retry; the job outbox's rules."""
from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from lms.db import Base, get_database, utcnow
from lms.models import AuditEvent, Job, Reminder
from lms.services import jobs as jobs_service
from tests.conftest import csrf_token
from tests.smtp_server import SMTPServer, free_port


@pytest.fixture
def smtp():
    """A running SMTP server; stopped after the test."""
    servers = []

    def start(**options) -> SMTPServer:
        server = SMTPServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def team(db, make_member, open_cycle):
    """A coordinator, an administrator and five officers with e-mail addresses, none started, in
    this year's cycle due in ten days."""
    officers = [make_member(first=f"Officer{n}", last=f"Number{n}", badge=str(300 + n)) for n in range(5)]
    for member in officers:
        member.email = f"officer{member.badge}@example.org"
    db.commit()
    cycle = open_cycle(due_in_days=10)
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    admin = make_member(first="Ada", last="Min", badge="890", roles=("admin",))
    return cycle, officers, coordinator, admin


def _queue_reminders(client, auth, coordinator, cycle_id: int):
    """Press the coordinator's send button; the response."""
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle_id}/reminders"
    token = csrf_token(client, url)
    return client.post(url, data={"csrf_token": token, "confirm": "y"})


def _run(runner) -> str:
    result = runner.invoke(args=["lms", "jobs", "run"])
    assert result.exit_code == 0, result.output
    return result.output


def test_reminders_go_through_the_worker_to_a_real_smtp_server(app, client, auth, db, runner, team, smtp):
    cycle, officers, coordinator, _ = team
    server = smtp()
    app.config.update(server.config())
    response = _queue_reminders(client, auth, coordinator, cycle.id)
    assert response.status_code == 302
    assert server.recorder.count() == 0  # queued, not sent, in the request
    pressed = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.queue")).one()
    assert pressed.actor_id == coordinator.id and pressed.details == {"queued": 5, "already_reminded": 0}

    assert "5 done, 0 to retry, 0 failed." in _run(runner)
    got = server.recorder.recipients()
    assert got == {m.email: 1 for m in officers}
    _rcpts, message = server.recorder.messages[0]
    assert message["Message-ID"] and message["Date"]
    assert "http://127.0.0.1:5000/training/" in message.get_content()
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.send")).all()
    assert len(events) == 5 and all(e.outcome == "success" and e.actor_id == coordinator.id for e in events)
    assert all(e.details["transport"] == "smtp" and e.details["message_id"] for e in events)
    # Nothing left to do, nothing sent twice.
    assert "0 done" in _run(runner)
    assert server.recorder.count() == 5


def test_a_refused_recipient_is_recorded_and_the_others_get_theirs(app, client, auth, db, runner, team, smtp):
    cycle, officers, coordinator, admin = team
    refused = officers[2]
    server = smtp(refuse={refused.email})
    app.config.update(server.config())
    _queue_reminders(client, auth, coordinator, cycle.id)

    assert "4 done, 0 to retry, 1 failed." in _run(runner)
    assert set(server.recorder.recipients()) == {m.email for m in officers} - {refused.email}
    job = db.scalars(select(Job).where(Job.status == "failed")).one()
    assert job.payload["recipients"] == [refused.email] and job.attempts == 1  # 550: not retried
    assert "550" in job.last_error and "No such user" in job.last_error
    failure = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.send",
                                                  AuditEvent.outcome == "failure")).one()
    assert failure.target == f"member:{refused.id}" and "550" in failure.details["error"]

    # The administrator sees it, and can retry it (audited); still refused, it fails again.
    auth.sign_out()
    auth.sign_in(admin.badge)
    page = client.get("/admin/jobs/").get_data(as_text=True)
    assert f'id="job-{job.id}"' in page and "No such user" in page and refused.email in page
    assert "1 of 5" in page
    token = csrf_token(client, "/admin/jobs/")
    assert client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": token}).status_code == 302
    db.expire_all()
    assert db.get(Job, job.id).status == "pending"
    retried = db.scalars(select(AuditEvent).where(AuditEvent.action == "job.retry")).one()
    assert retried.actor_id == admin.id and retried.target == f"job:{job.id}"
    assert "0 done, 0 to retry, 1 failed." in _run(runner)
    # Retrying what is not failed is refused with a reason.
    done = db.scalars(select(Job).where(Job.status == "done")).first()
    client.post(f"/admin/jobs/{done.id}/retry", data={"csrf_token": token})
    assert "only failed jobs are retried" in client.get("/admin/jobs/").get_data(as_text=True)


def test_a_server_that_is_down_is_retried_with_backoff_then_shown_failed(app, client, auth, db, runner, team, smtp):
    cycle, officers, coordinator, admin = team
    down_port = free_port()  # nobody listens: connection refused
    app.config.update({"MAIL_TRANSPORT": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": down_port,
                       "SMTP_USE_TLS": False, "JOBS_MAX_ATTEMPTS": 3, "JOBS_RETRY_SECONDS": 3600})
    _queue_reminders(client, auth, coordinator, cycle.id)

    # The first attempt is refused: that message waits an hour, and the batch stops sending mail
    # (the others would be refused the same way) without using up their attempts.
    output = _run(runner)
    assert "0 done, 1 to retry, 0 failed." in output
    db.expire_all()
    jobs = db.scalars(select(Job).order_by(Job.id)).all()
    first = jobs[0]
    assert first.status == "pending" and first.attempts == 1 and "ConnectionRefusedError" in first.last_error
    assert first.run_after - utcnow() > timedelta(minutes=55)
    assert [j.attempts for j in jobs[1:]] == [0, 0, 0, 0]

    # With no backoff, every message uses its three attempts and ends failed (bounded loop).
    app.config["JOBS_RETRY_SECONDS"] = 0
    db.execute(Job.__table__.update().values(run_after=utcnow()))
    db.commit()
    for _ in range(30):
        _run(runner)
        if db.scalar(select(func.count(Job.id)).where(Job.status != "failed")) == 0:
            break
    db.expire_all()
    assert [(j.status, j.attempts) for j in db.scalars(select(Job))] == [("failed", 3)] * 5
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "reminder.send",
                                                           AuditEvent.outcome == "failure")) == 5
    # Still one reminder a day: the failed ones are not queued again by another press.
    assert db.scalar(select(func.count(Reminder.id))) == 5

    # The server comes back; the administrator retries each failed job and every member gets one.
    server = smtp()
    app.config.update(server.config())
    auth.sign_out()
    auth.sign_in(admin.badge)
    page = client.get("/admin/jobs/").get_data(as_text=True)
    assert page.count("ConnectionRefusedError") == 5 and "3 of 3" in page
    token = csrf_token(client, "/admin/jobs/")
    for job in db.scalars(select(Job)).all():
        assert client.post(f"/admin/jobs/{job.id}/retry", data={"csrf_token": token}).status_code == 302
    assert "5 done" in _run(runner)
    assert server.recorder.recipients() == {m.email: 1 for m in officers}


def test_a_slow_server_does_not_hold_up_the_request(app, client, auth, db, runner, team, smtp):
    cycle, officers, coordinator, _ = team
    server = smtp(delay=2.0)  # five messages would take ten seconds in the request
    app.config.update(server.config())
    response = _queue_reminders(client, auth, coordinator, cycle.id)
    assert response.status_code == 302
    # The request never reached the mail server (so no wait on it), whatever the machine's load.
    assert server.recorder.connections == 0 and server.recorder.count() == 0
    assert db.scalar(select(func.count(Job.id)).where(Job.status == "pending")) == 5


def test_a_supervisor_copy_goes_with_the_reminder(app, client, auth, db, runner, team, smtp):
    cycle, officers, coordinator, _ = team
    sergeant = officers[0]
    for member in officers[1:]:
        member.supervisor_id = sergeant.id
    db.commit()
    server = smtp()
    app.config.update(server.config())
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/reminders"
    token = csrf_token(client, url)
    saved = client.post(f"{url}/schedule", data={"schedule-csrf_token": token, "schedule-days_before": "14, 7",
                                                 "schedule-copy_supervisor": "y"})
    assert saved.status_code == 302
    auth.sign_out()
    _queue_reminders(client, auth, coordinator, cycle.id)
    _run(runner)
    got = server.recorder.recipients()
    assert got[sergeant.email] == 5  # their own, and a copy for each of their four people
    copied = [m for rcpts, m in server.recorder.messages if m["Cc"]]
    assert len(copied) == 4 and all(m["Cc"] == sergeant.email for m in copied)


def test_heartbeat_age_and_the_claim_rules(app, db):
    now = utcnow()
    assert jobs_service.worker_heartbeat_age(db, now) is None
    jobs_service.beat(db, "host:1", now=now - timedelta(seconds=30), started_at=now - timedelta(minutes=5))
    jobs_service.beat(db, "host:2", now=now - timedelta(seconds=4), started_at=now)
    db.commit()
    assert jobs_service.worker_heartbeat_age(db, now) == timedelta(seconds=4)

    policy = jobs_service.RetryPolicy(max_attempts=2, base_seconds=10, lease_seconds=60)
    first = jobs_service.enqueue(db, "email", {"n": 1}, key="k1", now=now)
    assert jobs_service.enqueue(db, "email", {"n": 1}, key="k1", now=now) is None  # one job per key
    db.commit()
    job = jobs_service.claim_next(db, worker="a", now=now, policy=policy)
    db.commit()
    assert job.id == first and job.attempts == 1 and job.status == "running"
    # Nobody else gets it while the lease holds; after the lease (its worker died), one worker does.
    assert jobs_service.claim_next(db, worker="b", now=now + timedelta(seconds=59), policy=policy) is None
    again = jobs_service.claim_next(db, worker="b", now=now + timedelta(seconds=61), policy=policy)
    assert again.id == first and again.attempts == 2 and again.locked_by == "b"
    db.commit()
    # Abandoned again with no attempts left: failed, not run a third time.
    assert jobs_service.claim_next(db, worker="c", now=now + timedelta(seconds=200), policy=policy) is None
    db.commit()
    db.expire_all()
    assert db.get(type(job), first).status == "failed"
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]


def test_only_administrators_see_the_jobs(client, auth, team):
    _cycle, officers, coordinator, _admin = team
    assert client.get("/admin/jobs/").status_code == 302
    auth.sign_in(coordinator.badge)
    assert client.get("/admin/jobs/").status_code == 403
    token = csrf_token(client, "/training/")
    assert client.post("/admin/jobs/1/retry", data={"csrf_token": token}).status_code == 403


def test_the_jobs_cli_lists_and_retries(app, db, runner, team):
    now = utcnow()
    job_id = jobs_service.enqueue(db, "no-such-kind", {}, key="cli-1", now=now)
    db.commit()
    assert "0 done, 0 to retry, 1 failed." in _run(runner)  # no handler: failed at once
    listed = runner.invoke(args=["lms", "jobs", "list"])
    assert f"{job_id}\tno-such-kind\t1/5\tcli-1\tLookupError" in listed.output
    assert runner.invoke(args=["lms", "jobs", "retry", str(job_id)]).exit_code == 0
    db.expire_all()
    assert db.get(Job, job_id).status == "pending"
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "job.retry")) == 1
    refused = runner.invoke(args=["lms", "jobs", "retry", str(job_id)])
    assert refused.exit_code == 1 and "not failed" in refused.output
    assert runner.invoke(args=["lms", "jobs", "retry", "99999"]).exit_code == 1


def test_migration_matches_the_job_models(app):
    with get_database(app).engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    mine = [d for d in diffs if any(n in repr(d) for n in ("'job'", "worker_heartbeat", "reminder_schedule"))]
    assert mine == []


def test_the_coordinator_sets_a_schedule_and_the_worker_keeps_it(app, client, auth, db, runner, team):
    cycle, officers, coordinator, _ = team
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/reminders"
    page = client.get(url).get_data(as_text=True)
    assert "No schedule yet" in page and 'value="14, 7, 1"' in page
    token = csrf_token(client, url)
    bad = client.post(f"{url}/schedule", data={"schedule-csrf_token": token, "schedule-days_before": "14, soon"})
    assert bad.status_code == 400 and "“soon” is not a number of days" in bad.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Base.metadata.tables["reminder_schedule"])) == 0

    saved = client.post(f"{url}/schedule", data={"schedule-csrf_token": token, "schedule-days_before": "1,14 ,7",
                                                "schedule-weekly_overdue": "y"})
    assert saved.status_code == 302
    page = client.get(url).get_data(as_text=True)
    # Due in ten days: the 14-day stage opened four days ago and nobody was reminded since.
    assert "14, 7, 1 day(s) before the due date, then weekly while overdue" in page
    assert "<strong>5</strong> members due a scheduled reminder today" in page
    assert page.count('<tr class="scheduled">') == 5
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.schedule")).one()
    assert event.details == {"days_before": [14, 7, 1], "weekly_overdue": True, "copy_supervisor": False}

    # The worker's periodic run (here queued by hand): reminders from REMINDER_HOUR on.
    app.config["REMINDER_HOUR"] = 0
    assert runner.invoke(args=["lms", "jobs", "schedule", "reminders"]).exit_code == 0
    assert "6 done" in _run(runner)  # the periodic job, then five e-mails
    db.expire_all()
    reminders = db.scalars(select(Reminder)).all()
    assert len(reminders) == 5 and {r.sent_by_id for r in reminders} == {None}
    campaign = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.campaign")).one()
    assert campaign.details == {"queued": 5, "already_reminded": 0}
    # Again the same day (another hour's run): nobody twice.
    from lms.jobs import enqueue_periodic
    assert enqueue_periodic(app, "reminders", utcnow() - timedelta(minutes=5)) is not None
    assert "1 done" in _run(runner)
    assert db.scalar(select(func.count(Reminder.id))) == 5
    assert "0</strong> members due a scheduled reminder today" in client.get(url).get_data(as_text=True)
    unknown = runner.invoke(args=["lms", "jobs", "schedule", "nonsense"])
    assert unknown.exit_code == 1 and "effective-date-switch" in unknown.output


def test_a_periodic_slot_runs_once_however_many_workers_keep_the_schedule(app, db):
    from lms.jobs import enqueue_periodic

    now = utcnow().replace(second=7)
    assert enqueue_periodic(app, "reminders", now) is not None
    assert enqueue_periodic(app, "reminders", now.replace(second=40)) is None  # same minute
    assert enqueue_periodic(app, "reminders", now + timedelta(minutes=1)) is not None


def test_delivery_failures_are_judged_permanent_only_on_5xx():
    import smtplib

    from lms.services.mail import judge

    refused = judge(smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"No such user")}))
    assert refused.permanent and not refused.connection
    busy = judge(smtplib.SMTPRecipientsRefused({"a@example.org": (451, b"Try later")}))
    assert not busy.permanent
    assert judge(smtplib.SMTPDataError(554, b"Rejected")).permanent
    assert not judge(smtplib.SMTPDataError(421, b"Busy")).permanent
    down = judge(ConnectionRefusedError(111, "Connection refused"))
    assert not down.permanent and down.connection and "ConnectionRefusedError" in down.error
    dropped = judge(smtplib.SMTPServerDisconnected("gone"))
    assert not dropped.permanent and dropped.connection
    assert judge(TimeoutError("timed out")).connection
