"""Item analysis: for a cycle and policy version, how each quiz question was answered — how often,
how often right (difficulty), whether the members who did well on the rest of the attempt got it
right more often than those who did badly (discrimination), and which wrong options drew people —
by topic, flagging the questions most people miss, the too easy, the too hard and those that
discriminate the wrong way; and the reliability (KR-20) of the attempt scores. Counted in SQL with
GROUP BY (three queries whatever the number of attempts).

Discrimination is the corrected item-total point-biserial correlation: over the attempts that
asked the question, the Pearson correlation between getting it right (1/0) and the number of the
attempt's other questions answered right. It is undefined (None) when everyone answered it alike
or the rest scores do not vary. Computed from sums (n, Σx, Σy, Σxy, Σy²) so the database adds
them up:

    r = (n·Σxy − Σx·Σy) / √((n·Σx − (Σx)²) · (n·Σy² − (Σy)²))        (x² = x for 0/1)

Beside it, Kelley's upper-lower index: the attempts ranked by their number right, the share right
among the answers of the best ⌈27%⌉ minus among the worst ⌈27%⌉ (ties at a group's edge go by
attempt order).

KR-20 is k/(k−1) · (1 − Σ pᵢqᵢ / σ²), σ² the population variance of the attempts' numbers of
correct answers and k the questions per attempt (items asked / attempts). Each attempt draws its own questions, so Σ pᵢqᵢ
is the sum an attempt carries on average: Σᵢ pᵢqᵢ · nᵢ / N (nᵢ attempts asked question i, of N).
With one fixed set of questions this is the textbook formula.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, case, cast, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from lms.models import Assignment, AttemptItem, Cycle, PolicyVersion, Question, QuestionOption, QuizAttempt

#: A question is flagged when fewer than this percentage of its answers were correct…
DEFAULT_FLAG_BELOW = 60
#: …and it was answered at least this many times (fewer answers say little either way).
DEFAULT_MIN_ANSWERS = 5
#: Difficulty (share correct, 0–1) above which a question is too easy to tell anyone apart…
TOO_EASY_ABOVE = 0.95
#: …and below which it is too hard (or its key is wrong).
TOO_HARD_BELOW = 0.30
#: The upper and lower groups of the upper-lower index: this percentage of the attempts each.
GROUP_PERCENT = 27
#: Flags a question can carry, with what they say to the coordinator.
FLAG_LABELS = {
    "too_easy": "Too easy",
    "too_hard": "Too hard",
    "negative_discrimination": "Strong members miss it",
    "no_discrimination": "Tells no one apart",
}


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
    #: Corrected item-total point-biserial correlation; None when undefined.
    discrimination: float | None = None
    #: Upper-lower 27% index (share right in the best attempts minus in the worst); None when
    #: undefined.
    upper_lower: float | None = None
    #: Keys of FLAG_LABELS that apply, in that order.
    flags: list[str] = field(default_factory=list)

    @property
    def difficulty(self) -> float | None:
        """Proportion of answers that were right, 0–1; None when never answered."""
        return self.correct / self.answered if self.answered else None

    @property
    def flag_labels(self) -> list[str]:
        return [FLAG_LABELS[f] for f in self.flags]

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
    #: KR-20 reliability of the attempt scores; None with fewer than two attempts or no spread.
    kr20: float | None = None
    #: Questions per attempt (the version's draw size, as the attempts were drawn), the k of KR-20.
    questions_per_attempt: int = 0

    @property
    def to_review(self) -> list[QuestionStats]:
        """Questions with any difficulty or discrimination flag, the lowest discrimination first."""
        return sorted((q for q in self.questions if q.flags),
                      key=lambda q: (q.discrimination if q.discrimination is not None else 2, q.key))

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


def point_biserial(n: int, sum_x: float, sum_y: float, sum_xy: float, sum_yy: float) -> float | None:
    """Pearson's r between a 0/1 item score x and a rest score y, from their sums; None when
    either does not vary (or n < 2)."""
    if n < 2:
        return None
    var_x = n * sum_x - sum_x * sum_x
    var_y = n * sum_yy - sum_y * sum_y
    if var_x <= 0 or var_y <= 0:
        return None
    return (n * sum_xy - sum_x * sum_y) / math.sqrt(var_x * var_y)


def kr20(k: float, attempts: int, sum_scores: float, sum_squares: float,
         item_variance_per_attempt: float) -> float | None:
    """KR-20 from k questions per attempt, the number of attempts, the sum and sum of squares of
    their scores (questions right), and the Σ pᵢqᵢ an attempt carries; None when undefined."""
    if k < 2 or attempts < 2:
        return None
    mean = sum_scores / attempts
    variance = sum_squares / attempts - mean * mean
    if variance <= 1e-12:
        return None
    return k / (k - 1) * (1 - item_variance_per_attempt / variance)


def upper_lower(upper_n: int, upper_right: int, lower_n: int, lower_right: int, *,
                overlap: bool = False) -> float | None:
    """Kelley's discrimination index: the share right among the upper group's answers minus the
    lower group's; None when either group did not answer it or the groups overlap (too few
    attempts to form two)."""
    if overlap or not upper_n or not lower_n:
        return None
    return upper_right / upper_n - lower_right / lower_n


def question_flags(answered: int, correct: int, discrimination: float | None, *,
                   min_answers: int = DEFAULT_MIN_ANSWERS) -> list[str]:
    """The difficulty and discrimination flags of a question answered ``answered`` times, ``correct``
    of them right (none before ``min_answers`` answers: too few say little)."""
    if answered < min_answers:
        return []
    flags = []
    p = correct / answered
    if p > TOO_EASY_ABOVE:
        flags.append("too_easy")
    if p < TOO_HARD_BELOW:
        flags.append("too_hard")
    if discrimination is not None and discrimination < 0:
        flags.append("negative_discrimination")
    if discrimination is None:
        flags.append("no_discrimination")
    return flags


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
    x = case((AttemptItem.correct.is_(True), 1), else_=0)
    rest = QuizAttempt.correct_count - x  # the attempt's other questions answered right
    # Every submitted attempt ranked by its number right (ties by attempt order), for the upper
    # and lower 27% groups: the first ⌈0.27·N⌉ and the last as many.
    ranked = (select(QuizAttempt.id.label("attempt_id"),
                     func.row_number().over(order_by=(QuizAttempt.correct_count.desc(), QuizAttempt.id))
                     .label("rank"),
                     func.count().over().label("n"))
              .join(Assignment, Assignment.id == QuizAttempt.assignment_id)
              .where(Assignment.cycle_id == cycle.id, Assignment.policy_version_id == version.id,
                     QuizAttempt.submitted_at.is_not(None)).subquery())
    group = (ranked.c.n * GROUP_PERCENT + 99) // 100  # ⌈n·27/100⌉ in whole numbers
    upper, lower = ranked.c.rank <= group, ranked.c.rank > ranked.c.n - group
    right = AttemptItem.correct.is_(True)
    per_question = (
        _submitted_items(cycle.id, version.id, AttemptItem.question_id,
                         func.count(AttemptItem.id).label("answered"),
                         func.count(case((right, 1))).label("correct"),
                         func.sum(rest).label("sum_y"), func.sum(x * rest).label("sum_xy"),
                         func.sum(rest * rest).label("sum_yy"),
                         func.count(case((upper, 1))).label("upper_n"),
                         func.count(case((and_(upper, right), 1))).label("upper_right"),
                         func.count(case((lower, 1))).label("lower_n"),
                         func.count(case((and_(lower, right), 1))).label("lower_right"),
                         func.max(2 * group - ranked.c.n).label("overlap"))
        .join(ranked, ranked.c.attempt_id == QuizAttempt.id)
        .group_by(AttemptItem.question_id).subquery())
    answered = func.coalesce(per_question.c.answered, 0)
    questions = session.execute(
        select(Question.id, Question.key, Question.topic, Question.kind, Question.scenario, Question.prompt,
               Question.cites,
               Question.retired, answered.label("answered"),
               func.coalesce(per_question.c.correct, 0).label("correct"),
               per_question.c.sum_y, per_question.c.sum_xy, per_question.c.sum_yy,
               per_question.c.upper_n, per_question.c.upper_right, per_question.c.lower_n,
               per_question.c.lower_right, per_question.c.overlap)
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

    totals = session.execute(
        select(func.count(QuizAttempt.id), func.sum(QuizAttempt.correct_count),
               func.sum(QuizAttempt.correct_count * QuizAttempt.correct_count))
        .join(Assignment, Assignment.id == QuizAttempt.assignment_id)
        .where(Assignment.cycle_id == cycle.id, Assignment.policy_version_id == version.id,
               QuizAttempt.submitted_at.is_not(None))).one()
    attempts = totals[0] or 0

    stats: dict[int, QuestionStats] = {}
    item_variance = 0.0  # Σ pᵢqᵢ · nᵢ / N, the item variance an attempt carries on average
    items_asked = 0
    for row in questions:
        items_asked += row.answered
        discrimination = point_biserial(row.answered, row.correct, float(row.sum_y or 0),
                                        float(row.sum_xy or 0), float(row.sum_yy or 0))
        if row.answered and attempts:
            p = row.correct / row.answered
            item_variance += p * (1 - p) * row.answered / attempts
        stats[row.id] = QuestionStats(
            id=row.id, key=row.key, topic=row.topic, kind=row.kind, scenario=row.scenario, prompt=row.prompt,
            cites=list(row.cites or []), retired=row.retired, answered=row.answered, correct=row.correct,
            flagged=is_flagged(row.answered, row.correct, flag_below=flag_below, min_answers=min_answers),
            discrimination=discrimination,
            upper_lower=upper_lower(row.upper_n or 0, row.upper_right or 0, row.lower_n or 0,
                                    row.lower_right or 0, overlap=(row.overlap or 0) > 0),
            flags=question_flags(row.answered, row.correct, discrimination, min_answers=min_answers))
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
    return ItemAnalysis(cycle=cycle, version=version, attempts=attempts,
                        topics=[t for t in topics if t.questions], flag_below=flag_below,
                        min_answers=min_answers,
                        questions_per_attempt=round(items_asked / attempts) if attempts else version.draw_size,
                        kr20=kr20(items_asked / attempts if attempts else 0, attempts, float(totals[1] or 0),
                                  float(totals[2] or 0), item_variance))


#: The item analysis CSV's columns before the per-option counts (option_A, option_B, …).
CSV_COLUMNS = ["policy", "version", "question", "topic", "kind", "retired", "answered", "correct",
               "difficulty", "discrimination", "upper_lower", "flags", "key", "version_attempts", "version_kr20"]


def csv_rows(analyses: list[ItemAnalysis]) -> tuple[list[str], list[list]]:
    """The header and one row per question of every analysis: the figures above, the keyed
    option letters, and how many answers chose each option (in the bank's order)."""
    width = max((len(q.options) for a in analyses for q in a.questions), default=0)
    header = CSV_COLUMNS + [f"option_{chr(ord('A') + n)}" for n in range(width)]
    rows = []
    for a in analyses:
        for q in a.questions:
            counts = [o.chosen for o in q.options] + [""] * (width - len(q.options))
            rows.append([a.version.policy_id, a.version.effective.isoformat(), q.key, q.topic, q.kind,
                         "yes" if q.retired else "no", q.answered, q.correct,
                         "" if q.difficulty is None else f"{q.difficulty:.3f}",
                         "" if q.discrimination is None else f"{q.discrimination:.3f}",
                         "" if q.upper_lower is None else f"{q.upper_lower:.3f}",
                         " ".join(q.flags), "".join(o.letter for o in q.options if o.correct),
                         a.attempts, "" if a.kr20 is None else f"{a.kr20:.3f}", *counts])
    return header, rows
