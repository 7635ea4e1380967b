"""HR's desk: finding members, their records and receipts, exports, "as of" evidence, voids, and
that no one else can reach any of it."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import tracemalloc
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from lms import pdf
from lms.db import utcnow
from lms.models import Acknowledgment, AcknowledgmentVoid, Assignment, AuditEvent, Job, Member, Receipt
from lms.services import exports
from lms.services import hr as hr_service
from lms.services import quiz as quiz_service
from lms.services.clock import local_date
from lms.services.cycles import version_in_force
from lms.services.progress import mark_lesson_read
from lms.services.records import void_acknowledgment
from lms.services.signing import SigningFacts, append_acknowledgment
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign

MANIFEST_HEADER = ("receipt_file,badge,last_name,first_name,policy,policy_version,signed_at,text_sha256,"
                   "receipt_sha256,record_hash,verification_code")
LOCAL_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def complete_training(client, auth, db, member) -> Acknowledgment:
    """Sign in as the member, read every lesson, pass the quiz, sign, sign out."""
    auth.sign_in(member.badge)
    a = assignment_of(db, member).id
    read_all_lessons(client, a)
    pass_quiz(client, db, a)
    assert sign(client, a, member.full_name).status_code == 303
    auth.sign_out()
    db.expire_all()
    return db.scalars(select(Acknowledgment).where(Acknowledgment.member_id == member.id)).one()


@pytest.fixture
def people(make_member, open_cycle):
    """Four members in two units, assigned this year's cycle, and an HR member; nobody signed yet."""
    people = {
        "alex": make_member(first="Alex", last="Rivera", badge="501", unit="Patrol North"),
        "jo": make_member(first="Jo", last="Kim", badge="502", unit="Traffic"),
        "flo": make_member(first="Flo", last="Gone", badge="503", unit="Traffic"),
        "dana": make_member(first="Dana", last="Rivers", badge="5040", unit="Patrol North"),
    }
    open_cycle()
    people["hr"] = make_member(first="Pat", last="Lee", badge="900", roles=("hr",), unit="Administration")
    return people


@pytest.fixture
def desk(client, auth, db, people):
    """Three of them signed through the web pages (one has since separated); Dana has not."""
    acks = {key: complete_training(client, auth, db, people[key]) for key in ("alex", "jo", "flo")}
    db.get(Member, people["flo"].id).status = "separated"
    db.commit()
    return {"people": people, "acks": acks}


def hr_sign_in(auth, people):
    assert auth.sign_in(people["hr"].badge).status_code == 302


def audit(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def today(app) -> date:
    return local_date(utcnow(), app.config["TIMEZONE"])


# --- search and the member's record -------------------------------------------------------------

def test_search_finds_members_by_badge_and_name_including_separated(client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    people = desk["people"]

    def found(query: str) -> set[str]:
        response = client.get("/hr/members", query_string={"q": query})
        assert response.status_code == 200
        return set(re.findall(r'href="/hr/members/(\d+)"', response.get_data(as_text=True)))

    ids = {key: str(m.id) for key, m in people.items()}
    assert found("501") == {ids["alex"]}
    assert found("50") == {ids["alex"], ids["jo"], ids["flo"], ids["dana"]}
    assert found("rivera") == {ids["alex"]}
    assert found("RIVER") == {ids["alex"], ids["dana"]}
    assert found("Rivera, Al") == {ids["alex"]}
    assert found("alex rivera") == {ids["alex"]}
    assert found("rivera alex") == {ids["alex"]}
    assert found("Rivera, Dana") == set()
    assert found("gone") == {ids["flo"]}  # separated, still found
    assert "Separated" in client.get("/hr/members?q=gone").get_data(as_text=True)
    page = client.get("/hr/members?q=nobody-here").get_data(as_text=True)
    assert "No member matches “nobody-here”." in page
    # LIKE wildcards typed into the box are taken literally.
    assert found("%") == set() and found("_0") == set()

    empty = client.get("/hr/members?q=")
    assert empty.status_code == 400 and "Enter a badge number or a name." in empty.get_data(as_text=True)
    assert 'aria-invalid="true"' in empty.get_data(as_text=True)
    events = audit(db, "hr.search")
    assert len(events) == 13  # every search with a query, none for the empty one
    assert events[0].actor_id == people["hr"].id and events[0].ip == "127.0.0.1"
    assert events[0].details == {"query": "501", "results": 1}


def test_member_page_lists_every_acknowledgment_with_score_and_attempt(client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    alex, ack = desk["people"]["alex"], desk["acks"]["alex"]
    page = client.get(f"/hr/members/{alex.id}").get_data(as_text=True)
    assert "Alex Rivera" in page and "badge 501" in page
    assert ack.verification_code in page and ack.signed_at_local in page
    assert f"{ack.quiz_score}%, attempt {ack.quiz_attempt_number}" in page
    assert f'href="/hr/receipts/{ack.id}.pdf"' in page and "Stands" in page
    assert '<th scope="col">Policy and version</th>' in page
    assert '<caption id="member-table-1">Every acknowledgment Alex Rivera signed' in page
    # Another member's acknowledgment is not on Alex's page.
    assert desk["acks"]["jo"].verification_code not in page
    dana = client.get(f"/hr/members/{desk['people']['dana'].id}").get_data(as_text=True)
    assert "Dana Rivers has not signed any acknowledgments." in dana
    assert client.get("/hr/members/999999").status_code == 404

    events = audit(db, "hr.view_member")
    assert [e.target for e in events] == [f"member:{alex.id}", f"member:{desk['people']['dana'].id}"]
    assert events[0].details == {"badge": "501", "acknowledgments": 1} and events[0].ip == "127.0.0.1"


def test_member_record_lists_newest_first_with_voids(app, db, desk):
    alex = desk["people"]["alex"]
    ack = db.get(Acknowledgment, desk["acks"]["alex"].id)
    hr = db.get(Member, desk["people"]["hr"].id)
    void_acknowledgment(db, ack=ack, reason="Signed under the wrong badge", actor=hr, ip="10.0.0.9", now=utcnow())
    db.commit()
    record = hr_service.member_record(db, alex.id)
    assert [e.ack.id for e in record.acknowledgments] == [ack.id]
    entry = record.acknowledgments[0]
    assert not entry.live and entry.void.reason == "Signed under the wrong badge"
    assert entry.void.voided_by.full_name == "Pat Lee" and entry.cycle_name.endswith("annual")
    assert hr_service.member_record(db, 999999) is None


def _copy_acknowledgments(db, original: Acknowledgment, n: int, pdf_size: int = 100) -> None:
    """Append ``n`` copies of an acknowledgment with receipts of ``pdf_size`` bytes (not a valid
    chain: for volume tests only)."""
    columns = [c.key for c in Acknowledgment.__table__.columns if c.key != "id"]
    top = db.scalar(select(func.max(Acknowledgment.sequence)))
    generation = db.scalar(select(func.max(Acknowledgment.generation))
                           .where(Acknowledgment.assignment_id == original.assignment_id))
    for i in range(1, n + 1):
        facts = {c: getattr(original, c) for c in columns}
        facts.update(sequence=top + i, generation=generation + i,
                     verification_code=f"TEST-{i:04d}-{top:04d}", record_hash=f"{top + i:064x}")
        ack = Acknowledgment(**facts)
        db.add(ack)
        db.flush()
        pdf_bytes = b"%PDF-1.7\n" + bytes([i % 256]) * pdf_size
        db.add(Receipt(acknowledgment_id=ack.id, pdf=pdf_bytes, sha256=hashlib.sha256(pdf_bytes).hexdigest()))
        db.commit()
        db.expunge_all()


def test_member_record_takes_the_same_queries_for_one_or_many_acknowledgments(app, db, desk):
    from sqlalchemy import event

    from lms.db import get_database

    engine = get_database(app).engine
    alex = desk["people"]["alex"].id

    def statements() -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            with get_database(app).sessionmaker() as session:
                record = hr_service.member_record(session, alex)
                for entry in record.acknowledgments:  # what the page reads
                    _ = (entry.ack.policy_title, entry.cycle_name, entry.void and entry.void.voided_by.full_name)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen), len(record.acknowledgments)

    ack_id, hr_id = desk["acks"]["alex"].id, desk["people"]["hr"].id

    def void(ack_id: int) -> None:
        void_acknowledgment(db, ack=db.get(Acknowledgment, ack_id), reason="Signed under the wrong badge",
                            actor=db.get(Member, hr_id), ip="10.0.0.3", now=utcnow())
        db.commit()

    void(ack_id)
    one = statements()
    _copy_acknowledgments(db, db.get(Acknowledgment, ack_id), 5)
    for copy_id in db.scalars(select(Acknowledgment.id).where(Acknowledgment.id != ack_id,
                                                              Acknowledgment.member_id == alex).limit(2)):
        void(copy_id)
    many = statements()
    assert one[1] == 1 and many[1] == 6
    assert one[0] == many[0]


# --- receipts ------------------------------------------------------------------------------------

def test_hr_downloads_any_members_receipt_as_stored(client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    ack = desk["acks"]["jo"]
    stored = db.get(Receipt, ack.id)
    response = client.get(f"/hr/receipts/{ack.id}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data == stored.pdf
    assert response.headers["X-Receipt-SHA256"] == hashlib.sha256(response.data).hexdigest()
    assert f'filename="16.3_2013-11-26_502_{ack.id}.pdf"' in response.headers["Content-Disposition"]
    assert client.get("/hr/receipts/999999.pdf").status_code == 404
    [event] = audit(db, "hr.receipt_download")
    assert event.target == f"acknowledgment:{ack.id}" and event.actor_id == desk["people"]["hr"].id
    assert event.details["badge"] == "502" and event.ip == "127.0.0.1"


# --- export --------------------------------------------------------------------------------------

def read_export(data: bytes) -> tuple[list[str], list[dict], zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[-1] == "manifest.csv"
    text = archive.read("manifest.csv").decode("utf-8")
    assert text.splitlines()[0] == MANIFEST_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["receipt_file"] for r in rows] == names[:-1]
    for row in rows:
        assert row["receipt_sha256"] == hashlib.sha256(archive.read(row["receipt_file"])).hexdigest()
    return names, rows, archive


def post_export(client, **filters):
    token = csrf_token(client, "/hr/export")
    return client.post("/hr/export", data={"csrf_token": token, **filters})


def test_export_zip_holds_receipts_and_the_contract_manifest(app, client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    form = client.get("/hr/export").get_data(as_text=True)
    assert '<label class="label" for="since">' in form and 'id="until"' in form
    response = post_export(client)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["X-Export-Count"] == "3"
    assert int(response.headers["Content-Length"]) == len(response.data)
    _, rows, _ = read_export(response.data)
    acks = {a.verification_code: db.get(Acknowledgment, a.id) for a in desk["acks"].values()}
    assert {r["verification_code"] for r in rows} == set(acks)
    for row in rows:
        ack = acks[row["verification_code"]]
        member = db.get(Member, ack.member_id)
        assert row["receipt_file"] == f"16.3_2013-11-26_{ack.badge}_{ack.id}.pdf"
        assert (row["badge"], row["last_name"], row["first_name"]) == (ack.badge, member.last_name, member.first_name)
        assert (row["policy"], row["policy_version"]) == ("16.3", "2013-11-26")
        assert row["signed_at"] == ack.signed_at_local and LOCAL_ISO.match(row["signed_at"])
        assert row["text_sha256"] == ack.text_sha256 and row["record_hash"] == ack.record_hash
        assert row["receipt_sha256"] == db.get(Receipt, ack.id).sha256

    [event] = audit(db, "hr.export")
    assert event.actor_id == desk["people"]["hr"].id and event.ip == "127.0.0.1"
    assert event.details["count"] == 3 and event.details["via"] == "web"
    assert event.details["filters"] == {"policy": None, "version": None, "unit": None, "since": None, "until": None}


def _exported_badges(client, **filters) -> set[str]:
    response = post_export(client, **filters)
    assert response.status_code == 200, response.get_data(as_text=True)
    if response.mimetype == "text/html":  # nothing matched: the form says so, no ZIP
        assert "No signed acknowledgments match these filters" in response.get_data(as_text=True)
        return set()
    return {r["badge"] for r in read_export(response.data)[1]}


def test_export_filters(app, client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    day = today(app)
    everyone = {"501", "502", "503"}
    assert _exported_badges(client, unit="Traffic") == {"502", "503"}
    assert _exported_badges(client, unit="Patrol North") == {"501"}
    assert _exported_badges(client, policy="16.3") == everyone
    assert _exported_badges(client, version="2013-11-26") == everyone
    assert _exported_badges(client, policy="16.3", version="2013-11-26", unit="Traffic") == {"502", "503"}
    assert _exported_badges(client, since=day.isoformat(), until=day.isoformat()) == everyone
    assert _exported_badges(client, since=(day + timedelta(days=1)).isoformat()) == set()
    assert _exported_badges(client, until=(day - timedelta(days=1)).isoformat()) == set()
    # The two that matched nothing handed over no ZIP; the searches are still on record.
    assert [e.details["count"] for e in audit(db, "hr.export")] == [2, 1, 3, 3, 2, 3, 0, 0]


def test_an_export_that_matches_nothing_says_so_instead_of_an_empty_zip(app, client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    tomorrow = (today(app) + timedelta(days=1)).isoformat()
    response = post_export(client, since=tomorrow, unit="Traffic")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "There is a problem" in page and "No signed acknowledgments match these filters" in page
    assert f'value="{tomorrow}"' in page  # the filters are kept, to widen them
    assert db.scalars(select(Job)).all() == []
    [event] = audit(db, "hr.export")  # the search is on record: nothing found, no file
    assert event.details["count"] == 0 and event.details["file"] is None and event.details["via"] == "web"


def test_cli_export_acks_that_matches_nothing_writes_no_zip(app, runner, db, desk, tmp_path):
    tomorrow = (today(app) + timedelta(days=1)).isoformat()
    folder = tmp_path / "out"
    folder.mkdir()
    result = runner.invoke(args=["lms", "export-acks", "--since", tomorrow, "--out", str(folder / "acks.zip")])
    assert result.exit_code == 1
    assert "No signed acknowledgments match these filters" in result.output and "No ZIP was written." in result.output
    assert list(folder.iterdir()) == [] and audit(db, "hr.export") == []


@pytest.mark.parametrize("filters,field,message", [
    ({"since": "2026-03-10", "until": "2026-03-01"}, "until", "The end date is before the start date."),
    ({"since": "not a date"}, "since", "Enter a date as YYYY-MM-DD"),
    ({"until": "2026-02-30"}, "until", "Enter a date as YYYY-MM-DD"),
    ({"policy": "99.9"}, "policy", "Unknown policy 99.9 (known: 16.3)."),
    ({"version": "2001-01-01"}, "version", "No version is effective 2001-01-01 (known: 2013-11-26)."),
    ({"version": "01/01/2001"}, "version", "Enter a date as YYYY-MM-DD"),
    ({"unit": "Nowhere"}, "unit", "No member is in unit &#39;Nowhere&#39;."),
])
def test_export_form_reports_bad_filters_beside_the_field(client, auth, db, people, filters, field, message):
    hr_sign_in(auth, people)
    response = post_export(client, **filters)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and response.mimetype == "text/html"
    error = re.search(rf'<p class="error-message" id="{field}-error">(.*?)</p>', page, re.S)
    assert error and message in error.group(1)
    assert f'aria-describedby="{field}-hint {field}-error"' in page or \
        f'aria-describedby="{field}-error"' in page
    assert audit(db, "hr.export") == []


def test_export_without_csrf_token_is_refused(client, auth, people):
    hr_sign_in(auth, people)
    assert client.post("/hr/export", data={}).status_code == 400


def test_export_leaves_out_voided_acknowledgments(client, auth, db, desk):
    ack = db.get(Acknowledgment, desk["acks"]["jo"].id)
    void_acknowledgment(db, ack=ack, reason="Signed on a shared terminal by someone else",
                        actor=db.get(Member, desk["people"]["hr"].id), ip="10.0.0.1", now=utcnow())
    db.commit()
    hr_sign_in(auth, desk["people"])
    assert _exported_badges(client) == {"501", "503"}


def test_export_streams_receipts_a_batch_at_a_time(app, db, desk, monkeypatch, tmp_path):
    """Forty 1 MB receipts go through in a few megabytes: rows are fetched a batch at a time and
    nothing holds on to a receipt once it is in the ZIP."""
    big = 1024 * 1024
    _copy_acknowledgments(db, db.get(Acknowledgment, desk["acks"]["alex"].id), 40, pdf_size=big)
    monkeypatch.setattr(exports, "BATCH", 4)
    out = tmp_path / "big.zip"
    with app.app_context(), out.open("w+b") as handle:
        tracemalloc.start()
        result = exports.write_ack_zip(db, handle, exports.ExportFilters(), tz=app.config["TIMEZONE"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert result.count == 43
    assert peak < 12 * big, f"peak {peak / big:.1f} MB"
    _, rows, _ = read_export(out.read_bytes())
    assert len(rows) == 43


def test_manifest_values_cannot_run_as_spreadsheet_formulas():
    assert exports.csv_safe("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert [exports.csv_safe(v) for v in ("+1", "-1", "@SUM(A1)", "Rivera", "2026-01-01")] == \
        ["'+1", "'-1", "'@SUM(A1)", "Rivera", "2026-01-01"]
    name = exports.receipt_file_name("16.3", date(2013, 11, 26), "../../etc/x", 7)
    assert "/" not in name and "\\" not in name and name.startswith("16.3_2013-11-26_") and name.endswith("_7.pdf")


def test_manifest_escapes_a_name_that_looks_like_a_formula(client, auth, db, desk):
    member = db.get(Member, desk["people"]["alex"].id)
    member.last_name = "=cmd|' /C calc'!A0"
    db.commit()
    hr_sign_in(auth, desk["people"])
    rows = read_export(post_export(client, unit="Patrol North").data)[1]
    assert rows[0]["last_name"] == "'=cmd|' /C calc'!A0"


# --- export from the command line ----------------------------------------------------------------

def test_cli_export_acks_writes_the_same_zip(app, runner, db, desk, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "acks.zip"
    result = runner.invoke(args=["lms", "export-acks", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Exported 3 acknowledgments to {out}."
    _, rows, _ = read_export(out.read_bytes())
    assert {r["badge"] for r in rows} == {"501", "502", "503"}
    assert [p.name for p in folder.iterdir()] == ["acks.zip"]  # no partial file left behind

    traffic = folder / "traffic.zip"
    day = today(app).isoformat()
    result = runner.invoke(args=["lms", "export-acks", "--policy", "16.3", "--version", "2013-11-26",
                                 "--unit", "Traffic", "--since", day, "--until", day, "--out", str(traffic)])
    assert result.exit_code == 0, result.output
    assert "Exported 2 acknowledgments" in result.output
    assert {r["badge"] for r in read_export(traffic.read_bytes())[1]} == {"502", "503"}

    events = audit(db, "hr.export")
    assert [(e.actor_id, e.details["via"], e.details["count"]) for e in events] == [(None, "cli", 3), (None, "cli", 2)]
    assert events[1].details["filters"] == {"policy": "16.3", "version": "2013-11-26", "unit": "Traffic",
                                            "since": day, "until": day}


@pytest.mark.parametrize("args,code,message", [
    (["--policy", "99.9"], 1, "Unknown policy 99.9 (known: 16.3). (--policy)"),
    (["--version", "2001-01-01"], 1, "No version is effective 2001-01-01"),
    (["--unit", "Nowhere"], 1, "No member is in unit 'Nowhere'. (--unit)"),
    (["--since", "2026-03-10", "--until", "2026-03-01"], 1, "The end date is before the start date. (--until)"),
    (["--since", "yesterday"], 2, "Invalid value for '--since'"),
    (["--version", "11/26/2013"], 2, "Invalid value for '--version'"),
])
def test_cli_export_acks_refuses_bad_options_and_writes_nothing(runner, db, people, tmp_path, args, code, message):
    folder = tmp_path / "out"
    folder.mkdir()
    result = runner.invoke(args=["lms", "export-acks", *args, "--out", str(folder / "acks.zip")])
    assert result.exit_code == code
    assert message in result.output
    assert list(folder.iterdir()) == []
    assert audit(db, "hr.export") == []


def test_cli_export_acks_needs_out_and_an_existing_folder(runner, people, tmp_path):
    result = runner.invoke(args=["lms", "export-acks"])
    assert result.exit_code == 2 and "Missing option '--out'" in result.output
    result = runner.invoke(args=["lms", "export-acks", "--out", str(tmp_path / "missing" / "a.zip")])
    assert result.exit_code == 1 and "does not exist (--out)" in result.output


# --- as of date D --------------------------------------------------------------------------------

def test_as_of_before_and_after_signing(app, client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    alex, ack = desk["people"]["alex"], desk["acks"]["alex"]
    day = today(app)
    url = f"/hr/members/{alex.id}/as-of"

    before = client.get(url, query_string={"on": (day - timedelta(days=1)).isoformat()})
    page = before.get_data(as_text=True)
    assert before.status_code == 200
    assert 'effective <time datetime="2013-11-26">November 26, 2013</time>' in page
    assert page.count('<span class="answer answer-no">No</span>') == 2 and "answer-yes" not in page

    after = client.get(url, query_string={"on": day.isoformat()}).get_data(as_text=True)
    assert after.count('<span class="answer answer-yes">Yes</span>') == 2
    assert f'signed <time datetime="{ack.signed_at_local}">' in after and ack.verification_code in after
    assert f'href="/hr/members/{alex.id}/as-of.pdf?on={day.isoformat()}"' in after

    early = client.get(url, query_string={"on": "2013-11-25"}).get_data(as_text=True)
    assert "No version of this policy was in force yet." in early

    future = client.get(url, query_string={"on": (day + timedelta(days=1)).isoformat()})
    assert future.status_code == 400 and "Choose a date up to today" in future.get_data(as_text=True)
    bad = client.get(url, query_string={"on": "31/12/2025"})
    assert bad.status_code == 400 and "Enter a date as YYYY-MM-DD" in bad.get_data(as_text=True)
    assert client.get(url).status_code == 200  # the form alone
    assert client.get("/hr/members/999999/as-of", query_string={"on": day.isoformat()}).status_code == 404

    events = audit(db, "hr.as_of")
    assert [e.details["on"] for e in events] == [(day - timedelta(days=1)).isoformat(), day.isoformat(), "2013-11-25"]
    assert events[0].details["acknowledged"] == {"16.3": False} and events[1].details["acknowledged"] == {"16.3": True}
    assert all(e.target == f"member:{alex.id}" and e.ip == "127.0.0.1" for e in events)


def _walk_back_in_time(db, member: Member, signed_at: datetime, tz: str) -> Acknowledgment:
    """Read, pass and sign with fixed past times, through the services (as the demo seed does)."""
    assignment = db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()
    start = signed_at - timedelta(hours=2)
    for i, lesson in enumerate(assignment.policy_version.lessons):
        mark_lesson_read(db, assignment, lesson, start + timedelta(minutes=i))
    attempt = quiz_service.start_attempt(db, assignment, signed_at - timedelta(minutes=30))
    answers = {item.position: [o.id for o in item.question.options if o.correct] for item in attempt.items}
    quiz_service.submit_attempt(db, attempt, answers, signed_at - timedelta(minutes=20))
    facts = SigningFacts(ip="10.1.1.1", user_agent="test", now=signed_at, timezone=tz, department="Test PD")
    ack, _ = append_acknowledgment(db, assignment=assignment, member=member, printed_name=member.full_name,
                                   facts=facts)
    db.commit()
    return ack


def test_as_of_counts_up_to_the_end_of_the_local_day_and_voids_from_when_written(app, db, make_member, open_cycle):
    tz = app.config["TIMEZONE"]
    member = make_member(first="Lee", last="Night")
    hr = make_member(first="Pat", last="Lee", roles=("hr",))
    open_cycle()
    # 03:30 UTC on June 15 is 22:30 on June 14 in Chicago: it counts for June 14.
    signed_at = datetime(2025, 6, 15, 3, 30, tzinfo=timezone.utc)
    ack = _walk_back_in_time(db, member, signed_at, tz)

    before = hr_service.as_of(db, member.id, date(2025, 6, 13), tz)
    [entry] = before.entries
    assert entry.version.effective == date(2013, 11, 26)
    assert not entry.acknowledged and not entry.quiz_passed

    [entry] = hr_service.as_of(db, member.id, date(2025, 6, 14), tz).entries
    assert entry.acknowledged and entry.ack.id == ack.id and entry.later_void is None
    assert entry.quiz_passed and entry.attempt.id == ack.quiz_attempt_id
    assert entry.attempt_submitted_local == "2025-06-14T22:10:00-05:00"

    # Voided on July 1: it stood on June 30 (reported with the later void), not from July 1.
    void_acknowledgment(db, ack=ack, reason="Signed under the wrong badge", actor=hr, ip="10.0.0.2",
                        now=datetime(2025, 7, 1, 15, 0, tzinfo=timezone.utc))
    db.commit()
    [entry] = hr_service.as_of(db, member.id, date(2025, 6, 30), tz).entries
    assert entry.acknowledged and entry.later_void.reason == "Signed under the wrong badge"
    [entry] = hr_service.as_of(db, member.id, date(2025, 7, 1), tz).entries
    assert not entry.acknowledged and entry.quiz_passed  # the quiz pass stands; the signature does not
    assert hr_service.as_of(db, 999999, date(2025, 7, 1), tz) is None


def test_as_of_picks_the_version_in_force(app, db, make_member):
    """The set-based lookup in as_of agrees with cycles.version_in_force around a newer version."""
    from lms.models import PolicyVersion

    member = make_member()
    old = db.scalars(select(PolicyVersion)).one()
    newer = PolicyVersion(policy_id=old.policy_id, effective=date(2024, 1, 1), text=old.text + "\nAmended.",
                          text_sha256="e" * 64, attestation=old.attestation, pass_mark=old.pass_mark,
                          draw_size=old.draw_size, max_attempts=old.max_attempts,
                          minimum_per_topic=old.minimum_per_topic, topics=old.topics)
    db.add(newer)
    db.commit()
    for day in (date(2013, 11, 25), date(2013, 11, 26), date(2023, 12, 31), date(2024, 1, 1), date(2025, 5, 5)):
        [entry] = hr_service.as_of(db, member.id, day, app.config["TIMEZONE"]).entries
        assert entry.version == version_in_force(db, "16.3", day), day


def test_evidence_pdf(app, client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    alex = desk["people"]["alex"]
    day = today(app).isoformat()
    response = client.get(f"/hr/members/{alex.id}/as-of.pdf", query_string={"on": day})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    assert f'filename="as-of-{day}-badge-501.pdf"' in response.headers["Content-Disposition"]
    [event] = audit(db, "hr.evidence_pdf")
    assert event.target == f"member:{alex.id}" and event.details == {"badge": "501", "on": day}
    assert event.actor_id == desk["people"]["hr"].id and event.ip == "127.0.0.1"
    assert client.get(f"/hr/members/{alex.id}/as-of.pdf", query_string={"on": "2999-01-01"}).status_code == 400
    assert client.get(f"/hr/members/{alex.id}/as-of.pdf").status_code == 400


def test_evidence_pdf_is_one_page(app, db, desk):
    report = hr_service.as_of(db, desk["people"]["alex"].id, today(app), app.config["TIMEZONE"])
    html = pdf.render_template("evidence.html", report=report, department="Elgin Police Department",
                               generated_at="2026-03-14T10:09:26-05:00", generated_by=desk["people"]["hr"])
    assert "Pat Lee (badge 900)" in html and desk["acks"]["alex"].verification_code in html
    assert len(pdf.render_document(html).pages) == 1


# --- voiding -------------------------------------------------------------------------------------

def test_hr_voids_an_acknowledgment_with_a_reason_and_password(client, auth, db, desk):
    hr_sign_in(auth, desk["people"])
    ack = desk["acks"]["alex"]
    url = f"/hr/acknowledgments/{ack.id}/void"
    page = client.get(url).get_data(as_text=True)
    assert ack.verification_code in page and '<label class="label" for="reason">' in page
    assert f'href="{url}"' in client.get(f"/hr/members/{ack.member_id}").get_data(as_text=True)
    token = csrf_token(client, url)

    wrong = client.post(url, data={"csrf_token": token, "reason": "Signed under the wrong badge",
                                   "password": "not my password"})
    assert wrong.status_code == 400 and "That is not your current password." in wrong.get_data(as_text=True)
    short = client.post(url, data={"csrf_token": token, "reason": "oops", "password": PASSWORD})
    assert short.status_code == 400 and "at least 10 characters" in short.get_data(as_text=True)
    missing = client.post(url, data={"csrf_token": token, "reason": "", "password": PASSWORD})
    assert missing.status_code == 400 and "Say why this acknowledgment no longer counts." in missing.get_data(as_text=True)
    assert db.scalar(select(func.count(AcknowledgmentVoid.id))) == 0

    done = client.post(url, data={"csrf_token": token, "reason": "Signed under the wrong badge", "password": PASSWORD})
    assert done.status_code == 303 and done.headers["Location"] == f"/hr/members/{ack.member_id}"
    void = db.scalars(select(AcknowledgmentVoid)).one()
    assert void.acknowledgment_id == ack.id and void.voided_by_id == desk["people"]["hr"].id
    member_page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Voided" in member_page and "Signed under the wrong badge" in member_page
    again = client.post(url, data={"csrf_token": token, "reason": "Signed under the wrong badge", "password": PASSWORD})
    assert again.status_code == 400 and "This acknowledgment was voided on" in again.get_data(as_text=True)
    assert db.scalar(select(func.count(AcknowledgmentVoid.id))) == 1
    failures = [e for e in audit(db, "ack.void") if e.outcome == "failure"]
    assert len(failures) == 3 and all(e.actor_id == desk["people"]["hr"].id for e in failures)


# --- who can reach HR's desk ---------------------------------------------------------------------

def _hr_urls(app, db) -> list[tuple[str, str]]:
    """Every HR URL, with every member and acknowledgment id in the database filled in."""
    member_ids = list(db.scalars(select(Member.id)))
    ack_ids = list(db.scalars(select(Acknowledgment.id)))
    values = {"member_id": member_ids, "ack_id": ack_ids, "job_id": [1]}
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/hr"):
            continue
        assert set(rule.arguments) <= set(values), f"fill in {rule.arguments} for {rule.rule}"
        combos = [{}]
        for arg in rule.arguments:
            combos = [{**c, arg: v} for c in combos for v in values[arg]]
        for method in sorted(rule.methods & {"GET", "POST"}):
            urls += [(method, rule.build(c)[1]) for c in combos]
    return urls


@pytest.mark.parametrize("roles", [("officer",), ("coordinator",), ("officer", "coordinator"), ("admin",)])
def test_no_one_but_hr_reaches_hr_pages_or_others_receipts(app, client, auth, db, desk, make_member, roles):
    urls = _hr_urls(app, db)
    assert {u for _, u in urls} >= {"/hr/", "/hr/members", "/hr/export"}
    assert any(u.endswith(".pdf") for _, u in urls) and any(m == "POST" for m, _ in urls)
    alex = desk["people"]["alex"]
    if roles == ("officer",):
        outsider = db.get(Member, alex.id)  # a member with an acknowledgment of their own
    else:
        outsider = make_member(first="Out", last="Sider", badge="800", roles=roles)
    auth.sign_in(outsider.badge)
    token = csrf_token(client, "/verify")
    for method, url in urls:
        response = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})
        assert response.status_code == 403, (method, url)
    for ack_id in db.scalars(select(Acknowledgment.id)):
        own = db.get(Acknowledgment, ack_id).member_id == outsider.id
        status = client.get(f"/training/receipts/{ack_id}.pdf").status_code
        if own:
            assert status == 200
        else:
            assert status in (403, 404), ack_id
    assert audit(db, "hr.receipt_download") == [] and audit(db, "hr.view_member") == []
    assert audit(db, "hr.export") == []


def test_anonymous_visitors_are_sent_to_sign_in(app, client, db, desk):
    for method, url in _hr_urls(app, db):
        response = client.get(url) if method == "GET" else client.post(url)
        if method == "GET":
            assert response.status_code == 302 and "/sign-in" in response.headers["Location"], url
        else:
            assert response.status_code in (302, 400), url  # no CSRF token, or sent to sign in


def test_home_page_links_to_search_and_export(client, auth, desk):
    hr_sign_in(auth, desk["people"])
    page = client.get("/hr/").get_data(as_text=True)
    assert 'action="/hr/members"' in page and 'href="/hr/export"' in page
    assert '<label class="label" for="q">Badge number or name</label>' in page
