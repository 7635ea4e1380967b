"""Issue 17's small defects seen from outside, each with the check that would have caught it:
"Select all that apply." said twice; a question's error read after its scenario; role menus
without an empty first choice; an invalid date shown blank; date hints in a format the picker does
not show; the receipt link off a phone's screen; the audit log cut off on a laptop. axe-core
checks every page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import DEMO_PASSWORD, choices, read_quiz, sign_in

PHONE_WIDTH = 390


@pytest.fixture(autouse=True)
def patient_expectations():
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=None)


def _read_every_lesson(page, axe) -> None:
    page.locator("main a[href*='/lessons/']").first.click()
    while True:
        axe.check(page)
        button = page.get_by_role("button", name=re.compile(r"^Mark as read"))
        to_quiz = "quiz" in button.inner_text()
        with page.expect_navigation():
            button.click()
        if to_quiz:
            break


def test_quiz_and_receipt_link_on_a_phone(phone_page, axe):
    page = phone_page
    axe.watch(page)
    sign_in(page, "1002", axe=axe)
    axe.check(page)
    page.get_by_role("link", name=re.compile(r"^Continue")).first.click()
    axe.check(page)
    _read_every_lesson(page, axe)
    axe.check(page)
    page.get_by_role("button", name="Start the quiz").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Scenario quiz")
    axe.check(page)

    # "Select all that apply." once per multiple-answer question, never twice. The draw is random
    # and may hold none; tests/test_officer.py draws until one is held, so the rule is always tested.
    multiple = page.locator("fieldset:has(input[type=checkbox])")
    for i in range(multiple.count()):
        question = multiple.nth(i).locator("xpath=ancestor::li[1]")
        said = re.findall(r"select all that apply", question.inner_text(), re.I)
        assert len(said) == 1, f"question {i + 1} says it {len(said)} times: {question.inner_text()[:300]}"

    # Submitted with the first question unanswered: its error is the fieldset's first description.
    picks = choices(read_quiz(page), wrong_count=1)
    first_name = page.locator(f"#{picks[0]}").get_attribute("name")
    for input_id in picks:
        if page.locator(f"#{input_id}").get_attribute("name") != first_name:
            page.locator(f"#{input_id}").check()
    page.get_by_role("button", name="Submit answers").click()
    expect(page.locator(".error-summary")).to_be_visible()
    axe.check(page)
    fieldset = page.locator(f"fieldset:has(input[name='{first_name}'])")
    described = fieldset.get_attribute("aria-describedby").split()
    error = page.locator(f"#{described[0]}")
    expect(error).to_have_text(re.compile(r"^Error: "))
    order = page.evaluate("""([e, s]) => !!(document.getElementById(e).compareDocumentPosition(
        document.getElementById(s)) & Node.DOCUMENT_POSITION_FOLLOWING)""", [described[0], described[1]])
    assert described[1].endswith("-scenario") and order, "the error must come before the scenario"

    page.locator(f"#{picks[0]}").check()
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("passed")
    axe.check(page)
    page.locator("main").get_by_role("link", name="Read and sign the policy").click()
    axe.check(page)
    page.get_by_label("Full name").fill("Marcus Bell")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign the acknowledgment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acknowledgment signed")
    axe.check(page)

    # My acknowledgments on a phone: the receipt link is on the screen, not beyond its right edge.
    page.get_by_role("link", name="See all your acknowledgments").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My acknowledgments")
    axe.check(page)
    link = page.get_by_role("link", name=re.compile(r"^Download PDF"))
    box = link.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, f"receipt link off screen: {box}"
    wrap = page.locator("main .table-wrap")
    overflow = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the acknowledgments table scrolls sideways by {overflow} px"
    signed = page.locator("main td[data-label=Signed] time")
    expect(signed).to_have_text(re.compile(r"^[A-Z][a-z]+ \d{1,2}, \d{4}, \d{1,2}:\d\d [ap]\.m\. C[SD]T$"))


def test_admin_forms_menus_dates_and_audit_log(page, axe, tmp_path):
    axe.watch(page)
    sign_in(page, "1005", axe=axe)
    axe.check(page)
    page.goto("/admin/members?q=Bell")
    axe.check(page)
    page.locator("main").get_by_role("link", name=re.compile("Bell")).first.click()
    axe.check(page)
    # Each required role menu opens on an empty "Choose a role".
    for prefix in ("grant", "revoke"):
        menu = page.locator(f"select[name='{prefix}-role']")
        if menu.count():
            first = menu.locator("option").first
            assert first.get_attribute("value") == "" and first.inner_text() == "Choose a role"
            assert menu.evaluate("el => el.required")
            assert menu.input_value() == ""
    # Date hints read as the picker shows a date, never YYYY-MM-DD.
    assert "YYYY" not in page.locator("main").inner_text()
    # An invalid date comes back as typed, beside its error, not as a blank date picker.
    effective = page.locator("input[name='personnel-effective']")
    effective.evaluate("el => { el.type = 'text'; }")
    effective.fill("31/12/2026")
    page.get_by_role("button", name=re.compile("Record")).click()
    page.wait_for_load_state("load")
    effective = page.locator("input[name='personnel-effective']")
    expect(effective).to_have_value("31/12/2026")
    expect(effective).to_be_visible()
    assert effective.get_attribute("type") == "text"
    expect(page.locator("#personnel-effective-error")).to_contain_text("YYYY-MM-DD")
    axe.check(page)

    # The audit log fits a 1280 px screen: no column cut off behind a sideways scroll, even with
    # the long unbroken values events carry (a file's name and SHA-256).
    page.goto("/admin/personnel/import")
    axe.check(page)
    csv = tmp_path / "personnel-export-from-the-hr-system-full-roster-2026-12-01.csv"
    csv.write_text("badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role\n"
                   "1001,Dana,Whitfield,dana.whitfield@example.org,Officer,Patrol North,Night,,2015-03-02,"
                   "active,officer\n", encoding="utf-8")
    page.get_by_label("Personnel file (CSV)").set_input_files(csv)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.wait_for_load_state("load")
    axe.check(page)
    page.goto("/admin/audit/")
    axe.check(page)
    wrap = page.locator("main .table-wrap")
    overflow = wrap.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the audit log table is cut off by {overflow} px at 1280 px"
    assert not re.search(r"\d{4}-\d\d-\d\dT", page.locator("main table").inner_text())

    for path in ("/admin/personnel/import", "/admin/audit/?since=12%2F31%2F2026"):
        page.goto(path)
        axe.check(page)
        assert "YYYY-MM-DD" not in page.locator("main .hint").all_inner_texts().__str__()
    since = page.locator("input[name=since]")
    expect(since).to_have_value("12/31/2026")
    assert since.get_attribute("type") == "text"
