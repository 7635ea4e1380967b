"""The scenario quiz: drawing attempts from the bank and scoring them, on the server only."""
from __future__ import annotations

import random
import secrets
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lms.models import Assignment, AttemptItem, Question, QuizAttempt
from lms.services.progress import completed_lesson_ids
from lms.models import Lesson


class QuizError(Exception):
    """The quiz cannot be started or submitted as asked; the message says why."""


class AnswerError(ValueError):
    """Submitted answers that do not fit the attempt; ``problems`` maps position to message."""

    def __init__(self, problems: dict[int, str]):
        super().__init__("; ".join(f"question {p}: {m}" for p, m in sorted(problems.items())))
        self.problems = problems


def draw_questions(bank: list[Question], minimum_per_topic: dict[str, int], size: int,
                   rng: random.Random) -> list[Question]:
    """Draw ``size`` questions covering each topic's minimum, the rest at random, in random order."""
    by_topic: dict[str, list[Question]] = defaultdict(list)
    for question in bank:
        by_topic[question.topic].append(question)
    chosen: list[Question] = []
    for topic, minimum in sorted(minimum_per_topic.items()):
        if len(by_topic[topic]) < minimum:
            raise QuizError(f"the bank has too few questions on {topic}")
        chosen.extend(rng.sample(by_topic[topic], minimum))
    picked = {q.id for q in chosen}
    rest = [q for q in bank if q.id not in picked]
    if len(chosen) + len(rest) < size:
        raise QuizError("the bank has fewer questions than an attempt draws")
    chosen.extend(rng.sample(rest, size - len(chosen)))
    rng.shuffle(chosen)
    return chosen


def open_attempt(session: Session, assignment_id: int) -> QuizAttempt | None:
    """The attempt started and not yet submitted, if any."""
    return session.scalar(select(QuizAttempt).where(
        QuizAttempt.assignment_id == assignment_id, QuizAttempt.submitted_at.is_(None)))


def submitted_attempts(session: Session, assignment_id: int) -> list[QuizAttempt]:
    """Submitted attempts, first to last."""
    return list(session.scalars(select(QuizAttempt).where(
        QuizAttempt.assignment_id == assignment_id, QuizAttempt.submitted_at.is_not(None))
        .order_by(QuizAttempt.number)))


def start_attempt(session: Session, assignment: Assignment, now: datetime,
                  rng: random.Random | None = None) -> QuizAttempt:
    """Start an attempt, or return the one already open so reloading cannot re-roll the draw."""
    current = open_attempt(session, assignment.id)
    if current is not None:
        return current
    version = assignment.policy_version
    lesson_ids = set(session.scalars(select(Lesson.id).where(
        Lesson.version_id == version.id, Lesson.retired.is_(False))))
    if not lesson_ids <= completed_lesson_ids(session, assignment.id):
        raise QuizError("Read every lesson before taking the quiz.")
    done = submitted_attempts(session, assignment.id)
    if any(a.passed for a in done):
        raise QuizError("You have already passed this quiz.")
    if len(done) >= version.max_attempts:
        raise QuizError(f"You have used all {version.max_attempts} attempts. "
                        "Contact your training coordinator.")
    bank = list(session.scalars(select(Question).where(
        Question.version_id == version.id, Question.retired.is_(False)).order_by(Question.position)))
    rng = rng or random.Random(secrets.randbits(64))
    drawn = draw_questions(bank, version.minimum_per_topic, version.draw_size, rng)
    number = (session.scalar(select(func.max(QuizAttempt.number))
                             .where(QuizAttempt.assignment_id == assignment.id)) or 0) + 1
    attempt = QuizAttempt(assignment_id=assignment.id, number=number, started_at=now)
    for position, question in enumerate(drawn, start=1):
        order = [o.id for o in question.options]
        rng.shuffle(order)
        attempt.items.append(AttemptItem(position=position, question_id=question.id, option_order=order))
    session.add(attempt)
    session.flush()
    return attempt


def submit_attempt(session: Session, attempt: QuizAttempt, answers: dict[int, list[int]],
                   now: datetime) -> QuizAttempt:
    """Score an open attempt from ``answers`` (item position -> chosen option ids).

    Only the drawn items count, each must be answered with options shown for it, and an attempt
    is scored once: the submitted_at guard in the UPDATE makes a replay or a double submit fail.
    """
    if attempt.submitted_at is not None:
        raise QuizError("This attempt has already been submitted.")
    problems: dict[int, str] = {}
    positions = {item.position for item in attempt.items}
    for position in answers:
        if position not in positions:
            problems[position] = "was not part of this attempt"
    for item in attempt.items:
        chosen = answers.get(item.position, [])
        if not chosen:
            problems[item.position] = "choose an answer"
        elif not set(chosen) <= set(item.option_order):
            problems[item.position] = "answer is not one of the options shown"
        elif item.question.kind == "single" and len(chosen) != 1:
            problems[item.position] = "choose exactly one answer"
        elif len(set(chosen)) != len(chosen):
            problems[item.position] = "an option was chosen twice"
    if problems:
        raise AnswerError(problems)
    claimed = session.execute(
        update(QuizAttempt).where(QuizAttempt.id == attempt.id, QuizAttempt.submitted_at.is_(None))
        .values(submitted_at=now)).rowcount
    if claimed != 1:
        raise QuizError("This attempt has already been submitted.")
    correct = 0
    for item in attempt.items:
        right = {o.id for o in item.question.options if o.correct}
        item.chosen = sorted(answers[item.position])
        item.correct = set(item.chosen) == right
        correct += item.correct
    version = attempt.assignment.policy_version
    attempt.submitted_at = now
    attempt.correct_count = correct
    attempt.score = 100 * correct // len(attempt.items)
    attempt.passed = attempt.score >= version.pass_mark
    session.flush()
    return attempt
