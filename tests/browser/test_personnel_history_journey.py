"""Personnel history in the browser: an administrator records a transfer from a past date on a
member's account page and previews a dated import; HR's evidence as of an earlier date still shows
the member where they stood then. axe-core on every page."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.support import sign_in

HEADER = "badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role"


def test_a_transfer_from_a_date_leaves_the_earlier_record_as_it_was(page, axe, tmp_path):
    axe.watch(page)
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    moved = (today - timedelta(days=2)).isoformat()
    before = (today - timedelta(days=3)).isoformat()
    # Typed as the date picker takes them (ISO); shown on the pages in words.
    moved_words = f"{today - timedelta(days=2):%B} {(today - timedelta(days=2)).day}, {(today - timedelta(days=2)).year}"

    sign_in(page, "1005", axe=axe)
    axe.check(page)
    page.goto("/admin/members?q=Bell")
    axe.check(page)
    page.get_by_role("link", name="Bell, Marcus").click()
    expect(page.get_by_role("heading", level=2, name="Personnel record")).to_be_visible()
    axe.check(page)
    page.get_by_label("Unit").fill("Traffic")
    page.get_by_label("Takes effect on (optional)").fill(moved)
    page.get_by_role("button", name="Record the change").click()
    expect(page.get_by_role("status")).to_contain_text(f"Recorded for Marcus Bell from {moved_words}")
    history = page.get_by_role("table", name="Recorded personnel changes, latest effective first")
    expect(history.get_by_role("row").nth(1)).to_contain_text(re.compile(rf"{moved_words}\s*unit\s*Traffic"))
    axe.check(page)

    # A dated import: the preview says when it takes effect.
    page.goto("/admin/personnel/import")
    axe.check(page)
    csv = tmp_path / "people.csv"
    csv.write_text(HEADER + "\n1001,Dana,Whitfield,dana.whitfield@example.org,Officer,Patrol North,Night,,"
                   "2015-03-02,active,officer\n", encoding="utf-8")
    page.get_by_label("Personnel file (CSV)").set_input_files(csv)
    ahead_day = today + timedelta(days=14)
    ahead = ahead_day.isoformat()
    page.get_by_label("Changes take effect on (optional)").fill(ahead)
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("dt:text-is('Takes effect on') + dd")).to_contain_text(
        f"{ahead_day:%B} {ahead_day.day}, {ahead_day.year} (a future date")
    axe.check(page)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state("load")

    # HR: as of the day before the transfer, Bell was still in Patrol South.
    sign_in(page, "1004", axe=axe)
    axe.check(page)
    page.get_by_label("Badge number or name").fill("Bell")
    page.get_by_role("button", name="Search").click()
    axe.check(page)
    page.locator("main").get_by_role("link", name="Bell, Marcus").click()
    axe.check(page)
    page.locator("main input[name=on]").fill(before)
    page.get_by_role("button", name="Answer").click()
    standing = page.locator("#standing-on-date")
    expect(standing.locator("dt:text-is('Unit') + dd")).to_have_text("Patrol South")
    axe.check(page)
    page.locator("main input[name=on]").fill(moved)
    page.get_by_role("button", name="Answer").click()
    expect(standing.locator("dt:text-is('Unit') + dd")).to_have_text("Traffic")
    axe.check(page)
    axe.assert_every_page_checked()
