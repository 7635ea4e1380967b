"""Every main page, as each role sees it, at desktop and phone sizes: no axe-core violation, no
sideways scrolling of the page, and a screenshot in docs/screenshots/ when the run was started with
``--screenshots`` (``python -m pytest tests/browser/test_pages.py --screenshots`` refreshes them).

One walk per size on one server: Marcus Bell (1002, half way) finishes his training and signs, so
the coordinator, HR and the public verify page then show a real, fresh acknowledgment.
"""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser.support import DEMO_PASSWORD, choices, read_quiz, sign_in

SIZES = {"desktop": "page", "phone": "phone_page"}
#: Long pages (the quiz, item analysis, the audit log) are photographed down to this many screens.
SCREENS_PER_SHOT = 4


class Walk:
    """Visits pages in one browser tab and holds each to the same standard."""

    def __init__(self, page, axe, screenshots, size: str):
        self.page, self.axe, self.screenshots, self.size = page, axe, screenshots, size
        self.urls: dict[str, str] = {}

    def look(self, name: str) -> None:
        """Audit the page as it is now, check it fits the viewport's width, and photograph it."""
        page = self.page
        self.axe.check(page)
        width = page.viewport_size["width"]
        scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name} ({page.url}) scrolls sideways: {scroll_width} px in a {width} px viewport"
        self.screenshots.take(page, f"{name}-{self.size}", max_height=SCREENS_PER_SHOT * page.viewport_size["height"])
        self.urls[name] = page.url

    def go(self, path: str, name: str) -> None:
        self.page.goto(path)
        self.look(name)

    def click(self, locator, name: str | None = None) -> None:
        """Follow a link or press a button and wait for the page it leads to."""
        with self.page.expect_navigation():
            locator.click()
        if name:
            self.look(name)
        else:
            self.axe.check(self.page)

    def sign_out(self) -> None:
        self.click(self.page.get_by_role("button", name="Sign out"))


def officer_signs(walk: Walk) -> str:
    """Marcus Bell reads the rest of the lessons, passes the quiz with one miss and signs; returns
    the verification code on his signed page. Ends signed out."""
    page = walk.page
    sign_in(page, "1002", axe=walk.axe)
    walk.look("officer-dashboard")
    walk.click(page.get_by_role("link", name=re.compile(r"^Continue")).first, "officer-assignment")

    walk.click(page.locator("main a[href*='/lessons/']").first, "officer-lesson")
    while True:
        button = page.get_by_role("button", name=re.compile(r"^Mark as read"))
        to_quiz = "quiz" in button.inner_text()
        walk.click(button)
        if to_quiz:
            break
    assert page.url.endswith("/quiz")
    walk.click(page.get_by_role("button", name="Start the quiz"), "officer-quiz")

    for input_id in choices(read_quiz(page), wrong_count=1):
        page.locator(f"#{input_id}").check()
    walk.click(page.get_by_role("button", name="Submit answers"), "officer-quiz-result")
    assert "passed" in page.locator("main").inner_text().lower()

    walk.click(page.locator("main").get_by_role("link", name="Read and sign the policy"), "officer-sign")
    page.get_by_label("Full name").fill("Marcus Bell")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    walk.click(page.get_by_role("button", name="Sign the acknowledgment"), "officer-signed")
    code = page.locator("main dd strong").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4})+", code), code

    walk.click(page.get_by_role("link", name="See all your acknowledgments"), "officer-history")
    assert code in page.locator("main table").inner_text()
    walk.click(page.get_by_role("navigation", name="Main").get_by_role("link", name="Policy library"),
               "officer-library")
    walk.click(page.locator("main .card h3 a").first, "officer-library-policy")
    assert code in page.locator("main .signatures").inner_text()
    walk.sign_out()
    return code


def _coordinator(walk: Walk) -> None:
    page = walk.page
    sign_in(page, "1003", axe=walk.axe)
    walk.go("/coordinator/", "coordinator-home")
    home = page.url
    walk.click(page.get_by_role("link", name="roster").first, "coordinator-roster")
    roster = page.url
    # Two members not done, ticked for an exemption: the confirmation page (nothing is applied).
    walk.go(f"{roster}?status=not_done", "coordinator-roster-not-done")
    for box in page.locator("table.roster-table input.row-select").all()[:2]:
        box.check()
    walk.click(page.get_by_role("button", name="Exempt…"), "coordinator-roster-action")
    page.goto(roster)
    walk.click(page.locator("table.roster-table tbody th a").first, "coordinator-member")
    for link, name in [("/items", "coordinator-items"), ("/reminders", "coordinator-reminders"),
                       ("/exemptions", "coordinator-exemptions")]:
        page.goto(home)
        walk.click(page.locator(f"main a[href$='{link}']").first, name)
    walk.go("/coordinator/cycles/new", "coordinator-new-cycle")
    walk.sign_out()


def _supervisor(walk: Walk) -> None:
    page = walk.page
    sign_in(page, "1006", axe=walk.axe)
    walk.look("supervisor-home")
    walk.click(page.get_by_role("link", name=re.compile("roster of your members")).first, "supervisor-roster")
    walk.click(page.locator("table.roster-table tbody th a").first, "supervisor-member")
    page.go_back()
    walk.click(page.get_by_role("link", name="Remind your members who are not done"), "supervisor-reminders")
    walk.sign_out()


def _hr(walk: Walk) -> None:
    page = walk.page
    sign_in(page, "1004", axe=walk.axe)
    walk.go("/hr/", "hr-home")
    page.get_by_label("Badge number or name").fill("Bell")
    walk.click(page.get_by_role("button", name="Search"), "hr-search")
    walk.click(page.locator("main").get_by_role("link", name="Bell, Marcus"), "hr-member")
    today = datetime.now(ZoneInfo("America/Chicago")).date().isoformat()
    page.locator("main input[name=on]").fill(today)
    walk.click(page.get_by_role("button", name="Answer"), "hr-as-of")
    walk.go("/hr/export", "hr-export")
    walk.sign_out()


def _admin(walk: Walk) -> None:
    page = walk.page
    sign_in(page, "1005", axe=walk.axe)
    walk.go("/admin/", "admin-home")
    walk.go("/admin/members?q=Bell", "admin-members")
    walk.go("/admin/personnel/import", "admin-import")
    walk.go("/admin/audit/", "admin-audit")
    walk.sign_out()


@pytest.mark.parametrize("size", SIZES)
def test_main_pages(request, size, axe, screenshots):
    """Each role's main pages pass axe-core and fit the screen, desktop and phone."""
    page = request.getfixturevalue(SIZES[size])
    axe.watch(page)
    walk = Walk(page, axe, screenshots, size)

    walk.go("/sign-in", "public-sign-in")
    code = officer_signs(walk)
    _coordinator(walk)
    _supervisor(walk)
    _hr(walk)
    _admin(walk)
    walk.go(f"/verify?code={code}", "public-verify")
    assert "Yes: this code matches" in page.locator("main").inner_text()

    assert len(walk.urls) == 34
