"""The quiz engine: draw rules (topic minimums, unseen questions first), the pass mark said as
questions correct, and extra attempts granted by a coordinator (web and CLI)."""
from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lms import create_app
from lms.db import get_database, utcnow
from lms.models import Assignment, AttemptGrant, AttemptItem, AuditEvent, Member, Question, QuizAttempt
from lms.services import quiz as quiz_service
from tests.conftest import PASSWORD, TEST_CONFIG, AuthActions, csrf_token
from tests.helpers import answers_for, assignment_of, open_attempt, read_all_lessons, start_quiz, submit

DRAW_RULES_PACK = Path(__file__).parent / "fixtures" / "draw_rules"


# --- draw rules, as a function -------------------------------------------------------------------

def _bank(sizes: dict[str, int]) -> list[Question]:
    """Unsaved questions with ids, ``sizes[topic]`` of each topic."""
    bank, next_id = [], 1
    for topic, n in sizes.items():
        for _ in range(n):
            bank.append(Question(id=next_id, topic=topic, key=f"{topic}-{next_id}"))
            next_id += 1
    return bank


@st.composite
def draw_rules(draw):
    """A bank, minimums it can meet, a draw size, and some questions already seen."""
    topics = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5, unique=True))
    sizes = {t: draw(st.integers(1, 8)) for t in topics}
    minimums = {t: draw(st.integers(0, sizes[t])) for t in topics if draw(st.booleans())}
    total = sum(sizes.values())
    size = draw(st.integers(max(1, sum(minimums.values())), total))
    bank = _bank(sizes)
    seen_ids = draw(st.lists(st.sampled_from([q.id for q in bank]), unique=True))
    last_seen = {qid: draw(st.integers(1, 4)) for qid in seen_ids}
    return bank, minimums, size, last_seen, draw(st.integers(0, 2**32))


@settings(max_examples=300, deadline=None)
@given(draw_rules())
def test_every_draw_meets_the_minimums_and_asks_the_freshest_questions(rules):
    bank, minimums, size, last_seen, seed = rules
    drawn = quiz_service.draw_questions(bank, minimums, size, random.Random(seed), last_seen=last_seen)
    assert len(drawn) == size and len({q.id for q in drawn}) == size
    per_topic = Counter(q.topic for q in drawn)
    for topic, minimum in minimums.items():
        assert per_topic[topic] >= minimum
    # Freshness, for the questions drawn beyond the minimums: no question left out is fresher
    # (unseen, or seen longer ago) than one drawn, unless a minimum forced the drawn one in.
    def fresh(q):
        return (q.id in last_seen, last_seen.get(q.id, 0))
    forced = set()
    for topic, minimum in minimums.items():
        in_topic = sorted((q for q in drawn if q.topic == topic), key=fresh)
        forced |= {q.id for q in in_topic[:minimum]}
    free = [q for q in drawn if q.id not in forced]
    left_out = [q for q in bank if q.id not in {d.id for d in drawn}]
    if free and left_out:
        assert max(fresh(q) for q in free) <= min(fresh(q) for q in left_out)


def test_a_retake_asks_unseen_questions_first_then_the_least_recently_seen():
    bank = _bank({"a": 6, "b": 2})
    minimums = {"a": 1, "b": 1}
    first = quiz_service.draw_questions(bank, minimums, 3, random.Random(1))
    seen = {q.id: 1 for q in first}
    second = quiz_service.draw_questions(bank, minimums, 3, random.Random(2), last_seen=seen)
    # b has two questions: the one not yet seen is drawn; a's are all new.
    assert not {q.id for q in second} & set(seen)
    seen |= {q.id: 2 for q in second}
    third = quiz_service.draw_questions(bank, minimums, 3, random.Random(3), last_seen=seen)
    unseen = {q.id for q in bank} - set(seen)
    assert unseen <= {q.id for q in third}  # the two a-questions never asked …
    b_drawn = [q for q in third if q.topic == "b"]
    assert len(b_drawn) == 1 and seen[b_drawn[0].id] == 1  # … and the b-question asked longest ago


@pytest.mark.parametrize("sizes, minimums, size, message", [
    ({"a": 3, "b": 1}, {"b": 2}, 3, "1 question(s) on topic b, fewer than its minimum of 2"),
    ({"a": 3}, {"c": 1}, 2, "0 question(s) on topic c"),
    ({"a": 3, "b": 3}, {"a": 2, "b": 2}, 3, "minimums add up to 4 questions, more than the 3"),
    ({"a": 2}, {}, 3, "the bank has 2 question(s), fewer than the 3"),
    ({"a": 2}, {"a": -1}, 1, "must be a whole number of 0 or more"),
    ({"a": 2}, {"a": 1}, 0, "at least one question"),
])
def test_an_impossible_pack_is_refused_naming_the_problem(sizes, minimums, size, message):
    with pytest.raises(quiz_service.QuizError) as refused:
        quiz_service.draw_questions(_bank(sizes), minimums, size, random.Random(0))
    assert message in str(refused.value)


@pytest.mark.parametrize("pass_mark, questions, needed", [(80, 12, 10), (75, 12, 9), (60, 5, 3),
                                                           (100, 12, 12), (1, 12, 1), (50, 3, 2)])
def test_the_pass_mark_in_questions_is_what_scoring_accepts(pass_mark, questions, needed):
    assert quiz_service.correct_needed(pass_mark, questions) == needed
    assert 100 * needed // questions >= pass_mark > 100 * (needed - 1) // questions


# --- draw rules, through the web, on a fixture pack -----------------------------------------------

@pytest.fixture
def draw_app(app, tmp_path):
    """The test database with only the fixture pack: topics of 6, 2 and 1 questions with minimums
    1, 2 and 1, five questions an attempt, two attempts."""
    content = tmp_path / "content"
    shutil.copytree(DRAW_RULES_PACK, content)
    draw_app = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["DATABASE_URL"],
                           "INSTANCE_PATH": app.instance_path, "CONTENT_DIR": str(content)})
    assert draw_app.test_cli_runner().invoke(args=["lms", "init"]).exit_code == 0
    yield draw_app
    get_database(draw_app).dispose()


def _drawn(db, assignment_id: int, number: int) -> list[Question]:
    db.expire_all()
    return list(db.scalars(select(Question).join(AttemptItem, AttemptItem.question_id == Question.id)
                           .join(QuizAttempt, QuizAttempt.id == AttemptItem.attempt_id)
                           .where(QuizAttempt.assignment_id == assignment_id, QuizAttempt.number == number)))


def test_retakes_through_the_web_cover_every_minimum_and_ask_new_questions_first(draw_app):
    runner = draw_app.test_cli_runner()
    db = get_database(draw_app).sessionmaker()
    from lms.services.accounts import create_or_grant
    for badge, role, first in (("901", "officer", "Olive"), ("902", "coordinator", "Cora")):
        create_or_grant(db, badge=badge, first_name=first, last_name="Quinn", role=role, unit="Patrol",
                        password=PASSWORD, hash_method=draw_app.config["PASSWORD_HASH_METHOD"])
    db.commit()
    year = utcnow().year
    assert runner.invoke(args=["lms", "cycle", "create", "--year", str(year), "--due", f"{year + 1}-01-31",
                               "--policy", "99.1"]).exit_code == 0
    officer = db.scalar(select(Member).where(Member.badge == "901"))
    a = assignment_of(db, officer).id
    client = draw_app.test_client()
    AuthActions(client).sign_in("901")
    read_all_lessons(client, a)
    asked: list[set[str]] = []
    for number in range(1, 5):
        if number == 3:  # the pack allows two: the coordinator grants two more
            page = client.get(f"/training/{a}/quiz").get_data(as_text=True)
            assert "used all 2 attempts" in page and "Cora Quinn" in page
            result = runner.invoke(args=["lms", "grant-attempts", "--cycle", str(year), "--badge", "901",
                                         "--attempts", "2", "--reason", "Retake after a review", "--by", "902"],
                                   input=PASSWORD + "\n")
            assert result.exit_code == 0, result.output
        start_quiz(client, a)
        drawn = _drawn(db, a, number)
        topics = Counter(q.topic for q in drawn)
        assert len(drawn) == 5 and topics["care"] >= 1 and topics["discipline"] == 2 and topics["channels"] == 1
        asked.append({q.key for q in drawn if q.topic == "care"})
        attempt = open_attempt(db, a)
        assert submit(client, a, attempt.id, answers_for(db, attempt, wrong=5)).status_code == 303
    # The minimums take 3 of 5, so each attempt asks 2 care questions: attempts 1-3 ask all six,
    # none twice; attempt 4 asks again the two asked longest ago (attempt 1).
    assert [len(s) for s in asked] == [2, 2, 2, 2]
    assert len(asked[0] | asked[1] | asked[2]) == 6
    assert asked[3] == asked[0]
    db.close()


# --- the pass mark and the attempt limit on the officer's pages ----------------------------------

def test_pages_say_the_pass_mark_as_questions_correct(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    assignment = assignment_of(db, officer)
    version = assignment.policy_version
    needed = quiz_service.correct_needed(version.pass_mark, version.draw_size)
    phrase = f"{needed} of {version.draw_size} correct"
    a = assignment.id
    auth.sign_in(officer.badge)
    assert phrase in client.get(f"/training/{a}").get_data(as_text=True)
    read_all_lessons(client, a)
    assert phrase in client.get(f"/training/{a}/quiz").get_data(as_text=True)
    page = start_quiz(client, a)
    assert phrase in page
    attempt = open_attempt(db, a)
    submit(client, a, attempt.id, answers_for(db, attempt, wrong=version.draw_size - needed + 1))
    result = client.get(f"/training/{a}/quiz/{attempt.id}").get_data(as_text=True)
    assert phrase in result and f"{needed - 1} of {version.draw_size} correct." in result


def _fail_every_attempt(client, db, a: int, attempts: int) -> None:
    for _ in range(attempts):
        start_quiz(client, a)
        attempt = open_attempt(db, a)
        submit(client, a, attempt.id, answers_for(db, attempt, wrong=12))


def _grant(client, cycle_id: int, member_id: int, assignment_id: int, *, attempts="1", reason="Reviewed the lessons",
           password=PASSWORD):
    prefix = f"grant{assignment_id}-"
    token = csrf_token(client, f"/coordinator/cycles/{cycle_id}/members/{member_id}")
    return client.post(f"/coordinator/cycles/{cycle_id}/members/{member_id}/assignments/{assignment_id}/attempts",
                       data={"csrf_token": token, prefix + "attempts": attempts, prefix + "reason": reason,
                             prefix + "password": password})


def test_member_at_the_limit_sees_whom_to_ask_and_a_coordinator_grant_unblocks_them(
        app, client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera", badge="501")
    coordinator = make_member(first="Cora", last="Dinator", badge="502", roles=("coordinator",))
    cycle = open_cycle()
    assignment = assignment_of(db, officer)
    a, limit = assignment.id, assignment.policy_version.max_attempts
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    _fail_every_attempt(client, db, a, limit)
    page = client.get(f"/training/{a}/quiz").get_data(as_text=True)
    assert f"used all {limit} attempts" in page and "Cora Dinator" in page
    assert "Start a new attempt" not in page
    app.config.update(TRAINING_CONTACT_NAME="Sgt. Pat Training", TRAINING_CONTACT_EMAIL="training@elgin.test")
    page = client.get(f"/training/{a}").get_data(as_text=True)
    assert 'href="mailto:training@elgin.test"' in page and "Sgt. Pat Training" in page
    auth.sign_out()

    auth.sign_in(coordinator.badge)
    member_page = client.get(f"/coordinator/cycles/{cycle.id}/members/{officer.id}").get_data(as_text=True)
    assert f"{limit} of {limit} attempts used" in member_page and "Grant extra quiz attempts" in member_page
    roster = client.get(f"/coordinator/cycles/{cycle.id}/roster").get_data(as_text=True)
    assert f"{limit} of {limit} attempts" in roster and roster.count("All used: grant another") == 1
    refused = _grant(client, cycle.id, officer.id, a, reason="  ")
    assert refused.status_code == 400 and "Give the reason" in refused.get_data(as_text=True)
    refused = _grant(client, cycle.id, officer.id, a, attempts="11")
    assert refused.status_code == 400 and "from 1 to 10 attempts" in refused.get_data(as_text=True)
    refused = _grant(client, cycle.id, officer.id, a, password="not my password at all")
    assert refused.status_code == 400 and "not your current password" in refused.get_data(as_text=True)
    assert db.scalar(select(func.count(AttemptGrant.id))) == 0
    db.expire_all()
    assert db.get(Member, coordinator.id).failed_sign_ins == 1  # counts toward lockout
    granted = _grant(client, cycle.id, officer.id, a, attempts="2", reason="Went over 16.3.2 with me")
    assert granted.status_code == 303
    member_page = client.get(f"/coordinator/cycles/{cycle.id}/members/{officer.id}").get_data(as_text=True)
    assert f"{limit} of {limit + 2} attempts used" in member_page and "Went over 16.3.2 with me" in member_page
    roster = client.get(f"/coordinator/cycles/{cycle.id}/roster").get_data(as_text=True)
    assert f"{limit} of {limit + 2} attempts" in roster and "All used" not in roster
    csv_text = client.get(f"/coordinator/cycles/{cycle.id}/roster.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].endswith("policy_version,due_date,exemption_reason")  # contract unchanged
    events = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "quiz.grant_attempts")))
    assert len(events) == 1 and events[0].actor_id == coordinator.id
    assert events[0].details["attempts"] == 2 and events[0].details["badge"] == "501"
    auth.sign_out()

    auth.sign_in(officer.badge)
    page = client.get(f"/training/{a}").get_data(as_text=True)
    assert "Extra attempts granted" in page and "Went over 16.3.2 with me" in page
    assert f"2 of {limit + 2} attempts left" in page
    start_quiz(client, a)
    attempt = open_attempt(db, a)
    assert attempt.number == limit + 1
    assert submit(client, a, attempt.id, answers_for(db, attempt)).status_code == 303
    db.expire_all()
    assert db.get(Assignment, a).progress == "quiz_passed"


def test_nobody_grants_attempts_to_themselves(client, auth, db, make_member, open_cycle):
    coordinator = make_member(first="Cora", last="Dinator", badge="502", roles=("officer", "coordinator"))
    cycle = open_cycle()
    a = assignment_of(db, coordinator).id
    auth.sign_in(coordinator.badge)
    page = client.get(f"/coordinator/cycles/{cycle.id}/members/{coordinator.id}").get_data(as_text=True)
    assert "Grant extra quiz attempts" not in page and "cannot grant quiz attempts to yourself" in page
    refused = _grant(client, cycle.id, coordinator.id, a)
    assert refused.status_code == 400 and "cannot grant quiz attempts to yourself" in refused.get_data(as_text=True)
    assert db.scalar(select(func.count(AttemptGrant.id))) == 0


def test_wrong_passwords_when_granting_lock_the_coordinator_out(app, client, auth, db, make_member, open_cycle):
    officer = make_member(badge="501")
    coordinator = make_member(first="Cora", last="Dinator", badge="502", roles=("coordinator",))
    cycle = open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(coordinator.badge)
    threshold = app.config["LOCKOUT_THRESHOLD"]
    for n in range(threshold - 1):
        assert _grant(client, cycle.id, officer.id, a, password=f"wrong guess {n}").status_code == 400
    last = _grant(client, cycle.id, officer.id, a, password="the last wrong guess")
    assert last.status_code == 303 and last.headers["Location"].endswith("/sign-in")
    db.expire_all()
    assert db.get(Member, coordinator.id).is_locked(utcnow())
    assert db.scalar(select(func.count(AttemptGrant.id))) == 0


def test_grant_attempts_from_the_command_line(app, runner, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera", badge="501")
    make_member(first="Cora", last="Dinator", badge="502", roles=("coordinator",))
    make_member(first="Hal", last="Resources", badge="503", roles=("hr",))
    cycle = open_cycle()
    base = ["lms", "grant-attempts", "--cycle", str(cycle.year), "--attempts", "1", "--reason", "Asked in person"]

    def run(*args, password=PASSWORD):
        return runner.invoke(args=[*base, *args], input=f"{password}\n" if password is not None else "")

    result = run("--badge", "501", "--by", "502")
    assert result.exit_code == 0, result.output
    assert "Granted Alex Rivera (badge 501) 1 more attempt at policy 16.3" in result.output
    for args, password, message in [
        (("--badge", "501", "--by", "502"), "wrong password", "not your current password"),
        (("--badge", "501", "--by", "502"), None, "standard input"),
        (("--badge", "999", "--by", "502"), PASSWORD, "No member has badge 999"),
        (("--badge", "501", "--by", "999"), PASSWORD, "no member has badge 999"),
        (("--badge", "502", "--by", "502"), PASSWORD, "cannot grant quiz attempts to yourself"),
        (("--badge", "501", "--by", "503"), PASSWORD, "Only a training coordinator"),
        (("--badge", "501", "--by", "502", "--policy", "99.9"), PASSWORD, "no assignment for policy 99.9"),
    ]:
        result = run(*args, password=password)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    result = runner.invoke(args=["lms", "grant-attempts", "--cycle", "1999", "--badge", "501", "--attempts", "1",
                                 "--reason", "x", "--by", "502"], input=PASSWORD + "\n")
    assert result.exit_code == 1 and "no cycle is named '1999'" in result.output
    db.expire_all()
    grants = list(db.scalars(select(AttemptGrant)))
    assert [(g.attempts, g.reason) for g in grants] == [(1, "Asked in person")]
    assert assignment_of(db, officer).extra_attempts == 1
    assert db.scalar(select(Member.failed_sign_ins).where(Member.badge == "502")) == 1
