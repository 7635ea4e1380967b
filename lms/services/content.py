"""Content packs: load and validate ``content/<policy>/`` and sync it into the database.

A pack is data a department edits, so every problem is reported with the file, the line where
YAML gives one, the item and the field, and all problems are collected before anything is written.
"""
from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lms.models import (
    Acknowledgment,
    AttemptItem,
    Lesson,
    Policy,
    PolicyVersion,
    Question,
    QuestionOption,
)

QUESTION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CITE = re.compile(r"^\d+(\.\d+)+(\.[A-Z](\.\d+)?)?$")
DIRECTIVE = re.compile(r"^::: policy (?P<section>.+?)\s*$")
KINDS = ("single", "multiple")


class ContentError(Exception):
    """One or more problems in the content packs; ``problems`` lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class OptionPack:
    text: str
    correct: bool
    why: str


@dataclass
class QuestionPack:
    key: str
    topic: str
    cites: list[str]
    kind: str
    scenario: str
    prompt: str
    options: list[OptionPack]
    #: Line of the question in quiz.yaml, for messages to the author.
    line: int = 0


@dataclass
class LessonPack:
    slug: str
    title: str
    sections: list[str]
    minutes: int
    body: str


@dataclass
class VersionPack:
    effective: date
    text: str
    text_sha256: str
    attestation: str
    pass_mark: int
    draw_size: int
    max_attempts: int
    minimum_per_topic: dict[str, int]
    topics: dict[str, str]
    lessons: list[LessonPack] = field(default_factory=list)
    questions: list[QuestionPack] = field(default_factory=list)
    #: ``settings.cues`` of quiz.yaml: thresholds for the cue check (lms.services.quiz_cues).
    cue_limits: dict[str, float] = field(default_factory=dict)
    #: quiz.yaml as messages name it, and the line of each cue threshold (or of ``settings``).
    quiz_file: str = ""
    cue_lines: dict[str, int] = field(default_factory=dict)

    def questions_per_topic(self) -> dict[str, int]:
        counts = {topic: 0 for topic in self.topics}
        for q in self.questions:
            counts[q.topic] = counts.get(q.topic, 0) + 1
        return counts


@dataclass
class PolicyPack:
    id: str
    title: str
    department: str
    folder: str
    versions: list[VersionPack] = field(default_factory=list)


# --- YAML with line numbers ---------------------------------------------------------------------

class _Mapping(dict):
    """A dict that remembers the line of each key, so errors can point into the file."""

    line: int = 0
    key_lines: dict


@functools.cache
def _line_loader():
    """A SafeLoader whose mappings remember their lines. Built on first use: this module is
    imported by every command and web worker (for ``sha256_hex`` and friends), but only loading
    content reads YAML, and importing PyYAML is a measurable part of start-up."""
    import yaml

    class _LineLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
        mapping = _Mapping(loader.construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        # The key's line, not the value's: a block value ("options:" then "- text: ...") starts on
        # the next line, and the field a problem names is the key.
        mapping.key_lines = {key_node.value: key_node.start_mark.line + 1 for key_node, _ in node.value
                             if isinstance(key_node, yaml.ScalarNode)}
        return mapping

    _LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)

    def checked(construct, what: str):
        """PyYAML's scalar constructors raise a bare ValueError ("day is out of range for month")
        with no line; this one names the value and where it is."""
        def constructor(loader: _LineLoader, node: yaml.ScalarNode):
            try:
                return construct(loader, node)
            except (ValueError, OverflowError) as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{node.value!r} is not {what} ({exc})", node.start_mark) from None
        return constructor

    for tag, construct, what in (
            ("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_timestamp, "a date that exists"),
            ("tag:yaml.org,2002:int", yaml.SafeLoader.construct_yaml_int, "a whole number"),
            ("tag:yaml.org,2002:float", yaml.SafeLoader.construct_yaml_float, "a number"),
            ("tag:yaml.org,2002:binary", yaml.SafeLoader.construct_yaml_binary, "base64 data")):
        _LineLoader.add_constructor(tag, checked(construct, what))
    return _LineLoader


def normalise_text(raw: str) -> str:
    """The one normal form of signed text: \\n line ends, no trailing spaces, one final newline."""
    text = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def sha256_hex(data: bytes | str) -> str:
    """Hex SHA-256 of bytes, or of text encoded as UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def split_sections(text: str, policy_id: str) -> dict[str, str]:
    """Split a policy text into sections keyed by number ("16.3.2") or heading ("PURPOSE").

    A heading is a whole line at column 0 that starts with the policy number and a sub-number, or
    is written in capitals only. The section runs from its heading to the next heading.
    """
    numbered = re.compile(rf"^({re.escape(policy_id)}(?:\.\d+)+)\s+\S")
    capitals = re.compile(r"^[A-Z][A-Z /&'-]+$")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        match = numbered.match(line)
        key = match.group(1) if match else (line.strip() if capitals.match(line) else None)
        if key is not None and key not in sections:
            current = sections[key] = [line]
        elif current is not None:
            current.append(line)
    return {key: "\n".join(lines).strip("\n") for key, lines in sections.items()}


class _Reader:
    """Collects problems while reading one pack."""

    def __init__(self, root: Path):
        self.root = root
        self.problems: list[str] = []

    def where(self, path: Path, line: int | None = None) -> str:
        try:
            shown = path.relative_to(self.root.parent)
        except ValueError:
            shown = path
        return f"{shown}:{line}" if line else str(shown)

    def problem(self, path: Path, message: str, line: int | None = None) -> None:
        self.problems.append(f"{self.where(path, line)}: {message}")

    def read_text(self, path: Path) -> str | None:
        if not path.is_file():
            self.problem(path, "file is missing")
            return None
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Decoded by hand rather than with read_text so the problem can name the line.
            self.problem(path, f"not valid UTF-8 (byte {exc.start})", raw[:exc.start].count(b"\n") + 1)
            return None
        return text.replace("\r\n", "\n").replace("\r", "\n")  # as read_text's universal newlines

    def read_yaml(self, path: Path, text: str | None = None):
        text = self.read_text(path) if text is None else text
        if text is None:
            return None
        import yaml

        try:
            data = yaml.load(text, Loader=_line_loader())  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            reason = getattr(exc, "problem", None) or str(exc)
            kind = "value" if isinstance(exc, yaml.constructor.ConstructorError) else "syntax"
            self.problem(path, f"YAML {kind} error: {reason}", mark.line + 1 if mark else None)
            return None
        except RecursionError:
            self.problem(path, "YAML nested too deeply to be content (brackets or indentation run away)")
            return None
        except (ValueError, TypeError) as exc:  # a constructor PyYAML leaves unchecked
            self.problem(path, f"YAML value error: {exc}")
            return None
        if not isinstance(data, _Mapping):
            self.problem(path, "expected a mapping of fields at the top level")
            return None
        return data

    def field(self, path: Path, data: _Mapping, name: str, kind, item: str = "",
              required: bool = True):
        """Return data[name] if it has the expected type, else record a problem and return None."""
        prefix = f"{item}: " if item else ""
        line = data.key_lines.get(name, data.line)
        if name not in data or data[name] is None or data[name] == "":
            if required:
                self.problem(path, f"{prefix}field '{name}' is required", data.line)
            return None
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            value_ok = False
        else:
            value_ok = isinstance(value, kinds)
        if not value_ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.problem(path, f"{prefix}field '{name}' must be {names}, got {value!r}", line)
            return None
        if isinstance(value, str):
            value = value.strip()
        return value


def load_packs(content_dir: Path | str) -> list[PolicyPack]:
    """Read and validate every pack under ``content_dir``; raise ContentError listing all problems."""
    root = Path(content_dir)
    if not root.is_dir():
        raise ContentError([f"{root}: content folder is missing"])
    reader = _Reader(root)
    packs = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        reader.problem(root, "no policy folders found")
    seen_ids: dict[str, Path] = {}
    for folder in folders:
        pack = _load_pack(reader, folder)
        if pack is None:
            continue
        if pack.id in seen_ids:
            reader.problem(folder / "policy.yaml",
                           f"policy id {pack.id!r} is also used by {seen_ids[pack.id].name}")
        seen_ids[pack.id] = folder
        packs.append(pack)
    if reader.problems:
        raise ContentError(reader.problems)
    return packs


def _load_pack(reader: _Reader, folder: Path) -> PolicyPack | None:
    path = folder / "policy.yaml"
    data = reader.read_yaml(path)
    if data is None:
        return None
    policy_id = reader.field(path, data, "id", (str, float))
    title = reader.field(path, data, "title", str)
    department = reader.field(path, data, "department", str)
    if isinstance(policy_id, float):
        reader.problem(path, "field 'id' must be quoted text such as \"16.3\"", data.key_lines["id"])
        return None
    if not (policy_id and title and department):
        return None
    pack = PolicyPack(id=policy_id, title=title, department=department, folder=folder.name)
    versions_dir = folder / "versions"
    version_dirs = sorted(p for p in versions_dir.iterdir() if p.is_dir()) if versions_dir.is_dir() else []
    if not version_dirs:
        reader.problem(versions_dir, "no versions: add versions/<YYYY-MM-DD>/")
    for version_dir in version_dirs:
        version = _load_version(reader, pack, version_dir)
        if version is not None:
            pack.versions.append(version)
    return pack


def _load_version(reader: _Reader, pack: PolicyPack, folder: Path) -> VersionPack | None:
    path = folder / "version.yaml"
    data = reader.read_yaml(path)
    raw_text = reader.read_text(folder / "policy.txt")
    if data is None or raw_text is None:
        return None
    effective = reader.field(path, data, "effective", date)
    attestation = reader.field(path, data, "attestation", str)
    if effective is not None and effective.isoformat() != folder.name:
        reader.problem(path, f"field 'effective' is {effective.isoformat()} but the folder is "
                             f"named {folder.name}", data.key_lines.get("effective"))
    text = normalise_text(raw_text)
    if not text.strip():
        reader.problem(folder / "policy.txt", "policy text is empty")
    sections = split_sections(text, pack.id)
    settings = _load_quiz(reader, folder / "quiz.yaml")
    if effective is None or attestation is None or settings is None:
        return None
    version = VersionPack(effective=effective, text=text, text_sha256=sha256_hex(text),
                          attestation=" ".join(attestation.split()), **settings)
    lessons_dir = folder / "lessons"
    lesson_files = sorted(lessons_dir.glob("*.md")) if lessons_dir.is_dir() else []
    if not lesson_files:
        reader.problem(lessons_dir, "no lessons: add lessons/NN-name.md")
    for lesson_file in lesson_files:
        lesson = _load_lesson(reader, lesson_file, sections)
        if lesson is not None:
            version.lessons.append(lesson)
    if len(version.lessons) < len(lesson_files):
        return version  # a lesson that failed to load was reported; its sections are unknown
    for number in sorted(k for k in sections if k.startswith(pack.id + ".") and k.count(".") == 2):
        if not any(number in lesson.sections for lesson in version.lessons):
            reader.problem(lessons_dir, f"no lesson includes section {number} "
                                        f"(add '::: policy {number}' to a lesson)")
    return version


def _load_lesson(reader: _Reader, path: Path, sections: dict[str, str]) -> LessonPack | None:
    text = reader.read_text(path)
    if text is None:
        return None
    text = text.replace("\r\n", "\n")
    if not text.startswith("---\n") or "\n---\n" not in text[3:]:
        reader.problem(path, "missing front matter: start with '---', the fields, then '---'", 1)
        return None
    front, body = text[4:].split("\n---\n", 1)
    # The blank first line stands for the opening '---', so YAML's line numbers are the file's.
    data = reader.read_yaml(path, "\n" + front)
    if data is None:
        return None
    title = reader.field(path, data, "title", str)
    listed = reader.field(path, data, "sections", list)
    minutes = reader.field(path, data, "minutes", int)
    if minutes is not None and minutes <= 0:
        reader.problem(path, "field 'minutes' must be a positive number", data.key_lines["minutes"])
    body_line = front.count("\n") + 4  # after the opening '---', the front matter and the closing '---'
    used = []
    for offset, line in enumerate(body.split("\n")):
        match = DIRECTIVE.match(line)
        if match:
            section = match.group("section")
            used.append(section)
            if section not in sections:
                known = ", ".join(sorted(sections))
                reader.problem(path, f"'::: policy {section}' names no section of policy.txt "
                                     f"(sections: {known})", body_line + offset)
    if not body.strip():
        reader.problem(path, "lesson body is empty", body_line)
    if listed is not None and sorted(map(str, listed)) != sorted(used):
        reader.problem(path, f"field 'sections' lists {sorted(map(str, listed))} but the body "
                             f"includes {sorted(used)}", data.key_lines.get("sections"))
    if title is None or listed is None or minutes is None:
        return None
    return LessonPack(slug=path.stem, title=title, sections=[str(s) for s in listed],
                      minutes=minutes, body=body.strip("\n") + "\n")


def _load_quiz(reader: _Reader, path: Path) -> dict | None:
    data = reader.read_yaml(path)
    if data is None:
        return None
    settings = reader.field(path, data, "settings", dict)
    topics = reader.field(path, data, "topics", dict)
    questions_raw = reader.field(path, data, "questions", list)
    if settings is None or topics is None or questions_raw is None:
        return None
    pass_mark = reader.field(path, settings, "pass_mark", int, "settings")
    draw = reader.field(path, settings, "draw", int, "settings")
    max_attempts = reader.field(path, settings, "max_attempts", int, "settings")
    minimums = reader.field(path, settings, "minimum_per_topic", dict, "settings", required=False) or _Mapping()
    cues = reader.field(path, settings, "cues", dict, "settings", required=False) or {}
    # A threshold left to its default is reported at 'cues:' if the pack has one, else 'settings:'.
    default_line = settings.key_lines.get("cues") or data.key_lines.get("settings")
    cue_limits, cue_lines = _cue_limits(reader, path, default_line, cues)
    _check_quiz_settings(reader, path, settings, pass_mark, draw, max_attempts)
    _check_topics(reader, path, topics, minimums)

    questions: list[QuestionPack] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(questions_raw, start=1):
        question = _load_question(reader, path, raw, index, topics, seen)
        if question is not None:
            questions.append(question)

    if pass_mark is None or draw is None or max_attempts is None:
        return None
    _check_bank(reader, path, settings, minimums, questions, draw)
    return {
        "pass_mark": pass_mark, "draw_size": draw, "max_attempts": max_attempts,
        "minimum_per_topic": dict(minimums), "topics": {k: str(v).strip() for k, v in topics.items()},
        "questions": questions, "cue_limits": cue_limits, "quiz_file": reader.where(path),
        "cue_lines": cue_lines,
    }


def _check_quiz_settings(reader: _Reader, path: Path, settings: _Mapping, pass_mark: int | None,
                         draw: int | None, max_attempts: int | None) -> None:
    """The pass mark is a percentage; the draw and the attempts are at least one."""
    if pass_mark is not None and not 1 <= pass_mark <= 100:
        reader.problem(path, "settings: field 'pass_mark' must be a percentage from 1 to 100",
                       settings.key_lines["pass_mark"])
    for name, value in (("draw", draw), ("max_attempts", max_attempts)):
        if value is not None and value < 1:
            reader.problem(path, f"settings: field '{name}' must be at least 1",
                           settings.key_lines[name])


def _check_topics(reader: _Reader, path: Path, topics: _Mapping, minimums: _Mapping) -> None:
    """Every topic has a display name; every minimum names a topic and is a whole number."""
    for topic, name in topics.items():
        if not isinstance(name, str) or not name.strip():
            reader.problem(path, f"topics: topic {topic!r} needs a display name",
                           topics.key_lines.get(topic))
    for topic, minimum in minimums.items():
        line = minimums.key_lines.get(topic)
        if topic not in topics:
            reader.problem(path, f"settings: minimum_per_topic names unknown topic {topic!r}", line)
        if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
            reader.problem(path, f"settings: minimum_per_topic for {topic!r} must be a whole number", line)


def _check_bank(reader: _Reader, path: Path, settings: _Mapping, minimums: _Mapping,
                questions: list[QuestionPack], draw: int) -> None:
    """The bank holds enough questions for the draw and for each topic's minimum."""
    counts: dict[str, int] = {}
    for q in questions:
        counts[q.topic] = counts.get(q.topic, 0) + 1
    if len(questions) < draw:
        reader.problem(path, f"settings: draw is {draw} but the bank has {len(questions)} questions",
                       settings.key_lines["draw"])
    if sum(v for v in minimums.values() if isinstance(v, int)) > draw:
        reader.problem(path, "settings: minimum_per_topic adds up to more than draw",
                       settings.key_lines.get("minimum_per_topic"))
    for topic, minimum in minimums.items():
        if isinstance(minimum, int) and counts.get(topic, 0) < minimum:
            reader.problem(path, f"settings: topic {topic!r} needs at least {minimum} questions, "
                                 f"the bank has {counts.get(topic, 0)}", minimums.key_lines.get(topic))


def _cue_limits(reader: _Reader, path: Path, default_line: int, cues: dict) -> tuple[dict, dict]:
    """Validate ``settings.cues``: known names, each a non-negative number."""
    from lms.services.quiz_cues import DEFAULT_LIMITS

    lines = {name: default_line for name in DEFAULT_LIMITS}
    limits = {}
    for name, value in cues.items():
        line = cues.key_lines.get(name, default_line) if isinstance(cues, _Mapping) else default_line
        if name not in DEFAULT_LIMITS:
            reader.problem(path, f"settings: cues names unknown threshold {name!r} "
                                 f"(known: {', '.join(DEFAULT_LIMITS)})", line)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            reader.problem(path, f"settings: cues.{name} must be a number of at least 0, got {value!r}", line)
        else:
            limits[name] = float(value)
            lines[name] = line
    return limits, lines


def _load_question(reader: _Reader, path: Path, raw, index: int, topics: dict,
                   seen: dict[str, int]) -> QuestionPack | None:
    if not isinstance(raw, _Mapping):
        reader.problem(path, f"question #{index}: expected a mapping of fields")
        return None
    key = raw.get("id")
    item = f"question {key}" if isinstance(key, str) else f"question #{index}"
    key = reader.field(path, raw, "id", str, item)
    if key is not None:
        _check_question_id(reader, path, raw, item, key, seen)
    topic = _question_topic(reader, path, raw, item, topics)
    cites = reader.field(path, raw, "cites", list, item)
    _check_cites(reader, path, raw, item, cites or [])
    kind = _question_kind(reader, path, raw, item)
    scenario = reader.field(path, raw, "scenario", str, item)
    prompt = reader.field(path, raw, "prompt", str, item)
    options_raw = reader.field(path, raw, "options", list, item)
    options = _load_options(reader, path, raw, item, options_raw or [])
    if options_raw is not None:
        _check_options(reader, path, raw, item, kind, options, options_raw)
    if key is None or topic is None or cites is None or kind is None or scenario is None or prompt is None:
        return None
    if options_raw is None or len(options) != len(options_raw):
        return None
    return QuestionPack(key=key, topic=topic, cites=[str(c) for c in cites], kind=kind,
                        scenario=scenario, prompt=prompt, options=options, line=raw.line)


def _check_question_id(reader: _Reader, path: Path, raw: _Mapping, item: str, key: str,
                       seen: dict[str, int]) -> None:
    """An id is lowercase letters, digits and dashes, and used once in the bank."""
    if not QUESTION_ID.match(key):
        reader.problem(path, f"{item}: field 'id' must be lowercase letters, digits and dashes",
                       raw.key_lines["id"])
    if key in seen:
        reader.problem(path, f"{item}: id is also used by the question at line {seen[key]}",
                       raw.key_lines["id"])
    seen.setdefault(key, raw.line)


def _question_topic(reader: _Reader, path: Path, raw: _Mapping, item: str, topics: dict) -> str | None:
    """The question's topic if it is one the quiz lists."""
    topic = reader.field(path, raw, "topic", str, item)
    if topic is not None and topic not in topics:
        reader.problem(path, f"{item}: field 'topic' is {topic!r}, not one of {', '.join(map(str, topics))}",
                       raw.key_lines["topic"])
        return None
    return topic


def _check_cites(reader: _Reader, path: Path, raw: _Mapping, item: str, cites: list) -> None:
    """Each citation is a paragraph number such as 16.3.2.D.1."""
    for cite in cites:
        if not isinstance(cite, str) or not CITE.match(cite):
            reader.problem(path, f"{item}: field 'cites' has {cite!r}; write paragraphs like "
                                 f"\"16.3.2.D.1\"", raw.key_lines["cites"])


def _question_kind(reader: _Reader, path: Path, raw: _Mapping, item: str) -> str | None:
    """'single' or 'multiple'."""
    kind = reader.field(path, raw, "kind", str, item)
    if kind is not None and kind not in KINDS:
        reader.problem(path, f"{item}: field 'kind' must be single or multiple", raw.key_lines["kind"])
        return None
    return kind


def _load_options(reader: _Reader, path: Path, raw: _Mapping, item: str, options_raw: list) -> list[OptionPack]:
    """The options that have their text, whether they are correct and why."""
    options: list[OptionPack] = []
    for number, option in enumerate(options_raw, start=1):
        where = f"{item}, option {number}"
        if not isinstance(option, _Mapping):
            reader.problem(path, f"{where}: expected a mapping with text, correct and why",
                           raw.key_lines["options"])
            continue
        text = reader.field(path, option, "text", str, where)
        correct = reader.field(path, option, "correct", bool, where)
        why = reader.field(path, option, "why", str, where)
        if text is not None and correct is not None and why is not None:
            options.append(OptionPack(text=text, correct=correct, why=why))
    return options


def _check_options(reader: _Reader, path: Path, raw: _Mapping, item: str, kind: str | None,
                   options: list[OptionPack], options_raw: list) -> None:
    """2 to 6 options; one correct for a single answer, at least one for select-all."""
    line = raw.key_lines["options"]
    if not 2 <= len(options_raw) <= 6:
        reader.problem(path, f"{item}: needs 2 to 6 options, has {len(options_raw)}", line)
    right = sum(o.correct for o in options)
    if kind == "single" and len(options) == len(options_raw) and right != 1:
        reader.problem(path, f"{item}: a single-answer question needs exactly one correct "
                             f"option, has {right}", line)
    if kind == "multiple" and len(options) == len(options_raw) and right < 1:
        reader.problem(path, f"{item}: a select-all question needs at least one correct option", line)


def content_report(packs: list[PolicyPack]) -> dict:
    """The summary ``content check --json`` prints; ``cues`` is lms.services.quiz_cues' measure."""
    from lms.services.quiz_cues import measure

    return {
        "policies": [
            {
                "id": pack.id,
                "title": pack.title,
                "versions": [
                    {
                        "effective": v.effective.isoformat(),
                        "lessons": len(v.lessons),
                        "questions": v.questions_per_topic(),
                        "cues": measure(v).as_dict(),
                    }
                    for v in pack.versions
                ],
            }
            for pack in packs
        ]
    }


def sync_content(session: Session, packs: list[PolicyPack]) -> None:
    """Upsert validated packs into the database.

    A version whose text has been signed can never change: that would break the recorded hash.
    Lessons and questions are matched by file name and id; ones removed from the pack are retired,
    not deleted, so progress and attempts that point at them stay readable.
    """
    problems = []
    for pack in packs:
        policy = session.get(Policy, pack.id)
        if policy is None:
            policy = Policy(id=pack.id)
            session.add(policy)
        policy.title, policy.department, policy.folder = pack.title, pack.department, pack.folder
        for vp in pack.versions:
            version = session.scalar(select(PolicyVersion).where(
                PolicyVersion.policy_id == pack.id, PolicyVersion.effective == vp.effective))
            if version is None:
                version = PolicyVersion(policy_id=pack.id, effective=vp.effective)
                session.add(version)
            elif version.text_sha256 != vp.text_sha256 and session.scalar(
                    select(Acknowledgment.id).where(Acknowledgment.policy_version_id == version.id).limit(1)):
                problems.append(
                    f"{pack.folder}/versions/{vp.effective}/policy.txt: the text of a version that "
                    f"members have signed cannot change; add a new version with a later effective date")
                continue
            version.text, version.text_sha256, version.attestation = vp.text, vp.text_sha256, vp.attestation
            version.pass_mark, version.draw_size, version.max_attempts = vp.pass_mark, vp.draw_size, vp.max_attempts
            version.minimum_per_topic, version.topics = vp.minimum_per_topic, vp.topics
            session.flush()
            _sync_lessons(session, version, vp.lessons)
            problems.extend(_sync_questions(session, version, vp.questions, pack.folder))
    if problems:
        raise ContentError(problems)
    session.flush()


def _sync_lessons(session: Session, version: PolicyVersion, lessons: list[LessonPack]) -> None:
    stored = session.scalars(select(Lesson).where(Lesson.version_id == version.id))
    existing = {lesson.slug: lesson for lesson in stored}
    for position, lp in enumerate(lessons, start=1):
        lesson = existing.pop(lp.slug, None)
        if lesson is None:
            lesson = Lesson(version_id=version.id, slug=lp.slug)
            session.add(lesson)
        lesson.position, lesson.title, lesson.sections = position, lp.title, lp.sections
        lesson.minutes, lesson.body_markdown, lesson.retired = lp.minutes, lp.body, False
    for lesson in existing.values():
        lesson.retired = True


def _changes_scoring(question: Question, pack: QuestionPack) -> bool:
    """Whether loading ``pack`` over ``question`` would change how its attempts were scored."""
    return (question.kind != pack.kind
            or [o.correct for o in question.options] != [o.correct for o in pack.options])


def _sync_questions(session: Session, version: PolicyVersion, questions: list[QuestionPack],
                    folder: str) -> list[str]:
    problems = []
    existing = {q.key: q for q in session.scalars(select(Question).where(Question.version_id == version.id))}
    for position, qp in enumerate(questions, start=1):
        question = existing.pop(qp.key, None)
        if question is None:
            question = Question(version_id=version.id, key=qp.key)
            session.add(question)
        elif _changes_scoring(question, qp) and session.scalar(
                select(AttemptItem.id).where(AttemptItem.question_id == question.id).limit(1)):
            # Attempts keep the option ids chosen and whether they were right: a question that
            # has been answered may be reworded, but its options and key stay where they were, or
            # old attempts would show a member choosing what they never saw.
            problems.append(f"{folder}/versions/{version.effective}/quiz.yaml: question {qp.key} has "
                            f"been answered, so its number of options, its kind and which options "
                            f"are correct cannot change; retire it and add a question with a new id")
            continue
        question.topic, question.cites, question.kind = qp.topic, qp.cites, qp.kind
        question.scenario, question.prompt, question.position = qp.scenario, qp.prompt, position
        question.retired = False
        session.flush()
        by_position = {o.position: o for o in question.options}
        for number, op in enumerate(qp.options, start=1):
            option = by_position.pop(number, None)
            if option is None:
                option = QuestionOption(question_id=question.id, position=number)
                session.add(option)
                question.options.append(option)
            option.text, option.correct, option.why = op.text, op.correct, op.why
        for option in by_position.values():
            question.options.remove(option)
            session.delete(option)
    for question in existing.values():
        question.retired = True
    return problems
