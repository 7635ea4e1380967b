"""Every PDF the app hands out is tagged for assistive technology, as PDF/UA-1 asks: marked
content, a structure tree with headings and tables, the document language, and a title shown in
place of the file name. Checked on the bytes each download route serves: the receipt, the
coordinator's roster PDF and HR's "as of" evidence PDF."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from html import escape

import pytest
from sqlalchemy import select

from lms.db import utcnow
from lms.models import Acknowledgment
from lms.services import roster_export
from lms.services.clock import local_date
from lms.services.roster import ROSTER_COLUMNS

from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign
from tests.test_receipt import inflated, pdf_objects

PDF_TEMPLATES = ["receipt.html", "roster.html", "evidence.html"]


def dictionary_at(data: bytes, start: int) -> bytes:
    """The PDF dictionary that opens at ``start``, nested dictionaries included."""
    depth, i = 0, start
    while True:
        if data.startswith(b"<<", i):
            depth, i = depth + 1, i + 2
        elif data.startswith(b">>", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return data[start:i]
        else:
            i += 1


@dataclass
class Element:
    """One structure element: its role, its kids in order, and the marked content it holds."""

    role: str
    page: int | None
    kids: list[Element] = field(default_factory=list)
    mcids: list[int] = field(default_factory=list)

    def walk(self):
        yield self
        for kid in self.kids:
            yield from kid.walk()

    def find(self, role: str) -> list[Element]:
        return [e for e in self.walk() if e.role == role]

    @property
    def roles(self) -> list[str]:
        return [kid.role for kid in self.kids]


def structure_tree(data: bytes) -> tuple[Element, dict[int, list[tuple[str, bytes]]]]:
    """The structure tree from its root, and each page's marked-content sequences (tag, properties)
    in the order drawn; pages by object number."""
    objects = pdf_objects(data)

    def element(number: int) -> Element | None:
        head = objects[number][0]
        if b"/StructElem" not in head and b"/StructTreeRoot" not in head:
            return None  # a link's annotation reference
        role = re.search(rb"/S /(\w+)", head)
        page = re.search(rb"/Pg (\d+) 0 R", head)
        node = Element(role[1].decode() if role else "StructTreeRoot", int(page[1]) if page else None)
        kids = re.search(rb"/K (\[.*?\]|\d+ 0 R|\d+)", head)
        for kid in re.findall(rb"(\d+) 0 R|(\d+)", kids[1] if kids else b""):
            if kid[0]:
                child = element(int(kid[0]))
                if child is not None:
                    node.kids.append(child)
            else:
                node.mcids.append(int(kid[1]))
        return node

    root = next(n for n, (head, _) in objects.items() if b"/Type /StructTreeRoot" in head)
    marked = {}
    for number, (head, _) in objects.items():
        if re.search(rb"/Type /Page\b(?!s)", head):
            content = objects[int(re.search(rb"/Contents (\d+) 0 R", head)[1])][1]
            marked[number] = re.findall(rb"/(\w+)\s*(<<[^>]*>>)?\s*BDC", content)
    return element(root), marked


def assert_all_content_tagged_or_artifact(data: bytes) -> None:
    """Every marked sequence on every page is either an artifact or held by an element reachable from
    the structure tree's root (PDF/UA: no content both untagged and not an artifact)."""
    root, marked = structure_tree(data)
    held = {(e.page, mcid) for e in root.walk() for mcid in e.mcids}
    for page, sequences in marked.items():
        pagination = 0
        for tag, properties in sequences:
            if tag == b"Artifact":
                pagination += properties == b"<</Type /Pagination>>"
                continue
            mcid = int(re.search(rb"/MCID (\d+)", properties)[1])
            assert (page, mcid) in held, f"page object {page}: marked content {mcid} is neither tagged nor an artifact"
        # The running footer (title, page X of Y) on every page is a pagination artifact.
        assert pagination >= 2, f"page object {page}: the footer is not marked as pagination"


def assert_accessible(data: bytes, title: str) -> None:
    """The markers of a tagged PDF/UA-1 document in English titled ``title``."""
    assert data.startswith(b"%PDF-")
    everything = inflated(data)
    catalog = dictionary_at(everything, everything.index(b"<</Type /Catalog"))
    assert b"/Lang (en)" in catalog, "the document language is not set"
    assert re.search(rb"/MarkInfo\s*<<\s*/Marked true", catalog), "not marked as a tagged PDF"
    assert b"/StructTreeRoot" in catalog, "no structure tree"
    assert re.search(rb"/ViewerPreferences\s*<<[^>]*/DisplayDocTitle true", everything), \
        "viewers would show the file name instead of the title"
    escaped = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    assert f"/Title ({escaped})".encode() in everything, "no title in the document information"
    assert f">{escape(title)}</rdf:li>".encode() in everything, "no title in the XMP metadata"
    assert b'pdfuaid:part="1"' in everything, "does not claim PDF/UA-1"
    for match in re.finditer(rb"<</Type /StructElem/S /Figure", everything):
        assert b"/Alt (" in dictionary_at(everything, match.start()), "a figure without a text alternative"
    # The tags a screen reader navigates by.
    for role in (b"/H1", b"/Table", b"/TH", b"/TD"):
        assert b"/S " + role in everything, f"no {role.decode()} in the structure tree"
    assert_all_content_tagged_or_artifact(data)


@pytest.mark.parametrize("name", PDF_TEMPLATES)
def test_pdf_templates_declare_english(name):
    from lms.pdf import TEMPLATE_DIR

    source = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
    assert source.startswith('<!doctype html>\n<html lang="en">') and "<title>" in source


def test_downloaded_pdfs_are_tagged_with_language_and_title(app, client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    coordinator = make_member(first="Renee", last="Okafor", roles=("officer", "coordinator"))
    hr = make_member(first="Paul", last="Lindqvist", roles=("officer", "hr"))
    cycle = open_cycle()

    auth.sign_in(officer.badge)
    assignment = assignment_of(db, officer)
    read_all_lessons(client, assignment.id)
    pass_quiz(client, db, assignment.id)
    assert sign(client, assignment.id, "Alex Rivera").status_code == 303
    ack = db.scalars(select(Acknowledgment)).one()
    receipt = client.get(f"/training/receipts/{ack.id}.pdf")
    assert receipt.status_code == 200
    assert_accessible(receipt.data, f"Acknowledgment receipt {ack.verification_code}")
    auth.sign_out()

    auth.sign_in(coordinator.badge)
    roster = client.get(f"/coordinator/cycles/{cycle.year}/roster.pdf")
    assert roster.status_code == 200 and roster.mimetype == "application/pdf"
    assert_accessible(roster.data, f"{cycle.name} roster")
    auth.sign_out()

    auth.sign_in(hr.badge)
    day = local_date(utcnow(), app.config["TIMEZONE"]).isoformat()
    evidence = client.get(f"/hr/members/{officer.id}/as-of.pdf", query_string={"on": day})
    assert evidence.status_code == 200
    assert_accessible(evidence.data, f"Acknowledgment status of Alex Rivera (badge {officer.badge}) as of {day}")


def _roster_rows(n: int) -> list[dict]:
    return [{**{name: None for name in ROSTER_COLUMNS}, "badge": str(1000 + i), "last_name": f"Member{i:03}",
             "first_name": "Pat", "unit": "Patrol North", "status": "exempt" if i % 7 == 0 else "not_started",
             "exemption_reason": "Military leave" if i % 7 == 0 else None, "lessons_completed": 0,
             "lessons_total": 3, "quiz_attempts": 0, "due_date": date(2031, 3, 31)} for i in range(n)]


@pytest.mark.parametrize("members", [0, 1, 130])
def test_roster_member_table_is_a_tagged_table_with_one_row_per_member(members):
    """The member table is a Table on each page: its header row (TH) repeated, then one TR per
    member (TD); each page's header and footer are pagination artifacts."""
    data = roster_export.render_pdf(_roster_rows(members), title="2031 annual roster",
                                    filters_text="2031 cycle; as of now", counts={"not_started": members},
                                    generated_at=datetime(2031, 2, 1, 15, 30, tzinfo=timezone.utc),
                                    unit_summary=[("Patrol North", members, 0)] if members else [],
                                    department="Test PD")
    assert_accessible(data, "2031 annual roster")
    root, marked = structure_tree(data)
    # The status counts and the completion by unit come first; then the member table, one per page.
    summary, units, *member_tables = root.find("Table")
    assert len(summary.find("TR")) == 1 + 9 and len(units.find("TH")) == 4 + max(members and 1, 0)
    assert len(member_tables) == len(marked)
    rows = []
    for table in member_tables:
        assert table.roles == ["THead", "TBody"]
        [header] = table.kids[0].kids
        assert header.role == "TR" and header.roles == ["TH"]
        rows += table.kids[1].kids
    assert all(r.role == "TR" and r.roles == ["TD"] for r in rows)
    assert len(rows) == max(members, 1)  # none: one row saying "No members match these filters."
