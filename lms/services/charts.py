"""Charts drawn on the server as SVG, so they show without scripts, print, and go into PDFs.

The markup uses presentation attributes (``fill=``, ``font-size=``) only: the CSP forbids inline
``style`` attributes. Every value is also written as text beside its bar, so nothing is told by
colour or length alone; pages and PDFs put a table of the same numbers next to the chart.
"""
from __future__ import annotations

from markupsafe import Markup, escape

#: Bar colour: 7.4:1 against white (WCAG asks ≥ 3:1 for graphics).
BAR_FILL = "#1f5a96"
#: Gridlines and axis: 4.5:1 against white.
GRID_STROKE = "#767676"
TEXT_FILL = "#111111"
FONT_FAMILY = "DejaVu Sans, Receipt Sans, Arial, Helvetica, sans-serif"

# Geometry, in viewBox units: unit names right-aligned in a label column, then the bars, then the
# values in a column of their own (clear of the gridlines), room for "100% (50000 of 50000)".
WIDTH = 720
LABEL_RIGHT = 176
BAR_LEFT = 184
BAR_WIDTH = 360
VALUE_LEFT = BAR_LEFT + BAR_WIDTH + 10
TOP = 26
ROW = 24
BAR_HEIGHT = 16
BOTTOM = 8
FONT_SIZE = 12
#: Unit names longer than this are shortened in the label (the full name is in its tooltip,
#: the description and the table).
LABEL_MAX = 24


def percent_complete(total: int, complete: int) -> int:
    """Whole percent complete, rounded down so that 100% means every row is done."""
    return complete * 100 // total if total else 0


def _label(unit: str) -> str:
    return unit if len(unit) <= LABEL_MAX else unit[: LABEL_MAX - 1].rstrip() + "…"


def completion_by_unit_svg(summary: list[tuple[str, int, int]], *, id_prefix: str = "unit-chart") -> Markup:
    """A horizontal bar chart of complete/total per unit, from ``roster.unit_summary`` rows.

    ``id_prefix`` keeps the ``<title>``/``<desc>`` ids unique when a page holds several charts.
    """
    height = TOP + ROW * max(len(summary), 1) + BOTTOM
    title_id, desc_id = f"{id_prefix}-title", f"{id_prefix}-desc"
    described = "; ".join(f"{unit}: {complete} of {total} ({percent_complete(total, complete)}%)"
                          for unit, total, complete in summary)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="{title_id} {desc_id}" '
        f'font-family="{FONT_FAMILY}" font-size="{FONT_SIZE}">',
        f'<title id="{title_id}">Completion by unit</title>',
        f'<desc id="{desc_id}">Share of roster rows complete (on time, late or exempt) in each unit. '
        f'{escape(described) if summary else "No rows."}</desc>',
    ]
    # Gridlines every 25%, labelled above the bars.
    for tick in (0, 25, 50, 75, 100):
        x = BAR_LEFT + BAR_WIDTH * tick / 100
        parts.append(f'<line x1="{x:g}" y1="{TOP - 4}" x2="{x:g}" y2="{height - BOTTOM}" '
                     f'stroke="{GRID_STROKE}" stroke-width="{1 if tick in (0, 100) else 0.5}"/>')
        parts.append(f'<text x="{x:g}" y="{TOP - 8}" text-anchor="middle" fill="{TEXT_FILL}" '
                     f'font-size="{FONT_SIZE - 2}" aria-hidden="true">{tick}%</text>')
    for n, (unit, total, complete) in enumerate(summary):
        percent = percent_complete(total, complete)
        y = TOP + ROW * n
        bar = BAR_WIDTH * (complete / total if total else 0)
        text_y = y + ROW / 2 + FONT_SIZE * 0.35
        parts.append(f'<g class="unit">'
                     f'<text x="{LABEL_RIGHT}" y="{text_y:g}" text-anchor="end" fill="{TEXT_FILL}">'
                     f'<title>{escape(unit)}</title>{escape(_label(unit))}</text>'
                     f'<rect class="bar" x="{BAR_LEFT}" y="{y + (ROW - BAR_HEIGHT) / 2:g}" '
                     f'width="{bar:.1f}" height="{BAR_HEIGHT}" fill="{BAR_FILL}"/>'
                     f'<text class="value" x="{VALUE_LEFT}" y="{text_y:g}" fill="{TEXT_FILL}">'
                     f'{percent}% ({complete} of {total})</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
