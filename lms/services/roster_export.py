"""The roster as files: CSV (the contract), XLSX and PDF, written from ``roster.roster_rows``.

The CSV and XLSX writers take rows as they come and write them a chunk at a time, so a
50,000-member export holds no more rows than ``roster_rows`` hands over at once.
The PDF is a print of the coordinator's view (status counts,
the completion-by-unit chart and its table, then the rows) and lays out every row, so it suits a
unit or a filtered list rather than a whole large department.
"""
from __future__ import annotations

import csv
import re
import textwrap
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from itertools import chain, islice
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any

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


def _contract_values(rows: Iterable) -> Iterator[tuple]:
    """Each row's contract columns as a tuple, in order, whatever extra columns the row has.

    Rows are named tuples (SQLAlchemy rows, as ``roster_rows`` yields) or mappings.
    """
    iterator = iter(rows)
    for first in iterator:
        if isinstance(first, Mapping):
            pick: itemgetter[Any] = itemgetter(*ROSTER_COLUMNS)
        else:
            fields = list(first._fields)
            pick = itemgetter(*(fields.index(name) for name in ROSTER_COLUMNS))
        # map() rather than a generator loop: the picking then runs in C, per row of 50,000.
        return map(pick, chain((first,), iterator))
    return iter(())


#: The contract columns that hold text, by position; the rest hold numbers and dates.
_TEXT_COLUMNS = ("badge", "last_name", "first_name", "rank", "unit", "shift", "supervisor_badge", "status",
                 "acknowledged_at", "exemption_reason")
_pick_text = itemgetter(*(ROSTER_COLUMNS.index(name) for name in _TEXT_COLUMNS))
_pick_other = itemgetter(*(n for n, name in enumerate(ROSTER_COLUMNS) if name not in _TEXT_COLUMNS))
#: What csv.writer already writes as the contract wants (str() of a date is ISO 8601).
_PLAIN_TYPES = frozenset({int, date, type(None)})
#: A formula prefix at the start of a value, in the values of a chunk joined by newlines (one
#: regular expression: several times faster than a substring search per prefix).
_FORMULA_START = re.compile("\n[" + re.escape("".join(FORMULA_PREFIXES)) + "]")
CSV_CHUNK_ROWS = 1000


def _csv_value(value):
    """One value as the CSV holds it: text made inert for spreadsheets, date-times ISO 8601."""
    if isinstance(value, str):
        return escape_formula(value)
    return value.isoformat() if isinstance(value, datetime) else value


def _plain(chunk: list[tuple]) -> bool:
    """Whether csv.writer can write these rows as they are: no text starts like a formula, every
    time is already text, and the other columns hold only numbers, dates and blanks.

    Checked a chunk at a time with a join, a regular expression and a set of types, which run in
    C: escaping value by value in Python took two thirds as long again as writing the CSV.
    """
    try:
        text = "\n" + "\n".join(filter(None, chain.from_iterable(map(_pick_text, chunk))))
    except TypeError:  # a value in a text column that is not text (a datetime, say)
        return False
    if _FORMULA_START.search(text):
        return False  # or a value with a line break before such a character: escaped the slow way
    return set(map(type, chain.from_iterable(map(_pick_other, chunk)))) <= _PLAIN_TYPES


def write_csv(rows: Iterable, out: IO[str], *, header: bool = True) -> int:
    """Write the roster CSV (contract header, then one line per row) to a text file opened with
    ``newline=""``; return the number of rows. ``header=False`` continues a file in chunks.

    Text starting with a formula prefix gets a leading ``'``, date-times are written ISO 8601
    (``T`` between date and time), None is empty, numbers and dates are written as csv does.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(ROSTER_COLUMNS)
    count = 0
    values = _contract_values(rows)
    while chunk := list(islice(values, CSV_CHUNK_ROWS)):
        if _plain(chunk):
            writer.writerows(chunk)
        else:
            writer.writerows([[_csv_value(v) for v in row] for row in chunk])
        count += len(chunk)
    return count


def write_xlsx(rows: Iterable, out: IO[bytes], *, title: str, filters_text: str) -> int:
    """Write the roster as an XLSX workbook to a binary file and return the number of rows.

    Sheet "Roster": the contract columns under a bold header row, frozen, with an auto filter;
    dates as dates, numbers as numbers. Sheet "About": the title, the filters and the row count.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    # Write-only mode streams rows out instead of holding 50,000 rows of cell objects; it keeps
    # frozen panes, column widths and the auto filter, provided the first two are set before the
    # first row.
    workbook = Workbook(write_only=True)
    workbook.properties.title = title
    workbook.properties.subject = filters_text
    workbook.properties.creator = "Roll Call"
    sheet = workbook.create_sheet("Roster")
    for n, name in enumerate(ROSTER_COLUMNS, 1):
        sheet.column_dimensions[get_column_letter(n)].width = XLSX_WIDTHS.get(name, 12)
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)

    def heading(text: str) -> Cell:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        return cell

    illegal = ILLEGAL_CHARACTERS_RE.search

    def cell(value):
        if value.__class__ is not str:
            return value
        if illegal(value):  # control characters cannot be stored in XLSX at all
            value = ILLEGAL_CHARACTERS_RE.sub("", value)
        if value.startswith("="):
            # openpyxl would store "=..." as a formula; a string cell shows it as written.
            text = WriteOnlyCell(sheet, value=value)
            text.data_type = "s"
            return text
        return value

    sheet.append([heading(name) for name in ROSTER_COLUMNS])
    count = 0
    for values in _contract_values(rows):
        sheet.append([cell(v) for v in values])
        count += 1
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(ROSTER_COLUMNS))}{count + 1}"

    about = workbook.create_sheet("About")
    about.column_dimensions["A"].width = 10
    about.column_dimensions["B"].width = 80
    for label, value in (("Roster", title), ("Filters", filters_text), ("Rows", count)):
        about.append([heading(label), cell(value)])
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


# The PDF's member rows: a tagged table with one row (TR) per member under a header row repeated on
# every page. WeasyPrint lays out and tags every table cell as a box of its own, at about 1 ms a
# cell here: a cell per column (14,000 cells) took ~10 s of CPU for 1,000 rows, and even a second
# cell per row (the name as a row header) about doubled the time of the whole PDF, past 3 s. So each
# member's row is one cell holding the columns as fixed-width text in a monospaced font, under a
# header cell laid out the same way: 1,000 rows take about 1.5 times as long as the five members a
# cell of before. Values too long for their column wrap within it; the columns that are often empty
# come last, so their padding is trimmed (every glyph drawn costs time). Widths are in characters:
# 187 fit the width of landscape Letter at 6.5 pt (pdf.css), and all columns together take 186.
PDF_GAP = "  "
#: (key, heading lines, width), in the order printed.
PDF_COLUMNS: list[tuple[str, tuple[str, ...], int]] = [
    ("name", ("Name",), 23), ("badge", ("Badge",), 7), ("rank", ("Rank",), 16), ("unit", ("Unit",), 18),
    ("shift", ("Shift",), 9), ("supervisor_badge", ("Super-", "visor"), 6), ("policy", ("Policy",), 6),
    ("status", ("Status",), 15), ("due_date", ("Due",), 10), ("lessons", ("Lessons",), 7),
    ("quiz", ("Quiz best", "(attempts)"), 10), ("acknowledged_at", ("Acknowledged", "(local time)"), 25),
    ("policy_version", ("Version",), 10),
]


def pdf_columns(*, show_policy: bool) -> list[tuple[str, tuple[str, ...], int]]:
    """The PDF's columns; the policy column only when the rows hold more than one policy."""
    return [column for column in PDF_COLUMNS if show_policy or column[0] != "policy"]


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces where possible."""
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width) or [""]


def _side_by_side(columns: list[list[str]], widths: list[int]) -> str:
    """Columns of lines laid side by side, padded to their widths; trailing blanks trimmed."""
    depth = max(len(lines) for lines in columns)
    return "\n".join(
        PDF_GAP.join((lines[n] if n < len(lines) else "").ljust(width)
                     for lines, width in zip(columns, widths)).rstrip()
        for n in range(depth))


def pdf_header_text(columns=None) -> str:
    """The PDF's column headings, laid out like its rows."""
    columns = columns or pdf_columns(show_policy=False)
    return _side_by_side([list(label) for _, label, _ in columns], [width for _, _, width in columns])


def _short_label(status: str) -> str:
    """A status's label up to any dash: "Quiz passed — ready to sign" fits its column as "Quiz passed"."""
    return STATUS_LABELS.get(status, status).split(" — ")[0]


def _text(value) -> str:
    """A value as one line of text: composed characters (one per column), whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", value).split()) if value else ""


def _pdf_cells(values) -> dict[str, str]:
    """One roster row's values as the PDF prints them."""
    score, attempts = values["quiz_best_score"], values["quiz_attempts"]
    return {
        "name": _text(f"{values['last_name']}, {values['first_name']}"), "badge": _text(values["badge"]),
        "rank": _text(values["rank"]), "unit": _text(values["unit"]), "shift": _text(values["shift"]),
        "supervisor_badge": _text(values["supervisor_badge"]),
        "policy": values.get("policy") or "", "status": _short_label(values["status"]),
        "due_date": _iso(values["due_date"]), "lessons": f"{values['lessons_completed']}/{values['lessons_total']}",
        "quiz": f"{'' if score is None else f'{score}%'} ({attempts})" if attempts else "",
        "acknowledged_at": values["acknowledged_at"] or "", "policy_version": _iso(values["policy_version"]),
    }


def _pdf_rows(rows: Iterable, columns) -> Iterator[str]:
    """Each roster row as the text of its PDF table cell (an exemption's reason on a line below,
    under the status)."""
    widths = [width for _, _, width in columns]
    keys = [key for key, _, _ in columns]
    indent = " " * sum(width + len(PDF_GAP) for key, _, width in columns[:keys.index("status")])
    for row in rows:
        values = _as_mapping(row)
        cells = _pdf_cells(values)
        text = _side_by_side([_wrap(cells[key], width) for key, width in zip(keys, widths)], widths)
        if values["exemption_reason"]:
            text += "\n" + indent + f"Exemption: {_text(values['exemption_reason'])}"
        yield text


def _as_mapping(row) -> Mapping:
    if hasattr(row, "_mapping"):
        return row._mapping
    return row._asdict() if hasattr(row, "_asdict") else row


def _iso(value) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def roster_document(rows: Iterable, *, title: str, filters_text: str, generated_at: datetime,
                    counts: Mapping[str, int], unit_summary: list[tuple[str, int, int]],
                    department: str | None = None) -> Document:
    """The roster PDF laid out (landscape Letter), before it becomes bytes; its ``pages`` tell the
    page count and size."""
    # Imported here: WeasyPrint takes about a second to load, which a CSV export need not pay.
    from lms.pdf import render_document, render_template

    rows = list(rows)
    columns = pdf_columns(show_policy=len({_as_mapping(row).get("policy") for row in rows}) > 1)
    units = [(unit, total, complete, percent_complete(total, complete)) for unit, total, complete in unit_summary]
    html = render_template(
        "roster.html", member_rows=_pdf_rows(rows, columns), header=pdf_header_text(columns), title=title,
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
