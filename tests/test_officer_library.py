"""The officer's policy library, the due-date banner and dates in words, through the web pages."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from flask import render_template_string
from sqlalchemy import select

from lms.db import utcnow
from lms.models import PolicyVersion
from lms.services.clock import local_date
from lms.services.cycles import create_cycle
from tests.helpers import assignment_of
from tests.test_voids import REASON, complete_training, void_through_web


def words(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def version_id(db) -> int:
    return db.scalars(select(PolicyVersion.id)).first()


# --- the library -------------------------------------------------------------------------------

def test_library_lists_the_assigned_policy_with_its_full_text_and_headings(client, auth, db, make_member,
                                                                           open_cycle):
    alex = make_member()
    open_cycle()
    version = assignment_of(db, alex).policy_version
    auth.sign_in(alex.badge)
    page = client.get("/training/library").get_data(as_text=True)
    assert "Policy library" in page and "Policy 16.3 Social Media" in page
    assert f'href="/training/library/{version.id}"' in page
    assert "You have not signed this version yet." in page
    assert re.search(r'Version</dt><dd>effective <time datetime="2013-11-26">November 26, 2013</time>', page)

    text = client.get(f"/training/library/{version.id}").get_data(as_text=True)
    # Every section heading is a heading with an anchor a search result can link to.
    assert re.search(r'<h3 class="policy-heading" id="section-\d+">PURPOSE</h3>', text)
    assert re.search(r'<h4 class="policy-heading" id="section-\d+">16.3.2 OFF-DUTY USE OF SOCIAL MEDIA</h4>', text)
    assert "Only persons designated by the chief of police shall publish" in text
    # Printable: a print button (shown by its script) and a print stylesheet that leaves the search out.
    assert "data-print" in text and "/static/js/print.js" in text
    response = client.get("/static/css/app.css")
    css = response.get_data(as_text=True)
    response.close()
    print_rules = " ".join(re.findall(r"@media print \{(.*?)\n\}", css, re.S))
    assert ".library-search" in print_rules and ".no-print" in print_rules


def test_searching_the_library_finds_passages_under_their_headings(client, auth, db, make_member, open_cycle):
    alex = make_member()
    open_cycle()
    version = assignment_of(db, alex).policy_version
    auth.sign_in(alex.badge)
    page = client.get("/training/library", query_string={"q": "  FACEBOOK "}).get_data(as_text=True)
    assert "1 passage found for “FACEBOOK”" in page
    link = re.search(rf'href="(/training/library/{version.id}\?q=FACEBOOK#section-(\d+))">DEFINITIONS</a>', page)
    assert link, page
    assert "<mark>Facebook</mark>, MySpace, Twitter" in page

    # The link opens the text at that heading, each occurrence marked.
    text = client.get(link.group(1).split("#")[0]).get_data(as_text=True)
    assert f'id="section-{link.group(2)}">DEFINITIONS<' in text
    assert text.count("<mark>Facebook</mark>") == 2  # once in the passage list, once in the text

    phrase = client.get(f"/training/library/{version.id}", query_string={"q": "off-duty   use"})
    assert phrase.status_code == 200
    body = phrase.get_data(as_text=True)
    assert re.search(r"\d+ passages? found for “off-duty   use”", body)
    assert "<mark>OFF-DUTY USE</mark>" in body

    none = client.get("/training/library", query_string={"q": "zebra crossing"}).get_data(as_text=True)
    assert "0 passages found for “zebra crossing”" in none and "Try another word" in none


@pytest.mark.parametrize("query, message", [
    ("a", "Type at least 2 letters to search for"),
    ("x" * 101, "Search for at most 100 characters (this was 101)"),
])
def test_a_search_that_cannot_run_says_why(client, auth, db, make_member, open_cycle, query, message):
    alex = make_member()
    open_cycle()
    version = assignment_of(db, alex).policy_version
    auth.sign_in(alex.badge)
    for url in ("/training/library", f"/training/library/{version.id}"):
        response = client.get(url, query_string={"q": query})
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert f"Error: {message}." in page and 'aria-invalid="true"' in page


def test_a_version_not_on_the_members_shelf_is_a_404(client, auth, db, make_member, open_cycle):
    alex = make_member(first="Alex", last="Rivera")
    version = version_id(db)
    auth.sign_in(alex.badge)
    # No cycle yet: nothing assigned, nothing signed, so not even a real version is shown.
    assert client.get(f"/training/library/{version}").status_code == 404
    assert "No policy has been assigned to you yet." in client.get("/training/library").get_data(as_text=True)
    assert client.get("/training/library/2147483647").status_code == 404
    assert client.get("/training/library/99999999999").status_code == 404
    auth.sign_out()
    # Another member assigned the version does not open it to Alex.
    open_cycle()
    db.expire_all()
    blake = make_member(first="Blake", last="Moss")
    auth.sign_in(alex.badge)
    assert client.get(f"/training/library/{version}").status_code == 200  # Alex is in this cycle
    auth.sign_out()
    auth.sign_in(blake.badge)  # Blake joined after the cycle opened: not assigned
    assert client.get(f"/training/library/{version}").status_code == 404


def test_the_library_shows_what_was_signed_and_when_and_the_void(app, client, auth, db, make_member, open_cycle):
    alex = make_member(first="Alex", last="Rivera", badge="501")
    hr = make_member(first="Pat", last="Lee", badge="900", roles=("hr",))
    open_cycle()
    ack = complete_training(client, auth, db, alex)
    auth.sign_in(alex.badge)
    page = client.get(f"/training/library/{ack.policy_version_id}").get_data(as_text=True)
    signed = re.search(r'Signed <time datetime="([^"]+)">([^<]+)</time>', page)
    assert signed and signed.group(1) == ack.signed_at_local
    assert re.fullmatch(r"[A-Z][a-z]+ \d{1,2}, \d{4}, \d{1,2}:\d\d [ap]\.m\. C[SD]T", signed.group(2))
    assert ack.verification_code in page and "Stands" in page and "Voided" not in page
    auth.sign_out()

    void_through_web(client, auth, ack, hr)
    auth.sign_in(alex.badge)
    for url in (f"/training/library/{ack.policy_version_id}", "/training/library"):
        page = client.get(url).get_data(as_text=True)
        today = local_date(utcnow(), app.config["TIMEZONE"])
        assert f'Voided</span> on <time datetime="{today.isoformat()}">{words(today)}</time>' in page
        assert REASON in page and "Voided receipt (PDF)" in page and "Stands" not in page


# --- the banner ----------------------------------------------------------------------------------

def _cycle(app, db, *, due: date, today: date):
    create_cycle(db, year=today.year, due_date=due, today=today, now=utcnow())
    db.commit()


def test_banner_counts_the_days_left_then_goes_once_complete(app, client, auth, db, make_member):
    alex = make_member(first="Alex", last="Rivera", badge="501")
    today = local_date(utcnow(), app.config["TIMEZONE"])
    _cycle(app, db, due=today + timedelta(days=12), today=today)
    a = assignment_of(db, alex).id
    auth.sign_in(alex.badge)
    banner = f"<strong>Due in 12 days</strong> — {_time(today + timedelta(days=12))}"
    for url in ("/training/", f"/training/{a}", f"/training/{a}/quiz", f"/training/{a}/sign"):
        assert banner in client.get(url).get_data(as_text=True), url
    auth.sign_out()
    complete_training(client, auth, db, alex)
    auth.sign_in(alex.badge)
    for url in ("/training/", f"/training/{a}"):
        assert "due-banner" not in client.get(url).get_data(as_text=True)


def _time(day: date) -> str:
    return f'<time datetime="{day.isoformat()}">{words(day)}</time>'


@pytest.mark.parametrize("days, headline", [(-3, "Overdue by 3 days"), (-1, "Overdue by 1 day"),
                                            (0, "Due today"), (1, "Due tomorrow")])
def test_banner_says_how_long_overdue(app, client, auth, db, make_member, days, headline):
    alex = make_member()
    today = local_date(utcnow(), app.config["TIMEZONE"])
    _cycle(app, db, due=today + timedelta(days=days), today=today - timedelta(days=10))
    auth.sign_in(alex.badge)
    page = client.get(f"/training/{assignment_of(db, alex).id}").get_data(as_text=True)
    due = _time(today + timedelta(days=days))
    expected = f"<strong>{headline}</strong> — it was due {due}" if days < 0 else f"<strong>{headline}</strong> — {due}"
    assert expected in page
    assert ("due-overdue" in page) == (days < 0)


def test_banner_counts_days_in_the_departments_time_zone(app, client, auth, db, make_member, monkeypatch):
    """At 04:30 UTC it is still the evening before in Chicago (CST or CDT): a task due on the
    Chicago tomorrow is "Due tomorrow", where a count in UTC days would say "Due today"."""
    now = utcnow()
    instant = now.replace(hour=4, minute=30, second=0, microsecond=0)
    if instant > now:
        instant -= timedelta(days=1)
    chicago_today = local_date(instant, app.config["TIMEZONE"])
    assert chicago_today == instant.date() - timedelta(days=1)
    monkeypatch.setattr("lms.web.utcnow", lambda: instant)
    alex = make_member()
    _cycle(app, db, due=chicago_today + timedelta(days=1), today=chicago_today)
    auth.sign_in(alex.badge)
    page = client.get("/training/").get_data(as_text=True)
    assert f"<strong>Due tomorrow</strong> — {_time(chicago_today + timedelta(days=1))}" in page


# --- dates in words ------------------------------------------------------------------------------

@pytest.mark.parametrize("moment, shown", [
    (datetime(2026, 12, 1, 13, 12, 31, tzinfo=timezone.utc), "December 1, 2026, 7:12 a.m. CST"),
    (datetime(2026, 12, 1, 18, 0, tzinfo=timezone.utc), "December 1, 2026, 12:00 p.m. CST"),
    (datetime(2026, 12, 2, 6, 5, tzinfo=timezone.utc), "December 2, 2026, 12:05 a.m. CST"),
    (datetime(2026, 7, 4, 3, 59, tzinfo=timezone.utc), "July 3, 2026, 10:59 p.m. CDT"),
    ("2026-12-01T07:12:31-06:00", "December 1, 2026, 7:12 a.m. CST"),
])
def test_datetime_words_filter(app, moment, shown):
    with app.test_request_context():
        html = render_template_string("{{ m|datetime_words }}", m=moment)
    iso = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', html)
    assert iso.group(2) == shown
    assert datetime.fromisoformat(iso.group(1)) == (datetime.fromisoformat(moment) if isinstance(moment, str)
                                                    else moment)


def test_date_words_filter(app):
    with app.test_request_context():
        assert render_template_string("{{ d|date_words }}", d=date(2026, 12, 31)) == \
            '<time datetime="2026-12-31">December 31, 2026</time>'
        # An instant is the department's day: 03:00 UTC on January 1 is still December 31 in Chicago.
        assert render_template_string("{{ d|date_words }}", d=datetime(2027, 1, 1, 3, tzinfo=timezone.utc)) == \
            '<time datetime="2026-12-31">December 31, 2026</time>'
        assert render_template_string("{{ d|date_words }}{{ d|datetime_words }}", d=None) == "——"


def test_pages_show_dates_in_words_not_iso(client, auth, db, make_member, open_cycle):
    alex = make_member(first="Alex", last="Rivera", badge="501")
    open_cycle()
    ack = complete_training(client, auth, db, alex)
    auth.sign_in(alex.badge)
    for url in ("/training/", f"/training/{ack.assignment_id}", "/training/history",
                f"/training/{ack.assignment_id}/signed", f"/training/library/{ack.policy_version_id}"):
        page = client.get(url).get_data(as_text=True)
        visible = re.sub(r"<[^>]+>", " ", page)
        assert not re.search(r"\d{4}-\d\d-\d\d", visible), (url, re.findall(r".{30}\d{4}-\d\d-\d\d.{30}", visible))
        assert not re.search(r"\d\d/\d\d/\d{4}", visible), url
    verify = client.get("/verify", query_string={"code": ack.verification_code}).get_data(as_text=True)
    assert "effective <time datetime=\"2013-11-26\">November 26, 2013</time>" in verify
