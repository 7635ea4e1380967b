"""A table of many rows, tagged cell by cell without laying out a box per cell.

WeasyPrint lays out, draws and tags every table cell as a box of its own, at about 0.5 ms a cell
here: the roster's 13 columns for 1,000 members took 7–8 s, whatever the CSS (``table-layout:
fixed``, no borders, one font, even inline cells). So the roster PDF lays each member's row out as
one cell of fixed-width text in a monospaced font (about 1 s for 1,000 rows), and this finisher,
run on the PDF before it is written, gives that text the structure of a real table: each line's
glyphs are cut at the column boundaries into marked-content sequences of their own, and the row's
one TD (or the header's one TH) becomes one TH or TD per column, each holding its column's text
and, for data cells, naming its header cell. The padding between values becomes an artifact.

It relies on what WeasyPrint 70 writes for a line of ``white-space: pre`` text: one marked
sequence ``/Span <</MCID n>> BDC … BT Tm Tf [<glyph>0<glyph>0…] TJ ET EMC`` per line, one glyph
per character (a monospaced font without ligatures, text in NFC). A line drawn otherwise (a
character from a fallback font, say) is left whole in its row's first cell, so nothing is ever
lost or untagged, only less finely tagged.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pydyf

#: One line of a cell's text, and how its characters divide among the columns: (column, start,
#: end) with end exclusive; characters outside every span, and blanks at either end of a span,
#: are padding.
Line = tuple[str, Sequence[tuple[int, int, int]]]

_GLYPHS = re.compile(rb"<([0-9a-fA-F]+)>(-?[0-9.]+)?")


@dataclass
class SplitTable:
    """The lines of a single-column table's header cell and of each body row, in document order."""

    column_count: int
    header: list[Line]
    rows: list[list[Line]]


def _reference_number(reference) -> int:
    return int(bytes(reference).split()[0])


def _kids(element) -> list:
    kids = element.get("K")
    if kids is None:
        return []
    return list(kids) if isinstance(kids, (list, pydyf.Array)) else [kids]


class _Splitter:
    """The state of one pass over a PDF: its objects, the pages' content and parent-tree arrays."""

    def __init__(self, pdf: pydyf.PDF) -> None:
        self.pdf = pdf
        root = pdf.objects[_reference_number(pdf.catalog["StructTreeRoot"])]
        nums = pdf.objects[_reference_number(root["ParentTree"])]["Nums"]
        self.parent_arrays = {index: array for index, array in zip(nums[::2], nums[1::2])
                              if isinstance(array, (list, pydyf.Array))}
        self.page_index = {bytes(reference): n for n, reference in enumerate(pdf.page_references)}
        self.root = root
        self._ops: dict[int, list] = {}
        self._mcid_at: dict[int, dict[int, int]] = {}
        self.replacements: dict[int, dict[int, tuple[int, list]]] = {}

    def element(self, reference):
        return self.pdf.objects[_reference_number(reference)]

    def ops(self, page: int) -> list:
        if page not in self._ops:
            kids = self.pdf.pages["Kids"]
            page_object = self.pdf.objects[kids[3 * page]]
            ops = self.pdf.objects[_reference_number(page_object["Contents"])].stream
            self._ops[page] = ops
            self._mcid_at[page] = {op["MCID"]: i for i, op in enumerate(ops)
                                   if isinstance(op, pydyf.Dictionary) and "MCID" in op}
        return self._ops[page]

    def new_element(self, role: str, parent_reference, page_reference, kids=(), attributes=None):
        element = pydyf.Dictionary({"Type": "/StructElem", "S": f"/{role}", "K": pydyf.Array(kids),
                                    "Pg": page_reference, "P": parent_reference})
        if attributes is not None:
            element["A"] = attributes
        self.pdf.add_object(element)
        return element

    def baseline(self, span) -> tuple | None:
        """Where the line that ``span`` marks is drawn (page and the y of its text matrix)."""
        mcid = _only_mcid(span)
        page = self.page_index.get(bytes(span["Pg"]))
        if mcid is None or page is None:
            return None
        ops = self.ops(page)
        at = self._mcid_at[page].get(mcid)
        for op in ops[at + 2:at + 12] if at is not None else ():
            if isinstance(op, bytes) and op.endswith(b" Tm"):
                return page, op.split()[5]
            if op == b"EMC":
                break
        return None

    def split_line(self, span, line: Line, cells: list) -> bool:
        """Cut the line that ``span`` (a Span element holding one MCID) marks into one marked
        sequence per column span, added to ``cells``; False if it is not drawn as expected."""
        text, spans = line
        mcid = _only_mcid(span)
        page = self.page_index.get(bytes(span["Pg"]))
        if mcid is None or page is None:
            return False
        ops = self.ops(page)
        at = self._mcid_at[page].get(mcid)
        if at is None or at < 1 or at + 1 >= len(ops) or ops[at + 1] != b"BDC" or ops[at - 1] != "/Span":
            return False
        end = next((i for i in range(at + 2, min(at + 12, len(ops))) if ops[i] == b"EMC"), None)
        if end is None:
            return False
        body = ops[at + 2:end]
        shows = [i for i, op in enumerate(body) if isinstance(op, bytes) and op.endswith(b" TJ")]
        fonts = [op for op in body if isinstance(op, bytes) and op.endswith(b" Tf")]
        if len(shows) != 1 or len(fonts) != 1 or b"BT" not in body or b"ET" not in body:
            return False
        glyphs = _GLYPHS.findall(body[shows[0]])
        if len(glyphs) != len(text) or any(adjust not in (b"", b"0") for _, adjust in glyphs):
            return False
        glyphs = [g for g, _ in glyphs]

        runs = _column_runs(text, spans)

        array = self.parent_arrays[page]
        new_body: list = []
        reused = False
        for op_index, op in enumerate(body):
            if op_index != shows[0]:
                new_body.append(op)
                continue
            for column, start, stop in runs:
                show = b"[<" + b"".join(glyphs[start:stop]) + b">] TJ"
                if column is None:
                    new_body += [b"/Artifact BMC", show, b"EMC"]
                    continue
                if not reused:
                    number, reused = mcid, True
                else:
                    number = len(array)
                    array.append(b"null")
                # The cell holds its marked content directly (no Span element per piece: half
                # the objects to write).
                cell = cells[column]
                cell["K"].append(number)
                array[number] = cell.reference
                new_body += ["/Span", pydyf.Dictionary({"MCID": number}), b"BDC", show, b"EMC"]
        if not reused:
            array[mcid] = b"null"
        # The line's own marked sequence is gone: its pieces carry the marks now.
        self.replacements.setdefault(page, {})[at - 1] = (end + 1, new_body)
        return True

    def split_row(self, row, old_cell, lines: list[Line], role: str, column_count: int,
                  headers: list | None) -> list:
        """Replace the row's one cell by one cell per column (the first is the old cell, emptied);
        the cells, in order."""
        page_reference = old_cell["Pg"]
        spans = [self.element(k) for k in _kids(old_cell) if not isinstance(k, int)]
        old_cell["K"] = pydyf.Array()
        cells = []
        for column in range(column_count):
            attributes = pydyf.Dictionary({"O": "/Table"})
            if role == "TH":
                attributes["Scope"] = "/Column"
            elif headers is not None:
                attributes["Headers"] = pydyf.Array([headers[column]])
            if column == 0:
                old_cell["A"] = attributes
                cells.append(old_cell)
            else:
                cells.append(self.new_element(role, row.reference, page_reference, attributes=attributes))
        # A line is usually one Span; a line with a character from a fallback font is several,
        # on the same baseline. Grouped by baseline, the groups match the lines of the text.
        groups: list[tuple[object, list]] = []
        for span in spans:
            baseline = self.baseline(span)
            if groups and baseline is not None and groups[-1][0] == baseline:
                groups[-1][1].append(span)
            else:
                groups.append((baseline, [span]))
        matched = len(groups) == len(lines)
        for n, (_, members) in enumerate(groups):
            if matched and len(members) == 1 and self.split_line(members[0], lines[n], cells):
                continue
            for span in members:  # kept whole, in the first cell: tagged, if less finely
                span["P"] = cells[0].reference
                cells[0]["K"].append(span.reference)
        row["K"] = pydyf.Array([cell.reference for cell in cells])
        return cells

    def apply(self) -> None:
        """Write the cut lines into the pages' content streams."""
        for page, replacements in self.replacements.items():
            ops = self._ops[page]
            rebuilt, position = [], 0
            for start in sorted(replacements):
                stop, new_ops = replacements[start]
                rebuilt += ops[position:start]
                rebuilt += new_ops
                position = stop
            rebuilt += ops[position:]
            ops[:] = rebuilt


def _single_column_tables(splitter: _Splitter) -> list:
    """The tables whose header row holds exactly one TH, in document order (one per page)."""
    found = []
    pending = [splitter.root]
    while pending:
        element = pending.pop(0)
        for kid in _kids(element):
            if isinstance(kid, int):
                continue
            child = splitter.element(kid)
            if not isinstance(child, pydyf.Dictionary) or child.get("Type") != "/StructElem":
                continue
            if child.get("S") == "/Table":
                parts = [splitter.element(k) for k in _kids(child) if not isinstance(k, int)]
                head = [p for p in parts if p.get("S") == "/THead"]
                if head:
                    rows = [splitter.element(k) for k in _kids(head[0]) if not isinstance(k, int)]
                    if len(rows) == 1 and len(_kids(rows[0])) == 1:
                        found.append(child)
                        continue
            pending.append(child)
    # Breadth first: the member tables, one per page, are siblings, so they come in page order.
    return found


def split_columns(table: SplitTable) -> Callable:
    """A finisher (``write_pdf(finisher=…)``) that turns the single-column tables of ``table``'s
    rows into tagged tables of ``table.column_count`` columns."""

    def finish(document, pdf: pydyf.PDF) -> None:
        if "StructTreeRoot" not in pdf.catalog:
            return
        splitter = _Splitter(pdf)
        rows = iter(table.rows)
        for table_element in _single_column_tables(splitter):
            identifier = _reference_number(table_element.reference)
            ids = None
            for part in [splitter.element(k) for k in _kids(table_element) if not isinstance(k, int)]:
                role = part.get("S")
                for row in [splitter.element(k) for k in _kids(part) if not isinstance(k, int)]:
                    old_cells = [splitter.element(k) for k in _kids(row) if not isinstance(k, int)]
                    if role == "/THead" and len(old_cells) == 1:
                        headers = splitter.split_row(row, old_cells[0], table.header, "TH", table.column_count, None)
                        ids = []
                        for n, cell in enumerate(headers):
                            cell["ID"] = pydyf.String(f"{identifier}-h-{n}")
                            ids.append(cell["ID"])
                    elif role == "/TBody" and len(old_cells) == 1:
                        lines = next(rows, None)
                        if lines is None:
                            return splitter.apply()
                        splitter.split_row(row, old_cells[0], lines, "TD", table.column_count, ids)
        splitter.apply()

    return finish


def _column_runs(text: str, spans) -> list[tuple[int | None, int, int]]:
    """The line cut into runs (column, start, end): each column's text without its blanks, and
    the blanks between as padding (column None), which the PDF marks as an artifact."""
    runs: list[tuple[int | None, int, int]] = []
    position = 0
    for column, start, stop in spans:
        stop = min(stop, len(text))
        if start >= stop:
            continue
        core = text[start:stop]
        first = start + len(core) - len(core.lstrip(" "))
        last = stop - (len(core) - len(core.rstrip(" ")))
        if first >= last:  # nothing but blanks: padding
            first = last = stop
        if position < first:
            runs.append((None, position, first))
        if first < last:
            runs.append((column, first, last))
        position = last
    if position < len(text):
        runs.append((None, position, len(text)))
    return runs


def _only_mcid(span) -> int | None:
    """The one marked-content id a Span element holds, or None if it holds none or several."""
    mcids = [k for k in _kids(span) if isinstance(k, int)]
    return mcids[0] if len(mcids) == 1 else None
