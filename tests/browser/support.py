"""What the browser journeys share: axe-core audits, screenshots, signing in, and the quiz's
answer key read from the content pack (as an officer who studied would know it)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from lms.config import PACKAGE_DIR
from lms.services.content import load_packs

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
DEMO_PASSWORD = "rollcall-demo-2026"


def page_key(url: str) -> str:
    """A visited page as path and query (the host and port differ from run to run)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v['helpUrl']}]")
        for node in v["nodes"][:5]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['html'][:160]}")
            if node.get("failureSummary"):
                lines.append("      " + node["failureSummary"].replace("\n", "\n      ")[:400])
    return "\n".join(lines)


@dataclass
class AxeAudit:
    """axe-core over every page a journey visits; any violation, of any impact, fails."""

    visited: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)

    def watch(self, page) -> None:
        """Remember every page the main frame navigates to."""
        page.on("framenavigated", lambda frame: frame == page.main_frame
                and frame.url.startswith("http") and self.visited.append(page_key(frame.url)))

    def check(self, page) -> None:
        """Run axe-core on the page as it is now and fail on any violation."""
        from playwright.sync_api import Error

        for tries_left in (2, 1, 0):
            page.wait_for_load_state("load")
            try:
                result = self._run(page)
                break
            except Error as exc:
                # A form that re-renders its own page (same heading) may still be navigating when
                # the journey moves on; audit the page that arrives, not the one that left.
                if tries_left == 0 or "context was destroyed" not in str(exc):
                    raise
                page.wait_for_timeout(200)
        key = page_key(page.url)
        assert not result, f"axe-core found violations on {key}:\n{_describe(result)}"
        self.checked.add(key)

    @staticmethod
    def _run(page) -> list[dict]:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            # Evaluated over the DevTools protocol, so the app's CSP (script-src 'self') stays on.
            page.evaluate(AXE_JS.read_text(encoding="utf-8"))
        return page.evaluate("""async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html, failureSummary: n.failureSummary}))}));
        }""")

    def assert_every_page_checked(self) -> None:
        missed = [key for key in dict.fromkeys(self.visited) if key not in self.checked]
        assert not missed, f"pages visited without an axe-core check: {missed}"


@dataclass
class Screenshots:
    """Full-page PNGs in docs/screenshots/, written only when asked for (--screenshots)."""

    folder: Path
    enabled: bool

    def take(self, page, name: str, *, max_height: int | None = None) -> None:
        """A full-page PNG; ``max_height`` (CSS pixels) cuts very long pages, whose tail shows
        nothing new but would make the image many megabytes."""
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        clip = None
        if max_height is not None:
            height = page.evaluate("() => document.documentElement.scrollHeight")
            if height > max_height:
                clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": max_height}
        page.screenshot(path=str(path), full_page=True, clip=clip, animations="disabled")
        _shrink_png(path)


def _shrink_png(path: Path) -> None:
    """Rewrite a screenshot with a 256-colour palette: pages of text lose nothing a reader sees,
    and the files, kept in the repository, become about a third of the size."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def sign_in(page, badge: str, password: str = DEMO_PASSWORD, axe: AxeAudit | None = None) -> None:
    """Sign in through the form, as a person would, auditing the sign-in page on the way."""
    page.goto("/sign-in")
    if axe is not None:
        axe.check(page)
    page.get_by_label("Badge").fill(badge)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


@cache
def answer_key() -> dict[tuple[str, str], frozenset[str]]:
    """(scenario, prompt) → the texts of the correct options, for every question in content/."""
    key = {}
    for pack in load_packs(PACKAGE_DIR / "content"):
        for version in pack.versions:
            for question in version.questions:
                key[(" ".join(question.scenario.split()), " ".join(question.prompt.split()))] = frozenset(
                    " ".join(o.text.split()) for o in question.options if o.correct)
    return key


@dataclass
class QuizQuestion:
    """One question on the quiz page and the ids of the inputs to tick."""

    position: int
    right: list[str]
    wrong: list[str]
    multiple: bool


def read_quiz(page) -> list[QuizQuestion]:
    """The questions on the open quiz page, with which inputs answer each rightly or wrongly."""
    key = answer_key()
    questions = []
    for position, item in enumerate(page.locator("li.question").all(), start=1):
        scenario = " ".join(item.locator("p.scenario").inner_text().split())
        legend = item.locator("legend")
        prompt = legend.evaluate("""el => Array.from(el.childNodes)
            .filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join('')""")
        correct = key[(scenario, " ".join(prompt.split()))]
        right, wrong = [], []
        for option in item.locator("div.option").all():
            input_id = option.locator("input").get_attribute("id")
            text = " ".join(option.locator("label").inner_text().split())
            (right if text in correct else wrong).append(input_id)
        multiple = item.locator("input[type=checkbox]").count() > 0
        questions.append(QuizQuestion(position, right, wrong, multiple))
    return questions


def choices(questions: Iterable[QuizQuestion], *, wrong_count: int) -> list[str]:
    """Input ids to tick: the right answers, except ``wrong_count`` questions answered wrongly."""
    ids = []
    for n, question in enumerate(questions):
        if n < wrong_count:
            ids.append(question.wrong[0])
        elif question.multiple:
            ids.extend(question.right)
        else:
            ids.append(question.right[0])
    return ids


def annual_cycle_path(page, axe=None) -> str:
    """The coordinator's path of the demo seed's cycle ("YYYY annual", this year), read from the
    cycles page the way a coordinator finds it: ``/coordinator/cycles/<id>``; ``axe`` checks that page."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    year = datetime.now(ZoneInfo("America/Chicago")).year
    page.goto("/coordinator/")
    if axe is not None:
        axe.check(page)
    href = page.get_by_role("link", name=f"{year} annual roster").get_attribute("href")
    return href.rsplit("/roster", 1)[0]
