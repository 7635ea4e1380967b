"""The sergeant's journey: Tomas Reyna (1006, the demo's sergeant) lands on his own page, opens the
2026 roster of his Patrol North squad, narrows it to those not started, opens a member's progress,
downloads the view as CSV, and reminds the members who are not done."""
from __future__ import annotations

import csv
import re

from playwright.sync_api import expect

from tests.browser.support import sign_in


def _roster_rows(page) -> list[dict[str, str]]:
    """The rows of the roster table as the sergeant reads them."""
    table = page.get_by_role("table", name=re.compile(r"roster, rows"))
    rows = []
    for row in table.get_by_role("row").all()[1:]:
        cells = [" ".join(c.split()) for c in row.get_by_role("cell").all_inner_texts()]
        # Badge, status, unit, shift, rank, supervisor, ...
        rows.append({"name": row.get_by_role("rowheader").inner_text().strip(), "badge": cells[0],
                     "status": cells[1], "supervisor": cells[5].split(":")[0].strip()})
    return rows


def _shown_total(page) -> int:
    sentence = page.get_by_text(re.compile(r"^[\d,]+ rows? match")).inner_text()
    return int(re.match(r"[\d,]+", sentence).group().replace(",", ""))


def test_sergeant_sees_filters_opens_and_reminds_his_squad(page, axe, tmp_path):
    axe.watch(page)
    sign_in(page, "1006", axe=axe)

    # He lands on his own page, not the officer's.
    expect(page.get_by_role("heading", level=1, name="My people")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="My people")).to_be_visible()
    reporting = int(re.search(r"(\d+) members? reports? to you",
                              page.locator("main").inner_text()).group(1))
    assert reporting >= 2
    axe.check(page)

    page.get_by_role("link", name=re.compile(r"^2026\b.* roster of your members$")).click()
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^2026\b.*: your members$"))).to_be_visible()
    total = _shown_total(page)
    rows = _roster_rows(page)
    # Only his squad: every row reports to him, Dana Whitfield among them, and no one else.
    assert len(rows) == total == reporting
    assert {row["supervisor"] for row in rows} == {"1006"}
    assert "Whitfield, Dana" in {row["name"] for row in rows}
    axe.check(page)

    # Narrowed to the members not started, through the coordinator's filter form.
    page.get_by_text("Filter by status, unit, shift, rank or supervisor").click()
    page.get_by_role("group", name="Status").get_by_label("Not started", exact=True).check()
    page.get_by_role("button", name="Show roster").click()
    expect(page.get_by_role("group", name="Status").get_by_label("Not started", exact=True)).to_be_checked()
    not_started = _roster_rows(page)
    assert 1 <= len(not_started) <= total
    assert {row["status"] for row in not_started} == {"Not started"}
    axe.check(page)

    # The view downloads as CSV with the same members.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV", exact=True).click()
    path = tmp_path / "squad.csv"
    download_info.value.save_as(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert sorted(r["badge"] for r in exported) == sorted(r["badge"] for r in not_started)
    assert {r["supervisor_badge"] for r in exported} == {"1006"}

    # A member's progress, read only.
    page.get_by_role("link", name="Whitfield, Dana", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dana Whitfield")
    expect(page.get_by_role("heading", level=3, name=re.compile(r"^Lessons: "))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Exempt|Grant"))).to_have_count(0)
    axe.check(page)
    page.go_back()
    axe.check(page)

    # Reminders to his members who are not done: a preview, a confirmation, then queued.
    page.get_by_role("link", name="Remind your members who are not done").click()
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Reminders to your members"))).to_be_visible()
    expect(page.get_by_role("heading", name="Schedule")).to_have_count(0)
    count = int(re.search(r"Send (\d+) reminders?", page.locator("main").inner_text()).group(1))
    assert count >= 1
    axe.check(page)
    page.get_by_role("button", name=re.compile(r"^Send \d+ reminder")).click()
    # Not confirmed: the box must be ticked.
    expect(page.get_by_text("Error: Tick the box to confirm")).to_be_visible()
    axe.check(page)
    page.get_by_label(re.compile(r"^I have checked the list above")).check()
    page.get_by_role("button", name=re.compile(r"^Send \d+ reminder")).click()
    expect(page.get_by_text(re.compile(rf"Queued {count} reminders? to your members"))).to_be_visible()
    expect(page.get_by_text("Nobody to remind right now.")).to_be_visible()
    axe.check(page)
