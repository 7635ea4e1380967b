"""The cue check in ``content check``: a bank a member can pass by the form of its options fails,
with the file, the field and the items named; a balanced bank passes; the pass rates are exact."""
from __future__ import annotations

import json
import random
import shutil
from math import comb
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lms import create_app
from lms.config import PACKAGE_DIR
from lms.db import get_database
from lms.services.content import OptionPack, QuestionPack, load_packs
from lms.services.quiz import draw_questions
from lms.services.quiz_cues import (
    STRATEGIES,
    correct_count_distribution,
    measure,
    needed_to_pass,
    reading_grade,
)
from tests.conftest import TEST_CONFIG

FIXTURES = Path(__file__).parent / "fixtures" / "quiz_cues"
QUIZ = Path("77.1-flashlights") / "versions" / "2021-06-01" / "quiz.yaml"


@pytest.fixture
def check(tmp_path):
    """Run ``lms content check`` on a content folder."""
    apps = []

    def run(content: Path, *args: str):
        instance = tmp_path / f"instance-{len(apps)}"
        app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(instance), "CONTENT_DIR": str(content),
                          "DATABASE_URL": f"sqlite:///{instance / 'unused.sqlite3'}"})
        apps.append(app)
        return app.test_cli_runner().invoke(args=["lms", "content", "check", *args])

    yield run
    for app in apps:
        get_database(app).dispose()


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().split("\n"), start=1) if line.strip() == text)


# --- the command ---------------------------------------------------------------------------------

def test_a_bank_where_the_longest_option_wins_fails_with_the_number(check):
    result = check(FIXTURES / "longest-wins")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    quiz = f"longest-wins/{QUIZ}"
    settings_line = _line_of(FIXTURES / "longest-wins" / QUIZ, "settings:")
    assert (f"{quiz}:{settings_line}: settings.cues.max_blind_pass_rate: a member who picks by form "
            f"(longest: ") in result.stderr
    assert "passes 100.0% of first attempts, above 5%" in result.stderr
    assert (f"{quiz}:{settings_line}: settings.cues.max_key_longest: the key is the longest option "
            f"in 12 of 12 single-answer questions (100%), above 35%") in result.stderr
    # The author sees each item and its cue, at the question's line.
    q1 = _line_of(FIXTURES / "longest-wins" / QUIZ, "- id: q-01")
    assert f"Cue: {quiz}:{q1} question q-01: key is the longest option by 3.5x" in result.stderr
    assert "Content is valid." not in result.stdout


def test_a_balanced_bank_passes(check):
    result = check(FIXTURES / "balanced")

    assert result.exit_code == 0, result.output
    assert "Content is valid." in result.stdout
    assert ("cues: key longest in 3 of 12 single-answer questions (25%); best scenario-blind "
            "strategy") in result.stdout


def test_json_reports_the_cues_and_fails_above_the_thresholds(check):
    result = check(FIXTURES / "longest-wins", "--json")

    assert result.exit_code == 1
    (version,) = json.loads(result.stdout)["policies"][0]["versions"]
    cues = version["cues"]
    assert cues["method"] == "exact"
    assert cues["key_longest"] == {"questions": 12, "of": 12, "percent": 100.0}
    assert cues["blind_pass_rate"]["longest"] == 100.0
    # Options are shuffled for each attempt, so a fixed position is a guess: 1 in 4 per question,
    # and at least 8 of 10 right has probability sum C(10,k) (1/4)^k (3/4)^(10-k), k = 8..10.
    guess = sum(comb(10, k) * 0.25 ** k * 0.75 ** (10 - k) for k in range(8, 11))
    assert cues["blind_pass_rate"]["fixed-position"] == round(100 * guess, 2)
    assert cues["thresholds"] == {"max_blind_pass_rate": 5.0, "max_key_longest": 35.0, "max_grade_gap": 2.0}
    assert cues["passed"] is False
    assert len(cues["items"]) >= 12 and {"id", "line", "cue"} == set(cues["items"][0])


def test_the_pack_sets_its_own_thresholds(check, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURES / "longest-wins", content)
    quiz = content / QUIZ
    quiz.write_text(quiz.read_text().replace(
        "  max_attempts: 3\n",
        "  max_attempts: 3\n  cues:\n    max_blind_pass_rate: 100\n    max_key_longest: 100\n"
        "    max_grade_gap: 20\n"))

    assert check(content).exit_code == 0


@pytest.mark.parametrize("value, message", [
    ("max_blind_pass_rate: lots", "settings: cues.max_blind_pass_rate must be a number of at least 0, got 'lots'"),
    ("max_key_longest: -1", "settings: cues.max_key_longest must be a number of at least 0, got -1"),
    ("longest: 5", "settings: cues names unknown threshold 'longest'"),
])
def test_a_bad_threshold_is_named_with_its_line(check, tmp_path, value, message):
    content = tmp_path / "content"
    shutil.copytree(FIXTURES / "balanced", content)
    quiz = content / QUIZ
    quiz.write_text(quiz.read_text().replace("  max_attempts: 3\n", f"  max_attempts: 3\n  cues:\n    {value}\n"))

    result = check(content)

    assert result.exit_code == 1
    line = _line_of(quiz, value)
    assert f"{QUIZ}:{line}: {message}" in result.stderr


def test_the_shipped_bank_passes_its_own_thresholds(check):
    result = check(PACKAGE_DIR / "content", "--json")

    assert result.exit_code == 0, result.output
    (version,) = json.loads(result.stdout)["policies"][0]["versions"]
    cues = version["cues"]
    assert cues["passed"] is True
    assert cues["key_longest"]["percent"] <= cues["thresholds"]["max_key_longest"] == 35
    assert max(cues["blind_pass_rate"].values()) <= cues["thresholds"]["max_blind_pass_rate"] == 5
    assert abs(cues["reading_grade"]["keys"] - cues["reading_grade"]["wrong"]) <= 2
    assert cues["items"] == []  # no single question whose key stands out by its form


# --- the figures ---------------------------------------------------------------------------------

def test_exact_pass_rate_by_hand():
    # Two topics of two questions, one drawn from each: the strategy is right on both questions of
    # topic b and on one of topic a, so it gets both right half of the time.
    dist = correct_count_distribution({"a": [1.0, 0.0], "b": [1.0, 1.0]}, {"a": 1, "b": 1}, 2)
    assert dist == pytest.approx([0.0, 0.5, 0.5])
    # With no minimums, a draw of 2 from 4 where 3 are right: P(2 right) = C(3,2)/C(4,2).
    dist = correct_count_distribution({"a": [1.0, 0.0], "b": [1.0, 1.0]}, {}, 2)
    assert dist == pytest.approx([0.0, 0.5, 0.5])
    dist = correct_count_distribution({"a": [1.0, 0.0, 1.0, 1.0]}, {}, 2)
    assert dist == pytest.approx([0.0, 3 / 6, 3 / 6])


def test_needed_to_pass_follows_the_engine():
    # The engine passes an attempt when 100 * right // draw >= pass mark.
    assert needed_to_pass(12, 80) == 10
    assert needed_to_pass(10, 80) == 8
    assert needed_to_pass(3, 60) == 2


def _question(key: str, topic: str, lengths: list[int], key_at: int) -> QuestionPack:
    options = [OptionPack(text="word " * (n // 5), correct=i == key_at, why="(1.1.A)")
               for i, n in enumerate(lengths)]
    return QuestionPack(key=key, topic=topic, cites=["1.1.A"], kind="single", scenario="s",
                        prompt="p", options=options)


def test_exact_rate_agrees_with_the_engines_own_draw():
    """Sampling real draws (lms.services.quiz.draw_questions, seeded) gives the exact figure."""
    rng = random.Random(2026)
    bank = []
    for n in range(30):
        topic = ("a", "b", "c")[n % 3]
        key_at = rng.randrange(4)
        longest = key_at if n % 5 else (key_at + 1) % 4  # the key is longest in 4 of 5 questions
        lengths = [40, 45, 50, 55]
        lengths[longest], lengths[3] = lengths[3], lengths[longest]
        bank.append(_question(f"q{n}", topic, lengths, key_at))
    minimums, draw, need = {"a": 3, "b": 2}, 12, needed_to_pass(12, 80)
    strategy = STRATEGIES["longest"][1]
    per_topic: dict[str, list[float]] = {}
    for q in bank:
        per_topic.setdefault(q.topic, []).append(strategy(q))
    exact = sum(correct_count_distribution(per_topic, minimums, draw)[need:])

    items = [SimpleNamespace(id=n, topic=q.topic, right=strategy(q) == 1.0) for n, q in enumerate(bank)]
    runs, passed = 20_000, 0
    sampler = random.Random(7)
    for _ in range(runs):
        drawn = draw_questions(items, minimums, draw, sampler)
        passed += sum(q.right for q in drawn) >= need
    assert 0.2 < exact < 0.8  # a figure worth comparing
    assert abs(passed / runs - exact) < 0.015


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_distribution_is_a_distribution_with_the_right_mean(data):
    sizes = data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=4))
    topics = {f"t{i}": data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=n, max_size=n))
              for i, n in enumerate(sizes)}
    minimums = {t: data.draw(st.integers(0, len(ps))) for t, ps in topics.items()}
    total = sum(sizes)
    draw = data.draw(st.integers(sum(minimums.values()), total))

    dist = correct_count_distribution(topics, minimums, draw)

    assert len(dist) == draw + 1 and sum(dist) == pytest.approx(1.0)
    assert all(p >= -1e-12 for p in dist)
    # By linearity: each topic is drawn k_t times on average, each question with equal chance.
    spare = total - sum(minimums.values())
    extra = draw - sum(minimums.values())
    expected = 0.0
    for t, ps in topics.items():
        k = minimums[t] + (extra * (len(ps) - minimums[t]) / spare if spare else 0)
        expected += k * sum(ps) / len(ps)
    assert sum(n * p for n, p in enumerate(dist)) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_every_draw_covers_each_topics_minimum(data):
    """The engine's draw keeps the per-topic minimums under any draw size the loader allows."""
    sizes = data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=5))
    bank = [SimpleNamespace(id=f"{t}-{n}", topic=f"t{t}") for t, size in enumerate(sizes) for n in range(size)]
    minimums = {f"t{t}": data.draw(st.integers(0, size)) for t, size in enumerate(sizes)}
    draw = data.draw(st.integers(max(1, sum(minimums.values())), len(bank)))

    drawn = draw_questions(bank, minimums, draw, random.Random(data.draw(st.integers(0, 2 ** 32))))

    assert len(drawn) == draw and len({q.id for q in drawn}) == draw
    for topic, minimum in minimums.items():
        assert sum(q.topic == topic for q in drawn) >= minimum


def test_shipped_draw_asks_about_every_part_of_the_policy():
    (version,) = load_packs(PACKAGE_DIR / "content")[0].versions
    assert version.minimum_per_topic["department-use"] >= 1
    assert version.minimum_per_topic["internal-communications"] >= 1
    bank = [SimpleNamespace(id=q.key, topic=q.topic) for q in version.questions]
    rng = random.Random(1)
    for _ in range(500):
        topics = {q.topic for q in draw_questions(bank, version.minimum_per_topic, version.draw_size, rng)}
        assert topics == set(version.topics)


def test_reading_grade_orders_plain_and_dense_text():
    plain = "Keep the post to yourself. Do not share it."
    dense = ("Personnel representing the department shall refrain from disseminating confidential "
             "investigative information without express written authorization.")
    assert reading_grade(plain) < 4 < 12 < reading_grade(dense)


def test_measure_names_the_items_whose_form_points_at_the_key():
    (version,) = load_packs(FIXTURES / "balanced")[0].versions
    report = measure(version)
    cues = {(i.key, i.cue) for i in report.items}
    assert ("q-01", "key is the longest option by 3.5x") in cues
    assert not report.failures
