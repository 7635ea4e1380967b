"""The receipt PDF: one Letter page, tagged, in the vendored fonts, saying what was signed; and the
URL fetcher that keeps rendering away from the network and the file system."""
from __future__ import annotations

import logging
import re
import zlib
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import select

from lms import pdf
from lms.models import Acknowledgment, Receipt
from lms.services.clock import local_iso
from lms.services.records import new_verification_code
from lms.services.signing import render_receipt
from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign

STATEMENT = ("I acknowledge that I have received and read Elgin Police Department policy 16.3, Social "
             "Media, effective November 26, 2013, as shown above; that I have had the opportunity to "
             "ask questions about it; and that I understand and will comply with it.")


def acknowledgment(**overrides) -> Acknowledgment:
    """An unsaved acknowledgment with every field a signature fills in."""
    signed_at = datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
    fields = dict(
        badge="4127", printed_name="María José Núñez-O'Brien", policy_ref="16.3",
        policy_title="Social Media", policy_effective=date(2013, 11, 26), text_sha256="ab12" * 16,
        statement=STATEMENT, signed_at=signed_at, signed_at_local=local_iso(signed_at, "America/Chicago"),
        timezone="America/Chicago", signed_from_ip="203.0.113.47", user_agent="pytest",
        quiz_attempt_number=2, quiz_score=92, verification_code=new_verification_code())
    return Acknowledgment(**{**fields, **overrides})


# --- reading the PDF back (no PDF library is a dependency) ---------------------------------------

def pdf_objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Each object of a WeasyPrint PDF as (dictionary, inflated stream or None), including the
    objects packed into compressed object streams."""
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    for match in re.finditer(rb"(\d+) 0 obj\s*(<<.*?>>)\s*(stream\r?\n)?", data, re.S):
        head, stream = match[2], None
        if match[3] and b"/FlateDecode" in head:
            stream = zlib.decompressobj().decompress(data[match.end():])
        objects[int(match[1])] = (head, stream)
    for head, stream in list(objects.values()):
        if b"/Type /ObjStm" in head:
            first = int(re.search(rb"/First (\d+)", head)[1])
            header = [int(n) for n in stream[:first].split()]
            offsets = [*header[1::2], len(stream) - first]
            for i, number in enumerate(header[::2]):
                objects[number] = (stream[first + offsets[i]:first + offsets[i + 1]], None)
    return objects


def _ref(obj: bytes, key: bytes) -> int:
    return int(re.search(rb"/" + key + rb" (\d+) 0 R", obj)[1])


def _to_unicode(cmap: bytes) -> dict[bytes, str]:
    """Glyph code to text, from a ToUnicode CMap's bfchar and bfrange sections."""
    table = {}
    for section in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(rb"<(\w+)>\s*<(\w+)>", section):
            table[bytes.fromhex(src.decode())] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for section in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for start, end, dst in re.findall(rb"<(\w+)>\s*<(\w+)>\s*<(\w+)>", section):
            low, high, first = int(start, 16), int(end, 16), int(dst, 16)
            for code in range(low, high + 1):
                table[code.to_bytes(len(start) // 2, "big")] = chr(first + code - low)
    return table


def page_texts(data: bytes) -> list[str]:
    """The text drawn on each page, one line per text operator, decoded through the fonts'
    ToUnicode maps, as a reader's copy and paste or search would see it."""
    objects = pdf_objects(data)
    texts = []
    for page, _ in (o for o in objects.values() if re.search(rb"/Type /Page\b(?!s)", o[0])):
        fonts_ref = _ref(objects[_ref(page, b"Resources")][0], b"Font")
        fonts = {name.decode(): _to_unicode(objects[_ref(objects[int(number)][0], b"ToUnicode")][1])
                 for name, number in re.findall(rb"/([\w.+-]+) (\d+) 0 R", objects[fonts_ref][0])}
        content = objects[_ref(page, b"Contents")][1].decode("latin-1")
        lines, font = [], None
        for op in re.finditer(r"/([\w.+-]+) [\d.]+ Tf|\[(.*?)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj", content):
            if op[1]:
                font = fonts[op[1]]
                continue
            hexes = re.findall(r"<([0-9a-fA-F]*)>", op[2]) if op[2] is not None else [op[3]]
            raw = bytes.fromhex("".join(hexes))
            lines.append("".join(font.get(raw[i:i + 2], "\ufffd") for i in range(0, len(raw), 2)))
        texts.append("\n".join(lines))
    return texts


def inflated(data: bytes) -> bytes:
    """Every object's dictionary, and its stream inflated; fonts and object streams left out (the
    objects packed in the latter are listed on their own)."""
    def readable(head: bytes, stream: bytes | None) -> bool:
        return stream is not None and b"/Length1" not in head and b"/Type /ObjStm" not in head

    return b"\n".join(head + (b"\n" + stream if readable(head, stream) else b"")
                      for head, stream in pdf_objects(data).values())


def assert_one_letter_page(data: bytes) -> None:
    everything = inflated(data)
    assert data.startswith(b"%PDF-")
    assert re.search(rb"/Type /Pages\b.*?/Count 1\b", everything), "the receipt is not one page"
    assert len(re.findall(rb"/Type /Page\b(?!s)", everything)) == 1
    assert re.search(rb"/MediaBox \[0 0 612 792\]", everything), "not US Letter"


def harfbuzz_subsets() -> bool:
    """Whether WeasyPrint subsets fonts with HarfBuzz (libharfbuzz-subset0) rather than fontTools."""
    from weasyprint.pdf import fonts
    from weasyprint.text.ffi import harfbuzz

    return fonts.harfbuzz_subset is not None and bool(harfbuzz.hb_version_atleast(4, 1, 0))


# --- the receipt ---------------------------------------------------------------------------------

def test_receipt_says_what_was_signed_on_one_tagged_letter_page():
    ack = acknowledgment()
    data = render_receipt(ack, cycle_name="2026 annual", department="Elgin Police Department")

    assert_one_letter_page(data)
    everything = inflated(data)
    assert f"/Title (Acknowledgment receipt {ack.verification_code})".encode() in everything
    assert f"Acknowledgment receipt {ack.verification_code}</rdf:li>".encode() in everything  # XMP
    assert b"/StructTreeRoot" in everything and b'pdfuaid:part="1"' in everything  # PDF/UA-1
    assert b"/Lang (en)" in everything
    # Only the vendored fonts: a missing stylesheet or font would fall back to the system's.
    fonts = set(re.findall(rb"/FontName /\w+\+([\w-]+)", everything))
    assert fonts == {b"Receipt-Sans", b"Receipt-Sans-Bold"}

    [text] = page_texts(data)
    flat = " ".join(text.split())
    for expected in (
        "ELGIN POLICE DEPARTMENT", "Policy acknowledgment receipt",
        ack.verification_code,
        "María José Núñez-O'Brien (badge 4127) electronically signed the statement below on",
        "March 14, 2026, 10:09:26 AM (UTC-05:00)",
        "policy 16.3 Social Media in the version effective November 26, 2013",
        STATEMENT,
        "Printed name María José Núñez-O'Brien",
        "Version (effective date) 2013-11-26",
        f"SHA-256 of the policy text shown {ack.text_sha256}",
        "Signed, local time 2026-03-14T10:09:26-05:00 (America/Chicago)",
        "Signed, UTC 2026-03-14T15:09:26Z",
        "Training cycle 2026 annual",
        "Quiz passed on attempt 2, score 92%",
        "Roll Call: Policy acknowledgment receipt", "Page 1 of 1",
    ):
        assert expected in flat, expected
    # The code is drawn in one piece, so copying it from the PDF gives the code.
    assert ack.verification_code in text.splitlines()


def test_long_but_realistic_records_still_fit_one_page():
    ack = acknowledgment(printed_name="Maria Guadalupe Hernández-Okafor de la Santísima Trinidad",
                         policy_ref="16.3.12-B",
                         policy_title="Use of Department Social Media, Personal Web Pages and "
                                      "Electronic Communication Devices",
                         statement=" ".join([STATEMENT] * 4),  # about 1,000 characters
                         signed_from_ip="2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                         timezone="America/Argentina/ComodRivadavia")
    html = pdf.render_template("receipt.html", ack=ack, cycle_name="2026 annual (re-acknowledgment)",
                               department="Metropolitan Police Department of the District of Columbia")
    assert len(pdf.render_document(html).pages) == 1


def test_rendering_logs_no_problems(caplog):
    """WeasyPrint reports a refused or mistyped stylesheet or font only in its log."""
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render_receipt(acknowledgment(), cycle_name="2026 annual", department="Elgin Police Department")
    problems = [r.getMessage() for r in caplog.records
                if not r.getMessage().startswith("Using fontTools instead of HarfBuzz-Subset")]
    assert problems == []


def embedded_glyphs(data: bytes) -> dict[str, str]:
    """Each embedded font (without its subset tag) and the characters it carries."""
    objects = pdf_objects(data)
    return {re.search(rb"/BaseFont /\w+\+([\w-]+)", head)[1].decode():
            "".join(sorted(_to_unicode(objects[_ref(head, b"ToUnicode")][1]).values()))
            for head, _ in objects.values() if b"/Subtype /Type0" in head}


def test_renders_are_independent():
    """Fonts and the stylesheet are reused between renders (lms.pdf keeps them per thread); what
    one receipt drew must not leak into the next one's fonts or text. (Bytes are compared only
    where HarfBuzz subsets: fontTools stamps each subset font with the time.)"""
    ack = acknowledgment(verification_code="AAAA-BBBB-CCCC")
    before = render_receipt(ack, cycle_name="2026 annual", department="Elgin Police Department")
    render_receipt(acknowledgment(printed_name="Zoë Łukasiewicz-Ångström", statement="ÀÉÎÕÜ ßæøå"),
                   cycle_name="2025 annual", department="Elgin Police Department")
    after = render_receipt(ack, cycle_name="2026 annual", department="Elgin Police Department")
    assert embedded_glyphs(after) == embedded_glyphs(before)
    assert set(embedded_glyphs(after)) == {"Receipt-Sans", "Receipt-Sans-Bold"}
    assert "Ł" not in "".join(embedded_glyphs(after).values())
    assert page_texts(after) == page_texts(before)
    if harfbuzz_subsets():
        assert after == before


def test_long_dates_read_unambiguously():
    assert pdf.long_date(date(2013, 11, 26)) == "November 26, 2013"
    assert pdf.long_datetime("2026-07-04T09:05:00-05:00") == "July 4, 2026, 9:05:00 AM (UTC-05:00)"
    assert pdf.long_datetime("2026-01-02T23:59:59+05:30") == "January 2, 2026, 11:59:59 PM (UTC+05:30)"


def test_signing_stores_the_receipt_the_member_downloads(client, auth, db, make_member, open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment = assignment_of(db, officer)
    auth.sign_in(officer.badge)
    read_all_lessons(client, assignment.id)
    pass_quiz(client, db, assignment.id)
    assert sign(client, assignment.id, "Alex Rivera").status_code == 303

    ack = db.scalars(select(Acknowledgment)).one()
    download = client.get(f"/training/receipts/{ack.id}.pdf")
    assert download.status_code == 200 and download.data == db.get(Receipt, ack.id).pdf
    assert_one_letter_page(download.data)
    [text] = page_texts(download.data)
    flat = " ".join(text.split())
    assert ack.verification_code in flat and "Printed name Alex Rivera" in flat
    assert f"(badge {officer.badge})" in flat and ack.text_sha256 in flat


# --- the URL fetcher -----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://example.com/logo.png",
    "https://example.com/style.css",
    "ftp://example.com/font.ttf",
    "data:text/css,body{color:red}",
    "file:///etc/passwd",
    (pdf.STATIC_DIR / ".." / "lms" / "config.py").as_uri(),
    pdf.STATIC_DIR.as_uri() + "/../pyproject.toml",
    pdf.STATIC_DIR.as_uri() + "/css/missing.css",
    pdf.STATIC_DIR.as_uri(),
    "file://otherhost" + pdf.STYLESHEET.as_posix(),
])
def test_fetcher_refuses_everything_but_static_files(url):
    with pytest.raises(ValueError, match="refused"):
        pdf.StaticOnlyFetcher().fetch(url)


def test_fetcher_serves_static_files_with_their_type():
    response = pdf.StaticOnlyFetcher().fetch(pdf.STYLESHEET.as_uri())
    assert response.content_type == "text/css"
    assert b"@font-face" in response.read()
    font = pdf.StaticOnlyFetcher().fetch((pdf.STATIC_DIR / "fonts" / "DejaVuSans.ttf").as_uri())
    assert font.read()[:4] == b"\x00\x01\x00\x00"


def test_a_template_cannot_reach_out(tmp_path, monkeypatch):
    """A PDF whose HTML names outside resources still renders, without them."""
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    html = (f'<html><head><link rel="stylesheet" href="{secret.as_uri()}">'
            '<link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head>'
            '<body><img src="file:///etc/passwd" alt="x"><p>hello</p></body></html>')
    outcomes = {}

    class Spy(pdf.StaticOnlyFetcher):
        def fetch(self, url, headers=None):
            try:
                response = super().fetch(url, headers)
            except ValueError:
                outcomes[url] = "refused"
                raise
            outcomes[url] = "served"
            return response

    monkeypatch.setattr(pdf, "StaticOnlyFetcher", Spy)
    assert pdf.create_pdf(html).startswith(b"%PDF-")
    assert outcomes == {secret.as_uri(): "refused", "http://127.0.0.1:9/x.css": "refused",
                        "file:///etc/passwd": "refused"}
