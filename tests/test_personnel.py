"""Personnel import: the whole file is validated, then applied in one transaction or not at all."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lms.db import utcnow
from lms.models import Assignment, AuditEvent, Member

HEADER = "badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role\n"
GOOD = HEADER + (
    "3001,Maria,Muñoz,maria.munoz@example.org,Sergeant,Patrol North,Day,,2010-04-01,active,officer\n"
    "3002,Sam,Okoro,sam.okoro@example.org,Officer,Patrol North,Day,3001,2019-08-15,active,officer\n"
    "3003,Lee,Tran,lee.tran@example.org,Officer,Traffic,Midnight,3001,2021-02-01,leave,officer\n"
    "3004,Ana,Diaz,ana.diaz@example.org,Analyst,Administration,Day,,2015-06-30,active,officer;coordinator\n"
)


def _import(runner, tmp_path, text: str | bytes, *args: str, name: str = "people.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return runner.invoke(args=["lms", "import-personnel", str(path), *args])


def _members(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(Member.id)))


def test_good_file_is_applied_and_reimport_changes_nothing(runner, db, tmp_path):
    result = _import(runner, tmp_path, GOOD)
    assert result.exit_code == 0, result.output
    assert "4 to add" in result.output and "Imported: 4 added, 0 changed" in result.output
    okoro = db.scalars(select(Member).where(Member.badge == "3002")).one()
    assert okoro.supervisor.badge == "3001" and okoro.hire_date.isoformat() == "2019-08-15"
    assert db.scalars(select(Member).where(Member.badge == "3004")).one().role_names == {"officer", "coordinator"}
    assert db.scalars(select(Member).where(Member.badge == "3001")).one().last_name == "Muñoz"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "personnel.import")).one()
    assert event.details["added"] == 4 and len(event.details["sha256"]) == 64

    again = _import(runner, tmp_path, GOOD)
    assert again.exit_code == 0 and "No changes: the roster already matches this file." in again.output
    assert _members(db) == 4


def test_changes_are_updates_never_duplicates(runner, db, tmp_path):
    _import(runner, tmp_path, GOOD)
    changed = GOOD.replace("3002,Sam,Okoro,sam.okoro@example.org,Officer,Patrol North,Day",
                           "3002,Sam,Okoro,sam.okoro@example.org,Officer,Traffic,Afternoon")
    result = _import(runner, tmp_path, changed)
    assert "line 3: badge 3002: unit 'Patrol North' -> 'Traffic'; shift 'Day' -> 'Afternoon'" in result.output
    assert "Imported: 0 added, 1 changed" in result.output
    assert _members(db) == 4
    assert db.scalars(select(Member).where(Member.badge == "3002")).one().unit == "Traffic"


def test_byte_order_mark_is_accepted(runner, db, tmp_path):
    assert _import(runner, tmp_path, b"\xef\xbb\xbf" + GOOD.encode()).exit_code == 0
    assert _members(db) == 4


def test_dry_run_writes_nothing(runner, db, tmp_path):
    result = _import(runner, tmp_path, GOOD, "--dry-run")
    assert result.exit_code == 0 and "Dry run: nothing was written." in result.output
    assert _members(db) == 0


BAD_FILES = [
    ("bad date", GOOD.replace("2019-08-15", "2019-02-30"), "line 3, hire_date: '2019-02-30' is not a date"),
    ("unknown supervisor", GOOD.replace("Day,3001,2019", "Day,9999,2019"), "line 3, supervisor_badge: no member has badge 9999"),
    ("duplicate badge", GOOD + "3002,Other,Person,,Officer,Traffic,Day,,,active,officer\n",
     "line 6, badge: 3002 is also on line 3"),
    ("wrong header", GOOD.replace("supervisor_badge", "supervisor"), "line 1: header must be badge,first_name"),
    ("unknown status", GOOD.replace(",leave,", ",retired,"), "line 4, status: 'retired' is not one of"),
    ("unknown role", GOOD.replace("officer;coordinator", "officer;chief"), "line 5, role: 'chief' is not one of"),
    ("unknown rank", GOOD.replace("Sergeant", "Sarge"), "line 2, rank: 'Sarge' is not a known rank"),
    ("missing name", GOOD.replace("3002,Sam,", "3002,,"), "line 3, first_name: required"),
    ("too long", GOOD.replace("Okoro", "O" * 81), "line 3, last_name: longer than 80 characters"),
    ("short row", GOOD + "3009,Short,Row\n", "line 6: expected 11 fields, found 3"),
    ("empty file", "", "the file is empty"),
    ("header only", HEADER, "the file has a header but no rows"),
]


@pytest.mark.parametrize("case,text,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_are_refused_whole_with_line_and_field(runner, db, tmp_path, case, text, message):
    result = _import(runner, tmp_path, text)
    assert result.exit_code == 1
    assert message in result.output, result.output
    assert "nothing was imported" in result.output and "Traceback" not in result.output
    assert _members(db) == 0


def test_not_utf8_is_refused(runner, db, tmp_path):
    data = GOOD.replace("Muñoz", "Mu\udcf1oz").encode("utf-8", "surrogateescape")
    result = _import(runner, tmp_path, data)
    assert result.exit_code == 1 and "line 2: the file is not UTF-8" in result.output
    assert _members(db) == 0


def test_oversized_file_is_refused(runner, db, tmp_path):
    big = GOOD.encode() + b"#" * (50 * 1024 * 1024)
    result = _import(runner, tmp_path, big)
    assert result.exit_code == 1 and "the limit is 20,971,520" in result.output
    assert _members(db) == 0


def test_every_bad_row_is_reported(runner, tmp_path):
    text = GOOD.replace("2019-08-15", "15/08/2019").replace(",leave,", ",gone,")
    result = _import(runner, tmp_path, text)
    assert "line 3, hire_date" in result.output and "line 4, status" in result.output


def test_row_and_record_problems_are_reported_in_one_pass(runner, db, tmp_path):
    """A bad date on one row and an unknown supervisor on another are both reported, so a fixed
    file is not refused again for the second; a supervisor whose own row was refused is in the
    file, not unknown."""
    text = GOOD.replace("2019-08-15", "2019-13-01").replace("Midnight,3001,2021", "Midnight,4242,2021")
    result = _import(runner, tmp_path, text)
    assert result.exit_code == 1
    assert "line 3, hire_date" in result.output
    assert "line 4, supervisor_badge: no member has badge 4242" in result.output
    assert result.output.index("line 3,") < result.output.index("line 4,")
    text = GOOD.replace("2019-08-15", "2019-13-01").replace("Midnight,3001,2021", "Midnight,3002,2021")
    result = _import(runner, tmp_path, text)
    assert "line 3, hire_date" in result.output and "supervisor_badge" not in result.output
    assert _members(db) == 0


def test_badge_is_never_reused_for_another_person(runner, db, tmp_path):
    _import(runner, tmp_path, GOOD)
    reused = GOOD.replace("3003,Lee,Tran", "3003,Kim,Park")
    result = _import(runner, tmp_path, reused)
    assert result.exit_code == 1 and "line 4, badge: 3003 belongs to Lee Tran" in result.output
    # A changed last name (marriage) with the same first name is an update, not a new person.
    renamed = GOOD.replace("3003,Lee,Tran", "3003,Lee,Tran-Nguyen")
    assert _import(runner, tmp_path, renamed).exit_code == 0


def test_separation_keeps_records_and_blocks_sign_in(runner, db, tmp_path, auth, make_member):
    _import(runner, tmp_path, GOOD)
    separated = GOOD.replace("2019-08-15,active", "2019-08-15,separated")
    result = _import(runner, tmp_path, separated)
    assert "(1 separations)" in result.output
    member = db.scalars(select(Member).where(Member.badge == "3002")).one()
    assert member.status == "separated" and _members(db) == 4


def test_full_roster_asks_before_separating_the_missing(runner, db, tmp_path):
    _import(runner, tmp_path, GOOD)
    partial = "".join(GOOD.splitlines(keepends=True)[:3])  # header, 3001, 3002
    result = _import(runner, tmp_path, partial, "--full-roster")
    assert "2 members are not in the file (use --separate-missing to separate them)" in result.output
    db.expire_all()
    assert db.scalars(select(Member).where(Member.badge == "3004")).one().status == "active"
    result = _import(runner, tmp_path, partial, "--full-roster", "--separate-missing")
    assert "2 separated" in result.output
    db.expire_all()
    statuses = dict(db.execute(select(Member.badge, Member.status)).all())
    assert statuses["3003"] == statuses["3004"] == "separated" and statuses["3001"] == "active"


def test_new_and_returning_members_join_the_open_cycle_with_grace(runner, db, tmp_path, open_cycle):
    _import(runner, tmp_path, GOOD)
    open_cycle(due_in_days=5)
    db.expire_all()
    assert db.scalar(select(func.count(Assignment.id))) == 3  # the member on leave is not assigned
    back = GOOD.replace("2021-02-01,leave", "2021-02-01,active") + \
        "3005,New,Hire,new.hire@example.org,Officer,Traffic,Day,3001,2026-11-01,active,officer\n"
    assert _import(runner, tmp_path, back).exit_code == 0
    db.expire_all()
    dues = {a.member.badge: a.due_date for a in db.scalars(select(Assignment))}
    today = utcnow().date()
    assert dues["3003"] >= today + timedelta(days=29) and dues["3005"] >= today + timedelta(days=29)
    assert dues["3001"] < today + timedelta(days=6)


# --- the administrator's web flow --------------------------------------------------------------

def _upload(client, text: str | bytes, name: str = "people.csv", full_roster: bool = False):
    import io

    from tests.conftest import csrf_token

    token = csrf_token(client, "/admin/personnel/import")
    data = {"csrf_token": token, "file": (io.BytesIO(text.encode() if isinstance(text, str) else text), name)}
    if full_roster:
        data["full_roster"] = "y"
    return client.post("/admin/personnel/import", data=data, content_type="multipart/form-data")


def test_web_import_previews_then_applies(client, auth, db, make_member):
    admin = make_member(first="Carmen", last="Reyes", roles=("admin",), badge="1005")
    auth.sign_in(admin.badge)
    response = _upload(client, GOOD)
    assert response.status_code == 302
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "To add" in preview and "Muñoz, Maria" in preview and _members(db) == 1
    from tests.conftest import csrf_token
    token = csrf_token(client, response.headers["Location"])
    applied = client.post(response.headers["Location"] + "/apply", data={"csrf_token": token})
    assert applied.status_code == 302
    assert "4 added" in client.get(applied.headers["Location"]).get_data(as_text=True)
    assert _members(db) == 5
    # Applying the same upload twice does nothing more.
    client.post(response.headers["Location"] + "/apply", data={"csrf_token": token})
    assert _members(db) == 5
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("personnel.%"))
                         .order_by(AuditEvent.id)).all()
    assert actions == ["personnel.upload", "personnel.import"]


def test_web_import_lists_errors_and_changes_nothing(client, auth, db, make_member):
    admin = make_member(roles=("admin",), badge="1005")
    auth.sign_in(admin.badge)
    response = _upload(client, GOOD.replace("2019-08-15", "2019-13-01").replace("Midnight,3001,2021", "Midnight,4242,2021"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "Nothing was changed" in page
    assert "line 3, hire_date" in page
    # Found only against the record, yet reported with the row's own mistakes, in one go.
    assert "line 4, supervisor_badge: no member has badge 4242" in page
    assert page.index("line 3, hire_date") < page.index("line 4, supervisor_badge")
    assert 'aria-describedby="file-hint file-problems" aria-invalid="true"' in page
    assert _members(db) == 1
    response = _upload(client, GOOD, name="people.xlsx")
    assert response.status_code == 400 and "Only .csv files are accepted." in response.get_data(as_text=True)


def test_web_import_refuses_oversized_upload(client, auth, db, make_member):
    admin = make_member(roles=("admin",), badge="1005")
    auth.sign_in(admin.badge)
    # Sent as a raw body so the test client holds it in memory; the server refuses it on length.
    body = b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n" + \
        GOOD.encode() + b"#" * (50 * 1024 * 1024) + b"\r\n--x--\r\n"
    response = client.post("/admin/personnel/import", data=body, content_type="multipart/form-data; boundary=x")
    assert response.status_code == 413
    assert "larger than the limit" in response.get_data(as_text=True)
    assert _members(db) == 1


def test_only_admins_import(client, auth, make_member):
    officer = make_member(roles=("officer", "coordinator", "hr"))
    auth.sign_in(officer.badge)
    assert client.get("/admin/personnel/import").status_code == 403
