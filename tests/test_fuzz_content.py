"""Property-based fuzzing of the content loader (issue 15).

Each example copies a content pack, breaks one line of one of its YAML or Markdown files the way an
author's editor or a bad merge would (an impossible date, a YAML tag on a wrong value, runaway
nesting, an alias to nothing, control characters, a stray tab), and runs ``content check``.
Whatever the file holds: no traceback; either the pack passes or every problem names its file.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lms.config import PACKAGE_DIR, PROJECT_ROOT

#: The loader does not depend on the database; a few hundred broken packs per run cover its paths.
EXAMPLES = int(os.environ.get("LMS_FUZZ_CONTENT_EXAMPLES", "100"))
PACKS = {
    "16.3": PACKAGE_DIR / "content",
    "99.1": PROJECT_ROOT / "tests" / "fixtures" / "content_versions",
}

#: Values the fuzzing run found crashing the loader, and their relatives.
HOSTILE_VALUES = [
    "2013-02-30", "2013-13-01", "2013-11-26 25:00:00", "!!int 0x", "!!float x", "!!timestamp 2013-13-01",
    "!!binary x", "!!set {a, b}", "!!omap [a: 1]", "!!python/object:os.system x", "*nope", "&a [*a]",
    "[" * 2000, "{" * 2000, "- " * 500, "? [a, b]\n: c", "{1: a, 2: b}", "1e999", "9" * 400, "~", "[]",
    "{}", "yes", "-", "'", '"\\x"', "\t", "%YAML 1.1", "---", "...", "::: policy 16.3.99", "::: policy",
    "@", "`", "|\n  text", ">-", "!", "!!str", "0o17", "0b101", ".nan", "-.inf", "2013-11-26T00:00:00Z",
]
hostile = st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=30))


@st.composite
def broken_packs(draw):
    """Which pack, which file, which line, and what goes there."""
    name = draw(st.sampled_from(sorted(PACKS)))
    files = sorted(p.relative_to(PACKS[name]) for p in PACKS[name].rglob("*")
                   if p.suffix in (".yaml", ".md", ".txt"))
    target = draw(st.sampled_from(files))
    lines = (PACKS[name] / target).read_text(encoding="utf-8").split("\n")
    index = draw(st.integers(0, len(lines) - 1))
    value = draw(hostile)
    how = draw(st.sampled_from(["value", "line", "insert", "delete"]))
    return name, target, index, value, how


def _break(root: Path, target: Path, index: int, value: str, how: str) -> None:
    path = root / target
    lines = path.read_text(encoding="utf-8").split("\n")
    line = lines[index]
    if how == "value" and ":" in line:
        lines[index] = f"{line.split(':', 1)[0]}: {value}"
    elif how == "insert":
        lines.insert(index, value)
    elif how == "delete":
        del lines[index]
    else:
        lines[index] = value
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))


@pytest.mark.fuzz
@pytest.mark.skipif(bool(os.environ.get("LMS_TEST_DATABASE_URL")),
                    reason="the content loader reads files only; fuzzed once, in the SQLite pass")
def test_content_check_names_a_file_for_every_problem_and_never_crashes(app, tmp_path):
    runner = app.test_cli_runner()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(broken=broken_packs())
    def one_pack(broken):
        name, target, index, value, how = broken
        root = tmp_path / "content"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(PACKS[name], root)
        try:
            _break(root, target, index, value, how)
        except UnicodeEncodeError:
            return
        app.config["CONTENT_DIR"] = str(root)
        result = runner.invoke(args=["lms", "content", "check"])
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            (broken, repr(result.exception))
        assert "Traceback" not in result.output, broken
        assert result.exit_code in (0, 1), (broken, result.output)
        if result.exit_code == 1:
            lines = [line for line in result.output.splitlines()
                     if line.strip() and not line.startswith(("Cue:", "Flag:", "Policy ", " "))]
            problems = [line for line in lines if not line.endswith("problem(s) found.")]
            assert problems, (broken, result.output)
            unplaced = [p for p in problems if not p.startswith(("content/", str(root)))
                        and "quiz.yaml" not in p]
            assert not unplaced, (broken, unplaced)

    one_pack()
