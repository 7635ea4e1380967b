"""The coordinator's desk over HTTP: opening a cycle, the roster (counts, filters, sort, pages,
"as of"), a member's progress, exemptions, exports, audit events, and that no one else gets in."""
from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import event, func, select

from lms.db import get_database, utcnow
from lms.models import Acknowledgment, Assignment, AuditEvent, Cycle, Exemption, Job, Member
from lms.services import quiz as quiz_service
from lms.services.clock import local_date
from lms.services.cycles import create_cycle, grant_exemption
from lms.services.progress import STATUSES, mark_lesson_read, progress_for
from lms.services.roster import ROSTER_COLUMNS, RosterFilters, roster_rows
from lms.services.roster_export import write_csv
from lms.services.signing import SigningFacts, append_acknowledgment
from tests.conftest import csrf_token
from tests.helpers import cycle_id_of

COUNT_RE = re.compile(r'class="status status-(\w+)">[^<]*</span> <span class="count">([\d,]+)</span>')
#: The badge cell that follows each row's name cell.
ROW_BADGE_RE = re.compile(r'/members/(\d+)">[^<]*</a></th>\s*<td>([^<]*)</td>')


def local_today(app) -> date:
    return local_date(utcnow(), app.config["TIMEZONE"])


def audit(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def page_counts(html: str) -> dict[str, int]:
    return {status: int(n.replace(",", "")) for status, n in COUNT_RE.findall(html)}


def page_badges(html: str) -> list[str]:
    return [badge for _, badge in ROW_BADGE_RE.findall(html)]


def field_error(html: str, field_id: str) -> str:
    """The error text shown beside a field (its ``<id>-error`` element), or ""."""
    match = re.search(rf'id="{field_id}-error">(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)) if match else ""


def answers(attempt, right: bool = True) -> dict[int, list[int]]:
    chosen = {}
    for item in attempt.items:
        options = item.question.options
        chosen[item.position] = ([o.id for o in options if o.correct] if right
                                 else [next(o.id for o in options if not o.correct)])
    return chosen


def walk(app, db, assignment: Assignment, target: str, at: datetime) -> None:
    """Bring an assignment to ``target`` through the services, everything happening at ``at``."""
    if target == "not_started":
        return
    lessons = assignment.policy_version.lessons
    for lesson in lessons[: 1 if target == "in_progress" else None]:
        mark_lesson_read(db, assignment, lesson, at)
    if target == "in_progress":
        return
    attempt = quiz_service.start_attempt(db, assignment, at, rng=random.Random(7))
    quiz_service.submit_attempt(db, attempt, answers(attempt, right=target != "quiz_failed"), at)
    if target in ("complete", "complete_late"):
        facts = SigningFacts(ip="10.0.0.9", user_agent="test", now=at, timezone=app.config["TIMEZONE"],
                             department="Test PD")
        append_acknowledgment(db, assignment=assignment, member=assignment.member,
                              printed_name=assignment.member.full_name, facts=facts)


def assignment_of(db, member) -> Assignment:
    return db.scalars(select(Assignment).where(Assignment.member_id == member.id)).one()


@pytest.fixture
def coordinator(make_member):
    return make_member(first="Renee", last="Okafor", badge="9000", roles=("coordinator",), unit="Administration")


@pytest.fixture
def signed_in(auth, coordinator):
    assert auth.sign_in(coordinator.badge).status_code == 302
    return coordinator


@pytest.fixture
def department(app, db, make_member, open_cycle, coordinator):
    """This year's cycle, with members at every status (the coordinator, outside the audience's
    units, is assigned too and has not started)."""
    plan = [("601", "Ada", "Abbott", "Patrol North", "Day", "Officer", "not_started"),
            ("602", "Ben", "Brooks", "Traffic", "Day", "Officer", "in_progress"),
            ("603", "Cal", "Chen", "Traffic", "Midnight", "Sergeant", "quiz_failed"),
            ("604", "Dee", "Diaz", "Patrol North", "Afternoon", "Officer", "quiz_passed"),
            ("605", "Eve", "Evans", "Traffic", "Day", "Officer", "complete"),
            ("606", "Fay", "Fox", "Patrol North", "Day", "Lieutenant", "complete_late"),
            ("607", "Gus", "Gray", "Patrol North", "Midnight", "Officer", "overdue"),
            ("608", "Hal", "Hunt", "Traffic", "Day", "Officer", "exempt")]
    members = {}
    for badge, first, last, unit, shift, rank, target in plan:
        members[target] = make_member(first=first, last=last, badge=badge, unit=unit, shift=shift, rank=rank)
    make_member(first="Lee", last="Leave", badge="690", status="leave")
    cycle = open_cycle()
    sergeant = members["quiz_failed"]
    for key in ("in_progress", "complete"):  # Sgt. Chen supervises two
        db.get(Member, members[key].id).supervisor_id = sergeant.id
    now = utcnow()
    yesterday = local_today(app) - timedelta(days=1)
    for target, member in members.items():
        assignment = assignment_of(db, member)
        if target in ("complete_late", "overdue"):
            assignment.due_date = yesterday  # as for a late joiner whose grace has run out
        walk(app, db, assignment, {"exempt": "in_progress", "overdue": "in_progress",
                                   "complete_late": "complete"}.get(target, target), now)
    grant_exemption(db, cycle=cycle, member=members["exempt"], reason="Military leave", granted_by_id=None, now=now)
    db.commit()
    return members


# --- opening a cycle -----------------------------------------------------------------------------

def test_open_a_cycle_through_the_form(app, client, db, make_member, signed_in):
    make_member(first="Tia", last="Traffic", badge="611", unit="Traffic", rank="Officer")
    make_member(first="Pat", last="North", badge="612", unit="Patrol North", rank="Sergeant")
    year = local_today(app).year + 1
    page = client.get("/coordinator/cycles/new").get_data(as_text=True)
    suggested = year - 1  # the first year without a cycle, due at its end
    assert f'value="{suggested}"' in page and f'value="{suggested}-12-31"' in page
    assert re.search(r'<legend>Units</legend>', page) and 'value="Traffic"' in page
    assert re.search(r'<legend>Shifts</legend>', page)
    assert re.search(r'<input checked id="policies-0" name="policies" type="checkbox" value="16.3">', page)
    token = csrf_token(client, "/coordinator/cycles/new")
    values = {"csrf_token": token, "year": str(year), "due_date": f"{year}-06-30", "policies": ["16.3"],
              "units": ["Traffic"], "grace_days": "14"}

    # The first post previews: how many members, nothing opened yet.
    preview = client.post("/coordinator/cycles/new", data=values)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Check before you open it" in html
    assert f"{year} annual" in html and "1 member</strong>" in html and 'name="confirm"' in html
    assert db.scalar(select(func.count(Cycle.id))) == 0

    response = client.post("/coordinator/cycles/new", data={**values, "confirm": "yes"})
    cycle = db.scalars(select(Cycle).where(Cycle.year == year)).one()
    assert response.status_code == 303 and response.headers["Location"] == f"/coordinator/cycles/{cycle.id}/roster"
    assert cycle.name == f"{year} annual" and cycle.due_date == date(year, 6, 30) and cycle.grace_days == 14
    assert cycle.audience == {"units": ["Traffic"], "ranks": [], "shifts": []}
    assert cycle.created_by_id == signed_in.id
    assigned = db.scalars(select(Member.badge).join(Assignment, Assignment.member_id == Member.id)
                          .where(Assignment.cycle_id == cycle.id)).all()
    assert assigned == ["611"]
    roster = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Opened the" in roster and "1 member assigned" in roster
    [created] = audit(db, "cycle.create")
    assert created.actor_id == signed_in.id and created.target == f"cycle:{cycle.id}"
    assert created.details["units"] == ["Traffic"] and created.details["members"] == 1
    assert created.details["name"] == f"{year} annual" and created.details["year"] == year

    # The same year again without a name, a name taken, an audience of nobody, a due date in the
    # past or outside the year: errors beside the fields, nothing written.
    before = (db.scalar(select(func.count(Cycle.id))), db.scalar(select(func.count(Assignment.id))))
    again = client.post("/coordinator/cycles/new", data={**values, "confirm": "yes"})
    html = again.get_data(as_text=True)
    assert again.status_code == 400 and f"{year} already has a cycle" in field_error(html, "name")
    assert 'aria-invalid="true"' in html and 'href="#name"' in html
    taken = client.post("/coordinator/cycles/new", data={**values, "name": f"{year} ANNUAL", "confirm": "yes"})
    assert taken.status_code == 400 and "already named" in field_error(taken.get_data(as_text=True), "name")
    nobody = client.post("/coordinator/cycles/new", data={**values, "name": "Sergeants of Traffic",
                                                          "ranks": ["Sergeant"]})
    assert nobody.status_code == 400 and "matches no active member" in nobody.get_data(as_text=True)
    past = client.post("/coordinator/cycles/new", data={
        "csrf_token": token, "year": str(year + 1), "due_date": "2020-01-01", "grace_days": "30"})
    assert past.status_code == 400 and "in the past" in field_error(past.get_data(as_text=True), "due_date")
    far = client.post("/coordinator/cycles/new", data={
        "csrf_token": token, "year": str(year + 4), "due_date": f"{year}-06-30", "grace_days": "30"})
    assert far.status_code == 400 and f"does not fit a {year + 4} cycle" in field_error(far.get_data(as_text=True),
                                                                                       "due_date")
    bad = client.post("/coordinator/cycles/new", data={
        "csrf_token": token, "year": "next", "due_date": "31/12/2030", "units": ["Harbor"], "grace_days": "30"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and field_error(html, "year") and "YYYY-MM-DD" in field_error(html, "due_date")
    assert "Harbor" in field_error(html, "units")
    no_token = client.post("/coordinator/cycles/new", data={"year": str(year + 2), "due_date": f"{year + 2}-06-30"})
    assert no_token.status_code == 400
    db.expire_all()
    assert (db.scalar(select(func.count(Cycle.id))), db.scalar(select(func.count(Assignment.id)))) == before
    assert len(audit(db, "cycle.create")) == 1

    # A second cycle the same year, with a name of its own.
    second = client.post("/coordinator/cycles/new", data={**values, "name": f"{year} new hires", "units": [],
                                                          "confirm": "yes"})
    assert second.status_code == 303
    assert sorted(db.scalars(select(Cycle.name).where(Cycle.year == year))) == [f"{year} annual", f"{year} new hires"]


def test_home_lists_cycles_with_links(client, department, signed_in, app):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    html = client.get("/coordinator/").get_data(as_text=True)
    assert f'href="/coordinator/cycles/{cid}/roster"' in html and 'href="/coordinator/cycles/new"' in html
    assert f'href="/coordinator/cycles/{cid}/exemptions"' in html
    assert f'href="/coordinator/cycles/{cid}/reminders"' in html and f'href="/coordinator/cycles/{cid}/items"' in html


# --- the roster ----------------------------------------------------------------------------------

def test_roster_counts_match_an_independent_count(app, client, db, department, signed_in):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    response = client.get(f"/coordinator/cycles/{cid}/roster")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Independent: the per-assignment rule in Python, over every assignment of active members.
    db.expire_all()
    expected = Counter(
        progress_for(db, a, today=local_today(app), tz=app.config["TIMEZONE"]).status
        for a in db.scalars(select(Assignment).join(Member).where(Member.status == "active")))
    assert page_counts(html) == {s: expected.get(s, 0) for s in STATUSES}
    assert page_counts(html) == {"not_started": 2, "in_progress": 1, "quiz_failed": 1, "quiz_passed": 1,
                                 "complete": 1, "complete_late": 1, "overdue": 1, "exempt": 1}
    assert "9 rows match" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-wide"' in html and "Completion by unit (done" in html
    assert re.search(r'<th scope="row">Traffic</th><td>4</td><td>2</td><td>50%</td>', html)
    assert '<caption id="roster-caption">' in html and 'aria-sort="ascending"' in html
    # A supervisor's badge narrows the roster to their members.
    assert f'href="/coordinator/cycles/{cid}/roster?supervisor=603">603<span class="visually-hidden">' in html
    # Each row opens the member's progress.
    ids = {m.badge: m.id for m in department.values()}
    assert f'href="/coordinator/cycles/{cid}/members/{ids["601"]}">Abbott, Ada</a>' in html
    [viewed] = audit(db, "roster.view")
    assert viewed.actor_id == signed_in.id and viewed.target == f"cycle:{cid}"
    assert viewed.details["rows"] == 9 and viewed.details["filters"]["units"] == []


@pytest.mark.parametrize("query,badges", [
    ("unit=Traffic", ["602", "603", "605", "608"]),
    ("unit=Traffic&unit=Administration", ["602", "603", "605", "608", "9000"]),
    ("status=complete&status=complete_late", ["605", "606"]),
    ("status=overdue", ["607"]),
    ("shift=Midnight", ["603", "607"]),
    ("rank=Sergeant&rank=Lieutenant", ["603", "606"]),
    ("supervisor=603", ["602", "605"]),
    ("supervisor=603%2C+603", ["602", "605"]),
    ("q=604", ["604"]),
    ("q=fox", ["606"]),
    ("q=Eve+Ev", ["605"]),
    ("q=nobody", []),
    ("unit=Traffic&status=exempt", ["608"]),
])
def test_filters_narrow_the_rows(app, client, department, signed_in, query, badges):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    response = client.get(f"/coordinator/cycles/{cid}/roster?{query}&sort=badge")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert page_badges(html) == badges
    assert sum(page_counts(html).values()) == len(badges)
    if not badges:
        assert "No one on the roster matches these filters." in html
    # The chosen filters stay ticked, and the export links carry them.
    csv_link = re.search(r'href="(/coordinator/cycles/\d+/roster\.csv[^"]*)"', html)
    if badges:
        assert csv_link and query.split("=")[0] in csv_link.group(1)


def test_sort_order_and_direction(app, client, department, signed_in):
    base = f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster"
    by_name = page_badges(client.get(base).get_data(as_text=True))
    assert by_name == ["601", "602", "603", "604", "605", "606", "607", "608", "9000"]
    html = client.get(f"{base}?sort=badge&dir=desc").get_data(as_text=True)
    assert page_badges(html) == ["9000", "608", "607", "606", "605", "604", "603", "602", "601"]
    header = r'<th scope="col" aria-sort="descending">\s*<a class="sort" href="[^"]*sort=badge&amp;dir=asc'
    assert re.search(header, html)
    assert html.count("aria-sort=") == 1
    by_unit = page_badges(client.get(f"{base}?sort=unit").get_data(as_text=True))
    assert by_unit[0] == "9000" and set(by_unit[-4:]) == {"602", "603", "605", "608"}
    by_score = page_badges(client.get(f"{base}?sort=quiz_best_score&dir=desc").get_data(as_text=True))
    assert by_score.index("603") > by_score.index("605")  # 0% after a pass
    assert client.get(f"{base}?sort=password_hash").status_code == 400


def test_pagination(app, client, db, open_cycle, signed_in):
    db.add_all(Member(badge=f"7{n:03d}", first_name="Pat", last_name=f"Member{n:03d}", unit="Traffic",
                      rank="Officer", shift="Day", status="active") for n in range(60))
    db.commit()
    open_cycle()
    base = f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster"
    first = client.get(base).get_data(as_text=True)
    assert "Page 1 of 2" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert "rows 1–50 of 61" in first
    second_link = re.search(r'href="([^"]*page=2[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(second_link).get_data(as_text=True)
    assert "Page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second
    names = page_badges(first) + page_badges(second)
    assert len(page_badges(first)) == 50 and len(names) == 61 and len(set(names)) == 61
    assert names[:60] == [f"7{n:03d}" for n in range(60)] and names[60] == signed_in.badge  # Okafor last
    assert "Page 2 of 2" in client.get(f"{base}?page=99").get_data(as_text=True)
    filtered = client.get(f"{base}?unit=Traffic&page=2").get_data(as_text=True)
    assert len(page_badges(filtered)) == 10
    assert "unit=Traffic" in re.search(r'href="([^"]*)" rel="prev"', filtered).group(1)
    bad = client.get(f"{base}?page=zero")
    assert bad.status_code == 400 and 'id="page"' in bad.get_data(as_text=True)


def test_roster_queries_do_not_grow_with_rows(app, client, db, open_cycle, signed_in):
    db.add_all(Member(badge=f"8{n:03d}", first_name="Sam", last_name=f"Row{n:03d}", unit="Traffic",
                      status="active") for n in range(40))
    db.commit()
    open_cycle()
    base = f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster"
    statements = []

    def count(*_args):
        statements.append(1)

    engine = get_database(app).engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        client.get(f"{base}?q=Row00")  # 10 rows
        few = len(statements)
        statements.clear()
        client.get(base)  # 41 rows
        many = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert many == few


def test_bad_filters_are_shown_beside_their_fields(app, client, department, signed_in):
    base = f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster"
    unknown = client.get(f"{base}?status=lost")
    html = unknown.get_data(as_text=True)
    assert unknown.status_code == 400 and "‘lost’" in field_error(html, "status")
    assert '<fieldset class="checks  has-error" id="status" aria-describedby="status-error">' in html
    bad_date = client.get(f"{base}?as_of=last+tuesday")
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in field_error(bad_date.get_data(as_text=True), "as_of")
    both = client.get(f"{base}?status=lost&supervisor=4444&as_of=2020-13-01").get_data(as_text=True)
    assert field_error(both, "status") and field_error(both, "supervisor") and field_error(both, "as_of")
    future = (local_today(app) + timedelta(days=2)).isoformat()
    ahead = client.get(f"{base}?as_of={future}")
    assert ahead.status_code == 400 and "up to today" in field_error(ahead.get_data(as_text=True), "as_of")
    assert client.get(f"{base}?unit=Harbor").status_code == 400
    nobody = client.get(f"{base}?supervisor=603,+607")  # Sgt. Chen supervises; Gray does not
    assert nobody.status_code == 400 and "badge 607" in field_error(nobody.get_data(as_text=True), "supervisor")
    assert client.get(f"{base}?dir=sideways").status_code == 400
    assert client.get(f"{base}.csv?status=lost").status_code == 400
    assert client.get("/coordinator/cycles/1999/roster").status_code == 404
    assert client.get("/coordinator/cycles/1999/roster.csv").status_code == 404


def test_as_of_shows_the_roster_as_it_stood(app, client, db, make_member, signed_in):
    """A cycle opened ten days ago: one member signed five days ago, another read a lesson three
    days ago, and a third joined today."""
    tz = app.config["TIMEZONE"]
    now = utcnow()
    today = local_today(app)
    signer = make_member(first="Sid", last="Signer", badge="621")
    reader = make_member(first="Rae", last="Reader", badge="622")
    create_cycle(db, year=today.year, due_date=today + timedelta(days=30), today=today - timedelta(days=10),
                 now=now - timedelta(days=10))
    db.commit()
    walk(app, db, assignment_of(db, signer), "complete", now - timedelta(days=5))
    walk(app, db, assignment_of(db, reader), "in_progress", now - timedelta(days=3))
    late = make_member(first="Neil", last="New", badge="623")
    cycle = db.scalars(select(Cycle).where(Cycle.year == today.year)).one()
    db.add(Assignment(cycle_id=cycle.id, member_id=late.id, policy_version_id=cycle.policy_versions[0].id,
                      due_date=cycle.due_date, assigned_at=now))
    db.commit()

    def statuses(as_of: date | None) -> dict[str, str]:
        url = f"/coordinator/cycles/{cycle.id}/roster?sort=badge" + (f"&as_of={as_of.isoformat()}" if as_of else "")
        response = client.get(url)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        rows = re.findall(r'/members/\d+">[^<]*</a></th>\s*<td>(\d+)</td>.*?class="status status-(\w+)"', html, re.S)
        return dict(rows)

    assert statuses(local_date(now - timedelta(days=7), tz)) == {"621": "not_started", "622": "not_started",
                                                                   "9000": "not_started"}
    assert statuses(local_date(now - timedelta(days=4), tz)) == {"621": "complete", "622": "not_started",
                                                                   "9000": "not_started"}
    assert statuses(None) == {"621": "complete", "622": "in_progress", "623": "not_started",
                              "9000": "not_started"}
    before = client.get(f"/coordinator/cycles/{cycle.id}/roster?as_of={(today - timedelta(days=20)).isoformat()}")
    assert "No one on the roster matches" in before.get_data(as_text=True)
    four_days_ago = (today - timedelta(days=4)).isoformat()
    html = client.get(f"/coordinator/cycles/{cycle.id}/roster?as_of={four_days_ago}").get_data(as_text=True)
    assert "as it stood at the end of" in html
    assert audit(db, "roster.view")[-1].details["filters"]["as_of"] == four_days_ago


# --- a member's progress and exemptions -----------------------------------------------------------

def test_member_progress_page(app, client, db, department, signed_in, make_member):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    eve, cal = department["complete"], department["quiz_failed"]
    html = client.get(f"/coordinator/cycles/{cid}/members/{eve.id}").get_data(as_text=True)
    lessons = len(assignment_of(db, eve).policy_version.lessons)
    assert f"Lessons: {lessons} of {lessons} read" in html
    assert '<span class="done">Passed</span>' in html and "100%" in html
    ack = db.scalars(select(Acknowledgment).where(Acknowledgment.member_id == eve.id)).one()
    assert ack.verification_code in html and ack.signed_at_local[:10] in html
    assert "status-complete" in html and "Not exempt" in html
    failed = client.get(f"/coordinator/cycles/{cid}/members/{cal.id}").get_data(as_text=True)
    assert '<span class="wrong">Not passed</span>' in failed and "Not signed." in failed
    assert [e.target for e in audit(db, "roster.view_member")] == [f"member:{eve.id}", f"member:{cal.id}"]
    outsider = make_member(first="Out", last="Sider", badge="699")  # joined after the cycle opened
    assert client.get(f"/coordinator/cycles/{cid}/members/{outsider.id}").status_code == 404
    assert client.get(f"/coordinator/cycles/{cid}/members/999999").status_code == 404
    assert client.get(f"/coordinator/cycles/1999/members/{eve.id}").status_code == 404


def test_grant_and_lift_an_exemption(app, client, db, department, signed_in):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    ada = department["not_started"]
    page = f"/coordinator/cycles/{cid}/members/{ada.id}"
    token = csrf_token(client, page)
    missing = client.post(f"{page}/exemption", data={"csrf_token": token, "reason": "  "})
    assert missing.status_code == 400 and "Give the reason" in field_error(missing.get_data(as_text=True), "reason")
    short = client.post(f"{page}/exemption", data={"csrf_token": token, "reason": "x"})
    assert short.status_code == 400 and "reason" in field_error(short.get_data(as_text=True), "reason")
    assert client.post(f"{page}/exemption", data={"reason": "Light duty"}).status_code == 400  # no CSRF token
    assert db.scalar(select(func.count(Exemption.id)).where(Exemption.member_id == ada.id)) == 0

    granted = client.post(f"{page}/exemption", data={"csrf_token": token, "reason": "Light duty until March"})
    assert granted.status_code == 303 and granted.headers["Location"] == page
    html = client.get(page).get_data(as_text=True)
    assert "Light duty until March" in html and re.search(r"granted by\s+Renee Okafor", html)
    assert "Lift the exemption" in html
    roster = client.get(f"/coordinator/cycles/{cid}/roster?q=601").get_data(as_text=True)
    assert page_counts(roster)["exempt"] == 1 and "Light duty until March" in roster
    again = client.post(f"{page}/exemption", data={"csrf_token": token, "reason": "Twice"})
    assert again.status_code == 303 and "already exempt" in client.get(page).get_data(as_text=True)

    listing = client.get(f"/coordinator/cycles/{cid}/exemptions").get_data(as_text=True)
    assert "Light duty until March" in listing and "Military leave" in listing and "2 in force, 0 lifted" in listing
    exemption = db.scalars(select(Exemption).where(Exemption.member_id == ada.id)).one()
    lift_url = f"/coordinator/cycles/{cid}/exemptions/{exemption.id}/lift"
    assert client.post(lift_url).status_code == 400  # no CSRF token
    lifted = client.post(lift_url, data={"csrf_token": token, "back": "exemptions"})
    assert lifted.status_code == 303 and lifted.headers["Location"] == f"/coordinator/cycles/{cid}/exemptions"
    listing = client.get(lifted.headers["Location"]).get_data(as_text=True)
    assert "1 in force, 1 lifted" in listing and "by Renee Okafor" in listing
    db.expire_all()
    exemption = db.get(Exemption, exemption.id)
    assert exemption.lifted_at is not None and exemption.lifted_by_id == signed_in.id
    assert exemption.granted_by_id == signed_in.id and exemption.reason == "Light duty until March"
    roster = client.get(f"/coordinator/cycles/{cid}/roster?q=601").get_data(as_text=True)
    assert page_counts(roster)["not_started"] == 1
    member_page = client.get(page).get_data(as_text=True)
    assert "Earlier exemptions" in member_page and "Not exempt" in member_page
    twice = client.post(lift_url, data={"csrf_token": token})
    assert twice.status_code == 303 and "already lifted" in client.get(page).get_data(as_text=True)
    assert [e.target for e in audit(db, "exemption.grant")] == [f"exemption:{exemption.id}"]
    assert [e.details["badge"] for e in audit(db, "exemption.lift")] == ["601"]
    other_cycle = client.post(f"/coordinator/cycles/1999/exemptions/{exemption.id}/lift", data={"csrf_token": token})
    assert other_cycle.status_code == 404


# --- exports -------------------------------------------------------------------------------------

def test_csv_export_is_the_roster_rows_of_the_current_view(app, client, db, department, signed_in):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    page = client.get(f"/coordinator/cycles/{cid}/roster?unit=Traffic&sort=badge&dir=desc&page=1")
    html = page.get_data(as_text=True)
    link = re.search(r'href="(/coordinator/cycles/\d+/roster\.csv[^"]*)"', html).group(1).replace("&amp;", "&")
    assert "unit=Traffic" in link and "page=" not in link
    response = client.get(link)
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="roster-{year}-')
    body = response.get_data(as_text=True)
    parsed = list(csv.reader(io.StringIO(body)))
    assert parsed[0] == ROSTER_COLUMNS
    assert [r[0] for r in parsed[1:]] == ["608", "605", "603", "602"]
    expected = io.StringIO()
    db.expire_all()
    write_csv(roster_rows(db, RosterFilters(cycle_id=cid, units=["Traffic"]), today=local_today(app),
                          tz=app.config["TIMEZONE"], sort="badge", descending=True), expected)
    assert body == expected.getvalue()
    eve = next(dict(zip(ROSTER_COLUMNS, r)) for r in parsed[1:] if r[0] == "605")
    assert eve["status"] == "complete" and eve["quiz_best_score"] == "100" and eve["policy_version"] == "2013-11-26"
    assert next(r for r in parsed[1:] if r[0] == "608")[-1] == "Military leave"
    [exported] = audit(db, "roster.export")
    assert exported.details["format"] == "csv" and exported.details["rows"] == 4 and exported.details["via"] == "web"
    assert exported.details["filters"]["units"] == ["Traffic"] and exported.actor_id == signed_in.id


def test_csv_export_equals_the_command_line_roster(app, client, runner, department, signed_in, tmp_path):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    out = tmp_path / "roster.csv"
    result = runner.invoke(args=["lms", "roster", "--cycle", str(year), "--unit", "Traffic", "--status", "complete",
                                 "--status", "exempt", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    web = client.get(f"/coordinator/cycles/{cid}/roster.csv?unit=Traffic&status=complete&status=exempt")
    assert web.get_data() == out.read_bytes()
    assert [r[0] for r in csv.reader(io.StringIO(out.read_text()))][1:] == ["605", "608"]


def test_csv_export_streams_in_chunks(app, client, db, open_cycle, signed_in, monkeypatch):
    from lms.views import coordinator as views

    monkeypatch.setattr(views, "CSV_CHUNK_ROWS", 7)
    db.add_all(Member(badge=f"5{n:03d}", first_name="Kim", last_name=f"Chunk{n:03d}", status="active")
               for n in range(20))
    db.commit()
    open_cycle()
    response = client.get(f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster.csv?q=Chunk")
    chunks = list(response.response)
    assert len(chunks) == 1 + 3  # the header, then 7 + 7 + 6 rows
    rows = list(csv.reader(io.StringIO("".join(c.decode() if isinstance(c, bytes) else c for c in chunks))))
    assert rows[0] == ROSTER_COLUMNS and [r[0] for r in rows[1:]] == [f"5{n:03d}" for n in range(20)]


def test_xlsx_and_pdf_exports(app, client, db, department, signed_in):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    xlsx = client.get(f"/coordinator/cycles/{cid}/roster.xlsx?status=complete&status=exempt")
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert xlsx.headers["Content-Disposition"].endswith('.xlsx"')
    workbook = load_workbook(io.BytesIO(xlsx.data))
    values = list(workbook["Roster"].iter_rows(values_only=True))
    assert values[0][:3] == ("Badge", "Last name", "First name") and sorted(v[0] for v in values[1:]) == ["605", "608"]
    assert workbook["Roster"].freeze_panes == "A2"
    assert {row[0]: row[1] for row in workbook["Summary"].iter_rows(max_row=3, values_only=True)} == {
        "Status": "Rows", "Complete": 1, "Exempt": 1}
    pdf = client.get(f"/coordinator/cycles/{cid}/roster.pdf?unit=Traffic")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert [(e.details["format"], e.details["rows"]) for e in audit(db, "roster.export")] == [("xlsx", 2), ("pdf", 4)]


def test_a_large_pdf_is_refused_with_a_way_forward(app, client, db, department, signed_in):
    app.config.update(ROSTER_PDF_MAX_ROWS=3, EXPORT_JOB_PDF_ROWS=1)  # refused before it would be queued
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    page = client.get(f"/coordinator/cycles/{cid}/roster").get_data(as_text=True)
    assert "roster.pdf" not in page and "PDF for views of up to 3 rows" in page
    refused = client.get(f"/coordinator/cycles/{cid}/roster.pdf")
    message = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "export CSV or XLSX" in message and "narrow it to 3 rows or fewer" in message
    assert db.scalars(select(Job)).all() == [] and audit(db, "roster.export") == []
    # A narrower view fits.
    assert client.get(f"/coordinator/cycles/{cid}/roster.pdf?unit=Traffic&status=complete").status_code == 200


@pytest.mark.parametrize("kind", ["csv", "xlsx", "pdf"])
def test_an_export_that_matches_no_member_says_so(app, client, db, department, signed_in, kind):
    cid = cycle_id_of(app, local_today(app).year)
    response = client.get(f"/coordinator/cycles/{cid}/roster.{kind}?unit=Traffic&q=nobody-by-this-name")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/coordinator/cycles/{cid}/roster?")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "No members match these filters, so there is nothing to export." in page
    assert 'value="nobody-by-this-name"' in page  # the filters are kept, to widen them
    assert audit(db, "roster.export") == []


# --- who gets in ---------------------------------------------------------------------------------

def _coordinator_urls(app, db) -> list[tuple[str, str]]:
    """Every coordinator URL, with a real cycle id, member, exemption and export kind filled in."""
    values = {"cycle_id": list(db.scalars(select(Cycle.id))), "member_id": list(db.scalars(select(Member.id)))[:3],
              "exemption_id": list(db.scalars(select(Exemption.id))), "kind": ["csv", "xlsx", "pdf"],
              "job_id": [1],
              "assignment_id": list(db.scalars(select(Assignment.id)))[:3]}
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/coordinator"):
            continue
        assert set(rule.arguments) <= set(values), f"fill in {rule.arguments} for {rule.rule}"
        combos = [{}]
        for arg in rule.arguments:
            combos = [{**c, arg: v} for c in combos for v in values[arg]]
        for method in sorted(rule.methods & {"GET", "POST"}):
            urls += [(method, rule.build(c)[1]) for c in combos]
    return urls


@pytest.mark.parametrize("roles", [("officer",), ("hr",)])
def test_no_one_but_coordinators_and_admins_gets_in(app, client, auth, db, department, make_member, roles):
    urls = _coordinator_urls(app, db)
    paths = {u for _, u in urls}
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    assert {"/coordinator/", "/coordinator/cycles/new", f"/coordinator/cycles/{cid}/roster",
            f"/coordinator/cycles/{cid}/roster.csv", f"/coordinator/cycles/{cid}/exemptions"} <= paths
    assert any("/members/" in u for u in paths) and any(u.endswith("/lift") for u in paths)
    outsider = make_member(first="Out", last="Sider", badge="800", roles=roles)
    auth.sign_in(outsider.badge)
    token = csrf_token(client, "/verify")
    for method, url in urls:
        response = client.get(url) if method == "GET" else client.post(url, data={
            "csrf_token": token, "reason": "Sneaky", "year": "2050", "due_date": "2050-12-31"})
        assert response.status_code == 403, (method, url)
    db.expire_all()
    assert db.scalar(select(func.count(Cycle.id))) == 1
    assert db.scalar(select(func.count(Exemption.id))) == 1
    assert not audit(db, "roster.view") and not audit(db, "roster.export") and not audit(db, "roster.view_member")


def test_anonymous_is_sent_to_sign_in_and_admin_gets_in(app, client, auth, department, make_member):
    year = local_today(app).year
    cid = cycle_id_of(app, year)
    response = client.get(f"/coordinator/cycles/{cid}/roster.csv")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in?next=")
    admin = make_member(first="Ad", last="Min", badge="801", roles=("admin",))
    auth.sign_in(admin.badge)
    assert client.get(f"/coordinator/cycles/{cid}/roster").status_code == 200
    assert client.get("/coordinator/cycles/new").status_code == 200
