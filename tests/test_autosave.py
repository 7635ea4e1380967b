"""Quiz answers kept on the server as the member answers, the warning before the idle sign-out,
and forms posted after the session ended bringing the member back to the same place."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from lms.models import AttemptItem, QuestionOption, SignInSession
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import assignment_of, lesson_links, open_attempt, read_all_lessons, start_quiz, submit


def _options(db, item) -> tuple[list[int], list[int]]:
    options = db.scalars(select(QuestionOption).where(QuestionOption.question_id == item.question_id)).all()
    return [o.id for o in options if o.correct], [o.id for o in options if not o.correct]


def _checked(html: str) -> dict[int, set[int]]:
    """Question position -> option ids checked on the quiz page."""
    found: dict[int, set[int]] = {}
    for position, value in re.findall(r'<input type="(?:radio|checkbox)" name="q(\d+)" id="[^"]+" value="(\d+)" checked>',
                                      html):
        found.setdefault(int(position), set()).add(int(value))
    return found


def _age_sessions(db, by: timedelta) -> None:
    """Every session last seen ``by`` earlier than it was."""
    db.expire_all()
    for sign_in in db.scalars(select(SignInSession)):
        sign_in.last_seen_at -= by
    db.commit()


def _idle_out(db) -> None:
    """Every session last seen long ago, as after the idle limit with the laptop lid closed."""
    _age_sessions(db, timedelta(hours=1))


def _sign_in_at(client, sign_in_url: str, badge: str):
    """Sign in on the page the redirect named (its form posts back to the same address, ?next= and all)."""
    return client.post(sign_in_url, data={"badge": badge, "password": PASSWORD,
                                          "csrf_token": csrf_token(client, sign_in_url)})


def _quiz_ready(client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    page = start_quiz(client, a)
    return officer, a, open_attempt(db, a), page


def test_each_choice_is_saved_and_shown_again_and_submitted(client, auth, db, make_member, open_cycle):
    _officer, a, attempt, page = _quiz_ready(client, auth, db, make_member, open_cycle)
    assert 'src="/static/js/quiz-autosave.js"' in page and "Save answers" in page
    url = f"/training/{a}/quiz/{attempt.id}/answers"
    token = csrf_token(client, f"/training/{a}/quiz")
    first, second = attempt.items[0], attempt.items[1]
    right, wrong = _options(db, first)
    response = client.post(url, data={"csrf_token": token, "positions": "1", "q1": str(wrong[0])},
                           headers={"Accept": "application/json"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["saved"] == 1 and body["total"] == len(attempt.items) and body["seconds_left"] > 0
    # The member changes their mind: the last choice is the one kept.
    client.post(url, data={"csrf_token": token, "positions": "1", "q1": [str(i) for i in right]},
                headers={"Accept": "application/json"})
    right2, _ = _options(db, second)
    client.post(url, data={"csrf_token": token, "positions": "2", **{"q2": [str(i) for i in right2]}},
                headers={"Accept": "application/json"})
    shown = _checked(client.get(f"/training/{a}/quiz").get_data(as_text=True))
    assert shown == {1: set(right), 2: set(right2)}
    db.expire_all()
    saved = {i.position: i.saved for i in db.scalars(select(AttemptItem).where(AttemptItem.attempt_id == attempt.id))}
    assert saved[1] == sorted(right) and saved[3] is None
    # A choice that is not one of the options shown is refused and nothing changes.
    refused = client.post(url, data={"csrf_token": token, "positions": "1", "q1": "999999"},
                          headers={"Accept": "application/json"})
    assert refused.status_code == 400 and "not one of the options" in refused.get_json()["error"]
    assert _checked(client.get(f"/training/{a}/quiz").get_data(as_text=True))[1] == set(right)
    # No CSRF token, no save.
    assert client.post(url, data={"positions": "1", "q1": str(wrong[0])}).status_code == 400


def test_without_javascript_the_save_button_keeps_the_whole_form(client, auth, db, make_member, open_cycle):
    _officer, a, attempt, _page = _quiz_ready(client, auth, db, make_member, open_cycle)
    url = f"/training/{a}/quiz/{attempt.id}/answers"
    token = csrf_token(client, f"/training/{a}/quiz")
    choices = {f"q{item.position}": str(_options(db, item)[0][0]) for item in attempt.items[:3]}
    response = client.post(url, data={"csrf_token": token, **choices})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/training/{a}/quiz")
    page = client.get(f"/training/{a}/quiz").get_data(as_text=True)
    assert f"Answers saved: 3 of {len(attempt.items)}" in page
    assert set(_checked(page)) == {1, 2, 3}
    # Posting the form again with question 3 left blank clears it: the form is the whole truth.
    del choices["q3"]
    client.post(url, data={"csrf_token": token, **choices})
    assert set(_checked(client.get(f"/training/{a}/quiz").get_data(as_text=True))) == {1, 2}


def test_answers_survive_an_idle_sign_out_and_the_member_returns_to_the_quiz(client, auth, db, make_member,
                                                                             open_cycle):
    officer, a, attempt, _page = _quiz_ready(client, auth, db, make_member, open_cycle)
    url = f"/training/{a}/quiz/{attempt.id}/answers"
    token = csrf_token(client, f"/training/{a}/quiz")
    for item in attempt.items[:5]:
        client.post(url, data={"csrf_token": token, "positions": str(item.position),
                               f"q{item.position}": str(_options(db, item)[0][0])},
                    headers={"Accept": "application/json"})
    _idle_out(db)
    # The member comes back and submits the page they left open: the session has ended.
    quiz_page = f"http://localhost/training/{a}/quiz"
    answers = {f"q{item.position}": str(_options(db, item)[0][0]) for item in attempt.items}
    response = client.post(f"/training/{a}/quiz/{attempt.id}", data={"csrf_token": token, **answers},
                           headers={"Referer": quiz_page})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/sign-in?next=%2Ftraining%2F{a}%2Fquiz"
    signed_in = _sign_in_at(client, response.headers["Location"], officer.badge)
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == f"/training/{a}/quiz"
    page = client.get(f"/training/{a}/quiz").get_data(as_text=True)
    assert set(_checked(page)) == {1, 2, 3, 4, 5}  # what was saved before the sign-out
    db.expire_all()
    assert open_attempt(db, a).id == attempt.id  # the same attempt, not a new draw
    assert submit(client, a, attempt.id, answers).status_code == 303


def test_mark_as_read_after_an_idle_sign_out_comes_back_to_the_lesson(client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    a = assignment_of(db, officer).id
    auth.sign_in(officer.badge)
    lesson = lesson_links(client.get(f"/training/{a}").get_data(as_text=True), a)[0]
    token = csrf_token(client, lesson)
    _idle_out(db)
    response = client.post(f"{lesson}/read", data={"csrf_token": token},
                           headers={"Referer": f"http://localhost{lesson}"})
    assert response.status_code == 303 and "next=" in response.headers["Location"]
    back = _sign_in_at(client, response.headers["Location"], officer.badge).headers["Location"]
    assert back == lesson  # not the POST-only address (that would be 405)
    assert client.get(back).status_code == 200
    # A form posted from another site's page, or without a referrer, lands on the home page.
    _idle_out(db)
    response = client.post(f"{lesson}/read", data={"csrf_token": csrf_token(client, "/sign-in")},
                           headers={"Referer": "https://evil.example/phish"})
    assert response.headers["Location"] == "/sign-in?next=%2F"


def test_stay_signed_in_touches_the_session(app, client, auth, db, make_member, open_cycle):
    officer = make_member()
    open_cycle()
    auth.sign_in(officer.badge)
    page = client.get("/training/").get_data(as_text=True)
    assert 'id="session-warning"' in page and 'role="alertdialog"' in page and "Stay signed in" in page
    assert 'src="/static/js/session-timeout.js"' in page
    left = int(re.search(r'data-seconds-left="(\d+)"', page).group(1))
    assert 0 < left <= app.config["SESSION_IDLE_MINUTES"] * 60
    # Nearly idle: the session was last seen 29 minutes ago.
    token = csrf_token(client, "/training/")
    _age_sessions(db, timedelta(minutes=29))
    response = client.post("/session/stay", data={"csrf_token": token}, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json()["seconds_left"] >= app.config["SESSION_IDLE_MINUTES"] * 60 - 5
    # Without JavaScript: back to the page the button was on.
    response = client.post("/session/stay", data={"csrf_token": token}, headers={"Referer": "http://localhost/training/"})
    assert response.status_code == 303 and response.headers["Location"] == "/training/"
    auth.sign_out()
    assert 'id="session-warning"' not in client.get("/sign-in").get_data(as_text=True)
