"""The officer's journey through the web pages, end to end."""
from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from lms.db import utcnow
from lms.models import Acknowledgment, AuditEvent, LessonProgress, Member, Question, QuizAttempt, Receipt
from lms.services.content import sha256_hex
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import (
    answers_for,
    assignment_of,
    lesson_links,
    open_attempt,
    read_all_lessons,
    sign,
    start_quiz,
    submit,
)


def test_officer_completes_training_end_to_end(client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment = assignment_of(db, officer)
    a = assignment.id

    response = auth.sign_in(officer.badge)
    assert response.status_code == 302 and response.headers["Location"].endswith("/training/")
    dashboard = client.get("/training/").get_data(as_text=True)
    assert "annual training: policy 16.3 Social Media" in dashboard
    assert 'effective <time datetime="2013-11-26">November 26, 2013</time>' in dashboard
    assert "Not started" in dashboard and "Progress: 0%" in dashboard

    # Lessons: one per section, each with the verbatim policy text; progress is saved as read.
    overview = client.get(f"/training/{a}").get_data(as_text=True)
    links = lesson_links(overview, a)
    assert len(links) >= 3
    first = client.get(links[0]).get_data(as_text=True)
    assert "Policy text, section 16.3.1 (verbatim)" in first
    assert "Only persons designated by the chief of police shall publish" in first
    token = csrf_token(client, links[0])
    assert client.post(f"{links[0]}/read", data={"csrf_token": token}).status_code == 302
    assert "In progress" in client.get("/training/").get_data(as_text=True)
    read_all_lessons(client, a)
    assert db.scalar(select(func.count(LessonProgress.id))) == len(links)

    # The quiz: 12 drawn, covering each required topic, with no answers in the page.
    page = html.unescape(start_quiz(client, a))
    attempt = open_attempt(db, a)
    assert len(attempt.items) == 12
    topics = [item.question.topic for item in attempt.items]
    for topic in ("off-duty-speech", "uniform-photos", "testimony-impeachment"):
        assert topics.count(topic) >= 3
    for item in attempt.items:
        for option in item.question.options:
            assert option.why not in page
    assert "Right answer" not in page and "Wrong answer" not in page

    # Fail, see why, retake with a new draw, pass.
    response = submit(client, a, attempt.id, answers_for(db, attempt, wrong=4))
    assert response.status_code == 303
    result = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "66% — not passed" in result
    cited = attempt.items[0].question.cites[0]
    assert cited in result and attempt.items[0].question.options[0].why in result
    assert "Quiz not passed" in client.get("/training/").get_data(as_text=True)

    start_quiz(client, a)
    retake = open_attempt(db, a)
    assert retake.id != attempt.id and retake.number == 2
    response = submit(client, a, retake.id, answers_for(db, retake))
    assert "100% — passed" in client.get(response.headers["Location"]).get_data(as_text=True)

    # Sign: the page shows the full text and the attestation.
    page = client.get(f"/training/{a}/sign").get_data(as_text=True)
    version = assignment.policy_version
    assert "16.3.3 INTERNAL BLOG/INSTANT MESSAGING/E-MAIL" in page
    assert "Ensure proper attribution before publishing." in page
    assert version.attestation in html.unescape(page)
    response = sign(client, a, "Alex Rivera")
    assert response.status_code == 303

    ack = db.scalars(select(Acknowledgment)).one()
    assert ack.printed_name == "Alex Rivera" and ack.badge == officer.badge
    assert ack.policy_ref == "16.3" and ack.policy_effective.isoformat() == "2013-11-26"
    assert ack.text_sha256 == sha256_hex(version.text) == version.text_sha256
    assert ack.statement == version.attestation
    assert ack.quiz_attempt_number == 2 and ack.quiz_score == 100 and ack.quiz_attempt_id == retake.id
    assert ack.signed_from_ip == "127.0.0.1" and ack.user_agent
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[56]:00$", ack.signed_at_local)
    assert ack.timezone == "America/Chicago"
    assert re.match(r"^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$", ack.verification_code)
    assert ack.sequence == 1 and ack.prev_hash == "0" * 64 and len(ack.record_hash) == 64

    receipt = db.get(Receipt, ack.id)
    assert receipt.pdf.startswith(b"%PDF") and receipt.sha256 == sha256_hex(receipt.pdf)
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "ack.sign")) == 1

    # Status, history and the receipt download.
    assert "Complete" in client.get("/training/").get_data(as_text=True)
    history = client.get("/training/history").get_data(as_text=True)
    assert ack.verification_code in history
    download = client.get(f"/training/receipts/{ack.id}.pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == receipt.pdf


def test_progress_bar_advances_with_lessons(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    links = lesson_links(client.get(f"/training/{a}").get_data(as_text=True), a)
    token = csrf_token(client, links[0])
    client.post(f"{links[0]}/read", data={"csrf_token": token})
    page = client.get(f"/training/{a}").get_data(as_text=True)
    expected = round(100 * 1 / (len(links) + 2))
    assert f'<progress id="progress" max="100" value="{expected}">' in page
    assert f"1 of {len(links)} lessons read" in page


def test_quiz_needs_lessons_first(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    token = csrf_token(client, f"/training/{a}/quiz")
    client.post(f"/training/{a}/quiz/start", data={"csrf_token": token})
    assert db.scalar(select(func.count(QuizAttempt.id))) == 0
    assert "Read every lesson before taking the quiz" in client.get(f"/training/{a}/quiz").get_data(as_text=True)


def test_reload_does_not_reroll_and_answers_stay_hidden(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    first = start_quiz(client, a)
    attempt = open_attempt(db, a)
    again = start_quiz(client, a)  # pressing start again, or reloading, returns the same attempt
    assert open_attempt(db, a).id == attempt.id
    # The tokens differ, and so do the seconds the session has left (the idle sign-out warning).
    without_tokens = lambda page: re.sub(r'name="csrf_token"[^>]*>|data-seconds-left="\d+"', "", page)  # noqa: E731
    assert without_tokens(first) == without_tokens(again)
    # The result page of an unsubmitted attempt shows nothing; it sends back to the questions.
    response = client.get(f"/training/{a}/quiz/{attempt.id}")
    assert response.status_code == 302


def test_quiz_rejects_answers_to_questions_not_drawn(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    start_quiz(client, a)
    attempt = open_attempt(db, a)
    drawn = {item.question_id for item in attempt.items}
    other = db.scalars(select(Question).where(Question.id.not_in(drawn))).first()
    answers = answers_for(db, attempt)
    answers["q13"] = [str(o.id) for o in other.options if o.correct]
    assert submit(client, a, attempt.id, answers).status_code == 400
    # Swapping in the right option of an undrawn question for a drawn one is refused too.
    answers = answers_for(db, attempt)
    answers["q1"] = [str(next(o.id for o in other.options if o.correct))]
    response = submit(client, a, attempt.id, answers)
    assert response.status_code == 400
    assert "not one of the options shown" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(QuizAttempt, attempt.id).submitted_at is None


def test_quiz_requires_every_answer_and_keeps_choices(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    start_quiz(client, a)
    attempt = open_attempt(db, a)
    answers = answers_for(db, attempt)
    del answers["q5"]
    response = submit(client, a, attempt.id, answers)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Question 5: choose an answer" in html
    # The error is said first: before the scenario on the page and in the fieldset's description.
    assert 'aria-describedby="q5-error q5-scenario"' in html
    assert html.index('id="q5-error"') < html.index('id="q5-scenario"')
    chosen = answers["q1"][0]
    assert re.search(rf'value="{chosen}" checked', html)


def test_submitted_attempt_cannot_be_replayed(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    start_quiz(client, a)
    attempt = open_attempt(db, a)
    failing = answers_for(db, attempt, wrong=6)
    submit(client, a, attempt.id, failing)
    # Now that the answers are known, replaying the same attempt with them is refused.
    response = submit(client, a, attempt.id, answers_for(db, attempt))
    assert response.status_code == 303
    db.expire_all()
    replayed = db.get(QuizAttempt, attempt.id)
    assert replayed.passed is False and replayed.score == 50
    assert "already been submitted" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_attempt_limit(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    assignment = assignment_of(db, officer)
    a = assignment.id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    for _ in range(assignment.policy_version.max_attempts):
        start_quiz(client, a)
        attempt = open_attempt(db, a)
        submit(client, a, attempt.id, answers_for(db, attempt, wrong=12))
    page = start_quiz(client, a)
    assert "used all 3 attempts" in page
    assert db.scalar(select(func.count(QuizAttempt.id))) == 3


def test_signing_refused_until_lessons_and_quiz(client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    response = sign(client, a, "Alex Rivera", text_sha256="0" * 64)
    assert response.status_code == 400
    page = client.get(f"/training/{a}/sign").get_data(as_text=True)
    assert "Read every lesson first." in page and "Pass the quiz first." in page
    read_all_lessons(client, a)
    assert sign(client, a, "Alex Rivera", text_sha256="0" * 64).status_code == 400
    assert db.scalar(select(func.count(Acknowledgment.id))) == 0


def _ready_to_sign(client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    start_quiz(client, a)
    attempt = open_attempt(db, a)
    submit(client, a, attempt.id, answers_for(db, attempt))
    return officer, a


def test_signing_needs_matching_name_and_current_password(client, auth, db, make_member, open_cycle):
    officer, a = _ready_to_sign(client, auth, db, make_member, open_cycle)
    response = sign(client, a, "Alex Rivera", password="not my password at all")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "That is not your current password." in html
    assert 'aria-invalid="true"' in html
    response = sign(client, a, "Alexander Rivera")
    assert response.status_code == 400
    assert "Type your full name exactly as it appears on your record" in response.get_data(as_text=True)
    response = sign(client, a, "Alex Rivera", text_sha256="f" * 64)
    assert "The policy text changed" in response.get_data(as_text=True)
    assert db.scalar(select(func.count(Acknowledgment.id))) == 0
    assert db.scalar(select(func.count(Receipt.acknowledgment_id))) == 0
    failures = db.scalars(select(AuditEvent).where(AuditEvent.action == "ack.sign")).all()
    assert [e.outcome for e in failures] == ["failure"] * 3
    # Case and spacing of the typed name do not matter.
    assert sign(client, a, "  alex   RIVERA ").status_code == 303
    assert db.scalar(select(func.count(Acknowledgment.id))) == 1


def test_double_submitted_signature_gives_one_record(client, auth, db, make_member, open_cycle):
    officer, a = _ready_to_sign(client, auth, db, make_member, open_cycle)
    token = csrf_token(client, f"/training/{a}/sign")
    text_sha = db.scalar(select(Acknowledgment.text_sha256)) or assignment_of(db, officer).policy_version.text_sha256
    data = {"full_name": "Alex Rivera", "password": PASSWORD, "csrf_token": token, "text_sha256": text_sha}
    first = client.post(f"/training/{a}/sign", data=data)
    second = client.post(f"/training/{a}/sign", data=data)
    assert first.status_code == 303 and second.status_code in (302, 303)
    assert db.scalar(select(func.count(Acknowledgment.id))) == 1
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "ack.sign")) == 1


def test_members_cannot_reach_each_others_training(client, auth, db, make_member, open_cycle):
    owner, a = _ready_to_sign(client, auth, db, make_member, open_cycle)
    sign(client, a, "Alex Rivera")
    ack = db.scalars(select(Acknowledgment)).one()
    attempt_id = db.scalar(select(QuizAttempt.id))
    auth.sign_out()
    other = make_member(first="Jo", last="Kim", badge="777")
    auth.sign_in(other.badge)
    for path in (f"/training/{a}", f"/training/{a}/quiz", f"/training/{a}/quiz/{attempt_id}",
                 f"/training/{a}/sign", f"/training/{a}/signed", f"/training/receipts/{ack.id}.pdf",
                 f"/training/{a}/lessons/1"):
        assert client.get(path).status_code == 404, path
    token = csrf_token(client, "/training/")
    assert client.post(f"/training/{a}/quiz/start", data={"csrf_token": token}).status_code == 404
    assert client.post(f"/training/{a}/lessons/1/read", data={"csrf_token": token}).status_code == 404
    assert ack.verification_code not in client.get("/training/history").get_data(as_text=True)


def test_wrong_passwords_at_signing_lock_the_account_and_end_its_sessions(app, client, auth, db, make_member,
                                                                        open_cycle):
    """Re-entering the password to sign counts toward lockout like a sign-in: a screen left signed
    in must not allow unlimited guesses."""
    officer, a = _ready_to_sign(client, auth, db, make_member, open_cycle)
    other = app.test_client()  # the same member on another computer
    other.post("/sign-in", data={"badge": officer.badge, "password": PASSWORD, "csrf_token": csrf_token(other)})
    assert other.get("/training/").status_code == 200
    threshold = app.config["LOCKOUT_THRESHOLD"]
    for n in range(threshold - 1):
        assert sign(client, a, "Alex Rivera", password=f"a wrong guess number {n}").status_code == 400
    response = sign(client, a, "Alex Rivera", password="the last wrong guess")
    assert response.status_code == 303 and response.headers["Location"].endswith("/sign-in")
    assert "your account is locked" in client.get("/sign-in").get_data(as_text=True)
    db.expire_all()
    assert db.get(Member, officer.id).is_locked(utcnow())
    assert client.get("/training/").status_code == 302  # this session ended …
    assert other.get("/training/").status_code == 302  # … and the other one too
    assert auth.sign_in(officer.badge).status_code == 400  # the right password is refused while locked
    assert db.scalar(select(func.count(Acknowledgment.id))) == 0
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "auth.reauthenticate")) == threshold
    assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "auth.lockout")) == 1


def test_a_right_password_at_signing_after_a_few_wrong_ones_still_signs(client, auth, db, make_member, open_cycle):
    officer, a = _ready_to_sign(client, auth, db, make_member, open_cycle)
    for n in range(2):
        assert sign(client, a, "Alex Rivera", password=f"a wrong guess number {n}").status_code == 400
    assert sign(client, a, "Alex Rivera").status_code == 303
    assert db.scalar(select(func.count(Acknowledgment.id))) == 1


def test_officer_pages_run_the_same_statements_whatever_the_history(app, client, auth, db, make_member, open_cycle):
    """A member with three earlier cycles, each read, passed and signed, costs each page the same
    statements as a member with one (progress comes from the stored columns, not from every
    attempt of every cycle)."""
    from datetime import date, timedelta

    from sqlalchemy import event

    from lms.db import get_database
    from lms.models import Assignment, Cycle
    from tests.helpers import pass_quiz

    newcomer = make_member(first="Nia", last="Okafor")
    veteran = make_member(first="Sam", last="Lindqvist")
    current = open_cycle()
    for years_ago in (3, 2, 1):
        year = current.year - years_ago
        past = Cycle(year=year, name=f"{year} annual", due_date=date(year, 12, 31), audience={"units": [], "ranks": []},
                     created_at=utcnow() - timedelta(days=365 * years_ago), policy_versions=list(current.policy_versions))
        db.add(past)
        db.flush()
        for member in (veteran, newcomer) if years_ago == 1 else (veteran,):
            db.add(Assignment(cycle_id=past.id, member_id=member.id, policy_version_id=current.policy_versions[0].id,
                              due_date=past.due_date, assigned_at=past.created_at))
    db.commit()

    def statements_per_page(member):
        assignments = db.scalars(select(Assignment.id).where(Assignment.member_id == member.id)
                                 .order_by(Assignment.cycle_id)).all()
        auth.sign_in(member.badge)
        for a in assignments[:-1]:  # earlier cycles: read, passed, signed
            read_all_lessons(client, a)
            pass_quiz(client, db, a)
            assert sign(client, a, member.full_name).status_code == 303
        a = assignments[-1]  # this year: read and passed, not yet signed
        read_all_lessons(client, a)
        pass_quiz(client, db, a)
        lesson = lesson_links(client.get(f"/training/{a}").get_data(as_text=True), a)[0]
        pages = {"dashboard": "/training/", "assignment": f"/training/{a}", "lesson": lesson,
                 "quiz": f"/training/{a}/quiz", "sign": f"/training/{a}/sign", "history": "/training/history"}
        selects: list[str] = []

        def note(_conn, _cursor, statement, *_args):
            # SELECTs only: a session's last-seen time is written when a minute has passed.
            if statement.lstrip().upper().startswith("SELECT"):
                selects.append(statement)

        counts = {}
        engine = get_database(app).engine
        for name, page in pages.items():
            event.listen(engine, "before_cursor_execute", note)
            try:
                assert client.get(page).status_code == 200
            finally:
                event.remove(engine, "before_cursor_execute", note)
            counts[name] = len(selects)
            selects.clear()
        auth.sign_out()
        return len(assignments), counts

    cycles, one_before = statements_per_page(newcomer)
    assert cycles == 2
    cycles, three_before = statements_per_page(veteran)
    assert cycles == 4
    assert three_before == one_before
    assert one_before["dashboard"] <= 8


def test_a_multiple_answer_question_says_select_all_that_apply_once(client, auth, db, make_member, open_cycle):
    """Issue 17: the quiz page printed "Select all that apply." twice on every multiple-answer
    question. Members are drawn until an attempt holds one (the draw is random)."""
    import random

    from lms.services import quiz as quiz_service
    from lms.services.progress import mark_lesson_read

    members = [make_member(first="Quinn", last=f"Drawn{n}", badge=f"77{n:02d}") for n in range(12)]
    open_cycle()
    for n, member in enumerate(members):
        assignment = assignment_of(db, member)
        for lesson in assignment.policy_version.lessons:
            mark_lesson_read(db, assignment, lesson, utcnow())
        attempt = quiz_service.start_attempt(db, assignment, utcnow(), rng=random.Random(n))
        multiple = [item for item in attempt.items if item.question.kind == "multiple"]
        db.commit()
        if multiple:
            break
    assert multiple, "no draw held a multiple-answer question"
    auth.sign_in(member.badge)
    page = html.unescape(client.get(f"/training/{assignment.id}/quiz").get_data(as_text=True))
    assert len(re.findall(r"select all that apply", page, re.I)) == len(multiple)
