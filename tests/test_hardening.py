"""Bad input met through every entry point ends in a clear refusal, never a 500 or a traceback,
and changes nothing; nobody acts on their own record. Seed corpus of the cases a fuzzing run of
the web pages, the personnel import and the receipt download found (issue 15)."""
from __future__ import annotations

import io
import logging
import os
import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lms import create_app
from lms.models import Acknowledgment, AcknowledgmentVoid, AuditEvent, Cycle, Exemption, Member
from lms.services.validators import ascii_int, email_problem, text_problem
from lms.web import attachment
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token
from tests.helpers import assignment_of, open_attempt, pass_quiz, read_all_lessons, sign, start_quiz, submit
from tests.test_authorization_matrix import EXPECTED, ROLES, _signed_in_client
from tests.test_personnel import HEADER, _import, _members

# --- ids no row can have -----------------------------------------------------------------------------

@pytest.mark.parametrize("huge", [2**31, 2**63, 10**30])
def test_ids_beyond_any_row_are_not_found(app, db, make_member, huge):
    """Every route with a numeric id answers 404 for a number too large for the database's id
    column (SQLite overflowed past 2**63, PostgreSQL's integer columns past 2**31)."""
    members = {role: make_member(first=role.capitalize(), last="Holder", badge=f"8{i}", roles=(role,))
               for i, role in enumerate(ROLES[1:])}
    clients = {}
    wrong = []
    for rule in app.url_map.iter_rules():
        numeric = [arg for arg in rule.arguments if f"<int:{arg}>" in rule.rule]
        if not numeric:
            continue
        allowed = next(role for role in ROLES[1:] if EXPECTED[rule.endpoint][role] in ("ok", "404"))
        client = clients.get(allowed) or clients.setdefault(allowed, _signed_in_client(app, members[allowed]))
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<int:{arg}>", str(huge)).replace(f"<{arg}>", "x")
        for method in sorted(rule.methods & {"GET", "POST"}):
            data = {"csrf_token": csrf_token(client, "/sign-in")} if method == "POST" else None
            response = client.open(url, method=method, data=data)
            # 405 where another route shares the address with other methods: werkzeug then
            # reports the method, not the id; either way nothing reached the database.
            if response.status_code not in (404, 405):
                wrong.append(f"{method} {url} as {allowed}: {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_ascii_int_takes_ascii_digits_only():
    assert ascii_int("12") == 12
    for text in ("²", "١٢", " 12", "12 ", "+1", "-1", "1e3", "", "0x10", str(2**31)):
        assert ascii_int(text) is None, text


# --- the quiz, the audit log, dates ------------------------------------------------------------------

def test_a_superscript_digit_as_a_quiz_answer_is_a_clear_400(client, auth, db, make_member, open_cycle):
    member = make_member()
    open_cycle()
    auth.sign_in(member.badge)
    assignment = assignment_of(db, member)
    read_all_lessons(client, assignment.id)
    start_quiz(client, assignment.id)
    attempt = open_attempt(db, assignment.id)
    answers = {f"q{item.position}": ["²"] for item in attempt.items}
    answers["q²"] = ["1"]
    response = submit(client, assignment.id, attempt.id, answers)
    assert response.status_code == 400
    assert "need attention" in response.get_data(as_text=True)
    db.expire_all()
    assert open_attempt(db, assignment.id).submitted_at is None


@pytest.mark.parametrize("query", ["until=9999-12-31", "since=0001-01-01", "until=2026-02-30",
                                   "since=20260101", "page=99999999999999999999", "page=²"])
def test_audit_log_filters_out_of_range_are_refused_or_ignored(client, auth, make_member, query):
    admin = make_member(roles=("admin",), badge="91")
    auth.sign_in(admin.badge)
    for path in ("/admin/audit/", "/admin/audit/export.csv"):
        response = client.get(f"{path}?{query}")
        assert response.status_code in (200, 400), (path, query, response.status_code)
        if query.startswith(("since", "until")):
            assert response.status_code == 400
            html = response.get_data(as_text=True)
            assert "outside the years" in html or "YYYY-MM-DD" in html


def test_grace_days_beyond_a_year_are_refused(runner, db, make_member):
    make_member()
    result = runner.invoke(args=["lms", "cycle", "create", "--year", "2030", "--due", "2030-12-31",
                                 "--grace-days", "99999999"])
    assert result.exit_code != 0 and "grace days must be between 0 and 365" in result.output
    assert db.scalar(select(func.count(Cycle.id))) == 0


# --- the personnel import ----------------------------------------------------------------------------

ROW = "3101,Maria,Muñoz,{email},Sergeant,Patrol North,Day,,2010-04-01,active,officer\n"


@pytest.mark.parametrize("email, message", [
    ('"maria@example.org\r\nBcc: all@example.org"', "control character"),
    ('"maria@example.org,boss@example.org"', "not one e-mail address"),
    ("maria@example.org;boss@example.org", "not one e-mail address"),
    ('"Maria <maria@example.org>"', "not one e-mail address"),
    ("maria@@example.org", "not an e-mail address"),
    ("maria@localhost", "not an e-mail address"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_import_refuses_email_that_is_not_one_address(runner, db, tmp_path, email, message, dry_run):
    text = HEADER + ROW.format(email=email)
    result = _import(runner, tmp_path, text, *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert "line 2, email:" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert _members(db) == 0


@pytest.mark.parametrize("dry_run", [True, False])
def test_import_refuses_nul_and_control_characters_on_every_database(runner, db, tmp_path, dry_run):
    text = HEADER + "3101,Ma\x00ria,Muñoz,,Sergeant,Patrol\x1bNorth,Day,,2010-04-01,active,officer\n"
    result = _import(runner, tmp_path, text, *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert "line 2, first_name: contains a control character (U+0000)" in result.output
    assert "line 2, unit: contains a control character (U+001B)" in result.output
    assert _members(db) == 0


def test_import_refuses_far_off_hire_dates(runner, db, tmp_path):
    text = HEADER + ROW.format(email="").replace("2010-04-01", "0001-01-01")
    result = _import(runner, tmp_path, text)
    assert result.exit_code == 1 and "line 2, hire_date: 0001-01-01 is outside the years" in result.output


def test_web_preview_refuses_what_the_import_would(client, auth, db, make_member):
    admin = make_member(roles=("admin",), badge="92")
    auth.sign_in(admin.badge)
    text = HEADER + ROW.format(email='"a@example.org,b@example.org"')
    token = csrf_token(client, "/admin/personnel/import")
    response = client.post("/admin/personnel/import", data={
        "csrf_token": token, "file": (io.BytesIO(text.encode()), "people.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    assert "line 2, email:" in response.get_data(as_text=True)
    assert _members(db) == 1


@pytest.mark.parametrize("value", ["a@example.org", "first.last+tag@sub.example.co.uk"])
def test_plain_addresses_pass(value):
    assert email_problem(value) is None


def test_text_allows_line_breaks_only_where_asked():
    assert text_problem("line one\nline two") is not None
    assert text_problem("line one\r\nline two", multiline=True) is None
    assert text_problem("x" * 5, max_length=4) == "longer than 4 characters"


# --- file names in headers ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, fallback", [
    ("receipt-16.3-2013-11-26-1002.pdf", "receipt-16.3-2013-11-26-1002.pdf"),
    ('receipt-16.3-2013-11-26-7"1.pdf', "receipt-16.3-2013-11-26-7_1.pdf"),
    ("receipt-16.3-2013-11-26-Жук.pdf", "receipt-16.3-2013-11-26-.pdf"),
])
def test_attachment_header_is_rfc_6266(name, fallback):
    value = attachment(name)
    value.encode("latin-1")  # a header werkzeug can send
    assert f'filename="{fallback}"' in value or "filename=\"receipt-16.3-2013-11-26\"" in value
    if name != fallback:
        assert "filename*=UTF-8''" in value and '"' not in value.split("filename*=")[1]


def test_receipt_download_with_a_non_latin_badge(client, auth, db, make_member, open_cycle):
    member = make_member(first="Олег", last="Жук", badge='Ж"7')
    open_cycle()
    auth.sign_in(member.badge)
    assignment = assignment_of(db, member)
    read_all_lessons(client, assignment.id)
    pass_quiz(client, db, assignment.id)
    assert sign(client, assignment.id, member.full_name).status_code == 303
    page = client.get("/training/history").get_data(as_text=True)
    link = re.search(r'href="(/training/receipts/\d+\.pdf)"', page).group(1)
    response = client.get(link)
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    disposition = response.headers["Content-Disposition"]
    assert "filename*=UTF-8''receipt-16.3-2013-11-26-%D0%96%227.pdf" in disposition


# --- the error page without the database -------------------------------------------------------------

def test_database_outage_shows_the_apps_own_page_with_a_reference(tmp_path, caplog):
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:9/nowhere",
                      "INSTANCE_PATH": str(tmp_path), "PROPAGATE_EXCEPTIONS": False})
    client = app.test_client()
    token = csrf_token(client)
    with caplog.at_level(logging.ERROR):
        response = client.post("/sign-in", data={"badge": "1001", "password": PASSWORD, "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Roll Call is unavailable" in html and "database cannot be reached" in html
    reference = re.search(r"reference <strong>([0-9a-f]{12})</strong>", html).group(1)
    assert any(reference in record.getMessage() for record in caplog.records)
    assert "Traceback" not in html


# --- separation of duties ----------------------------------------------------------------------------

def test_hr_cannot_void_their_own_acknowledgment(client, auth, db, make_member, open_cycle):
    clerk = make_member(first="Pat", last="Lee", badge="95", roles=("officer", "hr"))
    open_cycle()
    auth.sign_in(clerk.badge)
    assignment = assignment_of(db, clerk)
    read_all_lessons(client, assignment.id)
    pass_quiz(client, db, assignment.id)
    assert sign(client, assignment.id, clerk.full_name).status_code == 303
    db.expire_all()
    ack_id = db.scalar(select(func.max(Acknowledgment.id)))
    url = f"/hr/acknowledgments/{ack_id}/void"
    response = client.post(url, data={"csrf_token": csrf_token(client, url),
                                      "reason": "I signed the wrong one", "password": PASSWORD})
    assert response.status_code == 400
    assert "You cannot void your own acknowledgment" in response.get_data(as_text=True)
    assert db.scalar(select(func.count(AcknowledgmentVoid.id))) == 0


def test_coordinator_cannot_exempt_themselves(client, auth, db, make_member, open_cycle):
    coordinator = make_member(first="Ren", last="Ok", badge="96", roles=("officer", "coordinator"))
    cycle = open_cycle()
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/members/{coordinator.id}"
    response = client.post(f"{url}/exemption", data={"csrf_token": csrf_token(client, url),
                                                     "reason": "military leave"})
    assert response.status_code == 400
    assert "you cannot exempt yourself" in response.get_data(as_text=True)
    assert db.scalar(select(func.count(Exemption.id))) == 0


def test_admin_cannot_grant_themselves_a_role(client, auth, db, make_member):
    admin = make_member(first="Car", last="Rey", badge="97", roles=("admin",))
    make_member(first="Other", last="Admin", badge="98", roles=("admin",))
    auth.sign_in(admin.badge)
    url = f"/admin/members/{admin.id}"
    response = client.post(f"{url}/roles/grant", data={"grant-csrf_token": csrf_token(client, url),
                                                       "grant-role": "hr", "grant-admin_password": PASSWORD})
    assert response.status_code == 400
    assert "You cannot grant yourself a role" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Member, admin.id).role_names == {"admin"}


# --- files ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(bool(os.environ.get("LMS_TEST_DATABASE_URL")), reason="the SQLite file itself")
def test_sqlite_database_is_created_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "fresh.sqlite3"
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{path}", "INSTANCE_PATH": str(tmp_path)})
    from lms.db import get_database
    with get_database(app).engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
        connection.commit()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    get_database(app).dispose()

    old = tmp_path / "old.sqlite3"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{old}", "INSTANCE_PATH": str(tmp_path)})
    with get_database(app).engine.connect():
        pass
    assert stat.S_IMODE(Path(old).stat().st_mode) == 0o600
    get_database(app).dispose()


def test_database_errors_in_the_log_carry_no_values(app, db, caplog):
    """A failing statement's parameters (names, e-mails) are not written into its error."""
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError) as caught:
        db.add_all([Member(badge="dup", first_name="Secret", last_name="Person", email="secret@example.org"),
                    Member(badge="dup", first_name="Secret", last_name="Person", email="secret@example.org")])
        db.flush()
    db.rollback()
    assert "secret@example.org" not in str(caught.value)
    assert db.scalar(select(func.count(AuditEvent.id))) is not None


# --- uploaded personnel files are not kept forever ----------------------------------------------------

def test_uploaded_personnel_files_are_removed_after_the_keep_period(app, client, auth, db, make_member, runner):
    from datetime import timedelta

    from lms.db import utcnow
    from lms.models import PersonnelUpload

    admin = make_member(roles=("admin",), badge="1005")
    old = PersonnelUpload(filename="old.csv", data=b"badge\n", sha256="a" * 64, uploaded_by_id=admin.id,
                          uploaded_at=utcnow() - timedelta(days=31))
    recent = PersonnelUpload(filename="recent.csv", data=b"badge\n", sha256="b" * 64, uploaded_by_id=admin.id,
                             uploaded_at=utcnow() - timedelta(days=29))
    db.add_all([old, recent])
    db.commit()
    old_id, recent_id = old.id, recent.id

    assert runner.invoke(args=["lms", "init"]).exit_code == 0
    db.expire_all()
    assert db.get(PersonnelUpload, old_id) is None and db.get(PersonnelUpload, recent_id) is not None
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "personnel.upload_purge")).one()
    assert event.details["sha256"] == ["a" * 64] and event.details["removed"] == 1

    auth.sign_in(admin.badge)
    assert client.get(f"/admin/personnel/import/{old_id}").status_code == 404

    # The worker's daily task does the same.
    from lms.jobs import enqueue_periodic, run_pending
    stale = PersonnelUpload(filename="stale.csv", data=b"badge\n", sha256="c" * 64, uploaded_by_id=admin.id,
                            uploaded_at=utcnow() - timedelta(days=40))
    db.add(stale)
    db.commit()
    stale_id = stale.id
    assert enqueue_periodic(app, "remove-old-personnel-uploads", utcnow()) is not None
    run_pending(app)
    db.expire_all()
    assert db.get(PersonnelUpload, stale_id) is None
    app.config["PERSONNEL_UPLOAD_KEEP_DAYS"] = 0
    token = csrf_token(client, "/admin/personnel/import")
    client.post("/admin/personnel/import", content_type="multipart/form-data",
                data={"csrf_token": token, "file": (io.BytesIO(b"not,a,roster\n"), "x.csv")})
    db.expire_all()
    assert db.get(PersonnelUpload, recent_id) is None


# --- control characters in any form or query value ----------------------------------------------------

@pytest.mark.parametrize("reason", ["Military\x00 leave", "Military\x1b leave", "Military\r leave"])
def test_a_control_character_in_any_field_is_a_clear_400_that_writes_nothing(client, auth, db, make_member,
                                                                             open_cycle, reason):
    """NUL in a free-text field reached PostgreSQL and failed there (500); it is refused at the door."""
    coordinator = make_member(first="Ren", last="Ok", badge="96", roles=("coordinator",))
    officer = make_member(first="Alex", last="Rivera", badge="501")
    cycle = open_cycle()
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/members/{officer.id}"
    response = client.post(f"{url}/exemption", data={"csrf_token": csrf_token(client, url), "reason": reason})
    assert response.status_code == 400
    assert "contains a control character" in response.get_data(as_text=True)
    assert db.scalar(select(func.count(Exemption.id))) == 0
    assert client.get("/coordinator/?q=a\x00b").status_code == 400
    # Line breaks typed into a text area are not control characters there.
    fine = client.post(f"{url}/exemption", data={"csrf_token": csrf_token(client, url),
                                                 "reason": "Military leave\r\nuntil June"})
    assert fine.status_code in (302, 303)


@pytest.mark.parametrize("args", [
    ["cycle", "create", "--year", "2030", "--due", "9999-12-31"],
    ["roster", "--cycle", "2030", "--as-of", "0001-01-01", "--format", "csv", "--out", "x.csv"],
    ["export-acks", "--since", "9999-12-31", "--out", "x.zip"],
    ["import-personnel", "people.csv", "--effective", "9999-01-01"],
])
def test_command_line_dates_have_the_same_bounds_as_the_forms(runner, tmp_path, args):
    (tmp_path / "people.csv").write_text(HEADER)
    args = [str(tmp_path / a) if a in ("x.csv", "x.zip", "people.csv") else a for a in args]
    result = runner.invoke(args=["lms", *args])
    assert result.exit_code == 2 and "is outside the years 1900–2199" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("year", ["٢٠٣٠", "2⁰30", "20300000000000000000"])
def test_a_cycle_year_in_other_digits_is_refused(client, auth, db, make_member, year):
    coordinator = make_member(first="Ren", last="Ok", badge="96", roles=("coordinator",))
    auth.sign_in(coordinator.badge)
    token = csrf_token(client, "/coordinator/cycles/new")
    response = client.post("/coordinator/cycles/new", data={"csrf_token": token, "year": year,
                                                           "due_date": "2030-12-31", "grace_days": "30"})
    assert response.status_code == 400 and db.scalar(select(func.count(Cycle.id))) == 0
