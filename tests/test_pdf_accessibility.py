"""Every PDF the app hands out is tagged for assistive technology, as PDF/UA-1 asks: marked
content, a structure tree with headings and tables, the document language, and a title shown in
place of the file name. Checked on the bytes each download route serves: the receipt, the
coordinator's roster PDF and HR's "as of" evidence PDF."""
from __future__ import annotations

import re
from html import escape

import pytest
from sqlalchemy import select

from lms.db import utcnow
from lms.models import Acknowledgment
from lms.services.clock import local_date

from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign
from tests.test_receipt import inflated

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
