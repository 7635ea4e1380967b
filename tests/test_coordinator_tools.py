"""The coordinator's item analysis and reminder e-mails: numbers checked against an independent
count, the once-a-day rule, the outbox, the audit trail, and that officers cannot reach them."""
from __future__ import annotations

import random
import re
from collections import Counter
from datetime import timedelta
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lms.db import utcnow
from lms.models import Assignment, AttemptItem, AuditEvent, Exemption, Question, QuizAttempt, Reminder
from lms.services import quiz as quiz_service
from lms.services import reminders as reminders_service
from lms.services.clock import local_date
from lms.services.cycles import create_cycle
from lms.services.item_analysis import item_analysis
from lms.services.progress import mark_lesson_read
from tests.conftest import csrf_token

TZ = "America/Chicago"
#: A script element without a src: the CSP allows only this site's script files.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=\"/static/)[^>]*>")


def _today_and_now():
    now = utcnow()
    return local_date(now, TZ), now


def _assignment(db, member) -> Assignment:
    return db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()


# ------------------------------------------------------------------------------- item analysis

def _seed_drawing(db, assignment, must_include: set[int], start: int) -> int:
    """A seed whose draw includes the given questions (start_attempt draws exactly like this)."""
    version = assignment.policy_version
    bank = list(db.scalars(select(Question).where(Question.version_id == version.id,
                                                  Question.retired.is_(False)).order_by(Question.position)))
    for seed in range(start, start + 5000):
        drawn = quiz_service.draw_questions(bank, version.minimum_per_topic, version.draw_size, random.Random(seed))
        if must_include <= {q.id for q in drawn}:
            return seed
    raise AssertionError("no seed draws the wanted questions")


def _answer(item, n: int, target_id: int, target_wrong: list[int | None], steady_id: int) -> list[int]:
    """Known choices: the target question mostly wrong (which wrong option per member is given),
    the steady question right except for one member, the rest by a fixed rule that also picks a
    wrong option beside the right ones on multiple-answer questions now and then."""
    options = sorted(item.question.options, key=lambda o: o.position)
    right = [o.id for o in options if o.correct]
    wrong = [o.id for o in options if not o.correct]
    if item.question_id == target_id:
        pick = target_wrong[n]
        return right if pick is None else [wrong[pick]]
    if item.question_id == steady_id:
        return [wrong[0]] if n == 0 else right
    rule = (n + item.position) % 3
    if rule == 1:
        return [wrong[-1]]
    if rule == 2 and item.question.kind == "multiple":
        return right + [wrong[0]]
    return right


@pytest.fixture
def quiz_history(db, make_member):
    """Six members' submitted attempts with known choices, one open attempt that must not count,
    in this year's cycle; and a coordinator."""
    today, now = _today_and_now()
    officers = [make_member(first=f"Q{n}", last="Taker", badge=str(600 + n)) for n in range(6)]
    cycle = create_cycle(db, year=today.year, due_date=today + timedelta(days=30), today=today, now=now)
    db.flush()
    first = _assignment(db, officers[0])
    questions = {q.key: q for q in db.scalars(select(Question).where(
        Question.version_id == first.policy_version_id, Question.retired.is_(False)))}
    target = questions["ods-01"]  # single answer, four options
    steady = questions["ods-04"]  # single answer, four options
    # Member n's choice on the target: None = right, else the index of the wrong option.
    target_wrong = [0, 0, None, 1, 0, None]
    for n, member in enumerate(officers):
        assignment = _assignment(db, member)
        for lesson in assignment.policy_version.lessons:
            mark_lesson_read(db, assignment, lesson, now)
        seed = _seed_drawing(db, assignment, {target.id, steady.id}, start=100 * n)
        attempt = quiz_service.start_attempt(db, assignment, now, rng=random.Random(seed))
        answers = {item.position: _answer(item, n, target.id, target_wrong, steady.id) for item in attempt.items}
        quiz_service.submit_attempt(db, attempt, answers, now)
    # A second attempt started and never submitted: its items have no answers and do not count.
    retry = _assignment(db, officers[0])
    assert not db.scalars(select(QuizAttempt).where(QuizAttempt.assignment_id == retry.id)).one().passed
    quiz_service.start_attempt(db, retry, now, rng=random.Random(7))
    db.commit()
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",),
                              unit="Administration")
    return {"cycle": cycle, "target": target, "steady": steady, "coordinator": coordinator,
            "officers": officers}


def _independent_count(db, cycle_id):
    """Per question: answers, correct answers and picks per option, counted in Python from the
    submitted attempt items."""
    answered, correct, picks = Counter(), Counter(), Counter()
    items = db.scalars(select(AttemptItem).join(QuizAttempt).join(Assignment).where(
        Assignment.cycle_id == cycle_id, QuizAttempt.submitted_at.is_not(None))).all()
    for item in items:
        answered[item.question_id] += 1
        correct[item.question_id] += bool(item.correct)
        for option_id in item.chosen:
            picks[option_id] += 1
    return answered, correct, picks


def test_item_analysis_matches_an_independent_count(db, quiz_history):
    cycle = quiz_history["cycle"]
    version = cycle.policy_versions[0]
    analysis = item_analysis(db, cycle, version)
    answered, correct, picks = _independent_count(db, cycle.id)

    assert analysis.attempts == 6
    assert sum(q.answered for q in analysis.questions) == sum(answered.values()) == 6 * version.draw_size
    for q in analysis.questions:
        assert (q.answered, q.correct) == (answered[q.id], correct[q.id]), q.key
        for o in q.options:
            assert o.chosen == picks[o.id], (q.key, o.position)
    # Every topic adds up its own questions, and the topics follow the content pack.
    assert [t.tag for t in analysis.topics] == list(version.topics)
    for t in analysis.topics:
        mine = [q for q in analysis.questions if q.topic == t.tag]
        assert t.answered == sum(answered[q.id] for q in mine)
        assert t.correct == sum(correct[q.id] for q in mine)

    by_key = {q.key: q for q in analysis.questions}
    target, steady = by_key["ods-01"], by_key["ods-04"]
    assert (target.answered, target.correct, target.percent_correct) == (6, 2, 33)
    assert [(o.chosen, o.percent) for o in target.wrong_options][:2] == [(3, 50), (1, 17)]
    assert (steady.answered, steady.correct) == (6, 5)
    # Flags: below 60% of at least 5 answers, nothing else.
    expected = {q for q in answered if answered[q] >= 5 and 100 * correct[q] < 60 * answered[q]}
    assert {q.id for q in analysis.flagged} == expected and target.id in expected
    assert not steady.flagged
    # The thresholds are parameters.
    assert not item_analysis(db, cycle, version, min_answers=7).flagged
    assert {q.key for q in item_analysis(db, cycle, version, flag_below=90).flagged} >= {"ods-01", "ods-04"}


def test_item_analysis_and_candidates_take_a_fixed_number_of_statements(app, db, quiz_history):
    from sqlalchemy import event

    from lms.db import get_database

    cycle = quiz_history["cycle"]
    version = cycle.policy_versions[0]
    _ = version.topics, cycle.id
    statements = []
    engine = get_database(app).engine

    def count(*_args):
        statements.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        item_analysis(db, cycle, version)
        analysed = len(statements)
        today, _now = _today_and_now()
        reminders_service.reminder_candidates(db, cycle.id, today, TZ)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert analysed == 3  # questions, options, attempts: whatever the number of attempts
    assert len(statements) - analysed == 1


def test_item_analysis_page(client, auth, db, quiz_history):
    cycle, target = quiz_history["cycle"], quiz_history["target"]
    auth.sign_in(quiz_history["coordinator"].badge)
    response = client.get(f"/coordinator/cycles/{cycle.id}/items")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    answered, correct, _ = _independent_count(db, cycle.id)
    flagged = {q for q in answered if answered[q] >= 5 and 100 * correct[q] < 60 * answered[q]}
    assert html.count('class="item-flag">Most miss this<') == len(flagged) >= 1
    row = re.search(rf'<tr id="question-{target.id}" class="flagged">(.*?)</tr>', html, re.S).group(1)
    assert "Most miss this" in row and "33%" in row and "(2 of 6)" in row
    assert re.search(r"[A-D]: 3 of 6 \(50%\)", row) and re.search(r"[A-D]: 1 of 6 \(17%\)", row)
    # The caption carries an id that labels its scrollable region.
    assert re.search(r"<caption id=\"[^\"]+\">Off-duty speech:", html)
    assert 'style=' not in html and not INLINE_SCRIPT.search(html)
    assert client.get("/coordinator/cycles/1999/items").status_code == 404


# ------------------------------------------------------------------------------------ reminders

@pytest.fixture
def overdue_cycle(db, make_member):
    """This year's cycle, due ten days ago, and members in every situation a reminder cares about."""
    today, now = _today_and_now()
    people = {
        "late": make_member(first="Lee", last="Late", badge="701"),
        "halfway": make_member(first="Hal", last="Fway", badge="702"),
        "fresh": make_member(first="Fran", last="Fresh", badge="703"),
        "busy": make_member(first="Bo", last="Busy", badge="704"),
        "excused": make_member(first="Ex", last="Cused", badge="705"),
        "nomail": make_member(first="No", last="Mail", badge="706"),
    }
    for key, member in people.items():
        member.email = None if key == "nomail" else f"{key}@example.org"
    db.commit()
    cycle = create_cycle(db, year=today.year, due_date=today - timedelta(days=10),
                         today=today - timedelta(days=40), now=now - timedelta(days=40))
    db.flush()
    # Fresh and Busy joined late: their own due date is still ahead (as sync_audience gives them).
    for key in ("fresh", "busy"):
        _assignment(db, people[key]).due_date = today + timedelta(days=20)
    for key in ("halfway", "busy"):
        assignment = _assignment(db, people[key])
        mark_lesson_read(db, assignment, assignment.policy_version.lessons[0], now)
    db.add(Exemption(cycle_id=cycle.id, member_id=people["excused"].id, reason="Military leave",
                     granted_at=now))
    db.commit()
    people["coordinator"] = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",),
                                        unit="Administration")
    return cycle, people


def _preview_rows(html: str) -> dict[str, str]:
    """Badge -> the row's status labels, from the preview table."""
    rows = {}
    for row in re.findall(r"<tr>\s*<td>(\d+)</td>(.*?)</tr>", html, re.S):
        rows[row[0]] = " ".join(re.findall(r'class="status status-(\w+)"', row[1]))
    return rows


def _outbox(app) -> list:
    folder = Path(app.instance_path) / "outbox"
    return [BytesParser(policy=email_policy.default).parsebytes(p.read_bytes())
            for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def test_candidates_are_everyone_not_done_with_an_email(db, overdue_cycle):
    cycle, people = overdue_cycle
    today, _ = _today_and_now()
    candidates = reminders_service.reminder_candidates(db, cycle.id, today, TZ)
    # Busy is in progress and not yet due: not done, so reminded too; the exempt member is not.
    assert {c.badge: c.status for c in candidates} == {"701": "overdue", "702": "overdue", "703": "not_started",
                                                      "704": "in_progress"}
    skipped = reminders_service.skipped_counts(db, cycle.id, today, TZ)
    assert (skipped.already_reminded, skipped.no_email) == (0, 1)
    fresh = next(c for c in candidates if c.badge == "703")
    message = reminders_service.build_message(fresh, fresh.items, cycle, "Test PD", "rc@example.org",
                                              base_url="https://rollcall.example.org/")
    body = message.get_content()
    assert message["To"] == "fresh@example.org" and "due" in message["Subject"]
    assert f"https://rollcall.example.org/training/{fresh.items[0].assignment_id}" in body
    assert "16.3 Social Media" in body and "not started" in body and "Test PD" in body
    busy = next(c for c in candidates if c.badge == "704")
    assert "lessons in progress" in reminders_service.build_message(
        busy, busy.items, cycle, "Test PD", "rc@example.org").get_content()


def test_preview_send_and_once_a_day(app, client, auth, db, runner, overdue_cycle):
    cycle, people = overdue_cycle
    coordinator = people["coordinator"]
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/reminders"

    html = client.get(url).get_data(as_text=True)
    assert _preview_rows(html) == {"701": "overdue", "702": "overdue", "703": "not_started", "704": "in_progress"}
    assert "1 without an e-mail address" in html and "0 already reminded today" in html
    assert "Sample message" in html and "Dear Bo Busy" in html  # the first by name
    assert 'style=' not in html and not INLINE_SCRIPT.search(html)

    token = csrf_token(client, url)
    unconfirmed = client.post(url, data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.get_data(as_text=True)
    assert client.post(url, data={"confirm": "y"}).status_code == 400  # no CSRF token
    assert _outbox(app) == [] and db.scalar(select(func.count(Reminder.id))) == 0

    sent = client.post(url, data={"csrf_token": token, "confirm": "y"})
    assert sent.status_code == 302 and sent.headers["Location"].endswith(url)
    assert "Queued 4 reminders; 0 already reminded today." in client.get(url).get_data(as_text=True)
    # Queued, not sent: the worker sends them.
    assert _outbox(app) == []
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "reminder.send")) == 0
    ran = runner.invoke(args=["lms", "jobs", "run"])
    assert ran.exit_code == 0 and "4 done, 0 to retry, 0 failed." in ran.output, ran.output
    messages = _outbox(app)
    assert sorted(m["To"] for m in messages) == ["busy@example.org", "fresh@example.org", "halfway@example.org",
                                                  "late@example.org"]
    late = next(m for m in messages if m["To"] == "late@example.org")
    assert "Overdue" in late["Subject"]
    # An absolute link straight to the training (PUBLIC_URL).
    assert f"http://127.0.0.1:5000/training/{_assignment(db, people['late']).id}" in late.get_content()

    db.expire_all()
    today, _ = _today_and_now()
    reminders = db.scalars(select(Reminder)).all()
    assert {(r.member_id, r.sent_on, r.status, r.sent_by_id, r.cycle_id) for r in reminders} == {
        (people["late"].id, today, "overdue", coordinator.id, cycle.id),
        (people["halfway"].id, today, "overdue", coordinator.id, cycle.id),
        (people["fresh"].id, today, "not_started", coordinator.id, cycle.id),
        (people["busy"].id, today, "in_progress", coordinator.id, cycle.id)}
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.send")).all()
    assert sorted(e.target for e in events) == sorted(f"member:{r.member_id}" for r in reminders)
    assert all(e.actor_id == coordinator.id and e.outcome == "success" and e.ip for e in events)
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "reminder.preview")) >= 1

    # The same day again: nobody is reminded twice.
    again = client.post(url, data={"csrf_token": token, "confirm": "y"})
    assert again.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Queued 0 reminders; 4 already reminded today." in page
    assert "Nobody to remind right now" in page and "4 already reminded today" in page
    assert "0 done" in runner.invoke(args=["lms", "jobs", "run"]).output
    assert len(_outbox(app)) == 4
    assert db.scalar(select(func.count(Reminder.id))) == 4


def test_a_simultaneous_send_skips_the_member_without_undoing_the_rest(app, db, overdue_cycle):
    """Two coordinators preview at once; the first reminds one member and commits; the second
    queues its (now stale) list: that member is skipped, the other three are reminded, and each
    member has exactly one message queued."""
    from lms.db import get_database
    from lms.models import Job

    cycle, people = overdue_cycle
    today, now = _today_and_now()
    other = get_database(app).sessionmaker()
    try:
        stale = reminders_service.reminder_candidates(other, cycle.id, today, TZ)
        first = reminders_service.reminder_candidates(db, cycle.id, today, TZ)[:1]
        kwargs = dict(now=now, today=today, ip="10.0.0.9", cycle=cycle, department="Test PD",
                      sender="rc@example.org", base_url="https://rc.example.org")
        reminders_service.queue_reminders(db, first, sent_by_id=people["coordinator"].id, **kwargs)
        db.commit()
        result = reminders_service.queue_reminders(other, stale, sent_by_id=None, **kwargs)
        other.commit()
    finally:
        other.close()
    assert [c.badge for c in result.already_reminded] == [first[0].badge]
    assert len(result.queued) == 3
    db.expire_all()
    assert db.scalar(select(func.count(Reminder.id))) == 4
    recipients = [j.payload["recipients"] for j in db.scalars(select(Job).where(Job.kind == "email"))]
    assert sorted(r[0] for r in recipients) == sorted(f"{k}@example.org" for k in ("late", "halfway", "fresh", "busy"))


def test_smtp_transport_and_config(monkeypatch, tmp_path):
    calls = []

    class FakeSMTP:
        def __init__(self, host, port, timeout):
            calls.append(("connect", host, port))

        def starttls(self, context):
            calls.append(("starttls",))

        def login(self, user, password):
            calls.append(("login", user, password))

        def send_message(self, message):
            calls.append(("send", message["To"]))

        def quit(self):
            calls.append(("quit",))

        def close(self):
            calls.append(("close",))

    from lms.services import mail as mail_service

    monkeypatch.setattr(mail_service.smtplib, "SMTP", FakeSMTP)
    config = {"MAIL_TRANSPORT": "smtp", "SMTP_HOST": "mail.example.org", "SMTP_PORT": "2525",
              "SMTP_USERNAME": "rollcall", "SMTP_PASSWORD": "s3cret-pass", "SMTP_USE_TLS": True,
              "MAIL_SENDER": "rc@example.org"}
    transport = reminders_service.transport_from_config(config, tmp_path)
    assert "s3cret-pass" not in repr(transport)
    from email.message import EmailMessage
    for to in ("a@example.org", "b@example.org"):
        message = EmailMessage()
        message["To"] = to
        message.set_content("hi")
        transport.send(message)
    transport.close()
    assert calls == [("connect", "mail.example.org", 2525), ("starttls",), ("login", "rollcall", "s3cret-pass"),
                     ("send", "a@example.org"), ("send", "b@example.org"), ("quit",)]
    outbox = reminders_service.transport_from_config({"MAIL_TRANSPORT": "outbox"}, tmp_path)
    assert isinstance(outbox, reminders_service.OutboxTransport) and outbox.folder == tmp_path / "outbox"
    with pytest.raises(ValueError):
        reminders_service.transport_from_config({"MAIL_TRANSPORT": "pigeon"}, tmp_path)
    with pytest.raises(ValueError):
        reminders_service.transport_from_config({"MAIL_TRANSPORT": "smtp"}, tmp_path)


def test_officers_and_strangers_cannot_reach_the_tools(client, auth, db, overdue_cycle):
    cycle, people = overdue_cycle
    cid = cycle.id
    assert client.get(f"/coordinator/cycles/{cid}/reminders").status_code == 302  # to sign-in
    auth.sign_in(people["late"].badge)
    assert client.get(f"/coordinator/cycles/{cid}/items").status_code == 403
    assert client.get(f"/coordinator/cycles/{cid}/reminders").status_code == 403
    token = csrf_token(client, "/training/")
    assert client.post(f"/coordinator/cycles/{cid}/reminders",
                       data={"csrf_token": token, "confirm": "y"}).status_code == 403
    assert db.scalar(select(func.count(Reminder.id))) == 0
