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
from lms.services.roster import ROSTER_COLUMNS, STATUS_FILTER_LABELS, RosterFilters

if TYPE_CHECKING:
    from weasyprint import Document

    from lms.pdf_table import SplitTable

#: A spreadsheet treats a cell starting with one of these as a formula (CSV injection); tab and
#: carriage return too, since some spreadsheets strip them and read what follows.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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


#: The XLSX roster's column titles, by contract column: the CSV keeps the contract's names, people
#: opening the workbook read these.
XLSX_TITLES = {"badge": "Badge", "last_name": "Last name", "first_name": "First name", "rank": "Rank",
               "unit": "Unit", "shift": "Shift", "supervisor_badge": "Supervisor badge", "status": "Status",
               "lessons_completed": "Lessons completed", "lessons_total": "Lessons total",
               "quiz_best_score": "Quiz best score (%)", "quiz_attempts": "Quiz attempts",
               "acknowledged_at": "Acknowledged (local time)", "policy_version": "Policy version (effective)",
               "due_date": "Due date", "exemption_reason": "Exemption reason"}
#: How each contract column is written: text, a whole number, a date, or a local date and time.
_XLSX_KINDS = {"lessons_completed": "number", "lessons_total": "number", "quiz_best_score": "number",
               "quiz_attempts": "number", "policy_version": "date", "due_date": "date",
               "acknowledged_at": "datetime"}
#: Column widths fit their content, within these bounds (characters).
XLSX_MIN_WIDTH, XLSX_MAX_WIDTH = 6, 50
#: Characters an XLSX file cannot hold at all (XML 1.0 forbids them); dropped.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _local_datetime(value) -> datetime | None:
    """A stored local time (``2031-01-08T09:00:00-06:00``) as the naive local date-time a
    spreadsheet holds; Excel has no time zones, so the column title says "local time"."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=None)


def write_xlsx(rows: Iterable, out: IO[bytes], *, title: str, filters_text: str) -> int:
    """Write the roster as an XLSX workbook to a binary file and return the number of rows.

    Sheet "Roster": a bold, frozen, filtered header of readable titles, then one row per roster
    row: dates and times as date cells (shown ISO 8601), counts and scores as numbers, statuses in
    words, widths fitted to the content. Sheet "Summary": rows by status, and by unit and status,
    counted from the rows written (so they always agree with the roster sheet and the CSV).
    Sheet "About": the title, the filters and the row count.

    XlsxWriter's constant-memory mode writes each row out as soon as the next one starts, so a
    50,000-row roster holds one row in memory (and takes about half the CPU openpyxl took).
    """
    # Imported here: only the XLSX export needs it, and the command line starts faster without it.
    import xlsxwriter

    workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False,
                                         "strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    workbook.set_properties({"title": title, "subject": filters_text, "author": "Roll Call"})
    bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    formats = {"date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
               "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})}
    sheet = workbook.add_worksheet("Roster")
    summary_sheet = workbook.add_worksheet("Summary")
    about = workbook.add_worksheet("About")

    kinds = [_XLSX_KINDS.get(name, "text") for name in ROSTER_COLUMNS]
    status_at = ROSTER_COLUMNS.index("status")
    unit_at = ROSTER_COLUMNS.index("unit")
    widths = [max(len(word) for word in XLSX_TITLES[name].split()) for name in ROSTER_COLUMNS]
    for n, kind in enumerate(kinds):
        widths[n] = max(widths[n], {"date": 10, "datetime": 16}.get(kind, 0))
    sheet.write_row(0, 0, [XLSX_TITLES[name] for name in ROSTER_COLUMNS], bold)
    sheet.freeze_panes(1, 0)
    by_status: dict[str, int] = {}
    by_unit: dict[str, dict[str, int]] = {}
    write_string, write_number, write_datetime = sheet.write_string, sheet.write_number, sheet.write_datetime
    date_format, datetime_format = formats["date"], formats["datetime"]
    count = 0
    for values in _contract_values(rows):
        count += 1
        status, unit = values[status_at] or "", values[unit_at] or ""
        by_status[status] = by_status.get(status, 0) + 1
        unit_counts = by_unit.setdefault(unit, {})
        unit_counts[status] = unit_counts.get(status, 0) + 1
        for n, (kind, value) in enumerate(zip(kinds, values)):
            if value is None or value == "":
                continue  # a blank cell
            if kind == "text":
                if n == status_at:
                    value = STATUS_LABELS.get(value, value)
                elif _XLSX_ILLEGAL.search(value):
                    value = _XLSX_ILLEGAL.sub("", value)
                write_string(count, n, value)
                if len(value) > widths[n]:
                    widths[n] = len(value)
            elif kind == "number":
                write_number(count, n, value)
            elif kind == "date":
                write_datetime(count, n, datetime(value.year, value.month, value.day), date_format)
            else:
                write_datetime(count, n, _local_datetime(value), datetime_format)
    for n, width in enumerate(widths):
        sheet.set_column(n, n, min(max(width + 1, XLSX_MIN_WIDTH), XLSX_MAX_WIDTH))
    sheet.autofilter(0, 0, count, len(ROSTER_COLUMNS) - 1)

    _write_summary(summary_sheet, bold, by_status, by_unit, count)
    about.set_column(0, 0, 10)
    about.set_column(1, 1, 80)
    for n, (label, value) in enumerate((("Roster", title), ("Filters", filters_text))):
        about.write_string(n, 0, label, bold)
        about.write_string(n, 1, _XLSX_ILLEGAL.sub("", value))
    about.write_string(2, 0, "Rows", bold)
    about.write_number(2, 1, count)
    workbook.close()
    return count


def _write_summary(sheet, bold, by_status: Mapping[str, int], by_unit: Mapping[str, Mapping[str, int]],
                   total: int) -> None:
    """The Summary sheet: rows by status (with the total), then a table of units by status."""
    statuses = [s for s in STATUSES if s in by_status] + sorted(set(by_status) - set(STATUSES))
    labels = {status: STATUS_LABELS.get(status, status) or "(no status)" for status in statuses}
    sheet.write_row(0, 0, ["Status", "Rows"], bold)
    row = 1
    for status in statuses:
        sheet.write_string(row, 0, labels[status])
        sheet.write_number(row, 1, by_status[status])
        row += 1
    sheet.write_string(row, 0, "Total", bold)
    sheet.write_number(row, 1, total, bold)
    row += 2
    sheet.write_row(row, 0, ["Unit", "Rows", *(labels[s] for s in statuses)], bold)
    for unit in sorted(by_unit, key=lambda u: (u == "", u.casefold())):
        row += 1
        counts = by_unit[unit]
        sheet.write_string(row, 0, unit or "(no unit)")
        sheet.write_number(row, 1, sum(counts.values()))
        for n, status in enumerate(statuses, 2):
            sheet.write_number(row, n, counts.get(status, 0))
    width = max([len("Total"), len("(no unit)"), *(len(u) for u in by_unit)]) + 1
    sheet.set_column(0, 0, min(width, XLSX_MAX_WIDTH))
    sheet.set_column(1, 1 + len(statuses), 14)


def nothing_matches(what: str = "members") -> str:
    """What an export that matches nothing says instead of handing over an empty file."""
    return f"No {what} match these filters, so there is nothing to export. Widen the filters and try again."


def pdf_refusal(rows: int, max_rows: int) -> str | None:
    """Why a roster PDF of ``rows`` rows is refused (None if it is not): the PDF lays out every
    row in memory, so beyond ``max_rows`` (ROSTER_PDF_MAX_ROWS) CSV or XLSX, which stream any
    size, are the way to have the whole roster."""
    if rows <= max_rows:
        return None
    return (f"The PDF lists every row, and this view has {rows:,}; narrow it to {max_rows:,} rows or fewer "
            f"(by unit or status, say), or export CSV or XLSX, which hold any number of rows.")


def describe_filters(filters: RosterFilters, cycle_name: str | None = None) -> str:
    """The filters in words, for a report's header: ``2026 annual cycle; unit Traffic; status Overdue``
    (``cycle_name`` names the cycle; without it, its id)."""
    parts = [f"{cycle_name} cycle" if cycle_name else f"cycle {filters.cycle_id}"]
    if filters.reports_to:
        parts.append(f"members reporting to badge {filters.reports_to}")
    if filters.policy_id:
        parts.append(f"policy {filters.policy_id}")
    for label, values in (("unit", filters.units), ("shift", filters.shifts), ("rank", filters.ranks),
                          ("supervisor", filters.supervisor_badges)):
        if values:
            parts.append(f"{label}{'s' if len(values) > 1 else ''} {', '.join(values)}")
    if filters.statuses:
        parts.append(f"status{'es' if len(filters.statuses) > 1 else ''} "
                     + ", ".join(STATUS_FILTER_LABELS.get(s, s) for s in filters.statuses))
    if filters.search and filters.search.strip():
        parts.append(f"search “{filters.search.strip()}”")
    parts.append(f"as of the end of {filters.as_of.isoformat()}" if filters.as_of else "as of now")
    return "; ".join(parts)


def filters_details(filters: RosterFilters) -> dict:
    """The filters as JSON-ready values, for audit events."""
    details = {"cycle_id": filters.cycle_id, "policy": filters.policy_id, "units": list(filters.units),
               "shifts": list(filters.shifts), "ranks": list(filters.ranks),
               "supervisors": list(filters.supervisor_badges), "statuses": list(filters.statuses),
               "search": filters.search or None, "as_of": filters.as_of.isoformat() if filters.as_of else None}
    if filters.reports_to:
        # A supervisor's roster: whose reports it was limited to.
        details["reports_to"] = filters.reports_to
    return details


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


def _column_spans(columns) -> list[tuple[int, int, int]]:
    """Where each column's characters lie on a line laid out by ``_side_by_side``: (column, start,
    end), a column's span taking the gap after it; the last runs to the end of the line."""
    spans, start = [], 0
    for n, (_, _, width) in enumerate(columns):
        stop = start + width + len(PDF_GAP) if n < len(columns) - 1 else 1 << 30
        spans.append((n, start, stop))
        start = stop
    return spans


def _table_lines(text: str, spans, note_span) -> list:
    """A cell's text as lines for lms.pdf_table: each line with the column spans it divides into;
    the exemption line (``Exemption: …`` under the status) belongs to the status column whole."""
    return [(line, note_span if line.lstrip().startswith("Exemption: ") and n else spans)
            for n, line in enumerate(text.split("\n"))]


def _as_mapping(row) -> Mapping:
    if hasattr(row, "_mapping"):
        return row._mapping
    return row._asdict() if hasattr(row, "_asdict") else row


def _iso(value) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def _roster_layout(rows: Iterable, *, title: str, filters_text: str, generated_at: datetime,
                   counts: Mapping[str, int], unit_summary: list[tuple[str, int, int]],
                   department: str | None = None) -> tuple[Document, SplitTable | None]:
    """The roster PDF laid out, and how its member table's lines divide into columns (None when
    no member matches: the table's one row then says so)."""
    # Imported here: WeasyPrint takes about a second to load, which a CSV export need not pay.
    from lms.pdf import render_document, render_template
    from lms.pdf_table import SplitTable

    rows = list(rows)
    columns = pdf_columns(show_policy=len({_as_mapping(row).get("policy") for row in rows}) > 1)
    texts = list(_pdf_rows(rows, columns))
    header = pdf_header_text(columns)
    spans = _column_spans(columns)
    status = [key for key, _, _ in columns].index("status")
    note_span = [(status, 0, 1 << 30)]
    table = SplitTable(column_count=len(columns), header=_table_lines(header, spans, note_span),
                       rows=[_table_lines(text, spans, note_span) for text in texts]) if texts else None
    units = [(unit, total, complete, percent_complete(total, complete)) for unit, total, complete in unit_summary]
    html = render_template(
        "roster.html", member_rows=texts, header=header, title=title,
        filters_text=filters_text, generated=generated_at.isoformat(timespec="seconds"),
        department=department, counts=[(STATUS_LABELS[s], counts.get(s, 0)) for s in STATUSES],
        total=sum(counts.values()), units=units,
        chart=completion_by_unit_svg(unit_summary, id_prefix="roster-chart"))
    return render_document(html), table


def roster_document(rows: Iterable, *, title: str, filters_text: str, generated_at: datetime,
                    counts: Mapping[str, int], unit_summary: list[tuple[str, int, int]],
                    department: str | None = None) -> Document:
    """The roster PDF laid out (landscape Letter), before it becomes bytes; its ``pages`` tell the
    page count and size."""
    return _roster_layout(rows, title=title, filters_text=filters_text, generated_at=generated_at, counts=counts,
                          unit_summary=unit_summary, department=department)[0]


def render_pdf(rows: Iterable, *, title: str, filters_text: str, generated_at: datetime,
               counts: Mapping[str, int], unit_summary: list[tuple[str, int, int]],
               department: str | None = None) -> bytes:
    """The roster as a tagged PDF: header with generated time and filters, status counts, the
    completion-by-unit chart and its table, then the members under a header repeated on each page,
    tagged as a table of one row per member and one header cell and data cell per column."""
    from lms.pdf import write_pdf
    from lms.pdf_table import split_columns

    document, table = _roster_layout(rows, title=title, filters_text=filters_text, generated_at=generated_at,
                                     counts=counts, unit_summary=unit_summary, department=department)
    return write_pdf(document, finisher=split_columns(table) if table else None)
