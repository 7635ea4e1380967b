"""The roster read in a high-contrast theme, on a 320 px screen and by a screen reader: the chart's
text against what is behind it, its size on screen, the unit table's caption in view, and column
headers named by the column alone (issue 17's defects, each of which these tests would have caught).
"""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import annual_cycle_path, sign_in

#: Each visible chart's text: its fill, the colour behind the chart, and its size on screen (the
#: computed font size scaled by how the SVG's viewBox is drawn).
CHART_TEXT = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return {rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1}; };
  const background = (el) => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0) return c.rgb; }
    return [255, 255, 255]; };
  return [...document.querySelectorAll('svg.chart')].filter(svg => svg.getBoundingClientRect().width > 0)
    .map(svg => { const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
      return [...svg.querySelectorAll('text')].map(t => ({
        text: t.textContent, fill: parse(getComputedStyle(t).fill).rgb, behind: background(svg),
        px: parseFloat(getComputedStyle(t).fontSize) * scale, chart: svg.getAttribute('class')})); }).flat();
}"""


def _luminance(rgb) -> float:
    def channel(v):
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    """WCAG contrast ratio of two RGB colours."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _roster(browser, live_server, axe, **options):
    context = browser.new_context(base_url=live_server.url, locale="en-US", timezone_id="America/Chicago", **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    axe.watch(page)
    # The sign-in page is audited (axe reads authored colours, so under forced colours only the
    # chart's own measurement below stands for what is drawn).
    forced = bool(options.get("forced_colors"))
    sign_in(page, "1003", axe=None if forced else axe)
    if not forced:
        axe.check(page)
    roster = annual_cycle_path(page) + "/roster"
    page.goto(roster)
    expect(page.get_by_role("heading", level=1)).to_contain_text("roster")
    return context, page


def test_chart_text_contrasts_in_forced_colours_and_dark_themes(browser, live_server, axe):
    """Under forced colours (a white-on-black high-contrast theme), a dark colour scheme and a
    request for more contrast, every label of the chart contrasts at least 4.5:1 with what is
    behind it (before: black on black, 1.11:1)."""
    themes = [{"forced_colors": "active", "color_scheme": "dark"}, {"color_scheme": "dark"},
              {"contrast": "more", "forced_colors": "active", "color_scheme": "light"}]
    for theme in themes:
        context, page = _roster(browser, live_server, axe, viewport={"width": 1280, "height": 800}, **theme)
        labels = page.evaluate(CHART_TEXT)
        assert len(labels) > 5, theme
        for label in labels:
            ratio = contrast(label["fill"], label["behind"])
            assert ratio >= 4.5, f"{theme}: chart text {label['text']!r} is {ratio:.2f}:1 ({label})"
        if "forced_colors" not in theme:
            axe.check(page)
        context.close()


def test_chart_text_and_unit_caption_are_legible_at_320_px(browser, live_server, axe):
    """At 320 px the chart drawn is the narrow one, whose text is at least 12 px on screen (before:
    4.8 px), and the unit table's caption is whole within the screen; at desktop width the wide
    chart's text is 12 px too."""
    context, page = _roster(browser, live_server, axe, viewport={"width": 320, "height": 640}, is_mobile=True)
    labels = page.evaluate(CHART_TEXT)
    assert labels and {label["chart"] for label in labels} == {"chart chart-narrow"}
    small = [(label["text"], round(label["px"], 1)) for label in labels if label["px"] < 12]
    assert not small, f"chart text under 12 px at 320 px: {small}"
    expect(page.get_by_role("img", name=re.compile("Completion by unit"))).to_have_count(1)
    caption = page.locator(".unit-table caption > span")
    expect(caption).to_be_visible()
    box, wrap = caption.bounding_box(), page.locator(".unit-summary .table-wrap").bounding_box()
    assert box["x"] >= wrap["x"] - 0.5 and box["x"] + box["width"] <= min(wrap["x"] + wrap["width"], 320) + 0.5, \
        (box, wrap)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    axe.check(page)
    context.close()

    context, page = _roster(browser, live_server, axe, viewport={"width": 1280, "height": 800})
    labels = page.evaluate(CHART_TEXT)
    assert {label["chart"] for label in labels} == {"chart chart-wide"}
    assert min(label["px"] for label in labels) >= 11.9
    context.close()


def test_sortable_column_headers_are_named_by_the_column_alone(browser, live_server, axe):
    """A screen reader reads a column's header before each of its cells: the name is the column's,
    the sort order is aria-sort, and what the link does is its description."""
    context, page = _roster(browser, live_server, axe, viewport={"width": 1280, "height": 800})
    table = page.get_by_role("table", name=re.compile(r"roster, rows"))
    for name in ("Name", "Badge", "Status", "Unit", "Shift", "Rank", "Supervisor", "Quiz best", "Signed", "Due"):
        expect(table.get_by_role("columnheader", name=name, exact=True)).to_have_count(1)
    expect(table.get_by_role("columnheader", name=re.compile("sort", re.I))).to_have_count(0)
    expect(table.get_by_role("columnheader", name="Name", exact=True)).to_have_attribute("aria-sort", "ascending")
    expect(table.get_by_role("link", name="Name", exact=True)).to_have_accessible_description("Sort descending")
    expect(table.get_by_role("link", name="Unit", exact=True)).to_have_accessible_description("Sort ascending")
    # A cell's row checkbox names the member it selects.
    first = table.get_by_role("row").nth(1)
    member = first.get_by_role("rowheader").inner_text().strip()
    last, given = member.split(", ", 1)
    expect(first.get_by_role("checkbox")).to_have_accessible_name(re.compile(rf"^Select {given} {last}, badge \d+"))
    axe.check(page)
    context.close()
