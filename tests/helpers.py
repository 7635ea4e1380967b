"""Helpers that drive the officer's pages the way a browser would."""
from __future__ import annotations

import re

from sqlalchemy import select

from lms.models import Assignment, QuestionOption, QuizAttempt
from tests.conftest import PASSWORD, csrf_token


def assignment_of(db, member) -> Assignment:
    db.expire_all()
    return db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()


def lesson_links(html: str, assignment_id: int) -> list[str]:
    return list(dict.fromkeys(re.findall(rf'href="(/training/{assignment_id}/lessons/\d+)"', html)))


def read_all_lessons(client, assignment_id: int) -> None:
    html = client.get(f"/training/{assignment_id}").get_data(as_text=True)
    token = csrf_token(client, f"/training/{assignment_id}")
    for link in lesson_links(html, assignment_id):
        response = client.post(f"{link}/read", data={"csrf_token": token})
        assert response.status_code == 302


def start_quiz(client, assignment_id: int) -> str:
    token = csrf_token(client, f"/training/{assignment_id}/quiz")
    response = client.post(f"/training/{assignment_id}/quiz/start", data={"csrf_token": token})
    assert response.status_code == 302
    return client.get(f"/training/{assignment_id}/quiz").get_data(as_text=True)


def open_attempt(db, assignment_id: int) -> QuizAttempt:
    db.expire_all()
    return db.scalars(select(QuizAttempt).where(QuizAttempt.assignment_id == assignment_id,
                                                QuizAttempt.submitted_at.is_(None))).one()


def answers_for(db, attempt: QuizAttempt, wrong: int = 0) -> dict[str, list[str]]:
    """Form data answering the attempt: all right, except the first ``wrong`` questions."""
    data: dict[str, list[str]] = {}
    for item in attempt.items:
        options = db.scalars(select(QuestionOption).where(QuestionOption.question_id == item.question_id)).all()
        right = [str(o.id) for o in options if o.correct]
        if item.position <= wrong:
            data[f"q{item.position}"] = [str(next(o.id for o in options if not o.correct))]
        else:
            data[f"q{item.position}"] = right
    return data


def submit(client, assignment_id: int, attempt_id: int, answers: dict, token: str | None = None):
    token = token or csrf_token(client, f"/training/{assignment_id}/quiz")
    return client.post(f"/training/{assignment_id}/quiz/{attempt_id}", data={**answers, "csrf_token": token})


def pass_quiz(client, db, assignment_id: int) -> QuizAttempt:
    start_quiz(client, assignment_id)
    attempt = open_attempt(db, assignment_id)
    response = submit(client, assignment_id, attempt.id, answers_for(db, attempt))
    assert response.status_code == 303
    return attempt


def sign(client, assignment_id: int, full_name: str, password: str = PASSWORD, text_sha256: str | None = None):
    page = client.get(f"/training/{assignment_id}/sign").get_data(as_text=True)
    token = csrf_token(client, f"/training/{assignment_id}/sign")
    shown = re.search(r'name="text_sha256" type="hidden" value="([0-9a-f]+)"', page) or \
        re.search(r'id="text_sha256" name="text_sha256" type="hidden" value="([0-9a-f]+)"', page)
    data = {"full_name": full_name, "password": password, "csrf_token": token,
            "text_sha256": text_sha256 or (shown.group(1) if shown else "")}
    return client.post(f"/training/{assignment_id}/sign", data=data)


def cycle_id_of(source, year: int) -> int:
    """The id of the one cycle of ``year`` (tests open one a year), from a session or an app."""
    from lms.db import get_database
    from lms.models import Cycle

    if hasattr(source, "scalars"):
        source.expire_all()
        return source.scalars(select(Cycle.id).where(Cycle.year == year)).one()
    with get_database(source).sessionmaker() as session:
        return session.scalars(select(Cycle.id).where(Cycle.year == year)).one()
def day_shown(day) -> str:
    """How a page shows a date: in words, in a <time> that carries the ISO date."""
    return f'<time datetime="{day.isoformat()}">{day:%B} {day.day}, {day.year}</time>'
