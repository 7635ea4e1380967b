"""The structure of a policy's signed text — section headings, lettered items with their numbered
sub-items, indented lists, paragraphs — so the signing page can show it as HTML headings and
lists. Only the presentation changes: every word of the text appears once, in order, and the
SHA-256 stays over the exact text (``PolicyVersion.text``)."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

#: "A. All department …" at the start of a line.
_LETTERED = re.compile(r"^(?P<label>[A-Z])\.\s+(?P<text>\S.*)$")
#: "   1. Include …", indented or not.
_NUMBERED = re.compile(r"^(?P<indent>\s*)(?P<label>\d{1,2})\.\s+(?P<text>\S.*)$")
#: A heading in capitals only, as lms.services.content.split_sections recognises them.
_CAPITALS = re.compile(r"^[A-Z][A-Z /&'-]+$")


@dataclass
class Item:
    """A lettered or numbered item: its label ("A", "1"), text, and numbered sub-items."""

    label: str
    text: str
    children: list[Item] = field(default_factory=list)
    #: Text lines that continue the item (wrapped or indented under it without a number).
    more: list[str] = field(default_factory=list)


@dataclass
class Block:
    """One block of the text: ``kind`` is "heading", "paragraph", "lettered" or "numbered"
    (``items`` set), or "lines" (an indented list under a label, ``lines`` set)."""

    kind: str
    text: str = ""
    items: list[Item] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def is_heading(line: str, policy_id: str) -> bool:
    """A line at column 0 that names a section: "16.3.2 OFF-DUTY USE …" or "PURPOSE"."""
    numbered = re.match(rf"^{re.escape(policy_id)}(?:\.\d+)+\s+\S", line)
    return bool(numbered) or bool(_CAPITALS.match(line))


def parse_policy(text: str, policy_id: str) -> list[Block]:
    """The blocks of a policy text, in order. Blank lines separate blocks; a lettered item owns
    the numbered items indented below it until the next lettered item, heading or other text."""
    blocks: list[Block] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        last = blocks[-1] if blocks else None
        lettered = _LETTERED.match(line)
        numbered = _NUMBERED.match(line)
        if is_heading(line, policy_id):
            blocks.append(Block("heading", text=line.strip()))
        elif lettered:
            item = Item(lettered["label"], lettered["text"].strip())
            if last is not None and last.kind == "lettered":
                last.items.append(item)
            else:
                blocks.append(Block("lettered", items=[item]))
        elif numbered:
            item = Item(numbered["label"], numbered["text"].strip())
            if last is not None and last.kind == "lettered" and numbered["indent"]:
                last.items[-1].children.append(item)
            elif last is not None and last.kind == "numbered":
                last.items.append(item)
            else:
                blocks.append(Block("numbered", items=[item]))
        elif line[:1].isspace() and last is not None:
            # Indented text without a label: it continues what stands above it.
            if last.kind == "lettered":
                target = last.items[-1].children[-1] if last.items[-1].children else last.items[-1]
                target.more.append(line.strip())
            elif last.kind == "numbered":
                last.items[-1].more.append(line.strip())
            elif last.kind == "lines" or (last.kind == "paragraph" and last.text.endswith(":")):
                if last.kind == "paragraph":
                    last.kind = "lines"
                last.lines.append(line.strip())
            else:
                last.text += " " + line.strip()
        else:
            blocks.append(Block("paragraph", text=line.strip()))
    return blocks


def _phrase_pattern(phrase: str) -> str:
    """A regular expression for ``phrase`` taken literally, any run of spaces matching any other."""
    return re.escape(" ".join(phrase.split())).replace(r"\ ", r"\s+")


def _marked(text: str, highlight: str | None) -> Markup:
    """``text`` escaped, each occurrence of ``highlight`` (any case) in a ``<mark>``."""
    if not highlight or not highlight.split():
        return escape(text)
    pieces = re.split(f"({_phrase_pattern(highlight)})", text, flags=re.IGNORECASE)
    return Markup("").join(Markup("<mark>{}</mark>").format(piece) if i % 2 else escape(piece)
                           for i, piece in enumerate(pieces))


def _items_html(items: list[Item], kind: str, highlight: str | None = None) -> str:
    """An ordered list whose markers are the text's own labels (A, B… or 1, 2…)."""
    style = ' type="A"' if kind == "lettered" else ""
    parts = [f'<ol class="policy-{kind}"{style}>']
    for item in items:
        value = ord(item.label) - ord("A") + 1 if kind == "lettered" else int(item.label)
        parts.append(f'<li value="{value}">{_marked(item.text, highlight)}')
        parts.extend(f"<br>{_marked(line, highlight)}" for line in item.more)
        if item.children:
            parts.append(_items_html(item.children, "numbered", highlight))
        parts.append("</li>")
    parts.append("</ol>")
    return "".join(parts)


@functools.lru_cache(maxsize=64)
def render_policy(text: str, policy_id: str, *, heading_level: int = 3, anchors: bool = False,
                  highlight: str | None = None) -> Markup:
    """The policy text as HTML: headings at ``heading_level`` (numbered sections one deeper once a
    heading in capitals such as PROCEDURES stands above them), lettered and numbered items as
    ordered lists, indented lines under a label as a list, the rest as paragraphs.

    With ``anchors`` each heading gets ``id="section-N"`` (N counting headings from 1, as
    ``search_policy`` numbers them) so a search result can link to it; ``highlight`` marks each
    occurrence of a phrase.

    Cached per worker by its arguments, the text itself among them (a version's text never
    changes; a new version is a new key): the signing page shows the same few texts to every
    member."""
    html: list[str] = []
    under_capitals = False  # numbered sections after a heading in capitals ("PROCEDURES") sit under it
    headings = 0
    for block in parse_policy(text, policy_id):
        if block.kind == "heading":
            headings += 1
            numbered = block.text[:1].isdigit()
            level = heading_level + 1 if numbered and under_capitals else heading_level
            under_capitals = under_capitals or not numbered
            anchor = f' id="section-{headings}"' if anchors else ""
            html.append(f'<h{level} class="policy-heading"{anchor}>{_marked(block.text, highlight)}</h{level}>')
        elif block.kind == "paragraph":
            html.append(f"<p>{_marked(block.text, highlight)}</p>")
        elif block.kind == "lines":
            html.append(f"<p>{_marked(block.text, highlight)}</p><ul class=\"policy-lines\">")
            html.extend(f"<li>{_marked(line, highlight)}</li>" for line in block.lines)
            html.append("</ul>")
        else:
            html.append(_items_html(block.items, block.kind, highlight))
    return Markup("".join(html))


@dataclass
class SearchHit:
    """One passage of a policy text holding the phrase: the section it is in (``section`` 0 before
    the first heading), and the passage cut around the first occurrence as before/match/after."""

    section: int
    heading: str
    before: str
    match: str
    after: str


def _passages(block: Block) -> list[str]:
    """The pieces of text of a block, each searched on its own (a paragraph, an item, a line)."""
    if block.kind in ("heading", "paragraph"):
        return [block.text]
    if block.kind == "lines":
        return [block.text, *block.lines]
    texts: list[str] = []

    def walk(items: list[Item]) -> None:
        for item in items:
            texts.extend([item.text, *item.more])
            walk(item.children)
    walk(block.items)
    return texts


def search_policy(text: str, policy_id: str, phrase: str, *, context: int = 80) -> list[SearchHit]:
    """Every passage of the policy text holding ``phrase`` (any case, runs of spaces as one), in
    order, each with the heading of its section and about ``context`` characters either side."""
    words = " ".join(phrase.split())
    if not words:
        return []
    pattern = re.compile(_phrase_pattern(words), re.IGNORECASE)
    hits: list[SearchHit] = []
    section, heading = 0, "Beginning of the policy"
    for block in parse_policy(text, policy_id):
        if block.kind == "heading":
            section, heading = section + 1, block.text
        for passage in _passages(block):
            found = pattern.search(passage)
            if found is None:
                continue
            start, end = max(0, found.start() - context), min(len(passage), found.end() + context)
            hits.append(SearchHit(section, heading,
                                  ("…" if start else "") + passage[start:found.start()], found.group(),
                                  passage[found.end():end] + ("…" if end < len(passage) else "")))
    return hits
