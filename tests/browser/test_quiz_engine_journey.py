"""Issue 10 in a real browser: quiz answers that survive an idle sign-out (with the warning before
it, and "Mark as read" after it coming back to the lesson), and a member stranded at the attempt
limit unblocked by a coordinator's grant. axe-core checks every page visited, the warning open."""
from __future__ import annotations

import re
import shutil

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import start_server
from tests.browser.support import annual_cycle_path, choices, read_quiz, sign_in

OFFICER, OFFICER_NAME = "1001", "Dana Whitfield"
COORDINATOR, COORDINATOR_NAME = "1003", "Renee Okafor"
# The idle limit of the short-lived server below, in seconds, and when its pages warn.
IDLE_SECONDS, WARN_SECONDS = 16, 8


@pytest.fixture(autouse=True)
def patient_expectations():
    """Two CPUs shared with other work: give assertions the same 15 s the fixtures give actions."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=None)


@pytest.fixture
def short_idle_server(seeded_instance, tmp_path):
    """The demo instance served with a 16-second idle limit (the warning 8 s before it), so a test
    can sit through an idle sign-out."""
    instance = tmp_path / "instance"
    shutil.copytree(seeded_instance, instance)
    (instance / "config.py").write_text(
        f"SESSION_IDLE_MINUTES = {IDLE_SECONDS / 60!r}\n"
        f"SESSION_WARNING_MINUTES = {WARN_SECONDS / 60!r}\n"
        "SESSION_TOUCH_SECONDS = 1\n")
    server = start_server(instance, tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture
def idle_page(request, browser, short_idle_server, tmp_path):
    from tests.browser.conftest import DESKTOP, _open_page

    yield from _open_page(request, browser, short_idle_server, tmp_path, viewport=DESKTOP)


def _read_every_lesson(page, axe) -> None:
    """From the dashboard: the assignment, then each of the three lessons marked as read; the last
    leads to the quiz."""
    page.get_by_role("link", name=re.compile(r"^Start training policy 16\.3")).click()
    axe.check(page)
    page.locator("ol.steps a").first.click()
    for _ in range(3):
        axe.check(page)
        page.get_by_role("button", name=re.compile(r"^Mark as read")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Scenario quiz"))
    axe.check(page)


def test_answers_survive_an_idle_sign_out_after_the_warning(idle_page, axe):
    page = idle_page
    axe.watch(page)
    sign_in(page, OFFICER, axe=axe)
    axe.check(page)
    _read_every_lesson(page, axe)
    page.get_by_role("button", name="Start the quiz").click()
    expect(page.get_by_text(re.compile(r"^Attempt 1 of 3\."))).to_be_visible()
    axe.check(page)
    questions = read_quiz(page)
    picked = choices(questions[:4], wrong_count=1)
    for input_id in picked:
        page.locator(f"label[for='{input_id}']").click()
        expect(page.locator("#save-status")).to_contain_text("saved at")
    expect(page.locator("#save-status")).to_contain_text("answered")

    # Left alone, the page warns before the sign-out, in an alert dialog with the focus on its button.
    warning = page.get_by_role("alertdialog", name="You will be signed out soon")
    expect(warning).to_be_visible(timeout=IDLE_SECONDS * 1000)
    stay = warning.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    axe.check(page)
    stay.click()
    expect(warning).to_be_hidden()

    # Left alone again, she is signed out; the page says so and offers to sign in again.
    ended = page.get_by_role("alertdialog", name="You have been signed out")
    expect(ended).to_be_visible(timeout=2 * IDLE_SECONDS * 1000)
    axe.check(page)
    ended.get_by_role("link", name="Sign in again").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    axe.check(page)
    page.get_by_label("Badge").fill(OFFICER)
    page.get_by_label("Password").fill("rollcall-demo-2026")
    page.get_by_role("button", name="Sign in").click()

    # Back on the quiz, the same attempt, with every choice she made before the sign-out.
    expect(page.get_by_text(re.compile(r"^Attempt 1 of 3\."))).to_be_visible()
    axe.check(page)
    for input_id in picked:
        expect(page.locator(f"#{input_id}")).to_be_checked()
    assert page.locator("input:checked").count() == len(picked)


def test_mark_as_read_after_an_idle_sign_out_returns_to_the_lesson(idle_page, axe):
    page = idle_page
    axe.watch(page)
    sign_in(page, OFFICER, axe=axe)
    axe.check(page)
    page.get_by_role("link", name=re.compile(r"^Start training policy 16\.3")).click()
    axe.check(page)
    page.locator("ol.steps a").first.click()
    lesson_title = page.get_by_role("heading", level=1).inner_text()
    lesson_url = page.url
    axe.check(page)
    expect(page.get_by_role("alertdialog", name="You have been signed out")).to_be_visible(
        timeout=2 * IDLE_SECONDS * 1000)
    # She presses the lesson's button anyway (by keyboard: the notice sits over the page's foot).
    button = page.get_by_role("button", name=re.compile(r"^Mark as read"))
    button.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_text("Your session has ended; sign in again.")).to_be_visible()
    axe.check(page)
    page.get_by_label("Badge").fill(OFFICER)
    page.get_by_label("Password").fill("rollcall-demo-2026")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(lesson_title)
    assert page.url == lesson_url
    axe.check(page)


def _fail_attempt(page, number: int, axe, first: bool) -> None:
    page.get_by_role("button", name="Start the quiz" if first else "Start a new attempt").click()
    expect(page.get_by_text(re.compile(rf"^Attempt {number} of \d+\."))).to_be_visible()
    axe.check(page)
    questions = read_quiz(page)
    for input_id in choices(questions, wrong_count=len(questions)):
        page.locator(f"label[for='{input_id}']").click()
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(rf"^Attempt {number}: \d+% — not passed"))
    axe.check(page)


def test_a_coordinator_grants_an_attempt_to_a_member_at_the_limit(page, axe):
    axe.watch(page)
    sign_in(page, OFFICER, axe=axe)
    axe.check(page)
    _read_every_lesson(page, axe)
    for number in (1, 2, 3):
        _fail_attempt(page, number, axe, first=number == 1)
        if number < 3:
            page.get_by_role("link", name="Try again").click()
            axe.check(page)
    expect(page.get_by_text("You have used every attempt.")).to_be_visible()
    page.get_by_role("link", name="Policy 16.3").first.click()
    expect(page.get_by_text(re.compile(r"^You have used every attempt without passing"))).to_contain_text(
        COORDINATOR_NAME)
    axe.check(page)
    page.get_by_role("button", name="Sign out").click()
    axe.check(page)

    sign_in(page, COORDINATOR, axe=axe)
    axe.check(page)
    page.goto(f"{annual_cycle_path(page, axe)}/roster?q=Whitfield")
    axe.check(page)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile("Whitfield, Dana")))
    expect(row).to_contain_text("3 of 3 attempts")
    expect(row).to_contain_text("All used: grant another")
    row.get_by_role("link", name=re.compile("Whitfield, Dana")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(OFFICER_NAME)
    expect(page.get_by_text("3 of 3 attempts used")).to_be_visible()
    axe.check(page)
    grant = page.locator("details.grant")
    grant.get_by_label("Extra attempts").fill("1")
    grant.get_by_label("Reason").fill("Went through lesson 2 with her at roll call")
    grant.get_by_label("Your password").fill("a wrong password")
    grant.get_by_role("button", name="Grant the attempts").click()
    expect(page.get_by_role("alert")).to_contain_text("That is not your current password.")
    axe.check(page)
    grant = page.locator("details.grant")
    grant.get_by_label("Your password").fill("rollcall-demo-2026")
    grant.get_by_role("button", name="Grant the attempts").click()
    expect(page.get_by_role("status")).to_contain_text(f"Granted {OFFICER_NAME} 1 more quiz attempt.")
    expect(page.get_by_text("3 of 4 attempts used")).to_be_visible()
    expect(page.get_by_text("Went through lesson 2 with her at roll call")).to_be_visible()
    axe.check(page)
    page.goto(f"{annual_cycle_path(page, axe)}/roster?q=Whitfield")
    expect(page.get_by_role("row").filter(has_text="Whitfield")).to_contain_text("3 of 4 attempts")
    axe.check(page)
    page.get_by_role("button", name="Sign out").click()
    axe.check(page)

    sign_in(page, OFFICER, axe=axe)
    axe.check(page)
    page.get_by_role("link", name=re.compile(r"^Continue training policy 16\.3|^Start training policy 16\.3|16\.3")).first.click()
    expect(page.get_by_text("Went through lesson 2 with her at roll call")).to_be_visible()
    expect(page.get_by_text(re.compile(r"1 of 4 attempts left"))).to_be_visible()
    axe.check(page)
    page.get_by_role("link", name="Go to the quiz").click()
    axe.check(page)
    page.get_by_role("button", name="Start a new attempt").click()
    expect(page.get_by_text(re.compile(r"^Attempt 4 of 4\."))).to_be_visible()
    axe.check(page)
    for input_id in choices(read_quiz(page), wrong_count=0):
        page.locator(f"label[for='{input_id}']").click()
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Attempt 4: 100% — passed")
    axe.check(page)


