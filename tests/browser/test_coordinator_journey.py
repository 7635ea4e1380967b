"""The training coordinator's journey: the 2026 roster, narrowed, searched and sorted through the
form and the column headers, a member's progress, and the current view downloaded as CSV and XLSX."""
from __future__ import annotations

import csv
import re

from openpyxl import load_workbook
from playwright.sync_api import expect

from lms.services.roster_export import XLSX_TITLES
from tests.browser.support import sign_in

ROSTER_COLUMNS = ("badge,last_name,first_name,rank,unit,shift,supervisor_badge,status,lessons_completed,"
                  "lessons_total,quiz_best_score,quiz_attempts,acknowledged_at,policy_version,due_date,"
                  "exemption_reason").split(",")


def _status_counts(page) -> dict[str, int]:
    """The counts per status the summary shows, by the label a coordinator reads."""
    counts = {}
    for item in page.get_by_role("list", name="Rows per status").get_by_role("listitem").all():
        label = item.locator(".status").inner_text().strip()
        counts[label] = int(item.locator(".count").inner_text().replace(",", ""))
    return counts


def _shown_total(page) -> int:
    """The number of matching rows the summary sentence states."""
    sentence = page.get_by_text(re.compile(r"^[\d,]+ rows? match")).inner_text()
    return int(re.match(r"[\d,]+", sentence).group().replace(",", ""))


def _roster_rows(page) -> list[dict[str, str]]:
    """The rows of the roster table as a coordinator reads them: name, badge, status, unit."""
    table = page.get_by_role("table", name=re.compile(r"roster, rows"))
    rows = []
    for row in table.get_by_role("row").all()[1:]:
        # The first cell holds the row's checkbox for the roster actions.
        cells = [" ".join(c.split()) for c in row.locator("td:not(.col-select)").all_inner_texts()]
        rows.append({"name": row.get_by_role("rowheader").inner_text().strip(), "badge": cells[0],
                     "status": cells[1], "unit": cells[2]})
    return rows


def _status_label(shown: str, labels: list[str]) -> str:
    """The status label a status cell starts with (an exemption adds its reason after it)."""
    return next(label for label in sorted(labels, key=len, reverse=True) if shown.startswith(label))


def _status_keys(page) -> dict[str, str]:
    """Each status checkbox's value (the key the CSV carries) by the label it shows."""
    group = page.get_by_role("group", name="Status")
    keys = {}
    for box in group.get_by_role("checkbox").all():
        label = group.locator(f"label[for='{box.get_attribute('id')}']")
        keys[box.get_attribute("value")] = label.inner_text().strip()
    return keys


def test_coordinator_filters_searches_sorts_opens_a_member_and_exports(page, axe, tmp_path):
    """Journey: a coordinator narrows the 2026 roster to a unit and two statuses, searches a name,
    sorts by badge, opens a member's progress and comes back, then downloads the view as CSV and
    XLSX, whose rows are the ones the page listed."""
    axe.watch(page)
    sign_in(page, "1003", axe=axe)

    expect(page.get_by_role("heading", level=1, name="Training cycles")).to_be_visible()
    axe.check(page)
    page.get_by_role("link", name=re.compile(r"^2026\b.* roster$")).click()

    expect(page.get_by_role("heading", level=1, name=re.compile(r"^2026\b.*roster$"))).to_be_visible()
    everyone = _status_counts(page)
    assert sum(everyone.values()) == _shown_total(page) >= 60
    expect(page.get_by_role("img", name=re.compile("Completion by unit"))).to_be_visible()
    unit_table = page.get_by_role("table", name=re.compile(r"^Completion by unit"))
    expect(unit_table).to_be_visible()
    units = {r.get_by_role("rowheader").inner_text().strip(): int(r.get_by_role("cell").first.inner_text())
             for r in unit_table.get_by_role("row").all()[1:]}
    assert sum(units.values()) == sum(everyone.values())
    axe.check(page)

    # The largest unit and its two commonest statuses, so the filtered view has rows to compare.
    unit = max(units, key=units.get)
    page.get_by_text("Filter by status, unit, shift, rank or supervisor").click()
    page.get_by_role("group", name="Unit").get_by_label(unit, exact=True).check()
    page.get_by_role("button", name="Show roster").click()
    in_unit = _status_counts(page)
    statuses = sorted((label for label, n in in_unit.items() if n), key=in_unit.get, reverse=True)[:2]
    axe.check(page)
    status_group = page.get_by_role("group", name="Status")
    for label in statuses:
        status_group.get_by_label(label, exact=True).check()
    page.get_by_role("button", name="Show roster").click()

    expect(page.get_by_role("group", name="Unit").get_by_label(unit, exact=True)).to_be_checked()
    total = _shown_total(page)
    assert total == sum(in_unit[label] for label in statuses) == sum(_status_counts(page).values())
    assert 0 < total <= 50, "the filtered view should fit on one page"
    rows = _roster_rows(page)
    assert len(rows) == total
    assert {row["unit"] for row in rows} == {unit}
    assert {_status_label(row["status"], list(everyone)) for row in rows} <= set(statuses)
    axe.check(page)

    # A search by a last name seen on the list finds that member and only name matches.
    member = rows[-1]
    last_name = member["name"].split(",")[0]
    page.get_by_label("Name or badge").fill(last_name)
    page.get_by_role("button", name="Show roster").click()
    found = _roster_rows(page)
    assert member in found
    assert all(any(word.lower().startswith(last_name.lower()) for word in re.split(r"[\s,]+", row["name"]))
               for row in found)
    assert _shown_total(page) == len(found)
    axe.check(page)

    page.get_by_label("Name or badge").fill("")
    page.get_by_role("button", name="Show roster").click()
    assert len(_roster_rows(page)) == total
    axe.check(page)
    sort_by_badge = page.get_by_role("link", name="Badge", exact=True)
    expect(sort_by_badge).to_have_accessible_description("Sort ascending")
    sort_by_badge.click()
    badge_header = page.get_by_role("columnheader", name=re.compile(r"^Badge"))
    expect(badge_header).to_have_attribute("aria-sort", "ascending")
    expect(page.get_by_role("table", name=re.compile(r"roster, rows"))).to_contain_text("sorted by badge ascending")
    rows = _roster_rows(page)
    badges = [row["badge"] for row in rows]
    assert badges == sorted(badges)
    assert len(rows) == total
    axe.check(page)

    page.get_by_role("link", name=member["name"], exact=True).click()
    last, first = member["name"].split(", ", 1)
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"{first} {last}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"badge {member['badge']}")
    expect(page.get_by_role("heading", name="Exemption from the 2026", exact=False)).to_be_visible()
    axe.check(page)
    page.go_back()
    expect(badge_header).to_have_attribute("aria-sort", "ascending")
    axe.check(page)

    status_keys = {label: key for key, label in _status_keys(page).items()}
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="CSV", exact=True).click()
    assert csv_download.value.suggested_filename.endswith(".csv")
    with open(csv_download.value.path(), newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ROSTER_COLUMNS
    exported = [dict(zip(ROSTER_COLUMNS, line)) for line in table[1:]]
    assert [r["badge"] for r in exported] == badges
    assert {r["unit"] for r in exported} == {unit}
    assert {r["status"] for r in exported} <= {status_keys[label] for label in statuses}

    with page.expect_download() as xlsx_download:
        page.get_by_role("link", name="Excel (XLSX)").click()
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    # openpyxl goes by the file's extension, and Playwright keeps downloads under a bare name.
    workbook = tmp_path / xlsx_download.value.suggested_filename
    xlsx_download.value.save_as(workbook)
    sheet = load_workbook(workbook)["Roster"]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == [XLSX_TITLES[name] for name in ROSTER_COLUMNS]  # titles people read
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:P{total + 1}"
    assert [str(v[0]) for v in values[1:]] == badges
    assert {v[ROSTER_COLUMNS.index("unit")] for v in values[1:]} == {unit}

