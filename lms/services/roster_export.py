"""The roster as files: CSV (the contract), XLSX and PDF, written from ``roster.roster_rows``.

Rows stream straight from the database cursor into the writer, so a 50,000-member CSV never holds
more than a row at a time in Python. The PDF is a print of the coordinator's view (status counts,
the completion-by-unit chart and its table, then the rows) and lays out every row, so it suits a
unit or a filtered list rather than a whole large department.
"""
from __future__ import annotations

import csv
import textwrap
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import itemgetter
from typing import IO, TYPE_CHECKING

from lms.services.charts import completion_by_unit_svg, percent_complete
from lms.services.progress import STATUS_LABELS, STATUSES
from lms.services.roster import ROSTER_COLUMNS, RosterFilters

if TYPE_CHECKING:
    from weasyprint import Document

#: A spreadsheet treats a cell starting with one of these as a formula (CSV injection); tab and
#: carriage return too, since some spreadsheets strip them and read what follows.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: XLSX column widths in characters, by contract column.
XLSX_WIDTHS = {"badge": 9, "last_name": 18, "first_name": 14, "rank": 14, "unit": 18, "shift": 9,
               "supervisor_badge": 11, "status": 14, "lessons_completed": 10, "lessons_total": 9,
               "quiz_best_score": 10, "quiz_attempts": 9, "acknowledged_at": 26, "policy_version": 13,
               "due_date": 12, "exemption_reason": 28}


def escape_formula(value: str) -> str:
    """``value`` made inert for spreadsheets: prefixed with ``'`` if it could start a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _csv_value(value):
    # csv.writer writes None as "" and ints as digits; dates by str() are ISO already.
    if value.__class__ is str:
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if value.__class__ is datetime:
        return value.isoformat()
    return value


def _contract_values(rows: Iterable):
    """Each row's contract columns as a tuple, in order, whatever extra columns the row has.

    Rows are named tuples (SQLAlchemy rows, as ``roster_rows`` yields) or mappings.
    """
    iterator = iter(rows)
    for first in iterator:
        if isinstance(first, Mapping):
            pick = itemgetter(*ROSTER_COLUMNS)
        else:
            fields = list(first._fields)
            pick = itemgetter(*(fields.index(name) for name in ROSTER_COLUMNS))
        yield pick(first)
        for row in iterator:
            yield pick(row)


def write_csv(rows: Iterable, out: IO[str], *, header: bool = True) -> int:
    """Write the roster CSV (contract header, then one line per row) to a text file opened with
    ``newline=""``; return the number of rows. ``header=False`` continues a file in chunks."""
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(ROSTER_COLUMNS)
    count = 0
    for values in _contract_values(rows):
        writer.writerow(tuple(map(_csv_value, values)))
        count += 1
    return count


def write_xlsx(rows: Iterable, out: IO[bytes], *, title: str, filters_text: str) -> int:
    """Write the roster as an XLSX workbook (bold frozen header, auto filter) to a binary file;
    return the number of rows. ``title`` and ``filters_text`` go into the document properties."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    # Write-only mode streams rows to disk; it supports frozen panes, column widths and an auto
    # filter as long as the widths and panes are set before the first row.
    workbook = Workbook(write_only=True)
    workbook.properties.title = title
    workbook.properties.subject = filters_text
    workbook.properties.creator = "Roll Call"
    sheet = workbook.create_sheet("Roster")
    for n, name in enumerate(ROSTER_COLUMNS, 1):
        sheet.column_dimensions[get_column_letter(n)].width = XLSX_WIDTHS.get(name, 12)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in ROSTER_COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)

    def as_text(value: str) -> WriteOnlyCell:
        # openpyxl would store "=..." as a formula; a typed string cell is shown as written.
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell

    count = 0
    for values in _contract_values(rows):
        sheet.append([as_text(v) if v.__class__ is str and v.startswith("=") else v for v in values])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(ROSTER_COLUMNS))}{count + 1}"
    workbook.save(out)
    return count


def describe_filters(filters: RosterFilters) -> str:
    """The filters in words, for a report's header: ``2026 cycle; unit Traffic; status Overdue``."""
    parts = [f"{filters.year} cycle"]
    if filters.policy_id:
        parts.append(f"policy {filters.policy_id}")
    for label, values in (("unit", filters.units), ("shift", filters.shifts), ("rank", filters.ranks),
                          ("supervisor", filters.supervisor_badges)):
        if values:
            parts.append(f"{label}{'s' if len(values) > 1 else ''} {', '.join(values)}")
    if filters.statuses:
        parts.append(f"status{'es' if len(filters.statuses) > 1 else ''} "
                     + ", ".join(STATUS_LABELS.get(s, s) for s in filters.statuses))
    if filters.search and filters.search.strip():
        parts.append(f"search “{filters.search.strip()}”")
    parts.append(f"as of the end of {filters.as_of.isoformat()}" if filters.as_of else "as of now")
    return "; ".join(parts)


def filters_details(filters: RosterFilters) -> dict:
    """The filters as JSON-ready values, for audit events."""
    return {"year": filters.year, "policy": filters.policy_id, "units": list(filters.units),
            "shifts": list(filters.shifts), "ranks": list(filters.ranks),
            "supervisors": list(filters.supervisor_badges), "statuses": list(filters.statuses),
            "search": filters.search or None, "as_of": filters.as_of.isoformat() if filters.as_of else None}


# The PDF's member rows. WeasyPrint lays out every table cell as a box of its own, at about 0.7 ms
# a cell: a 13-column table took ~10 s for 1,000 rows. Each row is therefore one cell holding the
# columns as fixed-width text in a monospaced font (~1.5 s for 1,000 rows, tagged): the header row
# still repeats on every page, and the columns still line up. Values too long for their column
# wrap within it. Widths are in characters, sized for landscape Letter at 6.5 pt (see pdf.css).
PDF_GAP = "  "
PDF_COLUMNS: list[tuple[tuple[str, ...], int]] = [
    (("Name",), 26), (("Badge",), 7), (("Rank",), 14), (("Unit",), 18), (("Shift",), 6),
    (("Super-", "visor"), 6), (("Policy",), 6), (("Status",), 15), (("Lessons",), 7),
    (("Quiz best", "(attempts)"), 10), (("Acknowledged", "(local time)"), 25), (("Version",), 10),
    (("Due",), 10),
]


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces where possible."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=True) or [""]


def _text_row(cells: list[str]) -> str:
    """Cells laid side by side in their columns, as one or more lines of text."""
    columns = [_wrap(cell, width) for cell, (_, width) in zip(cells, PDF_COLUMNS)]
    depth = max(len(lines) for lines in columns)
    return "\n".join(
        PDF_GAP.join((lines[n] if n < len(lines) else "").ljust(width)
                     for lines, (_, width) in zip(columns, PDF_COLUMNS)).rstrip()
        for n in range(depth))


def pdf_header_text() -> str:
    """The PDF's column headings, laid out like its rows."""
    depth = max(len(label) for label, _ in PDF_COLUMNS)
    return "\n".join(PDF_GAP.join((label[n] if n < len(label) else "").ljust(width)
                                  for label, width in PDF_COLUMNS).rstrip()
                     for n in range(depth))


def _pdf_rows(rows: Iterable):
    """Each roster row as the text of one PDF table row (an exemption's reason on a line below)."""
    labels = STATUS_LABELS
    status_at = len(PDF_GAP.join(" " * width for _, width in PDF_COLUMNS[:7])) + len(PDF_GAP)
    for row in rows:
        values = row._mapping if hasattr(row, "_mapping") else row._asdict() if hasattr(row, "_asdict") else row
        score, attempts = values["quiz_best_score"], values["quiz_attempts"]
        quiz = f"{'' if score is None else f'{score}%'} ({attempts})" if attempts else ""
        text = _text_row([
            unicodedata.normalize("NFC", f"{values['last_name']}, {values['first_name']}"),
            values["badge"], values["rank"] or "", values["unit"] or "", values["shift"] or "",
            values["supervisor_badge"] or "", values.get("policy") or "",
            labels.get(values["status"], values["status"]),
            f"{values['lessons_completed']}/{values['lessons_total']}", quiz,
            values["acknowledged_at"] or "", _iso(values["policy_version"]), _iso(values["due_date"])])
        if values["exemption_reason"]:
            text += "\n" + " " * status_at + f"Exemption: {values['exemption_reason']}"
        yield text


def _iso(value) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def roster_document(rows: Iterable, *, title: str, filters_text: str, generated_at: datetime,
                    counts: Mapping[str, int], unit_summary: list[tuple[str, int, int]],
                    department: str | None = None) -> "Document":
    """The roster PDF laid out (landscape Letter), before it becomes bytes; its ``pages`` tell the
    page count and size."""
    # Imported here: WeasyPrint takes about a second to load, which a CSV export need not pay.
    from lms.pdf import render_document, render_template

    units = [(unit, total, complete, percent_complete(total, complete)) for unit, total, complete in unit_summary]
    html = render_template(
        "roster.html", rows=_pdf_rows(rows), header=pdf_header_text(), title=title,
        filters_text=filters_text, generated=generated_at.isoformat(timespec="seconds"),
        department=department, counts=[(STATUS_LABELS[s], counts.get(s, 0)) for s in STATUSES],
        total=sum(counts.values()), units=units,
        chart=completion_by_unit_svg(unit_summary, id_prefix="roster-chart"))
    return render_document(html)


def render_pdf(rows: Iterable, *, title: str, filters_text: str, generated_at: datetime,
               counts: Mapping[str, int], unit_summary: list[tuple[str, int, int]],
               department: str | None = None) -> bytes:
    """The roster as a tagged PDF: header with generated time and filters, status counts, the
    completion-by-unit chart and its table, then the rows under a header repeated on each page."""
    from lms.pdf import write_pdf

    return write_pdf(roster_document(rows, title=title, filters_text=filters_text, generated_at=generated_at,
                                     counts=counts, unit_summary=unit_summary, department=department))
