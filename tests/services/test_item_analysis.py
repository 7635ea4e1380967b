"""Item analysis figures against attempts generated with known properties, worked out by hand."""
from __future__ import annotations

import csv
import io
import math
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from lms.models import Assignment, AttemptItem, Question, QuizAttempt
from lms.services.cycles import create_cycle
from lms.services.item_analysis import item_analysis, point_biserial

START = datetime(2031, 1, 5, 15, 0, tzinfo=timezone.utc)

# Six members' attempts at the same six questions (1 = answered right). Q1 everyone gets right;
# Q5 and Q6 the strongest members miss and the weakest get right.
#
#           Q1 Q2 Q3 Q4 Q5 Q6   total X
MATRIX = [[1, 1, 1, 1, 0, 0],  # 4
          [1, 1, 1, 1, 0, 0],  # 4
          [1, 1, 1, 0, 0, 0],  # 3
          [1, 1, 0, 0, 1, 0],  # 3
          [1, 0, 0, 0, 1, 0],  # 2
          [1, 0, 0, 0, 1, 1]]  # 3

# By hand:
#   Difficulty p = right / 6: Q1 6/6 = 1, Q2 4/6, Q3 3/6, Q4 2/6, Q5 3/6, Q6 1/6.
#   Flags: Q1 too easy (1 > 0.95), Q6 too hard (1/6 < 0.30); Q4 (1/3) is neither.
#
#   Discrimination: r between x (the question right) and y = X − x (the other questions right),
#   r = (nΣxy − ΣxΣy) / √((nΣx − (Σx)²)(nΣy² − (Σy)²)), n = 6:
#   Q1: x is 1 for everyone, so nΣx − (Σx)² = 36 − 36 = 0: undefined.
#   Q2: x = 1,1,1,1,0,0  y = 3,3,2,2,2,3
#       Σx = 4, Σy = 15, Σxy = 3+3+2+2 = 10, Σy² = 9+9+4+4+4+9 = 39
#       r = (60 − 60) / √((24 − 16)(234 − 225)) = 0 / √72 = 0
#   Q3: x = 1,1,1,0,0,0  y = 3,3,2,3,2,3
#       Σx = 3, Σy = 16, Σxy = 8, Σy² = 9+9+4+9+4+9 = 44
#       r = (48 − 48) / √((18 − 9)(264 − 256)) = 0
#   Q4: x = 1,1,0,0,0,0  y = 3,3,3,3,2,3
#       Σx = 2, Σy = 17, Σxy = 6, Σy² = 9·5 + 4 = 49
#       r = (36 − 34) / √((12 − 4)(294 − 289)) = 2 / √40 = 0.316228
#   Q5: x = 0,0,0,1,1,1  y = 4,4,3,2,1,2
#       Σx = 3, Σy = 16, Σxy = 2+1+2 = 5, Σy² = 16+16+9+4+1+4 = 50
#       r = (30 − 48) / √((18 − 9)(300 − 256)) = −18 / √396 = −0.904534
#   Q6: x = 0,0,0,0,0,1  y = 4,4,3,3,2,2
#       Σx = 1, Σy = 18, Σxy = 2, Σy² = 16+16+9+9+4+4 = 58
#       r = (12 − 18) / √((6 − 1)(348 − 324)) = −6 / √120 = −0.547723
#
#   Upper-lower 27%: ⌈0.27 · 6⌉ = 2 attempts a group. Ranked by X (ties in attempt order):
#   A1 (4), A2 (4), A3 (3), A4 (3), A6 (3), A5 (2): upper = A1, A2; lower = A6, A5.
#   D = right in upper / 2 − right in lower / 2:
#   Q1 2/2 − 2/2 = 0; Q2 2/2 − 0/2 = 1; Q3 1 − 0 = 1; Q4 1 − 0 = 1; Q5 0 − 2/2 = −1; Q6 0 − 1/2 = −0.5
#
#   KR-20 = k/(k−1) · (1 − Σpq / σ²), k = 6:
#   X = 4,4,3,3,2,3: ΣX = 19, ΣX² = 63, σ² = 63/6 − (19/6)² = 378/36 − 361/36 = 17/36
#   pq = 0, 8/36, 9/36, 8/36, 9/36, 5/36; Σpq = 39/36
#   KR-20 = 6/5 · (1 − 39/17) = 6/5 · (−22/17) = −132/85 = −1.552941
#   (negative: Q5 and Q6 pull against the rest, as they were made to)
HAND = {
    "p": [1, 4 / 6, 3 / 6, 2 / 6, 3 / 6, 1 / 6],
    "r": [None, 0.0, 0.0, 2 / math.sqrt(40), -18 / math.sqrt(396), -6 / math.sqrt(120)],
    "kr20": -132 / 85,
    "upper_lower": [0.0, 1.0, 1.0, 1.0, -1.0, -0.5],
    "flags": [["too_easy", "no_discrimination"], [], [], [], ["negative_discrimination"],
              ["too_hard", "negative_discrimination"]],
}

# A Guttman pattern (each member knows everything an easier question asks): a reliable test.
#   X = 3,2,1,0: mean 1.5, ΣX² = 14, σ² = 14/4 − 2.25 = 1.25
#   p = 3/4, 2/4, 1/4; pq = 3/16, 4/16, 3/16; Σpq = 10/16 = 0.625
#   KR-20 = 3/2 · (1 − 0.625 / 1.25) = 3/2 · 1/2 = 0.75
GUTTMAN = [[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]]


def _record_attempts(db, make_member, year: int, matrix: list[list[int]]):
    """One submitted attempt per row of ``matrix`` by a member of their own, asking the first
    single-answer questions of the bank in column order; a right answer picks the key, a wrong
    one the first wrong option. Returns the cycle and the questions."""
    members = [make_member(first=f"M{n}", last=f"Year{year}", badge=f"{year % 100}{n:02d}")
               for n in range(len(matrix))]
    cycle = create_cycle(db, year=year, due_date=date(year, 12, 31), today=date(year, 1, 2), now=START)
    db.flush()
    version = cycle.policy_versions[0]
    questions = list(db.scalars(select(Question).where(Question.version_id == version.id, Question.kind == "single",
                                                       Question.retired.is_(False))
                                .order_by(Question.position)))[:len(matrix[0])]
    for member, row in zip(members, matrix):
        assignment = db.scalars(select(Assignment).where(Assignment.member_id == member.id,
                                                         Assignment.cycle_id == cycle.id)).one()
        right = sum(row)
        attempt = QuizAttempt(assignment_id=assignment.id, number=1, started_at=START,
                              submitted_at=START + timedelta(minutes=9), correct_count=right,
                              score=100 * right // len(row), passed=False)
        for position, (question, mark) in enumerate(zip(questions, row), start=1):
            options = sorted(question.options, key=lambda o: o.position)
            key = next(o.id for o in options if o.correct)
            wrong = next(o.id for o in options if not o.correct)
            attempt.items.append(AttemptItem(position=position, question_id=question.id,
                                             option_order=[o.id for o in options],
                                             chosen=[key if mark else wrong], correct=bool(mark)))
        db.add(attempt)
    db.commit()
    return cycle, version, questions


def test_figures_match_the_hand_computation(db, make_member):
    cycle, version, questions = _record_attempts(db, make_member, 2031, MATRIX)
    analysis = item_analysis(db, cycle, version)
    by_id = {q.id: q for q in analysis.questions}
    assert analysis.attempts == 6 and analysis.questions_per_attempt == 6
    for n, question in enumerate(questions):
        stats = by_id[question.id]
        assert stats.answered == 6
        assert stats.difficulty == pytest.approx(HAND["p"][n]), question.key
        if HAND["r"][n] is None:
            assert stats.discrimination is None, question.key
        else:
            assert stats.discrimination == pytest.approx(HAND["r"][n], abs=1e-9), question.key
        assert stats.flags == HAND["flags"][n], question.key
        assert stats.upper_lower == pytest.approx(HAND["upper_lower"][n]), question.key
    assert analysis.kr20 == pytest.approx(HAND["kr20"])
    # How often each option was chosen: Q2's key 4 times, its first wrong option twice.
    q2 = by_id[questions[1].id]
    chosen = {o.correct: o.chosen for o in q2.options if o.chosen}
    assert chosen == {True: 4, False: 2}
    # The question everyone gets right and the ones the strong members miss are up for review;
    # the lowest discrimination first, undefined last.
    assert [q.id for q in analysis.to_review] == [questions[4].id, questions[5].id, questions[0].id]
    # Questions not in any attempt are listed, unanswered and unflagged.
    unasked = [q for q in analysis.questions if q.id not in {x.id for x in questions}]
    assert unasked and all(q.answered == 0 and q.difficulty is None and not q.flags for q in unasked)


def test_kr20_of_a_consistent_test_matches_the_hand_computation(db, make_member):
    cycle, version, questions = _record_attempts(db, make_member, 2032, GUTTMAN)
    analysis = item_analysis(db, cycle, version)
    assert analysis.kr20 == pytest.approx(0.75)
    # ⌈0.27 · 4⌉ = ⌈1.08⌉ = 2 attempts a group: upper (1 1 1), (1 1 0); lower (1 0 0), (0 0 0).
    # Q1: 2/2 − 1/2 = 0.5; Q2: 2/2 − 0/2 = 1; Q3: 1/2 − 0/2 = 0.5.
    by_id = {q.id: q for q in analysis.questions}
    assert [by_id[q.id].upper_lower for q in questions] == [0.5, 1.0, 0.5]


def test_one_attempt_makes_no_upper_and_lower_groups(db, make_member):
    cycle, version, questions = _record_attempts(db, make_member, 2033, [[1, 0]])
    analysis = item_analysis(db, cycle, version)
    assert {q.id: q.upper_lower for q in analysis.questions if q.answered} == {q.id: None for q in questions}
    assert analysis.kr20 is None


def test_point_biserial_is_pearson_r():
    x = [1, 0, 1, 1, 0, 1, 0]
    y = [5, 2, 4, 3, 3, 6, 1]
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    pearson = (sum((a - mx) * (b - my) for a, b in zip(x, y))
               / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y)))
    r = point_biserial(n, sum(x), sum(y), sum(a * b for a, b in zip(x, y)), sum(b * b for b in y))
    assert r == pytest.approx(pearson)
    assert point_biserial(1, 1, 3, 3, 9) is None


def test_page_and_csv_show_the_figures(client, auth, db, make_member):
    cycle, version, questions = _record_attempts(db, make_member, 2031, MATRIX)
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    auth.sign_in(coordinator.badge)
    html = client.get(f"/coordinator/cycles/{cycle.id}/items").get_data(as_text=True)
    assert "KR-20 reliability -1.55" in html
    assert "Strong members miss it" in html and "Too easy" in html and "Too hard" in html
    response = client.get(f"/coordinator/cycles/{cycle.id}/items.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    by_key = {r["question"]: r for r in rows}
    assert len(rows) == len({q.key for q in db.scalars(select(Question).where(Question.version_id == version.id,
                                                                             Question.retired.is_(False)))})
    q5 = by_key[questions[4].key]
    assert (q5["answered"], q5["correct"], q5["difficulty"], q5["discrimination"]) == ("6", "3", "0.500", "-0.905")
    assert q5["flags"] == "negative_discrimination" and q5["version_kr20"] == "-1.553"
    assert q5["upper_lower"] == "-1.000"
    q1 = by_key[questions[0].key]
    assert q1["discrimination"] == "" and q1["flags"] == "too_easy no_discrimination"
    key_letter = q1["key"]
    assert q1[f"option_{key_letter}"] == "6"
