"""The roster as CSV, XLSX and PDF: ``flask --app app lms roster …`` and the writers behind it,
checked against ``roster_rows`` and an independent count; and the completion-by-unit chart."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from lms.db import utcnow
from lms.models import Assignment, AuditEvent, Cycle, Exemption, Member
from lms.services import roster_export
from lms.services.charts import BAR_FILL, GRID_STROKE, TEXT_FILL, completion_by_unit_svg, percent_complete
from lms.services.clock import local_date
from lms.services.cycles import create_cycle
from lms.services.progress import STATUS_LABELS
from lms.services.roster import ROSTER_COLUMNS, RosterFilters, roster_rows, status_counts, unit_summary
from tests.helpers import cycle_id_of
from tests.services.test_roster import DUE, START, _walk

SVG = "{http://www.w3.org/2000/svg}"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.fixture
def department(db, make_member):
    """A 2031 cycle: a member at each status in two units, one with a Spanish name, one whose name
    a spreadsheet would take for a formula, and one on leave (outside the audience)."""
    people = [("not_started", "Ana", "Abbott", "Patrol North"), ("in_progress", "Ben", "Baker", "Traffic"),
              ("quiz_failed", "Cy", "Cole", "Patrol North"), ("quiz_passed", "Di", "Diaz", "Traffic"),
              ("complete", "José", "Muñoz", "Patrol North"), ("complete_late", "Eve", "Evans", "Traffic"),
              ("exempt", "Flo", "Ford", "Patrol North"),
              ("in_progress", "@SUM(A1)", '=HYPERLINK("http://x.example","click")', "Traffic")]
    members = {}
    for n, (target, first, last, unit) in enumerate(people):
        members[last] = (make_member(first=first, last=last, badge=str(700 + n), unit=unit), target)
    make_member(first="On", last="Leave", badge="790", status="leave")
    cycle = create_cycle(db, year=2031, due_date=DUE, today=START.date(), now=START)
    db.flush()
    for member, target in members.values():
        assignment = db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()
        _walk(db, assignment, "in_progress" if target == "exempt" else target, START + timedelta(days=3))
        if target == "exempt":
            db.add(Exemption(cycle_id=cycle.id, member_id=member.id, reason="-Military leave",
                             granted_at=START + timedelta(days=4)))
    db.commit()
    return {last: member for last, (member, _) in members.items()}


def today(app) -> date:
    return local_date(utcnow(), app.config["TIMEZONE"])


def expected_rows(app, db, filters: RosterFilters) -> list[dict[str, str]]:
    """What the CSV should hold: roster_rows for the same filters, as the CSV writes values."""
    rows = []
    for row in roster_rows(db, filters, today=today(app), tz=app.config["TIMEZONE"]):
        values = {}
        for name in ROSTER_COLUMNS:
            value = getattr(row, name)
            if value is None:
                value = ""
            elif isinstance(value, date):
                value = value.isoformat()
            else:
                value = str(value)
            values[name] = "'" + value if value[:1] in ("=", "+", "-", "@") else value
        rows.append(values)
    db.rollback()
    return rows


def audience_rows(db, year: int) -> int:
    """Active members (or anyone who signed) times the cycle's policies, counted apart from the roster."""
    cycle = db.scalars(select(Cycle).where(Cycle.year == year)).one()
    active = db.scalar(select(func.count()).select_from(Member).where(Member.status == "active"))
    db.rollback()
    return active * len(cycle.policy_versions)


def roster(runner, *args):
    return runner.invoke(args=["lms", "roster", *args])


def read_csv(path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


# --- CSV ------------------------------------------------------------------------------------------

def test_csv_is_the_contract_and_the_same_rows_as_the_page(app, db, runner, department, tmp_path):
    out = tmp_path / "roster.csv"
    result = roster(runner, "--cycle", "2031", "--format", "csv", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert f"Wrote 8 roster rows to {out}." in result.output
    header, rows = read_csv(out)
    assert header == ROSTER_COLUMNS
    assert rows == expected_rows(app, db, RosterFilters(cycle_id=cycle_id_of(app, 2031)))
    assert len(rows) == audience_rows(db, 2031) == 8
    assert "790" not in {r["badge"] for r in rows}
    by_badge = {r["badge"]: r for r in rows}
    assert [r["last_name"] for r in rows][:3] == ['\'=HYPERLINK("http://x.example","click")', "Abbott", "Baker"]

    signed = by_badge["704"]
    assert (signed["last_name"], signed["first_name"], signed["status"]) == ("Muñoz", "José", "complete")
    assert ISO_WITH_OFFSET.match(signed["acknowledged_at"]) and signed["policy_version"] == "2013-11-26"
    assert signed["quiz_best_score"] == "100" and signed["quiz_attempts"] == "1"
    assert signed["due_date"] == "2031-03-31" and signed["lessons_completed"] == signed["lessons_total"] != "0"
    failed, fresh = by_badge["702"], by_badge["700"]
    assert failed["status"] == "quiz_failed" and 0 <= int(failed["quiz_best_score"]) < 100
    assert fresh["quiz_best_score"] == fresh["acknowledged_at"] == fresh["policy_version"] == ""
    assert fresh["quiz_attempts"] == "0"
    # Formula injection: each cell a spreadsheet would evaluate starts with a quote instead.
    evil = by_badge["707"]
    assert evil["last_name"] == '\'=HYPERLINK("http://x.example","click")'
    assert evil["first_name"] == "'@SUM(A1)"
    assert by_badge["706"]["exemption_reason"] == "'-Military leave"
    assert out.read_bytes().decode("utf-8").count("Muñoz") == 1

    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.export")).one()
    assert event.actor_id is None and event.target == f"cycle:{cycle_id_of(app, 2031)}"
    assert event.details["format"] == "csv" and event.details["rows"] == 8 and event.details["via"] == "cli"
    assert event.details["filters"]["cycle_id"] == cycle_id_of(app, 2031)


@pytest.mark.parametrize("args, filters", [
    (["--unit", "Traffic"], dict(units=["Traffic"])),
    (["--status", "complete", "--status", "complete_late"], dict(statuses=["complete", "complete_late"])),
    (["--policy", "16.3", "--unit", "Patrol North", "--status", "exempt"],
     dict(policy_id="16.3", units=["Patrol North"], statuses=["exempt"])),
])
def test_filters_give_the_same_rows_as_the_page(app, db, runner, department, tmp_path, args, filters):
    out = tmp_path / "roster.csv"
    result = roster(runner, "--cycle", "2031", *args, "--format", "csv", "--out", str(out))

    assert result.exit_code == 0, result.output
    _, rows = read_csv(out)
    assert rows == expected_rows(app, db, RosterFilters(cycle_id=cycle_id_of(app, 2031), **filters)) != []


def test_as_of_gives_the_roster_as_it_stood(app, db, runner, department, tmp_path):
    before, after = tmp_path / "before.csv", tmp_path / "after.csv"
    assert roster(runner, "--cycle", "2031", "--as-of", "2031-01-06", "--format", "csv", "--out", str(before)).exit_code == 0
    assert roster(runner, "--cycle", "2031", "--as-of", "2031-01-08", "--format", "csv", "--out", str(after)).exit_code == 0

    assert {r["status"] for r in read_csv(before)[1]} == {"not_started"}
    then = {r["badge"]: r for r in read_csv(after)[1]}
    assert then["704"]["status"] == "complete"
    assert then["705"]["status"] == "quiz_passed" and then["705"]["acknowledged_at"] == ""  # signed in April
    assert then["706"]["status"] == "in_progress" and then["706"]["exemption_reason"] == ""  # exempted a day later
    assert read_csv(after)[1] == expected_rows(app, db, RosterFilters(cycle_id=cycle_id_of(app, 2031), as_of=date(2031, 1, 8)))


@pytest.mark.parametrize("args, message", [
    (["--cycle", "2099"], "no cycle is named '2099' (cycles: id "),
    (["--cycle", "2031 Annual", "--policy", "99.9"], "the 2031 annual cycle does not assign policy 99.9 (--policy)"),
    (["--cycle", "2031", "--status", "done"], "unknown status done; use one of not_started, in_progress"),
])
def test_errors_exit_1_and_write_nothing(app, db, runner, department, tmp_path, args, message):
    out = tmp_path / "exports" / "roster.csv"
    out.parent.mkdir()
    result = roster(runner, *args, "--format", "csv", "--out", str(out))

    assert result.exit_code == 1
    assert message in result.output
    assert list(out.parent.iterdir()) == []
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "roster.export")) == 0


def test_a_pdf_past_the_bound_is_refused_with_csv_and_xlsx_offered(app, db, runner, department, tmp_path):
    app.config["ROSTER_PDF_MAX_ROWS"] = 3
    out = tmp_path / "exports" / "roster.pdf"
    out.parent.mkdir()
    result = roster(runner, "--cycle", "2031", "--format", "pdf", "--out", str(out))

    assert result.exit_code == 1
    assert "this view has 8; narrow it to 3 rows or fewer" in result.output and "export CSV or XLSX" in result.output
    assert "ROSTER_PDF_MAX_ROWS" in result.output
    assert list(out.parent.iterdir()) == []
    # A view within the bound is written.
    result = roster(runner, "--cycle", "2031", "--unit", "Traffic", "--status", "complete_late", "--format", "pdf",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF")


def test_a_roster_that_matches_no_member_says_so(app, db, runner, department, tmp_path):
    out = tmp_path / "roster.csv"
    result = roster(runner, "--cycle", "2031", "--unit", "Traffic", "--status", "exempt", "--format", "csv",
                    "--out", str(out))
    assert result.exit_code == 0
    assert result.output.strip() == f"No members match these filters: {out} holds the column headings only."
    assert read_csv(out) == (ROSTER_COLUMNS, [])  # the contract's header, for scripts


def test_a_missing_folder_is_an_error(runner, department, tmp_path):
    result = roster(runner, "--cycle", "2031", "--format", "csv", "--out", str(tmp_path / "nowhere" / "r.csv"))
    assert result.exit_code == 1 and "does not exist (--out)" in result.output


def test_a_failure_midway_leaves_no_file(db, runner, department, tmp_path, monkeypatch):
    out = tmp_path / "exports" / "roster.csv"
    out.parent.mkdir()
    out.write_text("yesterday's roster\n")

    def write_then_fail(rows, handle):
        handle.write("badge,last_name\n")
        raise RuntimeError("disk full")

    monkeypatch.setattr(roster_export, "write_csv", write_then_fail)
    result = roster(runner, "--cycle", "2031", "--format", "csv", "--out", str(out))

    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    assert list(out.parent.iterdir()) == [out]
    assert out.read_text() == "yesterday's roster\n"  # the old file is untouched
    assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "roster.export")) == 0


def test_write_csv_converts_and_escapes_values():
    row = {name: None for name in ROSTER_COLUMNS}
    row.update(badge="1", last_name="+1 555", first_name="\tTab", rank="\rCR", unit="Unit-7",
               status="complete", lessons_completed=3, lessons_total=3, quiz_best_score=90, quiz_attempts=2,
               acknowledged_at="2031-01-08T09:00:00-06:00", policy_version=date(2013, 11, 26),
               due_date=date(2031, 3, 31), exemption_reason="-")
    out = io.StringIO(newline="")
    assert roster_export.write_csv([row], out) == 1
    assert roster_export.write_csv([row], out, header=False) == 1
    lines = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert lines[0] == ROSTER_COLUMNS and lines[1] == lines[2]
    assert lines[1] == ["1", "'+1 555", "'\tTab", "'\rCR", "Unit-7", "", "", "complete", "3", "3", "90", "2",
                        "2031-01-08T09:00:00-06:00", "2013-11-26", "2031-03-31", "'-"]



def test_write_csv_escapes_every_chunk_it_writes_as_it_comes():
    # Chunks of rows with nothing to escape are written as they are and the others value by value;
    # each kind of value that forces the slow way sits in a different chunk, away from its edges.
    plain = {name: None for name in ROSTER_COLUMNS}
    plain.update(badge="7", last_name="Hyphen-Ated", first_name="Ann", rank="Officer", unit="Unit-7",
                 status="complete", lessons_completed=3, lessons_total=3, quiz_best_score=0, quiz_attempts=1,
                 acknowledged_at="2031-01-08T09:00:00-06:00", policy_version=date(2013, 11, 26),
                 due_date=date(2031, 3, 31))
    chunk = roster_export.CSV_CHUNK_ROWS
    rows = [dict(plain, badge=str(n)) for n in range(4 * chunk + 10)]
    rows[chunk + 17]["exemption_reason"] = "@leave"
    rows[2 * chunk + 5]["acknowledged_at"] = datetime(2031, 1, 8, 15, 0, tzinfo=timezone.utc)
    rows[3 * chunk + 9]["exemption_reason"] = "two lines,\n=not a formula: only the start counts"
    rows[4 * chunk + 1]["shift"] = "\rNight"
    out = io.StringIO(newline="")

    assert roster_export.write_csv(rows, out) == len(rows)
    lines = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert len(lines) == len(rows) + 1 and lines[0] == ROSTER_COLUMNS
    by_badge = {line[0]: dict(zip(ROSTER_COLUMNS, line)) for line in lines[1:]}
    assert [line[0] for line in lines[1:]] == [row["badge"] for row in rows]
    assert by_badge[str(chunk + 17)]["exemption_reason"] == "'@leave"
    assert by_badge[str(2 * chunk + 5)]["acknowledged_at"] == "2031-01-08T15:00:00+00:00"
    assert by_badge[str(3 * chunk + 9)]["exemption_reason"] == "two lines,\n=not a formula: only the start counts"
    assert by_badge[str(4 * chunk + 1)]["shift"] == "'\rNight"
    untouched = by_badge["0"]
    assert [untouched[name] for name in ROSTER_COLUMNS] == [
        "0", "Hyphen-Ated", "Ann", "Officer", "Unit-7", "", "", "complete", "3", "3", "0", "1",
        "2031-01-08T09:00:00-06:00", "2013-11-26", "2031-03-31", ""]

# --- XLSX -----------------------------------------------------------------------------------------

def _xlsx_as_csv_values(row: tuple) -> dict[str, str]:
    """A Roster sheet row's typed cells written back as the CSV writes them, to compare."""
    values = {}
    for name, value in zip(ROSTER_COLUMNS, row):
        if name == "status":
            value = {label: code for code, label in STATUS_LABELS.items()}[value]
        elif name == "acknowledged_at" and value is not None:
            assert isinstance(value, datetime)  # a local date-time; the CSV adds the offset
            value = value.strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, datetime):  # Excel has dates only as date-times
            assert value.time() == datetime.min.time()
            value = value.date().isoformat()
        values[name] = "" if value is None else str(value)
    return values


def test_xlsx_has_readable_titles_typed_cells_a_frozen_header_and_the_same_rows(app, db, runner, department,
                                                                                tmp_path):
    out = tmp_path / "roster.xlsx"
    result = roster(runner, "--cycle", "2031", "--unit", "Traffic", "--format", "xlsx", "--out", str(out))

    assert result.exit_code == 0, result.output
    workbook = load_workbook(out)
    assert workbook.sheetnames == ["Roster", "Summary", "About"]
    sheet = workbook["Roster"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == [roster_export.XLSX_TITLES[name] for name in ROSTER_COLUMNS]
    assert values[0][:3] == ("Badge", "Last name", "First name") and "Due date" in values[0]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:P{len(values)}"

    # Counts and scores are numbers, dates are date cells shown ISO 8601, the rest is text.
    column = {name: n for n, name in enumerate(ROSTER_COLUMNS)}
    for row in sheet.iter_rows(min_row=2):
        for name in ("lessons_completed", "lessons_total", "quiz_attempts"):
            assert isinstance(row[column[name]].value, int) and row[column[name]].data_type == "n"
        assert row[column["due_date"]].is_date and row[column["due_date"]].number_format == "yyyy-mm-dd"
        assert row[column["badge"]].data_type == "s"
        signed = row[column["acknowledged_at"]]
        assert signed.value is None or (signed.is_date and signed.number_format == "yyyy-mm-dd hh:mm")
    scores = [row[column["quiz_best_score"]] for row in sheet.iter_rows(min_row=2)]
    assert any(isinstance(cell.value, (int, float)) for cell in scores)

    want = expected_rows(app, db, RosterFilters(cycle_id=cycle_id_of(app, 2031), units=["Traffic"]))
    for row in want:
        for name, value in row.items():
            if value.startswith("'"):  # typed cells need no quote: the text is stored as written
                row[name] = value[1:]
        row["acknowledged_at"] = row["acknowledged_at"][:16]
    got = [_xlsx_as_csv_values(row) for row in values[1:]]
    assert got == want and len(got) == 4
    evil = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == "707")
    assert evil[1].value == '=HYPERLINK("http://x.example","click")' and evil[1].data_type == "s"

    # Widths fit: every column is at least as wide as its longest value (within the cap).
    # (openpyxl reads columns of equal width as one range, min..max, 1-based.)
    widths = {n: dimension.width for dimension in sheet.column_dimensions.values()
              for n in range(dimension.min - 1, dimension.max)}
    for n, name in enumerate(ROSTER_COLUMNS):
        longest = max([len(row[n]) for row in values[1:] if isinstance(row[n], str)], default=0)
        assert widths[n] >= min(longest, roster_export.XLSX_MAX_WIDTH), name

    about = {row[0]: row[1] for row in workbook["About"].iter_rows(values_only=True)}
    assert about == {"Roster": "2031 annual roster", "Filters": "2031 annual cycle; unit Traffic; as of now", "Rows": 4}


def _summary(workbook) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """The Summary sheet as (rows by status label, with "Total"; unit -> status label -> rows)."""
    rows = list(workbook["Summary"].iter_rows(values_only=True))
    blank = next(n for n, row in enumerate(rows) if not any(v is not None for v in row))
    by_status = {row[0]: row[1] for row in rows[1:blank]}
    heading = rows[blank + 1]
    by_unit = {row[0]: dict(zip(heading[1:], row[1:])) for row in rows[blank + 2:]}
    return by_status, by_unit


def test_xlsx_summary_counts_match_the_csv(app, db, runner, department, tmp_path):
    xlsx, csv_out = tmp_path / "roster.xlsx", tmp_path / "roster.csv"
    assert roster(runner, "--cycle", "2031", "--format", "xlsx", "--out", str(xlsx)).exit_code == 0
    assert roster(runner, "--cycle", "2031", "--format", "csv", "--out", str(csv_out)).exit_code == 0
    _, rows = read_csv(csv_out)

    by_status, by_unit = _summary(load_workbook(xlsx))

    want = {}
    for row in rows:
        label = STATUS_LABELS[row["status"]]
        want[label] = want.get(label, 0) + 1
    assert {k: v for k, v in by_status.items() if k != "Total"} == want
    assert by_status["Total"] == len(rows) == 8
    for unit in {row["unit"] for row in rows}:
        in_unit = [row for row in rows if row["unit"] == unit]
        assert by_unit[unit]["Rows"] == len(in_unit)
        for label, n in by_unit[unit].items():
            if label != "Rows":
                assert n == sum(STATUS_LABELS[row["status"]] == label for row in in_unit), (unit, label)


def test_xlsx_drops_characters_a_workbook_cannot_hold():
    row = {**{name: None for name in ROSTER_COLUMNS}, "badge": "1", "last_name": "Null\x00Byte",
           "first_name": "=1+1", "exemption_reason": "line\nbreak"}
    out = io.BytesIO()
    assert roster_export.write_xlsx([row], out, title="t", filters_text="f") == 1
    values = next(load_workbook(out)["Roster"].iter_rows(min_row=2, values_only=True))
    assert values[1:3] == ("NullByte", "=1+1") and values[-1] == "line\nbreak"


def test_xlsx_of_many_rows_streams_in_constant_memory():
    """XlsxWriter's constant-memory mode writes rows in order as they come: a generator of rows is
    consumed once, and the workbook reads back whole."""
    def rows():
        for n in range(3000):
            yield {**{name: None for name in ROSTER_COLUMNS}, "badge": str(n), "last_name": f"Member{n}",
                   "status": "not_started", "unit": f"Unit {n % 3}", "lessons_completed": 0, "lessons_total": 3,
                   "quiz_attempts": 0, "due_date": date(2031, 3, 31)}

    out = io.BytesIO()
    assert roster_export.write_xlsx(rows(), out, title="t", filters_text="f") == 3000
    workbook = load_workbook(out, read_only=True)
    assert sum(1 for _ in workbook["Roster"].iter_rows(min_row=2)) == 3000
    by_status, by_unit = _summary(load_workbook(out))
    assert by_status == {"Not started": 3000, "Total": 3000}
    assert {unit: counts["Rows"] for unit, counts in by_unit.items()} == {"Unit 0": 1000, "Unit 1": 1000, "Unit 2": 1000}


# --- PDF ------------------------------------------------------------------------------------------

def test_pdf_is_landscape_with_the_filters_counts_and_chart(app, db, runner, department, tmp_path):
    out = tmp_path / "roster.pdf"
    result = roster(runner, "--cycle", "2031", "--status", "complete", "--status", "in_progress",
                    "--format", "pdf", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert "Wrote 3 roster rows" in result.output
    pdf = out.read_bytes()
    assert pdf.startswith(b"%PDF-")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "2031 annual roster" in text
        assert "Generated " in text and "statuses Complete, In progress" in text
        assert "Page 1 of 1" in text and "Completion by unit" in text
        assert "Muñoz, José" in text and "Baker, Ben" in text and "Abbott" not in text
        assert "@SUM(A1)" in text  # as written: a PDF evaluates nothing
        assert "Complete" in text and "In progress" in text  # statuses as words


def test_pdf_pages_are_landscape_letter_and_repeat_the_header(app):
    rows = [{**{name: None for name in ROSTER_COLUMNS}, "badge": str(1000 + n), "last_name": f"Member{n:03}",
             "first_name": "Pat", "unit": "Patrol North", "status": "not_started", "lessons_completed": 0,
             "lessons_total": 3, "quiz_attempts": 0, "due_date": date(2031, 3, 31)} for n in range(120)]
    counts = {"not_started": 120}
    document = roster_export.roster_document(
        rows, title="2031 annual roster", filters_text="2031 cycle; as of now", counts=counts,
        generated_at=datetime(2031, 2, 1, 9, 30, tzinfo=timezone(timedelta(hours=-6))),
        unit_summary=[("Patrol North", 120, 0)], department="Test PD")

    assert len(document.pages) >= 3
    # CSS pixels, 96 to the inch: Letter (8.5 × 11 in) turned landscape.
    assert all((page.width, page.height) == (11 * 96, 8.5 * 96) for page in document.pages)
    pdf = roster_export.render_pdf(rows, title="2031 annual roster", filters_text="2031 cycle; as of now",
                                   counts=counts, generated_at=datetime(2031, 2, 1, 9, 30, tzinfo=timezone.utc),
                                   unit_summary=[("Patrol North", 120, 0)])
    if shutil.which("pdftotext"):
        pages = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                               check=True).stdout.decode().split("\f")
        pages = [p for p in pages if p.strip()]
        assert all(re.search(r"Name\s+Badge\s+Rank\s+Unit", page) for page in pages)
        assert all(f"Page {n} of {len(pages)}" in page for n, page in enumerate(pages, 1))
        assert "Member119" in pages[-1]


def test_pdf_text_rows_keep_their_columns():
    columns = roster_export.pdf_columns(show_policy=True)
    header = roster_export.pdf_header_text(columns).splitlines()[0]
    row = {**{name: None for name in ROSTER_COLUMNS}, "badge": "1", "last_name": "Hernández-Okafor",
           "first_name": "María Guadalupe", "unit": "Community Services and Outreach", "status": "quiz_passed",
           "lessons_completed": 3, "lessons_total": 3, "quiz_best_score": 90, "quiz_attempts": 2,
           "due_date": date(2031, 3, 31), "exemption_reason": None, "policy": "16.3"}
    lines = next(roster_export._pdf_rows([row], columns)).splitlines()
    assert len(lines) > 1  # long values wrap inside their column
    for heading, value in [("Due", "2031-03-31"), ("Status", "Quiz passed"), ("Quiz best", "90% (2)"),
                           ("Policy", "16.3"), ("Unit", "Community"), ("Name", "Hernández-Okafor,")]:
        at = header.index(heading)
        assert lines[0][at:at + len(value)] == value
    assert "Policy" not in roster_export.pdf_header_text(roster_export.pdf_columns(show_policy=False))


# --- the chart ------------------------------------------------------------------------------------

def _contrast(hex_colour: str) -> float:
    """WCAG contrast ratio of a colour against white."""
    def channel(c):
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


def test_chart_is_valid_accessible_svg_with_one_bar_per_unit():
    summary = [("Patrol North", 4, 3), ("Traffic", 3, 0), ("<script>alert(1)</script> & Co", 2, 2)]
    svg = completion_by_unit_svg(summary)
    root = ET.fromstring(str(svg))

    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("viewBox").startswith("0 0 ")
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text == "Completion by unit"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "Patrol North: 3 of 4 (75%)" in desc.text
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert len(bars) == len(root.findall(f".//{SVG}rect")) == 3
    assert [float(b.get("width")) for b in bars][1] == 0 and float(bars[0].get("width")) < float(bars[2].get("width"))
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["75% (3 of 4)", "0% (0 of 3)", "100% (2 of 2)"]
    labels = ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert labels[2].startswith("<script>alert(1)</script> & Co")  # escaped in the markup, text when parsed
    assert "<script>" not in str(svg)
    assert all("style" not in el.attrib for el in root.iter())
    assert all(_contrast(colour) >= 3 for colour in (BAR_FILL, GRID_STROKE))
    # Text in the colour of the text around it, so a high-contrast theme recolours it too.
    assert TEXT_FILL == "currentColor" and all(t.get("fill") == "currentColor" for t in root.iter(f"{SVG}text"))


def test_narrow_chart_keeps_its_text_legible_on_a_phone():
    """The phone layout: 300 units wide with 13-unit text, so at 288 px (a 320 px screen) the
    text is 12.5 px; one bar per unit, the same values, its own ids."""
    summary = [("Patrol North", 4, 3), ("A unit with a very long name indeed", 3, 0)]
    root = ET.fromstring(str(completion_by_unit_svg(summary, narrow=True, id_prefix="narrow")))
    width = float(root.get("viewBox").split()[2])
    assert int(root.get("font-size")) * 288 / width >= 12
    assert root.find(f"{SVG}title").get("id") == "narrow-title"
    assert len(root.findall(f".//{SVG}rect[@class='bar']")) == 2
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["75% (3 of 4)", "0% (0 of 3)"]
    labels = ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") != "value"]
    assert labels[1].endswith("…") and "A unit with a very long name indeed" in labels[1]  # full name in <title>


def test_chart_of_no_units_is_still_valid():
    root = ET.fromstring(str(completion_by_unit_svg([])))
    assert root.findall(f".//{SVG}rect") == [] and "No rows." in root.find(f"{SVG}desc").text


def test_percent_complete_reaches_100_only_when_all_are_done():
    assert percent_complete(1000, 999) == 99 and percent_complete(3, 3) == 100 and percent_complete(0, 0) == 0


def test_status_counts_and_summary_feed_the_pdf_consistently(app, db, department):
    filters = RosterFilters(cycle_id=cycle_id_of(app, 2031))
    tz = app.config["TIMEZONE"]
    counts = status_counts(db, filters, today=today(app), tz=tz)
    summary = unit_summary(db, filters, today=today(app), tz=tz)
    assert sum(counts.values()) == sum(total for _, total, _ in summary) == audience_rows(db, 2031)
    assert roster_export.describe_filters(RosterFilters(cycle_id=cycle_id_of(app, 2031), units=["Traffic"],
                                                        statuses=["overdue"], as_of=date(2031, 1, 8)),
                                          "2031 annual") == \
        "2031 annual cycle; unit Traffic; status Overdue; as of the end of 2031-01-08"
    assert json.dumps(roster_export.filters_details(filters))
