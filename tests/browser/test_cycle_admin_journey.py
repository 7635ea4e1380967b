"""The coordinator's cycle administration in a browser: a second cycle in the demo year opened
after its preview, then edited (previewed, confirmed), closed and deleted, with axe on every page."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.support import annual_cycle_path, sign_in


def test_coordinator_opens_edits_closes_and_deletes_a_cycle(page, axe):
    axe.watch(page)
    year = datetime.now(ZoneInfo("America/Chicago")).year
    sign_in(page, "1003", axe=axe)

    # The demo year's annual cycle has signatures: it cannot be deleted, and the page says why.
    page.goto(f"{annual_cycle_path(page, axe)}/delete")
    expect(page.get_by_text("This cycle cannot be deleted")).to_be_visible()
    expect(page.get_by_role("button", name="Delete the cycle")).to_have_count(0)
    axe.check(page)

    # A second cycle the same year: previewed with its member count, then opened.
    page.goto("/coordinator/")
    page.get_by_role("link", name="Open a cycle").click()
    axe.check(page)
    page.get_by_label("Year").fill(str(year))
    page.get_by_label("Name").fill(f"{year} new hires")
    page.get_by_label("Due date").fill(f"{year}-12-31")
    units = page.get_by_role("group", name="Units").get_by_role("checkbox")
    units.first.check()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Check before you open it")).to_be_visible()
    preview = page.locator(".confirm-panel").inner_text()
    count = int(re.search(r"assign\s+(\d+) members?", preview).group(1))
    assert count > 0 and f"{year} new hires" in preview
    axe.check(page)
    page.get_by_role("button", name=re.compile(r"^Open the cycle for \d+ members?$")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{year} new hires roster")
    expect(page.get_by_text(f"Opened the {year} new hires cycle: {count} member")).to_be_visible()
    axe.check(page)

    # Edited: a new name, everyone as the audience; the preview says who joins.
    page.get_by_role("link", name="Edit this cycle").click()
    expect(page.get_by_label("Name")).to_have_value(f"{year} new hires")
    axe.check(page)
    page.get_by_label("Name").fill(f"{year} remedial")
    units.first.uncheck()
    page.get_by_role("button", name="Preview the changes").click()
    panel = page.locator(".confirm-panel")
    expect(panel).to_contain_text(f"Name: {year} new hires → {year} remedial")
    expect(panel).to_contain_text("Nothing signed is ever removed")
    axe.check(page)
    page.get_by_role("button", name="Save these changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{year} remedial roster")
    expect(page.get_by_text(f"Saved the {year} remedial cycle")).to_be_visible()
    axe.check(page)

    # Closed: a confirmation page first; the roster stays, marked closed.
    page.get_by_role("link", name="Close this cycle").click()
    expect(page.get_by_text("Closing the cycle stops new signatures")).to_be_visible()
    axe.check(page)
    page.get_by_role("button", name="Close the cycle").click()
    expect(page.get_by_text(re.compile(r"Closed on .*: no more signatures"))).to_be_visible()
    expect(page.get_by_role("link", name="Edit this cycle")).to_have_count(0)
    axe.check(page)

    # Deleted: nobody has started it, so the confirmation page offers it.
    page.get_by_role("link", name="Delete this cycle").click()
    expect(page.get_by_text("Nobody has started this cycle")).to_be_visible()
    axe.check(page)
    page.get_by_role("button", name="Delete the cycle").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Training cycles")
    expect(page.get_by_text(f"Deleted the {year} remedial cycle.")).to_be_visible()
    expect(page.get_by_role("link", name=f"{year} remedial roster")).to_have_count(0)
    axe.check(page)


def test_the_cycle_forms_fit_a_phone(phone_page, axe):
    page = phone_page
    axe.watch(page)
    sign_in(page, "1003", axe=axe)
    page.goto("/coordinator/cycles/new")
    page.get_by_role("button", name="Preview").click()
    axe.check(page)
    page.goto(f"{annual_cycle_path(page, axe)}/edit")
    axe.check(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]
