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
from tests.test_receipt import _ref, _to_unicode, inflated, pdf_objects

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
    roster = client.get(f"/coordinator/cycles/{cycle.id}/roster.pdf")
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


def marked_texts(data: bytes) -> dict[tuple[int, int], str]:
    """The text of each marked-content sequence, by (page object, MCID), decoded through the fonts'
    ToUnicode maps; the lines of one sequence joined by newlines. Artifacts are left out."""
    objects = pdf_objects(data)
    texts: dict[tuple[int, int], str] = {}
    for number, (page, _) in objects.items():
        if not re.search(rb"/Type /Page\b(?!s)", page):
            continue
        fonts_ref = _ref(objects[_ref(page, b"Resources")][0], b"Font")
        fonts = {name.decode(): _to_unicode(objects[_ref(objects[int(ref)][0], b"ToUnicode")][1])
                 for name, ref in re.findall(rb"/([\w.+-]+) (\d+) 0 R", objects[fonts_ref][0])}
        content = objects[_ref(page, b"Contents")][1].decode("latin-1")
        stack: list[int | None] = []
        font = None
        for op in re.finditer(r"/(\w+)\s*(<<[^>]*>>)?\s*BDC|/(\w+)\s+BMC|(EMC)|/([\w.+-]+) [\d.]+ Tf"
                              r"|\[(.*?)\]\s*TJ", content):
            if op[1]:
                mcid = re.search(r"/MCID (\d+)", op[2] or "")
                stack.append(int(mcid[1]) if op[1] != "Artifact" and mcid else None)
            elif op[3]:
                stack.append(None)
            elif op[4]:
                stack.pop()
            elif op[5]:
                font = fonts[op[5]]
            elif stack and stack[-1] is not None:
                raw = bytes.fromhex("".join(re.findall(r"<([0-9a-fA-F]*)>", op[6])))
                key = (number, stack[-1])
                text = "".join(font.get(raw[i:i + 2], "\ufffd") for i in range(0, len(raw), 2))
                texts[key] = texts[key] + "\n" + text if key in texts else text
    return texts


def cell_text(cell: Element, texts: dict[tuple[int, int], str]) -> str:
    """What a table cell holds, as a screen reader reads it: its marked content, line by line."""
    return "\n".join(texts[(e.page, mcid)] for e in cell.walk() for mcid in e.mcids)


@pytest.mark.parametrize("members", [0, 1, 130])
def test_roster_member_table_is_a_tagged_table_with_one_row_per_member(members):
    """The member table is a Table on each page: its header row repeated, a TH per column, then one
    TR per member with a TD per column holding that column's value; each page's header and footer
    are pagination artifacts."""
    data = roster_export.render_pdf(_roster_rows(members), title="2031 annual roster",
                                    filters_text="2031 cycle; as of now", counts={"not_started": members},
                                    generated_at=datetime(2031, 2, 1, 15, 30, tzinfo=timezone.utc),
                                    unit_summary=[("Patrol North", members, 0)] if members else [],
                                    department="Test PD")
    assert_accessible(data, "2031 annual roster")
    root, marked = structure_tree(data)
    texts = marked_texts(data)
    # The status counts and the completion by unit come first; then the member table, one per page.
    summary, units, *member_tables = root.find("Table")
    assert len(summary.find("TR")) == 1 + 9 and len(units.find("TH")) == 4 + max(members and 1, 0)
    assert len(member_tables) == len(marked)
    if not members:
        [table] = member_tables
        [header] = table.kids[0].kids
        [row] = table.kids[1].kids
        assert header.roles == ["TH"] and row.roles == ["TD"]
        assert cell_text(row.kids[0], texts) == "No members match these filters."
        return
    columns = roster_export.pdf_columns(show_policy=False)
    headings = [" ".join(label).replace("- ", "") for _, label, _ in columns]
    rows = []
    for table in member_tables:
        assert table.roles == ["THead", "TBody"]
        [header] = table.kids[0].kids
        assert header.role == "TR" and header.roles == ["TH"] * len(columns)
        assert [cell_text(th, texts).replace("-\n", "").replace("\n", " ") for th in header.kids] == headings
        rows += table.kids[1].kids
    assert len(rows) == members
    assert all(r.role == "TR" and r.roles == ["TD"] * len(columns) for r in rows)
    for row, values in zip(rows, _roster_rows(members)):
        cells = {key: cell_text(td, texts) for (key, _, _), td in zip(columns, row.kids)}
        exempt = values["status"] == "exempt"
        assert cells == {
            "name": f"{values['last_name']}, Pat", "badge": values["badge"], "rank": "", "unit": "Patrol North",
            "shift": "", "supervisor_badge": "",
            "status": "Exempt\nExemption: Military leave" if exempt else "Not started",
            "due_date": "2031-03-31", "lessons": "0/3", "quiz": "", "acknowledged_at": "", "policy_version": ""}


def test_roster_pdf_data_cells_name_their_column_header():
    """Each TD's /Headers names the TH of its own column (PDF/UA: data cells tied to headers)."""
    data = roster_export.render_pdf(_roster_rows(3), title="2031 annual roster", filters_text="f",
                                    counts={"not_started": 3}, generated_at=datetime(2031, 2, 1, tzinfo=timezone.utc),
                                    unit_summary=[("Patrol North", 3, 0)], department="Test PD")
    objects = pdf_objects(data)
    columns = len(roster_export.pdf_columns(show_policy=False))

    def cells(role: bytes) -> list[list[bytes]]:
        """Each row of ``role`` cells, in order, as the cells' dictionaries."""
        rows = []
        for head, _ in objects.values():
            if b"/S /TR" in head:
                kids = [objects[int(n)][0] for n in re.findall(rb"(\d+) 0 R", re.search(rb"/K \[(.*?)\]", head)[1])]
                if kids and all(b"/S /" + role in kid for kid in kids) and len(kids) == columns:
                    rows.append(kids)
        return rows

    [header] = cells(b"TH")
    ids = [re.search(rb"/ID \(([^)]*)\)", th)[1] for th in header]
    assert all(b"/Scope /Column" in th for th in header) and len(set(ids)) == columns
    rows = cells(b"TD")
    assert len(rows) == 3
    for row in rows:
        assert [re.search(rb"/Headers \[\(([^)]*)\)\]", td)[1] for td in row] == ids


def test_roster_pdf_line_with_a_fallback_font_stays_tagged_in_its_row():
    """A name with a letter the monospaced font lacks (drawn from another font) leaves that line
    whole in the row's first cell: everything stays tagged, and the row's other lines still divide
    into their columns."""
    row = {**_roster_rows(1)[0], "last_name": "Wójcik-Nguyễn-Bartholomew", "first_name": "Łukasz",
           "rank": "Detective Sergeant", "unit": "Investigations — Special Victims Unit", "status": "not_started",
           "exemption_reason": None}
    data = roster_export.render_pdf([row], title="2031 annual roster", filters_text="f", counts={"not_started": 1},
                                    generated_at=datetime(2031, 2, 1, tzinfo=timezone.utc),
                                    unit_summary=[("Investigations — Special Victims Unit", 1, 0)], department="Test PD")
    assert_accessible(data, "2031 annual roster")
    root, _ = structure_tree(data)
    texts = marked_texts(data)
    [tr] = root.find("Table")[2].kids[1].kids
    columns = roster_export.pdf_columns(show_policy=False)
    assert tr.roles == ["TD"] * len(columns)
    cells = {key: cell_text(td, texts) for (key, _, _), td in zip(columns, tr.kids)}
    # The first line (with "ễ") is kept whole in the name cell; the wrapped lines below it divide.
    assert "Nguy" in cells["name"] and "ễ" in cells["name"] and "Bartholomew, Łukasz" in cells["name"]
    assert cells["rank"] == "Sergeant" and cells["unit"] == "Special Victims\nUnit"
    everything = "\n".join(cells.values())
    for value in ("Detective", "Investigations —", "Not started", "2031-03-31", "0/3"):
        assert value in everything
