"""The coordinator acting on many members at once, by keyboard alone: the roster narrowed to
everyone not done, two members ticked (the live count saying so), "Exempt…", the confirmation page
listing exactly them, a forgotten reason (the selection kept), the reason given, confirmed; then
every row that matches chosen for extra quiz attempts, refused on a wrong password. axe-core on
every page."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import annual_cycle_path, sign_in


def tab_to(page, locator, limit: int = 400) -> None:
    """Press Tab until ``locator`` has the focus, as a keyboard user moves through the page."""
    handle = locator.element_handle()
    for _ in range(limit):
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {locator}")


def _names(page, heading: str) -> list[str]:
    """The names listed in the confirmation table under ``heading``."""
    table = page.get_by_role("table", name="Who the action affects")
    return [n.strip() for n in table.get_by_role("rowheader").all_inner_texts()]


def test_exempt_two_members_not_done_by_keyboard(page, axe):
    axe.watch(page)
    sign_in(page, "1003", axe=axe)
    axe.check(page)
    roster = annual_cycle_path(page) + "/roster"
    page.goto(roster)
    axe.check(page)

    # Filter: everyone not done.
    tab_to(page, page.get_by_text("Filter by status, unit, shift, rank or supervisor"))
    page.keyboard.press("Enter")
    not_done = page.get_by_role("group", name="Status").get_by_role("checkbox", name=re.compile("^Not done"))
    tab_to(page, not_done)
    page.keyboard.press("Space")
    expect(not_done).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Show roster"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"status=not_done"))
    expect(page.get_by_text(re.compile(r"^Showing the [\d,]+ rows? not done"))).to_be_visible()
    axe.check(page)

    table = page.get_by_role("table", name=re.compile(r"roster, rows"))
    count = page.get_by_role("status").filter(has_text=re.compile("selected|Tick"))
    expect(count).to_have_text("No rows selected.")
    actions = page.get_by_role("group", name="Act on selected members")
    expect(actions.get_by_role("button", name="Exempt…")).to_be_visible()

    # "Select all on this page" ticks every row, and again clears them; the count follows.
    select_page = actions.get_by_role("checkbox", name=re.compile(r"^Select all \d+ rows on this page"))
    tab_to(page, select_page)
    page.keyboard.press("Space")
    rows_on_page = table.get_by_role("checkbox").count()
    expect(count).to_have_text(f"{rows_on_page} rows selected on this page.")
    page.keyboard.press("Space")
    expect(count).to_have_text("No rows selected.")

    # Tick two members who are not the coordinator (badge 1003).
    chosen = []
    for box in table.get_by_role("checkbox").all():
        name = box.get_attribute("id") and page.locator(f"label[for='{box.get_attribute('id')}']").inner_text()
        if "badge 1003" in name:
            continue
        tab_to(page, box)
        page.keyboard.press("Space")
        chosen.append(re.match(r"Select (.+), badge", name).group(1))
        if len(chosen) == 2:
            break
    expect(count).to_have_text("2 rows selected on this page.")
    tab_to(page, actions.get_by_role("button", name="Exempt…"))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Exempt: check who is affected")
    listed = _names(page, "affected")
    assert sorted(" ".join(reversed(n.split(", ", 1))) for n in listed) == sorted(chosen)
    expect(page.get_by_role("heading", level=2, name="Exempt: 2 members")).to_be_visible()
    axe.check(page)

    # Confirm without a reason: refused, nothing done, the same two still listed.
    confirm = page.get_by_role("button", name="Exempt: 2 members")
    tab_to(page, confirm)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Give the reason for the exemption")
    assert _names(page, "affected") == listed
    axe.check(page)

    tab_to(page, page.get_by_label("Reason for the exemption"))
    page.keyboard.type("Academy in-service week")
    tab_to(page, page.get_by_role("button", name="Exempt: 2 members"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Exempted 2 members from the 2026")).to_be_visible()
    assert "status=not_done" in page.url
    axe.check(page)
    # They are no longer among those not done; searching one shows them exempt.
    page.goto(f"{roster}?q={chosen[0].split()[-1]}")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=listed[0], exact=True))
    expect(row).to_contain_text("Exempt")
    expect(row).to_contain_text("Academy in-service week")
    axe.check(page)


def test_every_row_that_matches_and_a_wrong_password(page, axe):
    axe.watch(page)
    sign_in(page, "1003", axe=axe)
    axe.check(page)
    roster = annual_cycle_path(page) + "/roster"
    page.goto(f"{roster}?status=quiz_failed")
    axe.check(page)
    total = int(re.match(r"[\d,]+", page.get_by_text(re.compile(r"^[\d,]+ rows? match")).inner_text()).group()
                .replace(",", ""))
    actions = page.get_by_role("group", name="Act on selected members")
    every = actions.get_by_role("checkbox", name=re.compile(r"^Select all [\d,]+ rows? that match the filters"))
    tab_to(page, every)
    page.keyboard.press("Space")
    expect(page.get_by_role("status").filter(has_text="selected")).to_have_text(
        re.compile(rf"^All {total} rows that match the filters are selected, on every page\."))
    tab_to(page, actions.get_by_role("button", name="Grant extra quiz attempts…"))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Grant extra quiz attempts: check who is affected")
    granted = _names(page, "affected")
    assert 0 < len(granted) <= total
    axe.check(page)
    page.get_by_label("Reason").fill("Reviewed the lessons together")
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name=re.compile(r"^Grant extra quiz attempts: \d+ assignments?")).click()
    expect(page.get_by_role("alert")).to_contain_text("That is not your current password.")
    assert _names(page, "affected") == granted
    axe.check(page)
