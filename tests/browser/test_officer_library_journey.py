"""Issue 14: the officer's policy library and the due-date banner, in a real browser.

Demo officer 1002, Marcus Bell, is half way through this year's cycle (due December 31). He sees
how many days he has left, opens the policy library, searches it, follows a result to its heading
in the full text, and prints the policy. axe-core checks every page.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.browser.support import sign_in


@pytest.fixture(autouse=True)
def patient_expectations():
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=None)


def countdown() -> str:
    """The banner's words for the demo cycle, due December 31 this year, department time."""
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    days = (date(today.year, 12, 31) - today).days
    head = {0: "Due today", 1: "Due tomorrow"}.get(days, f"Due in {days} days")
    return f"{head} — December 31, {today.year}"


def test_banner_library_search_and_print(page, axe):
    axe.watch(page)
    sign_in(page, "1002", axe=axe)
    banner = page.locator("main .due-banner")
    expect(banner).to_have_text(countdown())
    expect(banner.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-12-31$"))
    axe.check(page)
    page.get_by_role("link", name=re.compile(r"^Continue")).first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Policy 16.3 Social Media")
    expect(page.locator("main .due-banner")).to_have_text(countdown())
    axe.check(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Policy library").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Policy library")
    expect(page.locator("main")).to_contain_text("You have not signed this version yet.")
    axe.check(page)

    page.get_by_label("Search the policies").fill("instant messaging")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("heading", name=re.compile(r"passages? found for “instant messaging”"))
    expect(results).to_be_visible()
    expect(page.locator("main .search-hits mark").first).to_have_text(re.compile("instant messaging", re.I))
    axe.check(page)

    # A result opens the full text at its heading, every occurrence marked.
    hit = page.locator("main .search-hits a").first
    heading = hit.inner_text().strip()
    hit.click()
    expect(page).to_have_url(re.compile(r"/training/library/\d+\?q=instant\+messaging#section-\d+$"))
    anchor = page.url.rsplit("#", 1)[1]
    target = page.locator(f"#{anchor}")
    expect(target).to_have_text(heading)
    expect(target).to_be_in_viewport()
    assert page.locator(".library-text mark").count() >= 1
    axe.check(page)

    # Printing: a button (shown by its script) and a page that prints the text without the search.
    print_button = page.get_by_role("button", name="Print this policy")
    expect(print_button).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator(".library-search")).to_be_hidden()
    expect(print_button).to_be_hidden()
    expect(page.get_by_role("heading", name=re.compile("^Full text of policy 16.3"))).to_be_visible()
    expect(page.locator(".policy-document h3", has_text="PURPOSE")).to_be_visible()
    page.emulate_media(media="screen")


def test_library_fits_a_phone(phone_page, axe):
    page = phone_page
    axe.watch(page)
    sign_in(page, "1001", axe=axe)
    axe.check(page)
    page.goto("/training/library?q=off-duty")
    expect(page.get_by_role("heading", name=re.compile("found for “off-duty”"))).to_be_visible()
    axe.check(page)
    page.locator("main .card h3 a").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Policy 16.3 Social Media")
    axe.check(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the policy page scrolls sideways on a phone: {width} px"
