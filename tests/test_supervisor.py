"""A supervisor's desk over HTTP and the command line: the members who report to them (directly
and through their sergeants, by the relationships of the day asked about), their roster with
the coordinator's statuses, filters and exports, a member's progress, reminders; and nobody
else's, whatever the URL or the filters say."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from lms.models import Assignment, AuditEvent, Member, Reminder
from lms.services.cycles import create_cycle
from lms.services.roster import ROSTER_COLUMNS, RosterFilters, roster_rows
from tests.conftest import PASSWORD, csrf_token
from tests.services.test_roster import _walk
from tests.test_personnel_history import import_file, local_moment, today_of

HEADER = "badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role\n"
#: badge: (first, last, rank, unit, supervisor, roles)
PEOPLE = {
    "1001": ("Lena", "Lieu", "Lieutenant", "Patrol North", "", "officer;supervisor"),
    "1006": ("Sam", "Sarge", "Sergeant", "Patrol North", "1001", "officer;supervisor"),
    "611": ("Al", "Apple", "Officer", "Patrol North", "1006", "officer"),
    "612": ("Bo", "Berry", "Officer", "Patrol North", "1006", "officer"),
    "613": ("Cy", "Cherry", "Officer", "Patrol North", "1006", "officer"),
    "621": ("Di", "Date", "Officer", "Patrol North", "1001", "officer"),
    "2001": ("Olga", "Outsider", "Sergeant", "Traffic", "", "officer;supervisor"),
    "631": ("Ed", "Elder", "Officer", "Traffic", "2001", "officer"),
    "632": ("Fay", "Fig", "Officer", "Traffic", "2001", "officer"),
}
SQUAD = {"611", "612", "613"}
WATCH = SQUAD | {"1006", "621"}


def personnel_csv(changes: dict | None = None) -> str:
    lines = [HEADER]
    for badge, (first, last, rank, unit, supervisor, roles) in PEOPLE.items():
        supervisor = (changes or {}).get(badge, supervisor)
        lines.append(f"{badge},{first},{last},{first.lower()}@example.org,{rank},{unit},Day,{supervisor},"
                     f"2015-01-05,active,{roles}\n")
    return "".join(lines)


@pytest.fixture
def department(app, db, runner, tmp_path):
    """The personnel file effective 100 days ago, a cycle opened 90 days ago and due in 30 days:
    611 signed, 612 failed the quiz, the others not started."""
    today = today_of(app)
    start = today - timedelta(days=90)
    import_file(runner, tmp_path, personnel_csv(), "--effective", (today - timedelta(days=100)).isoformat())
    cycle = create_cycle(db, year=today.year, due_date=today + timedelta(days=30), today=start,
                         now=local_moment(app, start, 9))
    db.flush()
    for badge, target in (("611", "complete"), ("612", "quiz_failed"), ("631", "in_progress")):
        for assignment in db.scalars(select(Assignment).join(Member).where(Member.badge == badge)):
            _walk(db, assignment, target, local_moment(app, start + timedelta(days=3), 14))
    db.commit()
    return {"today": today, "year": today.year, "cycle": cycle.id}


def sign_in(app, badge: str):
    client = app.test_client()
    response = client.post("/sign-in", data={"badge": badge, "password": PASSWORD, "csrf_token": csrf_token(client)})
    assert response.status_code == 302, badge
    return client, response


def set_password(db, app, *badges: str) -> None:
    from werkzeug.security import generate_password_hash

    for member in db.scalars(select(Member).where(Member.badge.in_(badges))):
        member.password_hash = generate_password_hash(PASSWORD, method=app.config["PASSWORD_HASH_METHOD"])
    db.commit()


def member_id(db, badge: str) -> int:
    db.expire_all()
    return db.scalar(select(Member.id).where(Member.badge == badge))


def roster_badges(html: str) -> set[str]:
    """The badges in the roster table's rows (the cell after each member's name)."""
    return set(re.findall(r'</a></th>\s*<td>(\d+)</td>', html))


def words(html: str) -> str:
    """The page with its runs of white space as single spaces."""
    return " ".join(html.split())


def csv_badges(body: bytes) -> list[str]:
    return [row["badge"] for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))]


@pytest.fixture
def people(app, db, department):
    set_password(db, app, "1001", "1006", "2001", "611")
    return department


def test_a_supervisor_lands_on_their_page_and_sees_their_cycles(app, db, people):
    client, response = sign_in(app, "1006")
    assert response.headers["Location"] == "/supervisor/"
    html = words(client.get("/supervisor/").get_data(as_text=True))
    assert "3 members report to you." in html
    assert f'href="/supervisor/cycles/{people["cycle"]}/roster"' in html
    # The squad's three rows: one signed (done), none overdue.
    assert "<td>3</td> <td>1 (33%)</td> <td>0</td>" in html, html
    assert 'href="/supervisor/"' in html and ">My people<" in html
    lieutenant, _ = sign_in(app, "1001")
    assert "5 members report to you: 2 directly and 3 through your sergeants." in \
        words(lieutenant.get("/supervisor/").get_data(as_text=True))


def test_the_roster_holds_direct_reports_and_those_through_a_sergeant(app, db, people):
    cycle = people["cycle"]
    sergeant, _ = sign_in(app, "1006")
    html = sergeant.get(f"/supervisor/cycles/{cycle}/roster?sort=badge").get_data(as_text=True)
    assert roster_badges(html) == SQUAD
    assert "3 rows match" in html and "members reporting to badge 1006" in html
    # The coordinator's statuses, counts and links, leading to the supervisor's own pages.
    assert 'class="status status-complete"' in html and 'class="status status-quiz_failed"' in html
    assert f'href="/supervisor/cycles/{cycle}/members/{member_id(db, "611")}"' in html
    assert "/coordinator/" not in html.split('<main', 1)[1]
    lieutenant, _ = sign_in(app, "1001")
    assert roster_badges(lieutenant.get(f"/supervisor/cycles/{cycle}/roster").get_data(as_text=True)) == WATCH
    # Each view is audited as the coordinator's is, with whose members it was limited to.
    db.expire_all()
    views = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.view").order_by(AuditEvent.id)).all()
    assert [(e.actor_id, e.details["filters"]["reports_to"], e.details["rows"]) for e in views] == [
        (member_id(db, "1006"), "1006", 3), (member_id(db, "1001"), "1001", 5)]


def test_filters_narrow_within_the_supervisors_members_only(app, db, people):
    cycle = people["cycle"]
    lieutenant, _ = sign_in(app, "1001")
    base = f"/supervisor/cycles/{cycle}/roster"
    assert roster_badges(lieutenant.get(f"{base}?status=not_started").get_data(as_text=True)) == {"613", "621", "1006"}
    assert roster_badges(lieutenant.get(f"{base}?supervisor=1006").get_data(as_text=True)) == SQUAD
    assert roster_badges(lieutenant.get(f"{base}?q=Berry").get_data(as_text=True)) == {"612"}
    # Asking for another sergeant's people, or the Traffic unit, finds none of them.
    for query in ("supervisor=2001", "unit=Traffic", "q=631"):
        html = lieutenant.get(f"{base}?{query}").get_data(as_text=True)
        assert roster_badges(html) == set() and "No one on the roster matches these filters." in html, query
    bad = lieutenant.get(f"{base}?as_of=2026-02-30")
    assert bad.status_code == 400 and "Error:" in bad.get_data(as_text=True)


def test_exports_hold_the_supervisors_members_only(app, db, people):
    cycle = people["cycle"]
    lieutenant, _ = sign_in(app, "1001")
    base = f"/supervisor/cycles/{cycle}/roster"
    response = lieutenant.get(f"{base}.csv?sort=badge")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    body = response.get_data()
    assert body.decode("utf-8-sig").splitlines()[0] == ",".join(ROSTER_COLUMNS)
    assert sorted(csv_badges(body)) == sorted(WATCH)
    # Another sergeant's people: nothing of the lieutenant's matches, so there is nothing to download.
    none = lieutenant.get(f"{base}.csv?supervisor=2001")
    assert none.status_code == 303 and none.headers["Location"].startswith(f"{base}?")
    assert "nothing to export" in lieutenant.get(none.headers["Location"]).get_data(as_text=True)
    workbook = load_workbook(io.BytesIO(lieutenant.get(f"{base}.xlsx").get_data()), read_only=True)
    cells = {str(c) for row in workbook["Roster"].iter_rows(values_only=True) for c in row if c is not None}
    assert WATCH <= cells and not {"631", "632", "2001"} & cells
    pdf = lieutenant.get(f"{base}.pdf?supervisor=1006")
    assert pdf.status_code == 200 and pdf.get_data().startswith(b"%PDF")
    # Each view and export is audited with whose members it was limited to.
    db.expire_all()
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.export")
                        .order_by(AuditEvent.id)).all()
    assert [e.details["format"] for e in events] == ["csv", "xlsx", "pdf"]  # the empty one sent nothing
    assert all(e.actor_id == member_id(db, "1001") and e.details["filters"]["reports_to"] == "1001"
               for e in events)
    assert events[0].details["rows"] == len(WATCH)


def test_a_member_outside_the_supervisors_people_is_not_found(app, db, people):
    cycle = people["cycle"]
    sergeant, _ = sign_in(app, "1006")
    mine = sergeant.get(f"/supervisor/cycles/{cycle}/members/{member_id(db, '611')}")
    html = mine.get_data(as_text=True)
    assert mine.status_code == 200 and "Al Apple" in html and "Signed" in html
    # Progress only: no exemption or extra-attempt forms, and nothing of HR's records.
    assert not re.search(r'action="[^"]*/(exemption|attempts|lift)"', html)
    assert "/hr/" not in html and "Not exempt. The training coordinator records exemptions" in html
    for badge in ("631", "1001", "621", "1006"):  # another squad, the boss, a peer, themselves
        assert sergeant.get(f"/supervisor/cycles/{cycle}/members/{member_id(db, badge)}").status_code == 404, badge
    assert sergeant.get(f"/supervisor/cycles/{cycle}/members/2147483647").status_code == 404
    assert sergeant.get("/supervisor/cycles/2147483647/roster").status_code == 404
    db.expire_all()
    [viewed] = db.scalars(select(AuditEvent).where(AuditEvent.action == "roster.view_member")).all()
    assert viewed.actor_id == member_id(db, "1006") and viewed.details["badge"] == "611"
    # The coordinator's pages stay the coordinator's.
    assert sergeant.get(f"/coordinator/cycles/{cycle}/roster").status_code == 403


def test_a_transfer_today_leaves_last_months_roster_as_it_was(app, db, runner, tmp_path, people):
    cycle, today = people["cycle"], people["today"]
    month_ago = (today - timedelta(days=30)).isoformat()
    # 613 moves to the other sergeant today; 632 comes over to 1006.
    import_file(runner, tmp_path, personnel_csv({"613": "2001", "632": "1006"}), name="today.csv")
    sergeant, _ = sign_in(app, "1006")
    base = f"/supervisor/cycles/{cycle}/roster"
    assert roster_badges(sergeant.get(base).get_data(as_text=True)) == {"611", "612", "632"}
    then = sergeant.get(f"{base}?as_of={month_ago}").get_data(as_text=True)
    assert roster_badges(then) == SQUAD and f"as they reported to you at the end of {month_ago}" in words(then)
    assert sorted(csv_badges(sergeant.get(f"{base}.csv?as_of={month_ago}").get_data())) == sorted(SQUAD)
    # The lieutenant gains 632 through the sergeant now, not last month.
    lieutenant, _ = sign_in(app, "1001")
    assert roster_badges(lieutenant.get(base).get_data(as_text=True)) == WATCH - {"613"} | {"632"}
    assert roster_badges(lieutenant.get(f"{base}?as_of={month_ago}").get_data(as_text=True)) == WATCH
    # A member who moved away is no longer theirs to open.
    assert sergeant.get(f"/supervisor/cycles/{cycle}/members/{member_id(db, '613')}").status_code == 404


def test_a_loop_in_the_chain_of_command_ends(app, db, people):
    """Records that say 1001 reports to 611 (who reports to 1006, who reports to 1001) still give
    each supervisor a finite roster, without themselves."""
    lieu = db.scalars(select(Member).where(Member.badge == "1001")).one()
    lieu.supervisor_id = member_id(db, "611")
    db.commit()
    rows = roster_rows(db, RosterFilters(cycle_id=people["cycle"], reports_to="1006"), today=people["today"],
                       tz=app.config["TIMEZONE"])
    assert {r.badge for r in rows} == SQUAD | {"1001", "621"}


def test_a_supervisor_reminds_their_members_who_are_not_done(app, db, runner, people):
    cycle = people["cycle"]
    sergeant, _ = sign_in(app, "1006")
    url = f"/supervisor/cycles/{cycle}/reminders"
    html = sergeant.get(url).get_data(as_text=True)
    # 611 signed; 612 and 613 are not done. The cycle's schedule is the coordinator's.
    assert set(re.findall(r"<tr>\s*<td>(\d+)</td>", html)) == {"612", "613"}
    assert "Schedule" not in html and "Send 2 reminders" in html
    token = csrf_token(sergeant, url)
    assert sergeant.post(url, data={"csrf_token": token}).status_code == 400
    sent = sergeant.post(url, data={"csrf_token": token, "confirm": "y"})
    assert sent.status_code == 303
    assert "Queued 2 reminders to your members" in sergeant.get(url).get_data(as_text=True)
    db.expire_all()
    assert {r.member_id for r in db.scalars(select(Reminder))} == {member_id(db, "612"), member_id(db, "613")}
    [queued] = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.queue")).all()
    assert queued.actor_id == member_id(db, "1006") and queued.details["queued"] == 2
    # The worker sends them, each audited with the sergeant as the one who sent it.
    ran = runner.invoke(args=["lms", "jobs", "run"])
    assert ran.exit_code == 0 and "2 done" in ran.output, ran.output
    db.expire_all()
    sends = db.scalars(select(AuditEvent).where(AuditEvent.action == "reminder.send")).all()
    assert len(sends) == 2 and all(e.actor_id == member_id(db, "1006") for e in sends)


def test_only_supervisors_reach_the_pages(app, db, people):
    cycle = people["cycle"]
    officer, response = sign_in(app, "611")
    assert response.headers["Location"] == "/training/"
    for path in ("/supervisor/", f"/supervisor/cycles/{cycle}/roster", f"/supervisor/cycles/{cycle}/roster.csv",
                 f"/supervisor/cycles/{cycle}/reminders"):
        assert officer.get(path).status_code == 403, path
    assert app.test_client().get("/supervisor/").status_code == 302


def test_the_role_is_granted_from_the_command_line_and_the_personnel_file(app, db, runner):
    result = runner.invoke(args=["lms", "create-user", "--badge", "1006", "--first", "Sam", "--last", "Sarge",
                                 "--role", "supervisor", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0 and "roles: supervisor" in result.output, result.output
    _, response = sign_in(app, "1006")
    assert response.headers["Location"] == "/supervisor/"
    bad = runner.invoke(args=["lms", "create-user", "--badge", "1007", "--first", "X", "--last", "Y",
                              "--role", "sergeant", "--password-stdin"], input=PASSWORD + "\n")
    assert bad.exit_code != 0 and "supervisor" in bad.output


def test_an_administrator_grants_the_role_on_the_member_page(app, db, make_member, people):
    admin = make_member(first="Carmen", last="Reyes", badge="9005", roles=("admin",))
    client, _ = sign_in(app, admin.badge)
    target = member_id(db, "621")
    page = f"/admin/members/{target}"
    html = client.get(page).get_data(as_text=True)
    assert '<option value="supervisor">' in html
    token = csrf_token(client, page)
    response = client.post(f"{page}/roles/grant", data={"grant-csrf_token": token, "grant-role": "supervisor",
                                                        "grant-admin_password": PASSWORD, "csrf_token": token})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    db.expire_all()
    assert db.get(Member, target).has_role("supervisor")
