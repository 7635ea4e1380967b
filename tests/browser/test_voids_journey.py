"""A void, followed everywhere it shows: HR voids Marcus Bell's fresh acknowledgment, checks his
receipt file on the upload page, the public verify page says "voided on", and Marcus sees why he
must sign again on his dashboard, his assignment and his history. axe-core audits every page."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from tests.browser.support import DEMO_PASSWORD, sign_in
from tests.browser.test_pages import Walk, officer_signs

REASON = "Signed under the wrong badge, HR ticket 4411"


class _TmpShots:
    """This journey's pages are not the screenshots of record: they go to the test's folder."""

    def __init__(self, folder):
        self.folder = folder

    def take(self, page, name: str, *, max_height: int | None = None) -> None:
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)


def test_a_void_shows_wherever_the_acknowledgment_does(page, axe, tmp_path):
    axe.watch(page)
    walk = Walk(page, axe, _TmpShots(tmp_path), "desktop")
    code = officer_signs(walk)
    today = datetime.now(ZoneInfo("America/Chicago")).date()

    # HR voids it from Marcus's record, with a reason and their own password.
    sign_in(page, "1004", axe=axe)
    axe.check(page)
    page.get_by_label("Badge number or name").fill("Bell")
    walk.click(page.get_by_role("button", name="Search"))
    walk.click(page.locator("main").get_by_role("link", name="Bell, Marcus"))
    walk.click(page.locator("main").get_by_role("link", name=re.compile(r"^Void")))
    page.get_by_label("Reason for voiding").fill(REASON)
    page.get_by_label("Your current password").fill(DEMO_PASSWORD)
    walk.click(page.get_by_role("button", name="Void this acknowledgment"))
    row = page.get_by_role("table", name=re.compile(r"^Every acknowledgment")).get_by_role("row").nth(1)
    expect(row).to_contain_text(f"Voided {today:%B} {today.day}, {today.year}")
    expect(row).to_contain_text(REASON)
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile(r"^Receipt PDF \(voided\)")).click()
    receipt = tmp_path / "handed-in.pdf"
    download.value.save_as(receipt)

    # Someone hands that receipt in: the upload page gives the command line's answer.
    walk.click(page.get_by_role("navigation", name="Main").get_by_role("link", name="Records"))
    walk.click(page.get_by_role("link", name=re.compile(r"^Check a receipt file")))
    page.get_by_label("Receipt file (PDF)").set_input_files(receipt)
    walk.click(page.get_by_role("button", name="Check the receipt"), "hr-check-receipt-voided")
    expect(page.get_by_role("heading", level=2)).to_contain_text(
        f"Voided: this receipt matches an acknowledgment voided on {today:%B} {today.day}, {today.year}")
    expect(page.locator("main")).to_contain_text(code)
    walk.sign_out()

    # The public verify page: voided, and when; no name, no reason.
    walk.go(f"/verify?code={code}", "public-verify-voided")
    result = page.get_by_role("status")
    expect(result).to_contain_text(f"voided on {today:%B} {today.day}, {today.year}")
    assert "Marcus" not in result.inner_text() and REASON not in result.inner_text()

    # Marcus: why he must sign again, on each page that shows the assignment.
    sign_in(page, "1002", axe=axe)
    walk.go("/training/", "officer-dashboard-voided")
    notice = page.locator(".void-notice")
    expect(notice).to_contain_text(REASON)
    expect(notice).to_contain_text("you must sign this policy again")
    walk.click(page.get_by_role("link", name=re.compile(r"^Sign again")), "officer-assignment-voided")
    expect(page.locator(".void-notice")).to_contain_text(REASON)
    expect(page.get_by_role("link", name="Read and sign the policy again")).to_be_visible()
    walk.go("/training/history", "officer-history-voided")
    history = page.get_by_role("table", name=re.compile(r"^Every policy acknowledgment"))
    expect(history).to_contain_text("Voided")
    expect(history).to_contain_text(REASON)
    expect(history.get_by_role("link", name=re.compile(r"^Download voided PDF"))).to_be_visible()
    walk.sign_out()
