"""Item analysis: for a cycle and policy version, how each quiz question was answered — how often,
how often right, and which wrong options drew people — by topic, flagging the questions most
people miss. Counted in SQL with GROUP BY (three queries whatever the number of attempts)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Integer, case, cast, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from lms.models import Assignment, AttemptItem, Cycle, PolicyVersion, Question, QuestionOption, QuizAttempt

#: A question is flagged when fewer than this percentage of its answers were correct…
DEFAULT_FLAG_BELOW = 60
#: …and it was answered at least this many times (fewer answers say little either way).
DEFAULT_MIN_ANSWERS = 5


@dataclass
class OptionStats:
    """One answer option and how many submitted answers included it."""

    id: int
    position: int
    text: str
    correct: bool
    chosen: int
    #: Share of the question's answers that included this option, 0–100; None when unanswered.
    percent: int | None

    @property
    def letter(self) -> str:
        """A, B, C… in the bank's order (members saw the options shuffled)."""
        return chr(ord("A") + self.position - 1) if 1 <= self.position <= 26 else str(self.position)


@dataclass
class QuestionStats:
    """One question of the bank with its answer counts."""

    id: int
    key: str
    topic: str
    kind: str
    scenario: str
    prompt: str
    cites: list[str]
    retired: bool
    answered: int
    correct: int
    flagged: bool
    options: list[OptionStats] = field(default_factory=list)

    @property
    def percent_correct(self) -> int | None:
        """Percentage of answers that were right, rounded; None when never answered."""
        return round(100 * self.correct / self.answered) if self.answered else None

    @property
    def wrong_options(self) -> list[OptionStats]:
        """The incorrect options, most chosen first."""
        return sorted((o for o in self.options if not o.correct), key=lambda o: (-o.chosen, o.position))


@dataclass
class TopicStats:
    """A topic's questions and their answers added up."""

    tag: str
    name: str
    questions: list[QuestionStats]

    @property
    def answered(self) -> int:
        return sum(q.answered for q in self.questions)

    @property
    def correct(self) -> int:
        return sum(q.correct for q in self.questions)

    @property
    def percent_correct(self) -> int | None:
        """Percentage of the topic's answers that were right; None when none were given."""
        return round(100 * self.correct / self.answered) if self.answered else None


@dataclass
class ItemAnalysis:
    """Item analysis of one policy version in one cycle."""

    cycle: Cycle
    version: PolicyVersion
    #: Submitted attempts counted.
    attempts: int
    topics: list[TopicStats]
    flag_below: int
    min_answers: int

    @property
    def questions(self) -> list[QuestionStats]:
        return [q for t in self.topics for q in t.questions]

    @property
    def flagged(self) -> list[QuestionStats]:
        """Flagged questions, the most missed first."""
        return sorted((q for q in self.questions if q.flagged),
                      key=lambda q: (q.correct / q.answered, -q.answered, q.key))


def is_flagged(answered: int, correct: int, *, flag_below: int = DEFAULT_FLAG_BELOW,
               min_answers: int = DEFAULT_MIN_ANSWERS) -> bool:
    """Whether a question counts as one most people miss: at least ``min_answers`` answers and
    fewer than ``flag_below`` percent of them correct (compared in whole numbers, no rounding)."""
    return answered >= min_answers and 100 * correct < flag_below * answered


def _submitted_items(cycle_id: int, version_id: int, *columns) -> Select:
    """SELECT ``columns`` from the attempt items of submitted attempts of this cycle and version."""
    return (select(*columns).select_from(AttemptItem)
            .join(QuizAttempt, QuizAttempt.id == AttemptItem.attempt_id)
            .join(Assignment, Assignment.id == QuizAttempt.assignment_id)
            .where(Assignment.cycle_id == cycle_id, Assignment.policy_version_id == version_id,
                   QuizAttempt.submitted_at.is_not(None)))


def _chosen_option_ids(dialect: str):
    """A table-valued function expanding ``attempt_item.chosen`` (a JSON list of option ids) into
    one row per id, and the integer id column. The functions differ by database; in both, a
    function in FROM may refer to the tables before it (implicitly LATERAL)."""
    if dialect == "postgresql":
        # json, not jsonb: SQLAlchemy's JSON type maps to PostgreSQL's json.
        elements = func.json_array_elements_text(AttemptItem.chosen).table_valued(
            "value", joins_implicitly=True).alias("chosen_option")
        return elements, cast(elements.c.value, Integer)
    if dialect == "sqlite":
        elements = func.json_each(AttemptItem.chosen).table_valued(
            "value", joins_implicitly=True).alias("chosen_option")
        return elements, cast(elements.c.value, Integer)
    raise NotImplementedError(f"item analysis has no JSON expansion for {dialect}")


def item_analysis(session: Session, cycle: Cycle, version: PolicyVersion, *,
                  flag_below: int = DEFAULT_FLAG_BELOW,
                  min_answers: int = DEFAULT_MIN_ANSWERS) -> ItemAnalysis:
    """Per question of ``version``: answers in submitted attempts of ``cycle``, how many were
    correct, and how many included each option; grouped by topic in the content pack's order.

    Retired questions appear only if someone answered them. ``flag_below`` (percent) and
    ``min_answers`` decide which questions are flagged; see :func:`is_flagged`.
    """
    per_question = (
        _submitted_items(cycle.id, version.id, AttemptItem.question_id,
                         func.count(AttemptItem.id).label("answered"),
                         func.count(case((AttemptItem.correct.is_(True), 1))).label("correct"))
        .group_by(AttemptItem.question_id).subquery())
    answered = func.coalesce(per_question.c.answered, 0)
    questions = session.execute(
        select(Question.id, Question.key, Question.topic, Question.kind, Question.scenario, Question.prompt,
               Question.cites,
               Question.retired, answered.label("answered"),
               func.coalesce(per_question.c.correct, 0).label("correct"))
        .outerjoin(per_question, per_question.c.question_id == Question.id)
        .where(Question.version_id == version.id, or_(Question.retired.is_(False), answered > 0))
        .order_by(Question.position, Question.id)).all()

    elements, option_id = _chosen_option_ids(session.get_bind().dialect.name)
    per_option = (
        _submitted_items(cycle.id, version.id, option_id.label("option_id"), func.count().label("chosen"))
        .join(elements, true())
        .group_by(option_id).subquery())
    options = session.execute(
        select(QuestionOption.id, QuestionOption.question_id, QuestionOption.position, QuestionOption.text,
               QuestionOption.correct, func.coalesce(per_option.c.chosen, 0).label("chosen"))
        .join(Question, Question.id == QuestionOption.question_id)
        .outerjoin(per_option, per_option.c.option_id == QuestionOption.id)
        .where(Question.version_id == version.id)
        .order_by(QuestionOption.question_id, QuestionOption.position)).all()

    attempts = session.scalar(
        select(func.count(QuizAttempt.id)).join(Assignment, Assignment.id == QuizAttempt.assignment_id)
        .where(Assignment.cycle_id == cycle.id, Assignment.policy_version_id == version.id,
               QuizAttempt.submitted_at.is_not(None)))

    stats: dict[int, QuestionStats] = {}
    for row in questions:
        stats[row.id] = QuestionStats(
            id=row.id, key=row.key, topic=row.topic, kind=row.kind, scenario=row.scenario, prompt=row.prompt,
            cites=list(row.cites or []), retired=row.retired, answered=row.answered, correct=row.correct,
            flagged=is_flagged(row.answered, row.correct, flag_below=flag_below, min_answers=min_answers))
    for row in options:
        question = stats.get(row.question_id)
        if question is not None:
            percent = round(100 * row.chosen / question.answered) if question.answered else None
            question.options.append(OptionStats(id=row.id, position=row.position, text=row.text,
                                                correct=row.correct, chosen=row.chosen, percent=percent))

    names = dict(version.topics or {})
    order = list(names) + sorted({q.topic for q in stats.values()} - set(names))
    topics = [TopicStats(tag=tag, name=names.get(tag, tag),
                         questions=[q for q in stats.values() if q.topic == tag]) for tag in order]
    return ItemAnalysis(cycle=cycle, version=version, attempts=attempts or 0,
                        topics=[t for t in topics if t.questions], flag_below=flag_below,
                        min_answers=min_answers)
