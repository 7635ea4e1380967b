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
    return Markup(_lesson_html(lesson.body_markdown, version.text, version.policy_id))


@functools.lru_cache(maxsize=128)
def _lesson_html(body_markdown: str, policy_text: str, policy_id: str) -> str:
    """The HTML of a lesson, rendered once per worker for each lesson text and policy text.

    Keyed by the texts themselves, not by ids: content reloads can change a lesson, and a changed
    word makes a new key, so a stale page is never served. Rendering the Markdown took about a
    third of a lesson page's time (docs/performance.md, "Pages against a bare Flask page").
    """
    sections = split_sections(policy_text, policy_id)
    parts: list[str] = []
    pending: list[str] = []
    for line in body_markdown.split("\n"):
        match = DIRECTIVE.match(line)
        if match:
            parts.append(_markdown().render("\n".join(pending)))
            pending = []
            parts.append(policy_block(sections.get(match.group("section"), ""), match.group("section")))
        else:
            pending.append(line)
    parts.append(_markdown().render("\n".join(pending)))
    return "".join(parts)


def policy_block(text: str, section: str) -> str:
    """Verbatim policy text, shown with its line breaks exactly as signed."""
    return (f'<figure class="policy-text"><figcaption>Policy text, section {escape(section)} '
            f'(verbatim)</figcaption><div class="verbatim">{escape(text)}</div></figure>')
