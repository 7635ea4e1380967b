"""History that does not move: personnel changes are effective-dated, so a roster or evidence "as of
D" shows the department as it stood on D, whatever was imported or edited since."""
from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lms.db import utcnow
from lms.models import Assignment, AuditEvent, DueDateChange, Member, PersonnelChange
from lms.services.clock import local_date
from lms.services.cycles import create_cycle
from lms.services.hr import as_of as hr_as_of
from lms.services.personnel_history import (
    apply_due_changes,
    record_changes,
    record_initial,
    states_on,
)
from lms.services.roster import RosterFilters, roster_rows, roster_summary
from tests.conftest import csrf_token
from tests.helpers import cycle_id_of
from tests.services.test_roster import _walk

HEADER = "badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role\n"
PEOPLE = {
    # badge: (first, last, rank, unit, shift, supervisor, status)
    "601": ("Sam", "Sarge", "Sergeant", "Patrol North", "Day", "", "active"),
    "602": ("Tia", "Tally", "Sergeant", "Traffic", "Day", "", "active"),
    "611": ("Al", "Apple", "Officer", "Patrol North", "Day", "601", "active"),
    "612": ("Bo", "Berry", "Officer", "Patrol North", "Night", "601", "active"),
    "613": ("Cy", "Cherry", "Officer", "Patrol North", "Day", "601", "active"),
    "614": ("Di", "Date", "Officer", "Traffic", "Day", "602", "active"),
    "615": ("Ed", "Elder", "Officer", "Traffic", "Evening", "602", "active"),
    "616": ("Fay", "Fig", "Officer", "Traffic", "Day", "602", "active"),
    "617": ("Gus", "Grape", "Officer", "Traffic", "Day", "602", "leave"),
}
#: Today's import: 611 separated, 612 on leave, 613 transferred to Traffic under 602, 614 made a
#: detective on nights, 616 (who signed) separated, 617 back from leave.
CHANGES = {
    "611": {"status": "separated"},
    "612": {"status": "leave"},
    "613": {"unit": "Traffic", "supervisor": "602"},
    "614": {"rank": "Detective", "shift": "Night"},
    "616": {"status": "separated"},
    "617": {"status": "active"},
}


def personnel_csv(changes: dict | None = None) -> str:
    lines = [HEADER]
    for badge, (first, last, rank, unit, shift, supervisor, status) in PEOPLE.items():
        change = (changes or {}).get(badge, {})
        rank, unit = change.get("rank", rank), change.get("unit", unit)
        shift, supervisor = change.get("shift", shift), change.get("supervisor", supervisor)
        status = change.get("status", status)
        lines.append(f"{badge},{first},{last},{first.lower()}@example.org,{rank},{unit},{shift},{supervisor},"
                     f"2015-01-05,{status},officer\n")
    return "".join(lines)


def import_file(runner, tmp_path, text: str, *args: str, name: str = "people.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(args=["lms", "import-personnel", str(path), *args])
    assert result.exit_code == 0, result.output
    return result


def today_of(app) -> date:
    return local_date(utcnow(), app.config["TIMEZONE"])


def local_moment(app, day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(app.config["TIMEZONE"])).astimezone(ZoneInfo("UTC"))


def changes_count(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(PersonnelChange.id)))


def member(db, badge: str) -> Member:
    db.expire_all()
    return db.scalars(select(Member).where(Member.badge == badge)).one()


@pytest.fixture
def department(app, db, runner, tmp_path):
    """The personnel file imported effective 100 days ago, a cycle opened 90 days ago (due in 30
    days) and walked: 611 in progress, 612 passed the quiz, 613 and 616 signed, 614 failed it."""
    today = today_of(app)
    start = today - timedelta(days=90)
    import_file(runner, tmp_path, personnel_csv(), "--effective", (today - timedelta(days=100)).isoformat())
    create_cycle(db, year=today.year, due_date=today + timedelta(days=30), today=start,
                 now=local_moment(app, start, 9))
    db.flush()
    walked = {"611": "in_progress", "612": "quiz_passed", "613": "complete", "614": "quiz_failed",
              "616": "complete"}
    for badge, target in walked.items():
        for assignment in db.scalars(select(Assignment).join(Member).where(Member.badge == badge)):
            _walk(db, assignment, target, local_moment(app, start + timedelta(days=3), 14))
    db.commit()
    return {"today": today, "start": start,
            "dates": [start, start + timedelta(days=2), start + timedelta(days=4), start + timedelta(days=60),
                      today - timedelta(days=1)]}


def all_rows(app, db, filters: RosterFilters, today: date) -> list[tuple]:
    rows = [tuple(r) for r in roster_rows(db, filters, today=today, tz=app.config["TIMEZONE"])]
    db.rollback()
    return rows


def snapshot(app, db, runner, tmp_path, year: int, day: date, today: date) -> dict:
    """Every view of the roster as of ``day``: all rows, rows narrowed by unit, shift, rank and
    supervisor, the summary, and the CLI's CSV file byte for byte."""
    tz = app.config["TIMEZONE"]
    views = {
        "all": RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day),
        "unit": RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day, units=["Patrol North"]),
        "shift": RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day, shifts=["Day"]),
        "rank": RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day, ranks=["Officer"]),
        "supervisor": RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day, supervisor_badges=["601"]),
        "status": RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day, statuses=["complete", "in_progress"]),
    }
    shot = {name: all_rows(app, db, filters, today) for name, filters in views.items()}
    summary = roster_summary(db, views["all"], today=today, tz=tz)
    shot["summary"] = (summary.counts, summary.units)
    db.rollback()
    out = tmp_path / f"roster-{day.isoformat()}.csv"
    result = runner.invoke(args=["lms", "roster", "--cycle", str(year), "--as-of", day.isoformat(),
                                 "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    shot["csv"] = out.read_bytes()
    return shot


def by_badge(rows: list[tuple]) -> dict[str, tuple]:
    return {row[0]: row for row in rows}


def test_an_import_today_leaves_every_earlier_as_of_roster_unchanged(app, db, runner, tmp_path, department):
    today, year = department["today"], department["today"].year
    before = {day: snapshot(app, db, runner, tmp_path, year, day, today) for day in department["dates"]}
    # Not vacuous: before the import, the members who change today are on the rosters as they were.
    first = by_badge(before[department["dates"][-1]]["all"])
    assert {"611", "612", "613", "614"} <= set(first) and "617" not in first
    assert first["613"][4:7] == ("Patrol North", "Day", "601")
    assert set(by_badge(before[department["dates"][-1]]["supervisor"])) == {"611", "612", "613"}

    result = import_file(runner, tmp_path, personnel_csv(CHANGES), name="today.csv")
    assert f"effective {today.isoformat()} (today)" in result.output
    assert "Imported: 0 added, 6 changed, 2 separated" in result.output

    for day in department["dates"]:
        after = snapshot(app, db, runner, tmp_path, year, day, today)
        for view in before[day]:
            assert after[view] == before[day][view], (day, view)

    # The roster of now (and as of today) shows the new state.
    for as_of in (None, today):
        now_rows = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=as_of), today))
        assert "611" not in now_rows and "612" not in now_rows  # separated, on leave, never signed
        assert "616" in now_rows  # separated, but signed in the cycle: the record counts
        assert "617" in now_rows  # back from leave: assigned now
        assert now_rows["613"][3:7] == ("Officer", "Traffic", "Day", "602")
        assert now_rows["614"][3:7] == ("Detective", "Traffic", "Night", "602")
        pn = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=as_of,
                                                      units=["Patrol North"]), today))
        assert set(pn) == {"601"}
    assert (member(db, "613").unit, member(db, "613").supervisor.badge) == ("Traffic", "602")
    assert member(db, "611").status == "separated" and member(db, "612").status == "leave"


def test_reimporting_the_same_file_appends_nothing(app, db, runner, tmp_path, department):
    text = personnel_csv(CHANGES)
    import_file(runner, tmp_path, text)
    count = changes_count(db)
    again = import_file(runner, tmp_path, text)
    assert "No changes: the roster already matches this file." in again.output
    assert changes_count(db) == count
    # The same holds for a file dated ahead: its changes are compared with that date's values.
    ahead = (department["today"] + timedelta(days=7)).isoformat()
    later = personnel_csv({"615": {"unit": "Patrol North"}})
    import_file(runner, tmp_path, later, "--effective", ahead)
    count = changes_count(db)
    assert "No changes" in import_file(runner, tmp_path, later, "--effective", ahead).output
    assert changes_count(db) == count


def test_a_future_change_shows_only_from_its_date(app, db, runner, tmp_path, department):
    today, year = department["today"], department["today"].year
    ahead = today + timedelta(days=10)
    result = import_file(runner, tmp_path, personnel_csv({"615": {"unit": "Patrol North", "supervisor": "601"},
                                                          "612": {"status": "leave"}}),
                         "--effective", ahead.isoformat())
    assert f"effective {ahead.isoformat()} (a future date)" in result.output
    now_rows = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year)), today))
    assert now_rows["615"][4] == "Traffic" and "612" in now_rows
    assert member(db, "615").unit == "Traffic" and member(db, "612").status == "active"
    for day in (today, ahead - timedelta(days=1)):
        rows = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=day), today))
        assert rows["615"][4] == "Traffic" and "612" in rows
    then = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=ahead), ahead))
    assert then["615"][4:7] == ("Patrol North", "Evening", "601") and "612" not in then

    # When the date comes (the daily init), the member rows take the change.
    assert apply_due_changes(db, today=ahead - timedelta(days=1), now=utcnow()) == 0
    assert apply_due_changes(db, today=ahead, now=utcnow()) == 2
    db.commit()
    assert member(db, "615").unit == "Patrol North" and member(db, "612").status == "leave"
    assert apply_due_changes(db, today=ahead, now=utcnow()) == 0


def test_a_scheduled_return_from_leave_joins_the_cycle_when_it_comes(app, db, runner, tmp_path, department):
    today, year = department["today"], department["today"].year
    ahead = today + timedelta(days=3)
    import_file(runner, tmp_path, personnel_csv({"617": {"status": "active"}}), "--effective", ahead.isoformat())
    assert not db.scalars(select(Assignment).join(Member).where(Member.badge == "617")).all()
    apply_due_changes(db, today=ahead, now=utcnow())
    db.commit()
    assert member(db, "617").status == "active"
    assigned = db.scalars(select(Assignment).join(Member).where(Member.badge == "617")).all()
    assert assigned and all(a.due_date >= ahead + timedelta(days=30) for a in assigned)
    # Still absent as of every earlier date: he was on leave, and assigned only now.
    assert "617" not in by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=today), today))


def test_hr_evidence_as_of_shows_the_unit_and_supervisor_then(app, db, runner, tmp_path, department, make_member,
                                                             client, auth):
    import_file(runner, tmp_path, personnel_csv(CHANGES))
    cherry = member(db, "613")
    tz = app.config["TIMEZONE"]
    then = hr_as_of(db, cherry.id, department["start"] + timedelta(days=4), tz)
    assert (then.standing.unit, then.standing.status, then.supervisor.badge) == ("Patrol North", "active", "601")
    now = hr_as_of(db, cherry.id, department["today"], tz)
    assert (now.standing.unit, now.supervisor.badge) == ("Traffic", "602")
    apple = member(db, "611")
    assert hr_as_of(db, apple.id, department["start"], tz).standing.status == "active"
    assert hr_as_of(db, apple.id, department["today"], tz).standing.status == "separated"

    hr = make_member(first="Pat", last="Lee", badge="900", roles=("hr",))
    assert auth.sign_in(hr.badge).status_code == 302
    day = (department["start"] + timedelta(days=4)).isoformat()
    html = client.get(f"/hr/members/{cherry.id}/as-of", query_string={"on": day}).get_data(as_text=True)
    standing = html[html.index('id="standing-on-date"'):]
    assert "<dd>Patrol North</dd>" in standing and "Sam Sarge (badge 601)" in standing
    pdf = client.get(f"/hr/members/{cherry.id}/as-of.pdf", query_string={"on": day})
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


# --- the web: upload with a date, preview, admin edits ----------------------------------------------

def upload(client, text: str, effective: str = ""):
    token = csrf_token(client, "/admin/personnel/import")
    return client.post("/admin/personnel/import", content_type="multipart/form-data",
                       data={"csrf_token": token, "effective": effective,
                             "file": (io.BytesIO(text.encode()), "people.csv")})


@pytest.fixture
def admin(make_member, auth):
    person = make_member(first="Carmen", last="Reyes", roles=("admin",), badge="1005")
    assert auth.sign_in(person.badge).status_code == 302
    return person


def test_web_preview_shows_the_effective_date_and_apply_uses_it(app, db, client, admin, department):
    today, year = department["today"], department["today"].year
    back = department["start"] + timedelta(days=30)
    response = upload(client, personnel_csv({"613": {"unit": "Traffic", "supervisor": "602"}}), back.isoformat())
    assert response.status_code == 302
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (f'<dd id="effective-date"><time datetime="{back.isoformat()}">{back:%B} {back.day}, {back.year}</time>'
            ' (a past date') in preview
    assert "unit: Patrol North → Traffic" in preview
    token = csrf_token(client, response.headers["Location"])
    applied = client.post(response.headers["Location"] + "/apply", data={"csrf_token": token})
    assert f"1 changed, 0 separated. Effective {back:%B} {back.day}, {back.year}." in \
        client.get(applied.headers["Location"]).get_data(as_text=True)
    rows = db.scalars(select(PersonnelChange).join(Member, Member.id == PersonnelChange.member_id)
                      .where(Member.badge == "613", PersonnelChange.source == "web:people.csv")).all()
    assert {(c.field, c.effective) for c in rows} == {("unit", back), ("supervisor", back)}
    assert all(c.recorded_by_id == admin.id for c in rows)
    before = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=back - timedelta(days=1)), today))
    after = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=back), today))
    assert before["613"][4] == "Patrol North" and after["613"][4] == "Traffic"
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "personnel.import")
                       .order_by(AuditEvent.id.desc())).first()
    assert event.details["effective"] == back.isoformat()

    # Without a date: the day it is applied, said so; a bad date is refused beside the field.
    response = upload(client, personnel_csv({"615": {"shift": "Night"}}))
    preview = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (f'<dd id="effective-date"><time datetime="{today.isoformat()}">{today:%B} {today.day}, {today.year}'
            '</time> (the day it is applied: today)') in preview
    bad = upload(client, personnel_csv(), "31/12/2026")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)


def personnel_form(client, member_id: int, **values):
    token = csrf_token(client, f"/admin/members/{member_id}")
    data = {"csrf_token": token, **{f"personnel-{k}": v for k, v in values.items()}}
    return client.post(f"/admin/members/{member_id}/personnel", data=data)


def test_an_admin_edit_appends_a_change_from_its_date(app, db, client, admin, department):
    today, year = department["today"], department["today"].year
    elder = member(db, "615")
    moved = department["start"] + timedelta(days=20)
    response = personnel_form(client, elder.id, status="active", unit="Patrol North", shift="Evening",
                              rank="Officer", supervisor="601", effective=moved.isoformat())
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Recorded for Ed Elder from {moved:%B} {moved.day}, {moved.year}" in page
    assert "unit Traffic → Patrol North" in page and "supervisor 602 → 601" in page
    history = page[page.index('id="personnel-history"'):]
    assert (f'<td><time datetime="{moved.isoformat()}">{moved:%B} {moved.day}, {moved.year}</time></td>'
            '<td>unit</td><td>Patrol North</td>') in history
    assert member(db, "615").unit == "Patrol North"
    earlier = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=moved - timedelta(days=1)), today))
    later = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, year), as_of=moved), today))
    assert earlier["615"][4:7] == ("Traffic", "Evening", "602")
    assert later["615"][4:7] == ("Patrol North", "Evening", "601")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "admin.personnel_change")).one()
    assert event.actor_id == admin.id and event.details["changes"]["supervisor"] == ["602", "601"]

    # The same values again: nothing appended. Bad input: refused beside the field, nothing written.
    count = changes_count(db)
    same = personnel_form(client, elder.id, status="active", unit="Patrol North", shift="Evening",
                          rank="Officer", supervisor="601", effective=moved.isoformat())
    assert "No change" in client.get(same.headers["Location"]).get_data(as_text=True)
    unknown = personnel_form(client, elder.id, status="active", unit="Traffic", shift="Evening", rank="Officer",
                             supervisor="4242")
    assert unknown.status_code == 400 and "no member has badge 4242" in unknown.get_data(as_text=True)
    itself = personnel_form(client, elder.id, status="active", unit="Traffic", shift="Evening", rank="Officer",
                            supervisor="615")
    assert itself.status_code == 400 and "cannot supervise themselves" in itself.get_data(as_text=True)
    bad_rank = personnel_form(client, elder.id, status="active", unit="Traffic", shift="", rank="Admiral",
                              supervisor="")
    assert bad_rank.status_code == 400 and "not a known rank" in bad_rank.get_data(as_text=True)
    assert changes_count(db) == count


def test_only_admins_edit_personnel(client, auth, make_member):
    officer = make_member(badge="700")
    auth.sign_in(officer.badge)
    token = csrf_token(client, "/verify")
    response = client.post(f"/admin/members/{officer.id}/personnel",
                           data={"csrf_token": token, "personnel-status": "separated"})
    assert response.status_code == 403


# --- the rule, against a replay ----------------------------------------------------------------------

FIELD_VALUES = {"status": ["active", "leave", "separated"], "unit": ["Patrol North", "Traffic", None],
                "shift": ["Day", "Night"], "rank": ["Officer", "Sergeant"]}
CHANGE = st.tuples(st.sampled_from(sorted(FIELD_VALUES)), st.integers(0, 2), st.integers(-5, 40))


def replay(first: dict, changes: list[tuple[str, str, int]], day: int) -> dict:
    """A member's values on ``day`` (days after the base) from the changes kept, in the order
    written: for each field, the latest change by then, the later written of a tie; before the
    first change, the first recorded value."""
    state = {}
    for field, initial in first.items():
        mine = [(effective, n, value) for n, (f, value, effective) in enumerate(changes) if f == field]
        history = sorted([(0, -1, initial)] + mine)
        by_then = [h for h in history if h[0] <= day]
        state[field] = (by_then[-1] if by_then else history[0])[2]
    return state


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGE, max_size=8))
def test_as_of_any_date_equals_the_changes_replayed_up_to_it(app, db, changes):
    base = date(2030, 1, 1)
    today = base + timedelta(days=20)
    n = db.scalar(select(func.count(Member.id)))
    person = Member(badge=f"h{n}", first_name="Hy", last_name="Pothesis", status="active", unit="Traffic",
                    shift="Day", rank="Officer")
    db.add(person)
    db.flush()
    try:
        check_replay(db, person, base, today, changes)
    finally:
        db.rollback()


def check_replay(db, person: Member, base: date, today: date, changes) -> None:
    now = utcnow()
    record_initial(db, person, effective=base, now=now, today=today, actor_id=None, source="test")
    first = {"status": "active", "unit": "Traffic", "shift": "Day", "rank": "Officer"}
    written = []
    for field, index, offset in changes:
        value = FIELD_VALUES[field][index % len(FIELD_VALUES[field])]
        record_changes(db, person, {field: value}, effective=base + timedelta(days=offset), today=today,
                       now=now, actor_id=None, source="test")
        # A change to the value the member already had on that date is not kept (a file applied
        # twice appends nothing); every other change is.
        if replay(first, written, offset)[field] != value:
            written.append((field, value, offset))
    kept = db.scalar(select(func.count(PersonnelChange.id)).where(PersonnelChange.member_id == person.id))
    assert kept == 5 + len(written)
    for offset in range(-6, 42, 3):
        state = states_on(db, base + timedelta(days=offset), [person.id])[person.id]
        assert {f: getattr(state, f) for f in first} == replay(first, written, offset), offset
    # The member row holds the values of today.
    expected = replay(first, written, 20)
    assert {f: getattr(person, f) for f in first} == expected


# --- the roster of now never reads the history; init applies what has come due -----------------------

def test_the_roster_of_now_does_not_read_the_history(app, db, runner, tmp_path, department, make_member, client,
                                                    auth):
    from sqlalchemy import event

    from lms.db import get_database

    import_file(runner, tmp_path, personnel_csv(CHANGES))
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement)

    engine = get_database(app).engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        coordinator = make_member(first="Renee", last="Okafor", roles=("coordinator",), badge="1003")
        auth.sign_in(coordinator.badge)
        statements.clear()
        year = department["today"].year
        cid = cycle_id_of(app, year)
        assert client.get(f"/coordinator/cycles/{cid}/roster").status_code == 200
        out = tmp_path / "now.csv"
        assert runner.invoke(args=["lms", "roster", "--cycle", str(year), "--format", "csv",
                                   "--out", str(out)]).exit_code == 0
        assert any("FROM assignment" in s for s in statements)
        assert not [s for s in statements if "personnel_change" in s]
        statements.clear()
        assert client.get(f"/coordinator/cycles/{cid}/roster",
                          query_string={"as_of": department["start"].isoformat()}).status_code == 200
        assert [s for s in statements if "personnel_change" in s]
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def test_init_applies_changes_whose_date_has_come(app, db, runner, department):
    today = department["today"]
    yesterday = today - timedelta(days=1)
    elder = member(db, "615")
    # Written yesterday, effective today: the member row waits for the date.
    record_changes(db, elder, {"unit": "Patrol North"}, effective=today, today=yesterday, now=utcnow(),
                   actor_id=None, source="test")
    db.commit()
    assert member(db, "615").unit == "Traffic"
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 0, result.output
    assert member(db, "615").unit == "Patrol North"


# --- migration 0011 on a populated database ---------------------------------------------------------

def test_migration_backfills_current_values_from_when_records_begin(app, tmp_path):
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session

    from lms import migrate
    from tests.conftest import PG_URL

    if PG_URL:
        setup = create_engine(PG_URL)
        with setup.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS i11_migration CASCADE"))
            conn.execute(text("CREATE SCHEMA i11_migration"))
        setup.dispose()
        engine = create_engine(PG_URL, connect_args={"options": "-csearch_path=i11_migration"})
    else:
        engine = create_engine(f"sqlite:///{tmp_path / 'migration.sqlite3'}")
    try:
        migrate.upgrade(engine, "0010")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO member (id, badge, first_name, last_name, rank, unit, shift, hire_date,"
                              " status, failed_sign_ins, must_change_password) VALUES"
                              " (1, '10', 'Sam', 'Sarge', 'Sergeant', 'Traffic', 'Day', '2019-05-01', 'active', 0,"
                              " false),"
                              " (2, '11', 'Al', 'Apple', 'Officer', 'Traffic', 'Night', NULL, 'leave', 0, false)"))
            conn.execute(text("UPDATE member SET supervisor_id = 1 WHERE id = 2"))
            conn.execute(text("INSERT INTO cycle (id, year, name, due_date, grace_days, audience, created_at)"
                              " VALUES (1, 2018, '2018 annual', '2018-12-31', 30, '{}', '2018-03-10 12:00:00')"))
        migrate.upgrade(engine)
        with Session(engine) as session:
            rows = session.scalars(select(PersonnelChange).order_by(PersonnelChange.member_id,
                                                                    PersonnelChange.field)).all()
            assert [(c.member_id, c.field, c.value, c.supervisor_id) for c in rows] == [
                (1, "rank", "Sergeant", None), (1, "shift", "Day", None), (1, "status", "active", None),
                (1, "supervisor", None, None), (1, "unit", "Traffic", None),
                (2, "rank", "Officer", None), (2, "shift", "Night", None), (2, "status", "leave", None),
                (2, "supervisor", None, 1), (2, "unit", "Traffic", None)]
            # The day before the first cycle was opened, the earliest thing recorded.
            assert {(c.effective, c.source) for c in rows} == {(date(2018, 3, 9), "baseline")}
            # Every date, even before that, reads the values the member rows hold.
            for day in (date(2000, 1, 1), date(2018, 3, 9), date.today()):
                states = states_on(session, day)
                assert (states[2].status, states[2].shift, states[2].supervisor_id) == ("leave", "Night", 1)
            # The history is append-only.
            with pytest.raises(DBAPIError):
                session.execute(text("UPDATE personnel_change SET value = 'Patrol North' WHERE field = 'unit'"))
            session.rollback()
            with pytest.raises(DBAPIError):
                session.execute(text("DELETE FROM personnel_change"))
            session.rollback()
    finally:
        engine.dispose()
        if PG_URL:
            setup = create_engine(PG_URL)
            with setup.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS i11_migration CASCADE"))
            setup.dispose()


def test_implausible_dates_and_control_characters_are_refused(app, db, runner, tmp_path, client, admin):
    path = tmp_path / "people.csv"
    path.write_text(personnel_csv(), encoding="utf-8")
    result = runner.invoke(args=["lms", "import-personnel", str(path), "--effective", "2100-01-01"])
    assert result.exit_code == 1 and "not a plausible effective date" in result.output
    assert "--effective" in result.output and changes_count(db) == 0
    refused = upload(client, personnel_csv(), "2100-01-01")
    assert refused.status_code == 400 and "not a plausible effective date" in refused.get_data(as_text=True)
    import_file(runner, tmp_path, personnel_csv())
    count = changes_count(db)
    elder = member(db, "615")
    bad = personnel_form(client, elder.id, status="active", unit="Traffic\x00", shift="Evening", rank="Officer",
                         supervisor="602")
    assert bad.status_code == 400 and "control character" in bad.get_data(as_text=True)
    late = personnel_form(client, elder.id, status="active", unit="Traffic", shift="Evening", rank="Officer",
                          supervisor="602", effective="2100-01-01")
    assert late.status_code == 400 and "not a plausible effective date" in late.get_data(as_text=True)
    assert changes_count(db) == count


# --- due dates that move keep the one that stood before -------------------------------------------

def test_a_return_from_leave_moves_the_due_date_from_that_day_on(app, db, runner, tmp_path):
    today = today_of(app)
    import_file(runner, tmp_path, personnel_csv(), "--effective", (today - timedelta(days=100)).isoformat())
    opened = today - timedelta(days=60)
    create_cycle(db, year=today.year, due_date=today + timedelta(days=5), today=opened,
                 now=local_moment(app, opened, 9))
    db.commit()
    import_file(runner, tmp_path, personnel_csv({"612": {"status": "leave"}}), "--effective",
                (today - timedelta(days=30)).isoformat(), name="leave.csv")
    before_return = snapshot(app, db, runner, tmp_path, today.year, today - timedelta(days=45), today)
    assert by_badge(before_return["all"])["612"][14] == today + timedelta(days=5)

    import_file(runner, tmp_path, personnel_csv(), name="back.csv")  # back today: 30 days' grace
    moved = db.scalars(select(DueDateChange).join(Assignment).join(Member).where(Member.badge == "612")).all()
    assert [(c.due_before, c.due_after, c.effective_on, c.reason) for c in moved] == [
        (today + timedelta(days=5), today + timedelta(days=30), today, "return_from_leave")]
    # Before the return, every view of the roster still shows the due date of then, row for row.
    assert snapshot(app, db, runner, tmp_path, today.year, today - timedelta(days=45), today) == before_return
    for as_of in (None, today):
        rows = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, today.year), as_of=as_of), today))
        assert rows["612"][14] == today + timedelta(days=30)
    # Others kept theirs.
    now_rows = by_badge(all_rows(app, db, RosterFilters(cycle_id=cycle_id_of(db, today.year)), today))
    assert now_rows["611"][14] == today + timedelta(days=5)
