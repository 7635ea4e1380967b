"""Issue 6: an officer's annual training in a real browser, three ways — with a mouse at a desk,
with the keyboard alone, and on a phone. Every journey asserts what the member sees and runs
axe-core on every page it visits.

Demo officer 1001, Dana Whitfield, has done nothing yet. She reads every lesson, submits the quiz
with a question left out, fails it, passes a retake, mistypes her signature, signs, downloads the
receipt and finds it in her history.
"""
from __future__ import annotations

import re
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import DEMO_PASSWORD, AxeAudit, QuizQuestion, choices, read_quiz

BADGE = "1001"
FULL_NAME = "Dana Whitfield"
POLICY = "16.3"
TITLE = "Social Media"
LESSONS = 3
# The content pack's quiz settings.
DRAW, PASS_MARK, MAX_ATTEMPTS = 12, 80, 3
# Three wrong of twelve is 75 %, under the pass mark; two wrong (83 %) would already pass.
WRONG_TO_FAIL = 3
FAILING_SCORE = round(100 * (DRAW - WRONG_TO_FAIL) / DRAW)
# The pass mark said as what it is: questions right of those drawn.
TO_PASS = 10
PHONE_WIDTH = 390


@pytest.fixture(autouse=True)
def patient_expectations():
    """Two CPUs shared with other work: give assertions the same 15 s the fixtures give actions."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=None)


def cycle_year() -> int:
    """The demo seed opens this year's cycle, in the department's time zone."""
    return datetime.now(ZoneInfo("America/Chicago")).year


# ------------------------------------------------------------------------------------ the hands

FOCUS_IS_SHOWN = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return false;
    const s = getComputedStyle(el);
    return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
}"""


class Hands:
    """How the member works the pages: with a mouse here; the subclasses use the keyboard alone
    or a finger on a phone. The journey below is the same whatever the hands."""

    def __init__(self, page: Page, axe: AxeAudit):
        self.page = page
        self.axe = axe
        axe.watch(page)

    def arrive(self, heading: str | re.Pattern) -> None:
        """A page is up: it shows the expected main heading and axe-core finds nothing."""
        expect(self.page.get_by_role("heading", level=1)).to_have_text(heading)
        self.axe.check(self.page)
        self.look_around()

    def look_around(self) -> None:
        """Checks of every page that only these hands can make."""

    def press(self, target: Locator) -> None:
        """Follow a link or press a button."""
        target.click()

    def type_into(self, field: Locator, text: str) -> None:
        field.fill(text)

    def choose(self, input_id: str) -> None:
        """Tick a quiz option by its label, the larger target."""
        self.page.locator(f"label[for='{input_id}']").click()


class Keyboard(Hands):
    """Tab (Shift+Tab to go back), Enter, Space and the arrow keys inside a radio group; typing in
    text fields. Every element the focus lands on must show it."""

    MAX_PRESSES = 80

    def look_around(self) -> None:
        # A page that put the focus somewhere itself (an error summary) is checked by the journey.
        if self._focus_on_body():
            self.skip_to_main()

    def _focus_on_body(self) -> bool:
        """Whether nothing has the focus, asked once the page in front has loaded (a key press
        that submitted a form may still be navigating when the journey looks)."""
        for _ in range(3):
            self.page.wait_for_load_state()
            try:
                return self.page.evaluate("() => document.activeElement === document.body")
            except PlaywrightError as exc:
                if "Execution context was destroyed" not in str(exc):
                    raise
        raise AssertionError("the page kept navigating while the journey waited for it")

    def skip_to_main(self) -> None:
        """The first Tab stop is a visible skip link, and it moves the focus to the main content."""
        self.page.keyboard.press("Tab")
        skip = self.page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        self.assert_focus_shown()
        box = skip.bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, f"the focused skip link is off screen: {box}"
        self.page.keyboard.press("Enter")
        expect(self.page.get_by_role("main")).to_be_focused()

    def assert_focus_shown(self) -> None:
        active = self.page.evaluate("() => document.activeElement.outerHTML.slice(0, 160)")
        assert self.page.evaluate(FOCUS_IS_SHOWN), f"no visible focus indicator on {active}"

    def tab_until(self, target: Locator, reached: str, what: str) -> None:
        """Tab towards ``target`` (Shift+Tab when it lies behind the focus) until the JavaScript
        predicate ``reached(target)`` holds; fail, saying where the focus got stuck, if it never does."""
        handle = target.element_handle()
        behind = handle.evaluate("""el => { const a = document.activeElement;
            return !!a && a !== document.body && a !== el && !a.contains(el)
                && !!(el.compareDocumentPosition(a) & Node.DOCUMENT_POSITION_FOLLOWING); }""")
        key = "Shift+Tab" if behind else "Tab"
        for _ in range(self.MAX_PRESSES):
            if handle.evaluate(reached):
                break
            self.page.keyboard.press(key)
            # Every stop on the way must show the focus too, not only the one she was after.
            self.assert_focus_shown()
        else:
            active = self.page.evaluate("() => document.activeElement.outerHTML.slice(0, 160)")
            pytest.fail(f"{self.MAX_PRESSES} presses of {key} never reached {what}; the focus is on {active}")
        self.assert_focus_shown()

    def focus(self, target: Locator) -> None:
        target.wait_for()
        self.tab_until(target, "el => el === document.activeElement", str(target))

    def press(self, target: Locator) -> None:
        self.focus(target)
        # Links answer Enter only; buttons answer both, and Space shows that they are real buttons.
        is_link = target.evaluate("el => el.tagName === 'A'")
        self.page.keyboard.press("Enter" if is_link else "Space")

    def type_into(self, field: Locator, text: str) -> None:
        # Tabbing into a text field selects what is in it, so typing replaces it; arriving by an
        # error summary's link puts the caret at the start instead, and she selects it all first.
        self.focus(field)
        if field.evaluate("el => el.value !== '' && (el.selectionEnd - el.selectionStart) < el.value.length"):
            self.page.keyboard.press("ControlOrMeta+A")
        self.page.keyboard.type(text)
        expect(field).to_have_value(text)

    def choose(self, input_id: str) -> None:
        option = self.page.locator(f"#{input_id}")
        if option.get_attribute("type") == "radio":
            # A radio group is one Tab stop; the arrow keys move (and tick) within it.
            self.tab_until(option, """el => document.activeElement.type === 'radio'
                && document.activeElement.name === el.name""", f"the radio group of {input_id}")
            for _ in range(self.page.locator(f"input[name='{option.get_attribute('name')}']").count()):
                if option.evaluate("el => el === document.activeElement"):
                    break
                self.page.keyboard.press("ArrowDown")
            else:
                pytest.fail(f"the arrow keys never reached {input_id}")
        else:
            self.focus(option)
        if not option.is_checked():
            self.page.keyboard.press("Space")
        expect(option).to_be_checked()


class Touch(Hands):
    """A finger on a 390 px wide phone: no page scrolls sideways, and what is tapped is big enough."""

    COMFORTABLE = 44  # WCAG 2.5.5 (AAA), and what the stylesheet aims at for buttons
    MINIMUM = 24  # WCAG 2.5.8 (AA)

    def look_around(self) -> None:
        width = self.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH, f"{self.page.url} scrolls sideways: {width} px wide on a {PHONE_WIDTH} px screen"

    def assert_tappable(self, target: Locator, least: int) -> None:
        target.scroll_into_view_if_needed()
        box = target.bounding_box()
        assert box and box["width"] >= least and box["height"] >= least, \
            f"{target} is {box and round(box['width'])}×{box and round(box['height'])} px, under {least}×{least}"

    def press(self, target: Locator) -> None:
        is_button = target.evaluate("el => el.tagName === 'BUTTON' || el.classList.contains('button')")
        self.assert_tappable(target, self.COMFORTABLE if is_button else self.MINIMUM)
        target.tap()

    def type_into(self, field: Locator, text: str) -> None:
        self.assert_tappable(field, self.COMFORTABLE)
        field.tap()
        field.fill(text)

    def choose(self, input_id: str) -> None:
        label = self.page.locator(f"label[for='{input_id}']")
        self.assert_tappable(label, self.MINIMUM)
        label.tap()
        expect(self.page.locator(f"#{input_id}")).to_be_checked()


# ------------------------------------------------------------------------------- the journey

def sign_in(hands: Hands) -> None:
    """The sign-in form, with badge and password."""
    page = hands.page
    page.goto("/sign-in")
    hands.arrive("Sign in")
    hands.type_into(page.get_by_label("Badge"), BADGE)
    hands.type_into(page.get_by_label("Password"), DEMO_PASSWORD)
    hands.press(page.get_by_role("button", name="Sign in"))


def start_training(hands: Hands) -> None:
    """The dashboard shows this year's cycle with policy 16.3 not started; she starts it."""
    page = hands.page
    hands.arrive("My training")
    card = page.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name=re.compile(rf"^{cycle_year()} annual training: policy {re.escape(POLICY)} ")))
    expect(card).to_have_count(1)
    expect(card.get_by_text("Not started", exact=True)).to_be_visible()
    expect(card).to_contain_text(f"0 of {LESSONS} lessons read")
    hands.press(card.get_by_role("link", name=f"Start training policy {POLICY}"))


def read_lessons(hands: Hands) -> None:
    """From the assignment, every lesson in turn, each marked as read; the last leads to the quiz."""
    page = hands.page
    hands.arrive(re.compile(rf"^Policy {re.escape(POLICY)} {TITLE}$"))
    expect(page.get_by_text("Available after you read every lesson and pass the quiz.")).to_be_visible()
    lessons = page.get_by_role("list").filter(has=page.get_by_text("not read yet")).get_by_role("link")
    titles = lessons.all_inner_texts()
    assert len(titles) == LESSONS, titles
    hands.press(lessons.first)
    for number, title in enumerate(titles, start=1):
        hands.arrive(title)
        expect(page.get_by_text(f"Lesson {number} of {len(titles)}")).to_be_visible()
        last = number == len(titles)
        hands.press(page.get_by_role("button", name="Mark as read and go to the "
                                     + ("quiz" if last else "next lesson")))


def quiz_heading() -> re.Pattern:
    return re.compile(rf"^Scenario quiz: policy {re.escape(POLICY)} {TITLE}$")


def start_attempt(hands: Hands, number: int, button: str) -> list[QuizQuestion]:
    """Start an attempt from the quiz page; the questions drawn, with the answer key."""
    page = hands.page
    hands.press(page.get_by_role("button", name=button))
    hands.arrive(quiz_heading())
    expect(page.get_by_text(f"Attempt {number} of {MAX_ATTEMPTS}.")).to_be_visible()
    # Each question is a group named by its prompt, its options radios (or checkboxes) inside it.
    groups = page.get_by_role("group")
    expect(groups).to_have_count(DRAW)
    for group in (groups.first, groups.last):
        expect(group).to_have_accessible_name(re.compile(r"\?"))
        expect(group.get_by_role("radio").or_(group.get_by_role("checkbox")).first).to_be_visible()
    questions = read_quiz(page)
    assert len(questions) == DRAW
    return questions


def answer(hands: Hands, input_ids: list[str]) -> None:
    for input_id in input_ids:
        hands.choose(input_id)


def submit_answers(hands: Hands) -> None:
    hands.press(hands.page.get_by_role("button", name="Submit answers"))


def fail_quiz(hands: Hands) -> None:
    """All lessons read, the quiz opens. Submitted with a question left out, the page says which
    and ties the error to it; completed with three wrong answers, it is not passed."""
    page = hands.page
    hands.arrive(quiz_heading())
    expect(page.get_by_role("status")).to_contain_text("All lessons read. You can take the quiz now.")
    questions = start_attempt(hands, 1, "Start the quiz")
    *answered, left_out = questions
    answer(hands, choices(answered, wrong_count=WRONG_TO_FAIL))
    submit_answers(hands)

    hands.arrive(quiz_heading())
    problem = f"Question {DRAW}: choose an answer"
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text(problem)
    # The summary takes the focus, so a screen reader reads it out and the keyboard starts there.
    expect(summary).to_be_focused()
    group = page.get_by_role("group").nth(DRAW - 1)
    expect(group).to_have_accessible_description(re.compile("Error: choose an answer"))
    expect(page.get_by_role("group").nth(0).locator("input:checked")).to_have_count(1)
    link = summary.get_by_role("link", name=problem)
    expect(link).to_have_attribute("href", f"#q{DRAW}-legend")
    hands.press(link)
    answer(hands, choices([left_out], wrong_count=0))
    submit_answers(hands)

    hands.arrive(f"Attempt 1: {FAILING_SCORE}% — not passed")
    expect(page.get_by_text(f"{DRAW - WRONG_TO_FAIL} of {DRAW} correct. You pass with {TO_PASS} of {DRAW} correct "
                            f"({PASS_MARK}%).")).to_be_visible()
    missed = page.locator("li.question").filter(has=page.get_by_role("heading", name=re.compile("✗ incorrect$")))
    expect(missed).to_have_count(WRONG_TO_FAIL)
    # Why: her answer is marked wrong in words, beside the right one, each explained, with the section.
    first = missed.first
    hers = first.get_by_role("listitem").filter(has_text="Your answer · Wrong answer:")
    expect(hers).to_contain_text(re.compile(r"\b(Not so|No)\."))
    expect(first.get_by_text("Right answer:", exact=True).first).to_be_visible()
    expect(first.get_by_text(re.compile(rf"^Policy reference: {re.escape(POLICY)}\.\d"))).to_be_visible()
    hands.press(page.get_by_role("link", name="Try again"))


def pass_retake(hands: Hands) -> None:
    """The quiz page offers a new attempt; answered rightly, it passes."""
    page = hands.page
    hands.arrive(quiz_heading())
    expect(page.get_by_text(f"Last attempt: {DRAW - WRONG_TO_FAIL} of {DRAW} correct ({FAILING_SCORE}%).")).to_be_visible()
    questions = start_attempt(hands, 2, "Start a new attempt")
    answer(hands, choices(questions, wrong_count=0))
    submit_answers(hands)
    hands.arrive("Attempt 2: 100% — passed")
    expect(page.get_by_text(f"{DRAW} of {DRAW} correct.")).to_be_visible()
    hands.press(page.get_by_role("link", name="Read and sign the policy"))


def sign(hands: Hands) -> str:
    """A wrong name and a wrong password are each refused at their own field; then she signs.
    Returns the verification code the signed page shows."""
    page = hands.page
    heading = re.compile(rf"^Acknowledge policy {re.escape(POLICY)} {TITLE}$")
    hands.arrive(heading)
    expect(page.get_by_role("region", name=re.compile(rf"^Full text of policy {re.escape(POLICY)}"))).to_be_visible()
    name, password = page.get_by_label("Your full name"), page.get_by_label("Your current password")
    hands.type_into(name, "Dana Whitfeld")
    hands.type_into(password, "not-my-password")
    hands.press(page.get_by_role("button", name="Sign the acknowledgment"))

    hands.arrive(heading)
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    name_error = f"Type your full name exactly as it appears on your record: {FULL_NAME}."
    password_error = "That is not your current password."
    expect(summary.get_by_role("link", name=name_error)).to_have_attribute("href", "#full_name")
    expect(summary.get_by_role("link", name=password_error)).to_have_attribute("href", "#password")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description(re.compile(re.escape(name_error)))
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description(re.compile(re.escape(password_error)))

    hands.press(summary.get_by_role("link", name=name_error))
    hands.type_into(name, FULL_NAME)
    hands.type_into(password, DEMO_PASSWORD)
    hands.press(page.get_by_role("button", name="Sign the acknowledgment"))

    hands.arrive("Acknowledgment signed")
    expect(page.get_by_role("status")).to_contain_text("Signed. Your receipt is ready to download.")
    expect(fact(page, "Printed name")).to_have_text(FULL_NAME)
    code = fact(page, "Verification code").inner_text().strip()
    assert code
    return code


def fact(page: Page, term: str) -> Locator:
    """The value beside a term in a list of facts (a <dl>)."""
    return page.locator("dl > div").filter(has=page.get_by_text(term, exact=True)).get_by_role("definition")


def download_receipt(hands: Hands, code: str, folder: Path) -> None:
    """The receipt is a PDF that names her and carries the verification code the page showed."""
    page = hands.page
    with page.expect_download() as download:
        hands.press(page.get_by_role("link", name="Download your receipt (PDF)"))
    path = folder / download.value.suggested_filename
    download.value.save_as(path)
    assert path.read_bytes().startswith(b"%PDF"), path.read_bytes()[:40]
    text = " ".join(subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                                   text=True, check=True, timeout=60).stdout.split())
    assert FULL_NAME in text, text[:600]
    assert code in text, text[:600]


def find_in_history(hands: Hands, code: str) -> None:
    """Her acknowledgments list the one just signed, with its code and a receipt link."""
    page = hands.page
    hands.press(page.get_by_role("link", name="See all your acknowledgments"))
    hands.arrive("My acknowledgments")
    row = page.get_by_role("row").filter(has_text=code)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"{POLICY} {TITLE}")
    expect(row).to_contain_text("100% (attempt 2)")
    expect(row.get_by_role("link", name=re.compile(r"^Download PDF"))).to_be_visible()


def officer_journey(hands: Hands, folder: Path) -> None:
    """Sign-in to receipt and history, whatever the hands."""
    sign_in(hands)
    start_training(hands)
    read_lessons(hands)
    fail_quiz(hands)
    pass_retake(hands)
    code = sign(hands)
    download_receipt(hands, code, folder)
    find_in_history(hands, code)


# --------------------------------------------------------------------------------- the tests

def test_officer_journey_with_a_mouse(page, axe, tmp_path):
    """Journey: officer 1001 at a desktop (1280×800) with a mouse, from sign-in to her receipt."""
    officer_journey(Hands(page, axe), tmp_path)


def test_officer_journey_with_the_keyboard_only(page, axe, tmp_path):
    """Journey: the same officer with the keyboard alone — Tab, Enter, Space, arrows, typing."""
    officer_journey(Keyboard(page, axe), tmp_path)


def test_officer_journey_on_a_phone(phone_page, axe, tmp_path):
    """Journey: the same officer on a phone (390×844, touch): no sideways scrolling, targets big enough."""
    officer_journey(Touch(phone_page, axe), tmp_path)
