"""The content pack: the shipped 16.3 pack is valid and meets the content guide, and a broken pack
is refused with the file, the line and the field, before anything is written."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lms import create_app
from lms.config import PACKAGE_DIR
from lms.db import get_database
from lms.models import Lesson, PolicyVersion, Question, QuestionOption
from lms.services.content import ContentError, load_packs
from lms.services.quiz_cues import measure
from tests.conftest import TEST_CONFIG

CONTENT = PACKAGE_DIR / "content"
PACK = Path("16.3-social-media")
VERSION = PACK / "versions" / "2013-11-26"
# The content guide's topic table: each topic and the paragraphs it is about.
GUIDE_TOPICS = {
    "off-duty-speech": ("16.3.2.A", "16.3.2.B"),
    "uniform-photos": ("16.3.2.D",),
    "testimony-impeachment": ("16.3.2.C", "16.3.1.D.2"),
    "department-use": ("16.3.1",),
    "internal-communications": ("16.3.3",),
}
WEIGHTED_TOPICS = ("off-duty-speech", "uniform-photos", "testimony-impeachment")
PARAGRAPH = re.compile(r"\b16\.3\.\d(?:\.[A-Z](?:\.\d+)?)?")


@pytest.fixture
def content_app(tmp_path):
    """Build apps that read content from a given folder. Without a database URL the app gets an
    SQLite file that ``content check`` never opens; with one it shares that database."""
    apps = []

    def factory(content_dir: Path, database_url: str | None = None):
        instance = tmp_path / f"instance-{len(apps)}"
        app = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(instance), "CONTENT_DIR": str(content_dir),
                          "DATABASE_URL": database_url or f"sqlite:///{instance / 'unused.sqlite3'}"})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        get_database(app).dispose()


@pytest.fixture
def pack_copy(tmp_path) -> Path:
    """A private copy of the shipped content folder, to break."""
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def check(app, *args: str):
    """Run ``lms content check`` on an app."""
    return app.test_cli_runner().invoke(args=["lms", "content", "check", *args])


def counts(app) -> dict[str, int]:
    """How many rows of each content table the app's database holds."""
    with get_database(app).sessionmaker() as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model))
                for model in (PolicyVersion, Lesson, Question, QuestionOption)}


def policy_paragraphs(text: str) -> set[str]:
    """Every paragraph number of a 16.3 text: "16.3.2", "16.3.2.D", "16.3.2.D.1"."""
    found, section, letter = set(), None, None
    for line in text.split("\n"):
        if match := re.match(r"^(16\.3\.\d) ", line):
            section, letter = match.group(1), None
            found.add(section)
        elif (match := re.match(r"^([A-Z])\. ", line)) and section:
            letter = match.group(1)
            found.add(f"{section}.{letter}")
        elif (match := re.match(r"^\s+(\d+)\. ", line)) and letter:
            found.add(f"{section}.{letter}.{match.group(1)}")
    return found


# --- the shipped pack ---------------------------------------------------------------------------

def test_shipped_content_check_json_has_the_documented_shape(content_app):
    result = check(content_app(CONTENT), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    assert list(report) == ["policies"] and len(report["policies"]) == 1
    policy = report["policies"][0]
    assert list(policy) == ["id", "title", "versions"]
    assert (policy["id"], policy["title"]) == ("16.3", "Social Media")
    assert len(policy["versions"]) == 1
    version = policy["versions"][0]
    # The documented fields first; the cue check adds its figures after them.
    assert list(version) == ["effective", "lessons", "questions", "cues"]
    assert version["cues"]["passed"] is True
    assert version["effective"] == "2013-11-26"
    assert version["lessons"] == len(list((CONTENT / VERSION / "lessons").glob("*.md"))) >= 3
    questions = version["questions"]
    assert set(questions) == set(GUIDE_TOPICS)
    assert all(isinstance(n, int) for n in questions.values())
    assert sum(questions.values()) >= 36
    for topic in GUIDE_TOPICS:
        assert questions[topic] >= (15 if topic in WEIGHTED_TOPICS else 8), topic


def test_shipped_content_check_prints_a_summary(content_app):
    version = load_packs(CONTENT)[0].versions[0]
    per_topic = version.questions_per_topic()
    cues = measure(version)
    best = cues.best_strategy

    result = check(content_app(CONTENT))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Policy 16.3 Social Media",
        f"  version effective 2013-11-26: {len(version.lessons)} lessons, "
        f"{sum(per_topic.values())} questions",
        *(f"    {topic}: {n}" for topic, n in per_topic.items()),
        f"    cues: key longest in {cues.key_longest} of {cues.single_questions} single-answer "
        f"questions ({round(cues.key_longest_percent, 1):g}%); best scenario-blind strategy ({best}) "
        f"passes {cues.pass_rates[best]:.2f}% of first attempts; reading grade keys "
        f"{round(cues.grade_keys, 1):g}, wrong options {round(cues.grade_wrong, 1):g}",
        "Content is valid.",
    ]
    assert result.stderr == ""


def test_quiz_bank_meets_the_content_guide():
    (pack,) = load_packs(CONTENT)
    (version,) = pack.versions
    paragraphs = policy_paragraphs(version.text)

    assert set(version.topics) == set(GUIDE_TOPICS)
    assert (version.pass_mark, version.draw_size) == (80, 12)
    # Every attempt asks about every part of the policy, most about 16.3.2.
    assert version.minimum_per_topic == {**{topic: 3 for topic in WEIGHTED_TOPICS},
                                         "department-use": 1, "internal-communications": 1}
    per_topic = version.questions_per_topic()
    assert len(version.questions) >= 36
    assert all(per_topic[topic] >= 15 for topic in WEIGHTED_TOPICS)
    assert all(per_topic[topic] >= 8 for topic in GUIDE_TOPICS)
    # The browser journey finds each question's key by its scenario and prompt.
    assert len({(q.scenario, q.prompt) for q in version.questions}) == len(version.questions)
    assert sum(per_topic[t] for t in WEIGHTED_TOPICS) > len(version.questions) / 2  # most of the bank
    assert len({q.key for q in version.questions}) == len(version.questions)

    for q in version.questions:
        assert q.scenario and q.prompt, q.key
        # Cites real paragraphs, at least one of them in its topic's part of the policy.
        assert q.cites and set(q.cites) <= paragraphs, q.key
        assert any(c.startswith(GUIDE_TOPICS[q.topic]) for c in q.cites), q.key
        right = [o for o in q.options if o.correct]
        if q.kind == "single":
            assert len(right) == 1, q.key
        else:
            assert q.kind == "multiple" and right, q.key
            assert "select all that apply" in q.prompt.lower(), q.key
        assert len(q.options) == 4, q.key
        # The stem does not name the paragraph that answers it.
        assert not PARAGRAPH.search(q.scenario + " " + q.prompt), q.key
        assert len({o.text for o in q.options}) == len(q.options), q.key
        for o in q.options:
            assert not re.search(r"\b(all|none) of the above\b", o.text, re.I), q.key
            # Every option explains itself and cites the paragraph it rests on.
            cited = PARAGRAPH.findall(o.why)
            assert cited, f"{q.key}: option without a cited paragraph: {o.why!r}"
            assert set(cited) <= paragraphs, f"{q.key}: {cited}"


def test_lessons_cover_every_section():
    (version,) = load_packs(CONTENT)[0].versions
    covered = {section for lesson in version.lessons for section in lesson.sections}
    assert {"16.3.1", "16.3.2", "16.3.3"} <= covered
    for lesson in version.lessons:
        assert lesson.title and lesson.minutes > 0
        for section in lesson.sections:
            assert f"::: policy {section}" in lesson.body


def test_lessons_read_like_a_roll_call_bulletin():
    """Each section: a situation first, then the rule in plain words, then the verbatim text;
    real headings, not bold paragraphs standing in for them."""
    (version,) = load_packs(CONTENT)[0].versions
    for lesson in version.lessons:
        lines = lesson.body.split("\n")
        assert not [line for line in lines if re.fullmatch(r"\*\*[^*]+\*\*", line.strip())], lesson.slug
        sections = re.split(r"^## ", lesson.body, flags=re.M)[1:]
        assert sections, lesson.slug
        for section in sections:
            headings = re.findall(r"^### (.+)$", section, flags=re.M)
            assert headings[:3] == ["The situation", "The rule in plain words", "The policy text"], \
                (lesson.slug, section.split("\n")[0])
            text_part = section.split("### The policy text", 1)[1].split("\n### ", 1)[0]
            assert "::: policy " in text_part, (lesson.slug, section.split("\n")[0])


def test_policy_text_carries_the_repairs():
    raw = (CONTENT / VERSION / "policy.txt").read_bytes()
    text = raw.decode("utf-8")
    # The restored list labels (16.3.1.A.6, C, D.2; 16.3.3.B.1, B.5).
    for label in ("   6. Clearly indicate that any content posted",
                  "C. Only persons designated",
                  "   2. Refrain from making statements",
                  "   1. Use good judgment",
                  "   5. Ensure proper attribution"):
        assert f"\n{label}" in text, label
    assert "Offine A Smaloda" not in text  # the garbled chief's name is not guessed at
    assert "Chief of Police" in text and "(signature on file)" in text
    assert "11/26/13" in text
    assert "Cross Reference" in text
    # The file is already in the one normal form, so what is on disk is what is signed.
    assert b"\r" not in raw and text.endswith("\n")
    (version,) = load_packs(CONTENT)[0].versions
    assert version.text == text


# --- a broken pack: each break names the file, the line and the field ----------------------------

def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines), encoding="utf-8")


def _index(lines: list[str], prefix: str, start: int = 0) -> int:
    return next(i for i in range(start, len(lines)) if lines[i].startswith(prefix))


def _last_before(lines: list[str], prefix: str, end: int) -> int:
    return max(i for i in range(end) if lines[i].startswith(prefix))


def _lesson_with(root: Path, needle: str) -> Path:
    return next(p for p in sorted((root / VERSION / "lessons").glob("*.md"))
                if needle in p.read_text(encoding="utf-8"))


def missing_why(root: Path) -> list[str]:
    quiz = root / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    why = _index(lines, "        why:")
    question = _last_before(lines, "  - id:", why)
    option = _last_before(lines, "      - text:", why)
    number = sum(line.startswith("      - text:") for line in lines[question:why])
    end = why + 1
    while lines[end].startswith("          "):  # the folded text under "why: >-"
        end += 1
    del lines[why:end]
    _write(quiz, lines)
    key = lines[question].split(":", 1)[1].strip()
    return [f"{VERSION}/quiz.yaml:{option + 1}:", f"question {key}, option {number}",
            "field 'why' is required"]


def unknown_topic(root: Path) -> list[str]:
    quiz = root / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    topic = _index(lines, "    topic: ")
    lines[topic] = "    topic: off-duty"
    _write(quiz, lines)
    return [f"{VERSION}/quiz.yaml:{topic + 1}:", "field 'topic' is 'off-duty', not one of"]


def two_correct_in_single(root: Path) -> list[str]:
    quiz = root / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    kind = _index(lines, "    kind: single")
    options = _index(lines, "    options:", kind)
    wrong = _index(lines, "        correct: false", options)
    lines[wrong] = "        correct: true"
    _write(quiz, lines)
    key = lines[_last_before(lines, "  - id:", kind)].split(":", 1)[1].strip()
    return [f"{VERSION}/quiz.yaml:{options + 1}:", f"question {key}:",
            "needs exactly one correct option, has 2"]


def duplicate_id(root: Path) -> list[str]:
    quiz = root / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    first = _index(lines, "  - id:")
    second = _index(lines, "  - id:", first + 1)
    lines[second] = lines[first]
    _write(quiz, lines)
    key = lines[first].split(":", 1)[1].strip()
    return [f"{VERSION}/quiz.yaml:{second + 1}:",
            f"question {key}: id is also used by the question at line {first + 1}"]


def yaml_syntax_error(root: Path) -> list[str]:
    quiz = root / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    kind = _index(lines, "    kind: ")
    lines[kind] += ": oops"
    _write(quiz, lines)
    return [f"{VERSION}/quiz.yaml:{kind + 1}:", "YAML syntax error"]


def missing_policy_text(root: Path) -> list[str]:
    (root / VERSION / "policy.txt").unlink()
    return [f"{VERSION}/policy.txt: file is missing"]


def directive_naming_no_section(root: Path) -> list[str]:
    lesson = _lesson_with(root, "::: policy 16.3.2\n")
    lines = _lines(lesson)
    at = lines.index("::: policy 16.3.2") + 1
    lines[at:at] = ["", "::: policy 16.3.9"]
    _write(lesson, lines)
    return [f"{lesson.name}:{at + 2}:", "'::: policy 16.3.9' names no section of policy.txt"]


def lesson_without_title(root: Path) -> list[str]:
    lesson = _lesson_with(root, "\ntitle:")
    lines = _lines(lesson)
    assert lines[0] == "---" and lines[1].startswith("title:")
    del lines[1]
    _write(lesson, lines)
    # Reported at the first line of the front matter, the line after the opening '---'.
    return [f"{lesson.name}:2:", "field 'title' is required"]


def folder_not_matching_effective(root: Path) -> list[str]:
    renamed = VERSION.parent / "2013-11-27"
    (root / VERSION).rename(root / renamed)
    effective = _index(_lines(root / renamed / "version.yaml"), "effective:")
    return [f"{renamed}/version.yaml:{effective + 1}:",
            "field 'effective' is 2013-11-26 but the folder is named 2013-11-27"]


def bank_below_topic_minimum(root: Path) -> list[str]:
    quiz = root / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    setting = _index(lines, "    testimony-impeachment:", _index(lines, "  minimum_per_topic:"))
    minimum = int(lines[setting].split(":")[1].split("#")[0])
    tagged = [i for i, line in enumerate(lines) if line == "    topic: testimony-impeachment"]
    for i in tagged[minimum - 1:]:  # retag all but minimum - 1 of them
        lines[i] = "    topic: department-use"
    _write(quiz, lines)
    return [f"{VERSION}/quiz.yaml:{setting + 1}:",
            f"topic 'testimony-impeachment' needs at least {minimum} questions, the bank has {minimum - 1}"]


def not_utf8(root: Path) -> list[str]:
    lesson = sorted((root / VERSION / "lessons").glob("*.md"))[-1]
    lines = lesson.read_bytes().split(b"\n")
    at = lines.index(b"---", 1) + 2
    lines[at:at] = ["Caf\u00e9 au lait.".encode("latin-1")]  # an editor saving Latin-1
    lesson.write_bytes(b"\n".join(lines))
    return [f"{lesson.name}:{at + 1}:", "not valid UTF-8"]


def unquoted_policy_id(root: Path) -> list[str]:
    policy = root / PACK / "policy.yaml"
    lines = _lines(policy)
    at = _index(lines, "id:")
    lines[at] = "id: 16.3"  # YAML reads this as the float 16.3
    _write(policy, lines)
    return [f"{PACK}/policy.yaml:{at + 1}:", "field 'id' must be quoted text"]


BREAKS = [missing_why, unknown_topic, two_correct_in_single, duplicate_id, yaml_syntax_error,
          missing_policy_text, directive_naming_no_section, lesson_without_title,
          folder_not_matching_effective, bank_below_topic_minimum, not_utf8, unquoted_policy_id]


@pytest.mark.parametrize("breaks", BREAKS, ids=[b.__name__ for b in BREAKS])
def test_broken_pack_names_file_line_and_field(pack_copy, content_app, breaks):
    expected = breaks(pack_copy)

    with pytest.raises(ContentError) as caught:
        load_packs(pack_copy)
    assert any(all(part in problem for part in expected) for problem in caught.value.problems), \
        f"{expected} not in {caught.value.problems}"

    result = check(content_app(pack_copy))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # refused, not crashed
    assert all(part in result.stderr for part in expected), result.stderr
    assert f"{len(caught.value.problems)} problem(s) found." in result.stderr
    assert "Content is valid." not in result.output


def test_a_lesson_that_fails_to_load_is_reported_once(pack_copy):
    lesson_without_title(pack_copy)
    with pytest.raises(ContentError) as caught:
        load_packs(pack_copy)
    # Not also "no lesson includes section …": the lesson's directives are there, just unread.
    assert len(caught.value.problems) == 1, caught.value.problems


def test_every_problem_is_reported_at_once(pack_copy, content_app):
    expected = [missing_why(pack_copy), unknown_topic(pack_copy), lesson_without_title(pack_copy)]

    result = check(content_app(pack_copy), "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    for parts in expected:
        assert all(part in result.stderr for part in parts), result.stderr


# --- loading content into the database ----------------------------------------------------------

def test_init_with_broken_content_writes_nothing(app, pack_copy, content_app):
    before = counts(app)
    with get_database(app).sessionmaker() as session:
        titles = dict(session.execute(select(Lesson.slug, Lesson.title)).all())
    # A good edit beside a bad one: neither may reach the database.
    lesson = sorted((pack_copy / VERSION / "lessons").glob("*.md"))[0]
    lines = _lines(lesson)
    lines[_index(lines, "title:")] = 'title: "A title that must not be loaded"'
    _write(lesson, lines)
    expected = missing_why(pack_copy)

    result = content_app(pack_copy, app.config["DATABASE_URL"]).test_cli_runner().invoke(args=["lms", "init"])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "nothing was loaded" in result.stderr
    assert all(part in result.stderr for part in expected), result.stderr
    assert "Database is up to date." not in result.output
    assert counts(app) == before
    with get_database(app).sessionmaker() as session:
        assert dict(session.execute(select(Lesson.slug, Lesson.title)).all()) == titles


def test_second_init_changes_nothing(app, runner):
    with get_database(app).sessionmaker() as session:
        ids = set(session.scalars(select(Question.id)))
    before = counts(app)

    for _ in range(2):
        result = runner.invoke(args=["lms", "init"])
        assert result.exit_code == 0, result.output
        assert counts(app) == before

    with get_database(app).sessionmaker() as session:
        assert set(session.scalars(select(Question.id))) == ids
        assert not session.scalar(select(func.count()).where(Question.retired))
        assert not session.scalar(select(func.count()).where(Lesson.retired))


def test_question_removed_from_the_pack_is_retired_not_deleted(app, pack_copy, content_app):
    quiz = pack_copy / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    last = _last_before(lines, "  - id:", len(lines))
    key = lines[last].split(":", 1)[1].strip()
    _write(quiz, lines[:last] + [""])
    before = counts(app)

    result = content_app(pack_copy, app.config["DATABASE_URL"]).test_cli_runner().invoke(args=["lms", "init"])

    assert result.exit_code == 0, result.output
    assert counts(app) == before  # the question and its options are still there
    with get_database(app).sessionmaker() as session:
        retired = session.scalars(select(Question.key).where(Question.retired)).all()
    assert retired == [key]

    # Putting it back brings it back.
    result = content_app(CONTENT, app.config["DATABASE_URL"]).test_cli_runner().invoke(args=["lms", "init"])
    assert result.exit_code == 0, result.output
    with get_database(app).sessionmaker() as session:
        assert not session.scalar(select(func.count()).where(Question.retired))


def _answered_attempt(app, db, make_member, open_cycle):
    """Submit one quiz attempt for a new member (badge 4242); return it."""
    import random

    from lms.db import utcnow
    from lms.models import Assignment
    from lms.services import quiz as quiz_service
    from lms.services.progress import mark_lesson_read

    member = make_member(badge="4242")
    open_cycle()
    assignment = db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()
    now = utcnow()
    for lesson in assignment.policy_version.lessons:
        mark_lesson_read(db, assignment, lesson, now)
    attempt = quiz_service.start_attempt(db, assignment, now, rng=random.Random(3))
    answers = {item.position: [item.option_order[0]] if item.question.kind == "single"
               else list(item.option_order[:2]) for item in attempt.items}
    quiz_service.submit_attempt(db, attempt, answers, now)
    db.commit()
    return attempt


def _single_keys(attempt) -> list[str]:
    return [item.question.key for item in attempt.items if item.question.kind == "single"]


def _question_block(lines: list[str], key: str) -> range:
    start = _index(lines, f"  - id: {key}")
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("  - id:")), len(lines))
    return range(start, end)


def test_an_answered_question_keeps_its_key(app, db, make_member, open_cycle, pack_copy, content_app):
    key = _single_keys(_answered_attempt(app, db, make_member, open_cycle))[0]
    quiz = pack_copy / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    flags = [n for n in _question_block(lines, key) if lines[n].strip() in ("correct: true", "correct: false")]
    right = next(n for n in flags if lines[n].strip() == "correct: true")
    wrong = next(n for n in flags if lines[n].strip() == "correct: false")
    lines[right], lines[wrong] = lines[wrong], lines[right]
    _write(quiz, lines)
    before = counts(app)

    result = content_app(pack_copy, app.config["DATABASE_URL"]).test_cli_runner().invoke(args=["lms", "init"])

    assert result.exit_code == 1
    assert (f"quiz.yaml: question {key} has been answered, so its number of options, its kind and "
            f"which options are correct cannot change; retire it and add a question with a new id"
            ) in result.stderr
    assert counts(app) == before


def test_old_attempts_still_show_reworded_and_retired_questions(
        app, db, make_member, open_cycle, pack_copy, content_app, client, auth):
    attempt = _answered_attempt(app, db, make_member, open_cycle)
    reworded, dropped = _single_keys(attempt)[:2]
    dropped_scenario = db.scalars(select(Question.scenario).where(Question.key == dropped)).one()
    quiz = pack_copy / VERSION / "quiz.yaml"
    lines = _lines(quiz)
    text_line = next(n for n in _question_block(lines, reworded) if lines[n].strip() == "- text: >-") + 1
    lines[text_line] = "          Reworded for balance, with the same meaning."
    block = _question_block(lines, dropped)
    lines = lines[:block.start] + lines[block.stop:]
    _write(quiz, lines)

    result = content_app(pack_copy, app.config["DATABASE_URL"]).test_cli_runner().invoke(args=["lms", "init"])

    assert result.exit_code == 0, result.output
    db.expire_all()
    assert db.scalars(select(Question.retired).where(Question.key == dropped)).one() is True
    auth.sign_in("4242")
    page = client.get(f"/training/{attempt.assignment_id}/quiz/{attempt.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Reworded for balance, with the same meaning." in html
    assert " ".join(dropped_scenario.split()[:6]) in " ".join(html.split())
