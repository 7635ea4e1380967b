"""The policy text's structure on the signing page: headings and lists, every word kept."""
from __future__ import annotations

import html
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lms.config import PACKAGE_DIR
from lms.services.content import normalise_text, sha256_hex
from lms.services.policy_text import parse_policy, render_policy
from tests.conftest import PASSWORD
from tests.helpers import assignment_of, pass_quiz, read_all_lessons

POLICY_16_3 = sorted((PACKAGE_DIR / "content").glob("*16.3*/versions/*/policy.txt"))[0]
FIXTURE = Path(__file__).parent.parent / "fixtures" / "content_versions" / "99.1-portable-radios"
LABEL = re.compile(r"^\s*(?:[A-Z]|\d{1,2})\.\s+")


def _words_of_text(text: str) -> list[str]:
    """The words of a policy text without the item labels the lists carry as markers."""
    return " ".join(LABEL.sub("", line) for line in text.split("\n")).split()


def _words_of_html(markup: str) -> list[str]:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup)).split()


def test_16_3_keeps_its_sections_and_lists():
    text = POLICY_16_3.read_text(encoding="utf-8")
    blocks = parse_policy(text, "16.3")
    headings = [b.text for b in blocks if b.kind == "heading"]
    assert headings[-4:] == ["PROCEDURES", "16.3.1 DEPARTMENT USE OF SOCIAL MEDIA",
                             "16.3.2 OFF-DUTY USE OF SOCIAL MEDIA", "16.3.3 INTERNAL BLOG/INSTANT MESSAGING/E-MAIL"]
    assert {"PURPOSE", "POLICY STATEMENT", "DEFINITIONS"} <= set(headings)
    lettered = [b for b in blocks if b.kind == "lettered"]
    assert [[i.label for i in b.items] for b in lettered] == [list("ABCD")] * 3
    assert [[len(i.children) for i in b.items] for b in lettered] == [[6, 2, 0, 4], [0, 3, 0, 2], [0, 5, 0, 0]]
    assert lettered[0].items[0].children[5].text.startswith("Clearly indicate that any content posted")
    markup = str(render_policy(text, "16.3"))
    assert '<h3 class="policy-heading">PROCEDURES</h3>' in markup
    assert '<h4 class="policy-heading">16.3.2 OFF-DUTY USE OF SOCIAL MEDIA</h4>' in markup
    assert markup.count('<ol class="policy-lettered" type="A">') == 3
    assert '<li value="4">Refrain from conducting political activities or private business.</li>' in markup
    assert _words_of_html(markup) == _words_of_text(text)


def test_headings_never_skip_a_level():
    for text in ("PURPOSE\n\nWhy.\n\n77.1.1 FIRST\n\nA. One.", "77.1.1 FIRST\n\nA. One.\n\nPURPOSE\n\nWhy."):
        levels = [int(n) for n in re.findall(r"<h(\d)", str(render_policy(text, "77.1")))]
        assert levels[0] == 3 and all(b - a <= 1 for a, b in zip(levels, levels[1:])), (text, levels)


def test_the_fixture_policies_keep_every_word():
    for path in FIXTURE.glob("versions/*/policy.txt"):
        text = path.read_text(encoding="utf-8")
        assert _words_of_html(str(render_policy(text, "99.1"))) == _words_of_text(text)


_word = st.text(alphabet="abcdefghij<>&\"'", min_size=1, max_size=6)
_line = st.one_of(
    st.lists(_word, min_size=1, max_size=5).map(" ".join),
    st.builds(lambda letter, words: f"{letter}. {' '.join(words)}", st.sampled_from("ABCD"),
              st.lists(_word, min_size=1, max_size=4)),
    st.builds(lambda n, words: f"   {n}. {' '.join(words)}", st.integers(1, 12), st.lists(_word, min_size=1, max_size=4)),
    st.builds(lambda words: "  " + " ".join(words), st.lists(_word, min_size=1, max_size=3)),
    st.sampled_from(["PURPOSE", "77.1.2 A HEADING", "Label:", ""]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_line, max_size=25))
def test_any_text_renders_every_word_once_in_order_and_escaped(lines):
    text = "\n".join(lines)
    markup = str(render_policy(text, "77.1"))
    assert _words_of_html(markup) == _words_of_text(text)
    assert "<>" not in re.sub(r"<[^<>]+>", "", markup)  # text never becomes markup


def test_the_signing_page_shows_the_structure_the_exact_hash_and_whom_to_ask(app, client, auth, db, make_member,
                                                                             open_cycle):
    officer = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment = assignment_of(db, officer)
    a = assignment.id
    auth.sign_in(officer.badge)
    read_all_lessons(client, a)
    pass_quiz(client, db, a)
    app.config.update(TRAINING_CONTACT_NAME="Lt. Jo Training", TRAINING_CONTACT_EMAIL="training@elgin.test")
    page = client.get(f"/training/{a}/sign").get_data(as_text=True)
    version = assignment.policy_version
    assert '<h4 class="policy-heading">16.3.3 INTERNAL BLOG/INSTANT MESSAGING/E-MAIL</h4>' in page
    assert '<ol class="policy-numbered">' in page
    assert version.text_sha256 == sha256_hex(normalise_text(POLICY_16_3.read_text(encoding="utf-8")))
    assert page.count(version.text_sha256) == 2  # shown, and the hidden field the signature carries
    assert 'href="mailto:training@elgin.test"' in page and "Lt. Jo Training" in page
    assert "ask-before-signing" in page
    from tests.helpers import sign
    assert sign(client, a, "Alex Rivera", password=PASSWORD).status_code == 303
