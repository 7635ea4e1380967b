"""The scenario quiz: drawing attempts from the bank and scoring them, on the server only."""
from __future__ import annotations

import random
import secrets
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from lms.models import Assignment, AttemptItem, Lesson, Question, QuizAttempt
from lms.services.progress import attempts_allowed, completed_lesson_ids


class QuizError(Exception):
    """The quiz cannot be started or submitted as asked; the message says why."""


class AnswerError(ValueError):
    """Submitted answers that do not fit the attempt; ``problems`` maps position to message."""

    def __init__(self, problems: dict[int, str]):
        super().__init__("; ".join(f"question {p}: {m}" for p, m in sorted(problems.items())))
        self.problems = problems


def check_draw_rules(bank: list[Question], minimum_per_topic: dict[str, int], size: int) -> None:
    """Refuse, naming the problem, draw rules that no attempt could satisfy: a minimum that is not a
    whole number of at least zero, a topic with fewer questions than its minimum, minimums that add
    up to more than an attempt draws, or a bank smaller than an attempt."""
    counts: dict[str, int] = defaultdict(int)
    for question in bank:
        counts[question.topic] += 1
    if not isinstance(size, int) or size < 1:
        raise QuizError(f"an attempt must draw at least one question (draw size {size!r})")
    for topic, minimum in sorted(minimum_per_topic.items()):
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
            raise QuizError(f"the minimum for topic {topic} must be a whole number of 0 or more, not {minimum!r}")
        if counts[topic] < minimum:
            raise QuizError(f"the bank has {counts[topic]} question(s) on topic {topic}, "
                            f"fewer than its minimum of {minimum}")
    required = sum(minimum_per_topic.values())
    if required > size:
        raise QuizError(f"the topic minimums add up to {required} questions, more than the "
                        f"{size} an attempt draws")
    if len(bank) < size:
        raise QuizError(f"the bank has {len(bank)} question(s), fewer than the {size} an attempt draws")


def draw_questions(bank: list[Question], minimum_per_topic: dict[str, int], size: int,
                   rng: random.Random, last_seen: dict[int, int] | None = None) -> list[Question]:
    """Draw ``size`` questions covering each topic's minimum, the rest from the whole bank, in
    random order.

    ``last_seen`` maps the id of each question the member has already been asked to when (a
    larger number is more recent, e.g. the attempt number). Questions not yet seen come first,
    then the least recently seen, at random within each tier, both for the topic minimums and the
    rest: a retake asks new questions as long as the bank has them. Raises QuizError when the
    rules cannot be met (see :func:`check_draw_rules`).
    """
    check_draw_rules(bank, minimum_per_topic, size)
    last_seen = last_seen or {}
    # One random tie-break per question, drawn in the bank's order so a seeded draw repeats.
    freshness = {q.id: (q.id in last_seen, last_seen.get(q.id, 0), rng.random()) for q in bank}
    by_topic: dict[str, list[Question]] = defaultdict(list)
    for question in bank:
        by_topic[question.topic].append(question)
    chosen: list[Question] = []
    for topic, minimum in sorted(minimum_per_topic.items()):
        chosen.extend(sorted(by_topic[topic], key=lambda q: freshness[q.id])[:minimum])
    picked = {q.id for q in chosen}
    rest = sorted((q for q in bank if q.id not in picked), key=lambda q: freshness[q.id])
    chosen.extend(rest[:size - len(chosen)])
    rng.shuffle(chosen)
    return chosen


def seen_questions(session: Session, member_id: int, version_id: int) -> dict[int, int]:
    """Question id -> the number of the latest attempt that asked it, over every attempt the member
    has started at this version (in any cycle)."""
    rows = session.execute(
        select(AttemptItem.question_id, func.max(QuizAttempt.started_at))
        .join(QuizAttempt, QuizAttempt.id == AttemptItem.attempt_id)
        .join(Assignment, Assignment.id == QuizAttempt.assignment_id)
        .where(Assignment.member_id == member_id, Assignment.policy_version_id == version_id)
        .group_by(AttemptItem.question_id)).all()
    # Ranked by time rather than attempt number: numbers restart in each cycle's assignment.
    order = {when: rank for rank, when in enumerate(sorted({when for _, when in rows}), start=1)}
    return {question_id: order[when] for question_id, when in rows}


def open_attempt(session: Session, assignment_id: int) -> QuizAttempt | None:
    """The attempt started and not yet submitted, if any."""
    return session.scalar(select(QuizAttempt).where(
        QuizAttempt.assignment_id == assignment_id, QuizAttempt.submitted_at.is_(None)))


def submitted_attempts(session: Session, assignment_id: int) -> list[QuizAttempt]:
    """Submitted attempts, first to last, with their drawn items; each item's question (with its
    options and explanations) is loaded only if it is read, since lists of attempts show scores."""
    return list(session.scalars(select(QuizAttempt).where(
        QuizAttempt.assignment_id == assignment_id, QuizAttempt.submitted_at.is_not(None))
        .options(selectinload(QuizAttempt.items).lazyload(AttemptItem.question))
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
    allowed = attempts_allowed(session, assignment)
    if len(done) >= allowed:
        raise QuizError(f"You have used all {allowed} attempts. "
                        "Ask your training coordinator for another attempt.")
    bank = list(session.scalars(select(Question).where(
        Question.version_id == version.id, Question.retired.is_(False)).order_by(Question.position)))
    rng = rng or random.Random(secrets.randbits(64))
    drawn = draw_questions(bank, version.minimum_per_topic, version.draw_size, rng,
                           last_seen=seen_questions(session, assignment.member_id, version.id))
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


def save_answers(session: Session, attempt: QuizAttempt, answers: dict[int, list[int]],
                 now: datetime) -> int:
    """Keep the member's choices in an open attempt (item position -> chosen option ids; an empty
    list clears a question) so nothing is lost before submission. Questions not named keep what
    was saved. Nothing is scored. Raises AnswerError for a position or option not in the attempt
    (nothing is saved then) and QuizError once the attempt is submitted; returns how many
    questions now have a saved answer."""
    if attempt.submitted_at is not None:
        raise QuizError("This attempt has already been submitted.")
    items = {item.position: item for item in attempt.items}
    problems: dict[int, str] = {}
    for position, chosen in answers.items():
        item = items.get(position)
        if item is None:
            problems[position] = "was not part of this attempt"
        elif not set(chosen) <= set(item.option_order):
            problems[position] = "answer is not one of the options shown"
        elif item.question.kind == "single" and len(chosen) > 1:
            problems[position] = "choose exactly one answer"
    if problems:
        raise AnswerError(problems)
    for position, chosen in answers.items():
        item = items[position]
        item.saved = sorted(set(chosen)) or None
        item.saved_at = now
    session.flush()
    return sum(1 for item in attempt.items if item.saved)


def saved_answers(attempt: QuizAttempt) -> dict[int, set[int]]:
    """The choices saved in an open attempt, item position -> option ids."""
    return {item.position: set(item.saved) for item in attempt.items if item.saved}


def correct_needed(pass_mark: int, questions: int) -> int:
    """How many of ``questions`` must be right to pass at ``pass_mark`` percent: the pass mark said
    as what it is ("10 of 12 correct"). Matches the scoring in :func:`submit_attempt` (the score,
    rounded down, must reach the mark), i.e. the least n with 100·n ≥ pass_mark·questions."""
    return -(-pass_mark * questions // 100)


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
    claimed = session.execute(  # type: ignore[attr-defined]  # DML gives a CursorResult
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
