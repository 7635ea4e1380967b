"""Lesson rendering: Markdown with the verbatim policy text spliced in where the lesson asks."""
from __future__ import annotations

import functools

from markupsafe import Markup, escape

from lms.models import Lesson, PolicyVersion
from lms.services.content import DIRECTIVE, split_sections


@functools.cache
def _markdown():
    """The Markdown renderer, made on first use: only lesson pages need it, and loading
    markdown-it would otherwise slow every command's start (docs/performance.md)."""
    from markdown_it import MarkdownIt

    # Raw HTML in lesson files is escaped, not rendered: content authors write Markdown only.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def render_lesson(lesson: Lesson, version: PolicyVersion) -> Markup:
    """The lesson as HTML; each ``::: policy SECTION`` line becomes that section's exact text."""
    sections = split_sections(version.text, version.policy_id)
    parts: list[str] = []
    pending: list[str] = []
    for line in lesson.body_markdown.split("\n"):
        match = DIRECTIVE.match(line)
        if match:
            parts.append(_markdown().render("\n".join(pending)))
            pending = []
            parts.append(policy_block(sections.get(match.group("section"), ""), match.group("section")))
        else:
            pending.append(line)
    parts.append(_markdown().render("\n".join(pending)))
    return Markup("".join(parts))


def policy_block(text: str, section: str) -> str:
    """Verbatim policy text, shown with its line breaks exactly as signed."""
    return (f'<figure class="policy-text"><figcaption>Policy text, section {escape(section)} '
            f'(verbatim)</figcaption><div class="verbatim">{escape(text)}</div></figure>')
