"""Printing: the roster, the officer's signed page and history, and HR's member page print as
records. The screen's chrome (navigation, sign-out, buttons, filters, pagination, download and action
links) is left off the paper; the tables print, their header rows repeat on every page, and the
roster goes landscape."""
from __future__ import annotations

import re
import shutil
import subprocess

from lms.config import PROJECT_ROOT
from tests.browser.support import Screenshots, annual_cycle_path, sign_in
from tests.browser.test_pages import Walk, officer_signs

LETTER_PORTRAIT = b"/MediaBox [0 0 612 792]"
LETTER_LANDSCAPE = b"/MediaBox [0 0 792 612]"


def printed(page) -> bytes:
    """The page as the browser prints it, with the page size the stylesheet asks for."""
    page.emulate_media(media="print")
    return page.pdf(prefer_css_page_size=True)


def page_sizes(pdf: bytes) -> list[bytes]:
    assert pdf.startswith(b"%PDF-")
    return re.findall(rb"/MediaBox \[[^\]]*\]", pdf)


def assert_hidden(page, *selectors: str) -> None:
    for selector in selectors:
        for element in page.locator(selector).all():
            assert not element.is_visible(), f"{selector} prints on {page.url}"


def assert_shown(page, *selectors: str) -> None:
    for selector in selectors:
        assert page.locator(selector).first.is_visible(), f"{selector} does not print on {page.url}"


SCREEN_ONLY = ("nav[aria-label=Main]", ".sign-out button", ".sign-out a", ".site-footer", ".skip-link",
               "main .button", ".crumbs")


def test_roster_prints_landscape_without_the_controls(page, axe):
    axe.watch(page)
    sign_in(page, "1003", axe=axe)
    axe.check(page)
    page.goto(f"{annual_cycle_path(page, axe)}/roster")
    axe.check(page)
    pdf = printed(page)

    assert_hidden(page, *SCREEN_ONLY, ".roster-filters", ".pagination", ".exports")
    assert_shown(page, ".roster-table", ".unit-summary", ".site-header .brand")
    assert re.match(r"Printed [A-Z][a-z]+ \d{1,2}, \d{4}, \d{1,2}:\d\d [ap]\.m\. C[SD]T by Renee Okafor, badge 1003\.",
                    page.locator("main .print-only").inner_text())
    assert "rows match: 2026 annual cycle" in page.locator("main").inner_text()
    assert page.locator(".roster-table thead").evaluate("el => getComputedStyle(el).display") == "table-header-group"

    sizes = page_sizes(pdf)
    assert len(sizes) >= 3 and set(sizes) == {LETTER_LANDSCAPE}
    if shutil.which("pdftotext"):
        for number in range(2, len(sizes) + 1):
            text = subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), "-layout", "-", "-"],
                                  input=pdf, capture_output=True, check=True).stdout.decode()
            if "December 31, 2026" in text:  # a page of member rows starts with the column headings
                assert re.search(r"Name\s.*Badge\s+Status\s+Unit", text), f"page {number} has no header row"


def test_receipt_history_and_hr_record_print_as_records(page, axe):
    axe.watch(page)
    walk = Walk(page, axe, Screenshots(PROJECT_ROOT / "docs" / "screenshots", enabled=False), "desktop")
    code = officer_signs(walk)  # signs out at the end

    sign_in(page, "1002", axe=axe)
    axe.check(page)
    page.goto(walk.urls["officer-history"])
    axe.check(page)
    history = printed(page)
    assert_hidden(page, *SCREEN_ONLY, "main .no-print")
    assert_shown(page, "main table", ".site-header .who")
    assert "Receipt" not in page.locator("main thead").inner_text()
    assert code in page.locator("main tbody").inner_text()
    assert page_sizes(history) == [LETTER_PORTRAIT]

    page.emulate_media(media="screen")
    page.goto(walk.urls["officer-signed"])
    axe.check(page)
    receipt = printed(page)
    assert_hidden(page, *SCREEN_ONLY, "main .no-print")
    assert_shown(page, "main dl.facts", ".site-header .who", "main .print-only")
    assert code in page.locator("main").inner_text()
    assert "/verify" in page.locator("main .print-only").inner_text()
    assert page_sizes(receipt) == [LETTER_PORTRAIT]
    page.emulate_media(media="screen")
    walk.sign_out()

    sign_in(page, "1004", axe=axe)
    axe.check(page)
    page.goto("/hr/members?q=1002")
    axe.check(page)
    with page.expect_navigation():
        page.get_by_role("link", name="Bell, Marcus").click()
    axe.check(page)
    record = printed(page)
    assert_hidden(page, *SCREEN_ONLY, ".hr-actions", "main form", "#asof-heading")
    assert_shown(page, "table.hr-acks", ".site-header .who")
    assert not page.locator("table.hr-acks thead th", has_text="Actions").is_visible()
    assert code in page.locator("table.hr-acks").inner_text()
    assert page_sizes(record) == [LETTER_PORTRAIT]
