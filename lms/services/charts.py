"""Charts drawn on the server as SVG, so they show without scripts, print, and go into PDFs.

The markup uses presentation attributes (``fill=``, ``font-size=``) only: the CSP forbids inline
``style`` attributes. Every value is also written as text beside its bar, so nothing is told by
colour or length alone; pages and PDFs put a table of the same numbers next to the chart.

Text and gridlines are drawn in ``currentColor``, the colour of the text around the chart, so a
high-contrast or forced-colours theme (white on black, say) reaches them as it reaches the page's
text; a fixed black was black on black there (1.11:1). The page's stylesheet also recolours the
bars under ``forced-colors``.

A chart scales with its box, and so does its text: the wide layout's 12-unit text is 12 px only
at its full 720 px. Phones get the narrow layout (``narrow=True``): 300 units wide, each unit's
name above its bar, 13-unit text, so at 288 px (a 320 px screen) the text is still 12.5 px.
"""
from __future__ import annotations

from markupsafe import Markup, escape

#: Bar colour: 7.4:1 against white (WCAG asks ≥ 3:1 for graphics).
BAR_FILL = "#1f5a96"
#: Gridlines and axis: 4.5:1 against white.
GRID_STROKE = "#767676"
#: The narrow layout: width, text size, row height (name line, then bar).
NARROW_WIDTH = 300
NARROW_FONT_SIZE = 13
NARROW_ROW = 44
NARROW_BAR_HEIGHT = 14
#: The narrow layout's unit names share their line with the value ("100% (50000 of 50000)").
NARROW_LABEL_MAX = 18
#: Text follows the surrounding text colour (see above).
TEXT_FILL = "currentColor"
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


def _label(unit: str, most: int = LABEL_MAX) -> str:
    return unit if len(unit) <= most else unit[: most - 1].rstrip() + "…"


def completion_by_unit_svg(summary: list[tuple[str, int, int]], *, id_prefix: str = "unit-chart",
                           narrow: bool = False) -> Markup:
    """A horizontal bar chart of complete/total per unit, from ``roster.unit_summary`` rows.

    ``id_prefix`` keeps the ``<title>``/``<desc>`` ids unique when a page holds several charts;
    ``narrow`` draws the phone layout.
    """
    if narrow:
        return _narrow_svg(summary, id_prefix)
    height = TOP + ROW * max(len(summary), 1) + BOTTOM
    parts = _opening(summary, id_prefix, WIDTH, height, FONT_SIZE, "chart-wide")
    # Gridlines every 25%, labelled above the bars.
    for tick in (0, 25, 50, 75, 100):
        x = BAR_LEFT + BAR_WIDTH * tick / 100
        parts.append(f'<line x1="{x:g}" y1="{TOP - 4}" x2="{x:g}" y2="{height - BOTTOM}" '
                     f'stroke="{GRID_STROKE}" stroke-width="{1 if tick in (0, 100) else 0.5}"/>')
        parts.append(f'<text x="{x:g}" y="{TOP - 8}" text-anchor="middle" fill="{TEXT_FILL}" '
                     f'aria-hidden="true">{tick}%</text>')
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


def _opening(summary, id_prefix: str, width: int, height: int, font_size: int, css_class: str) -> list[str]:
    title_id, desc_id = f"{id_prefix}-title", f"{id_prefix}-desc"
    described = "; ".join(f"{unit}: {complete} of {total} ({percent_complete(total, complete)}%)"
                          for unit, total, complete in summary)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{title_id} {desc_id}" '
        f'font-family="{FONT_FAMILY}" font-size="{font_size}">',
        f'<title id="{title_id}">Completion by unit</title>',
        f'<desc id="{desc_id}">Share of roster rows complete (on time, late or exempt) in each unit. '
        f'{escape(described) if summary else "No rows."}</desc>',
    ]


def _narrow_svg(summary: list[tuple[str, int, int]], id_prefix: str) -> Markup:
    """The phone layout: per unit, its name (left) and value (right) on one line, the bar under
    them across the whole width, with a faint track so an empty bar still shows where it ends."""
    height = ROW // 2 + NARROW_ROW * max(len(summary), 1)
    parts = _opening(summary, id_prefix, NARROW_WIDTH, height, NARROW_FONT_SIZE, "chart-narrow")
    for n, (unit, total, complete) in enumerate(summary):
        percent = percent_complete(total, complete)
        y = 4 + NARROW_ROW * n
        text_y = y + NARROW_FONT_SIZE
        bar_y = text_y + 6
        bar = (NARROW_WIDTH - 2) * (complete / total if total else 0)
        parts.append(f'<g class="unit">'
                     f'<text x="0" y="{text_y}" fill="{TEXT_FILL}"><title>{escape(unit)}</title>'
                     f'{escape(_label(unit, NARROW_LABEL_MAX))}</text>'
                     f'<text class="value" x="{NARROW_WIDTH}" y="{text_y}" text-anchor="end" fill="{TEXT_FILL}">'
                     f'{percent}% ({complete} of {total})</text>'
                     f'<rect class="track" x="1" y="{bar_y}" width="{NARROW_WIDTH - 2}" height="{NARROW_BAR_HEIGHT}" '
                     f'fill="none" stroke="{GRID_STROKE}" stroke-width="1"/>'
                     f'<rect class="bar" x="1" y="{bar_y}" width="{bar:.1f}" height="{NARROW_BAR_HEIGHT}" '
                     f'fill="{BAR_FILL}"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
