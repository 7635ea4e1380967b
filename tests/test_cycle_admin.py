"""Editing, closing and deleting a cycle, from the coordinator's pages and the command line: the
audience re-synced (nothing started or signed removed), the validation both share, and the audit
of each change with its before and after."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from lms.db import utcnow
from lms.models import Assignment, AuditEvent, Cycle, DueDateChange, Member
from lms.services.clock import local_date
from lms.services.cycles import create_cycle
from lms.services.progress import mark_lesson_read
from lms.services.roster import RosterFilters, roster_rows
from tests.conftest import csrf_token
from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign


def _today(app):
    return local_date(utcnow(), app.config["TIMEZONE"])


def _events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _assigned(db, cycle_id: int) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(Member.badge).join(Assignment, Assignment.member_id == Member.id)
                          .where(Assignment.cycle_id == cycle_id)))


def _post(client, url: str, data: dict | None = None):
    return client.post(url, data={"csrf_token": csrf_token(client, "/sign-in"), **(data or {})})


def test_edit_previews_then_resyncs_the_audience_keeping_what_was_started(app, client, auth, db, make_member,
                                                                         open_cycle):
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",), unit="Staff")
    make_member(first="Tia", last="Traffic", badge="611", unit="Traffic")
    started = make_member(first="Nia", last="North", badge="612", unit="Patrol North")
    make_member(first="Ned", last="North", badge="613", unit="Patrol North")
    cycle = open_cycle(units=["Patrol North", "Staff"])
    old_name = cycle.name
    assert _assigned(db, cycle.id) == {"880", "612", "613"}
    assignment = assignment_of(db, started)
    mark_lesson_read(db, assignment, assignment.policy_version.lessons[0], utcnow())
    db.commit()
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/edit"
    form = client.get(url).get_data(as_text=True)
    assert 'value="Patrol North" checked' in form or 'checked id="units-' in form
    new_due = (cycle.due_date + timedelta(days=10)).isoformat()
    values = {"name": "Traffic refresher", "due_date": new_due, "grace_days": "14", "units": ["Traffic"]}

    preview = _post(client, url, values)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Check before you save" in html
    assert "1 active member</strong>" in html and "1 joins" in html
    assert "2 no longer in it lose assignments they had not started" in html
    assert "1 no longer in it keeps theirs because they started or signed" in html
    assert _assigned(db, cycle.id) == {"880", "612", "613"} and _events(db, "cycle.edit") == []

    saved = _post(client, url, {**values, "confirm": "yes"})
    assert saved.status_code == 303 and saved.headers["Location"] == f"/coordinator/cycles/{cycle.id}/roster"
    assert _assigned(db, cycle.id) == {"611", "612"}  # the one who started keeps the assignment
    db.expire_all()
    edited = db.get(Cycle, cycle.id)
    assert (edited.name, edited.due_date.isoformat(), edited.grace_days) == ("Traffic refresher", new_due, 14)
    assert edited.audience == {"units": ["Traffic"], "ranks": [], "shifts": []}
    assert db.scalar(select(Assignment.due_date).where(Assignment.id == assignment.id)).isoformat() == new_due
    [event] = _events(db, "cycle.edit")
    assert event.actor_id == coordinator.id and event.target == f"cycle:{cycle.id}" and event.ip == "127.0.0.1"
    assert event.details["before"]["name"] == old_name and event.details["after"]["name"] == "Traffic refresher"
    assert event.details["before"]["units"] == ["Patrol North", "Staff"] and event.details["after"]["units"] == ["Traffic"]
    assert (event.details["members_added"], event.details["members_removed"], event.details["members_kept"]) == (1, 2, 1)


def test_edit_refuses_what_validation_refuses(app, client, auth, db, make_member, open_cycle):
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    make_member(first="Tia", last="Traffic", badge="611", unit="Traffic", rank="Officer")
    make_member(first="Sam", last="Sergeant", badge="612", unit="Patrol North", rank="Sergeant")
    cycle = open_cycle()
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/edit"
    base = {"name": cycle.name, "due_date": cycle.due_date.isoformat(), "grace_days": "30", "confirm": "yes"}
    nobody = _post(client, url, {**base, "units": ["Traffic"], "ranks": ["Sergeant"]})
    assert nobody.status_code == 400 and "this audience matches no active member" in nobody.get_data(as_text=True)
    far = _post(client, url, {**base, "due_date": f"{cycle.year + 3}-01-01"})
    assert far.status_code == 400 and f"does not fit a {cycle.year} cycle" in far.get_data(as_text=True)
    past = _post(client, url, {**base, "due_date": (_today(app) - timedelta(days=1)).isoformat()})
    assert past.status_code == 400 and "is in the past" in past.get_data(as_text=True)
    digits = _post(client, url, {**base, "name": "2026"})
    assert digits.status_code == 400 and "needs a letter" in digits.get_data(as_text=True)
    assert _events(db, "cycle.edit") == []


def test_close_stops_signatures_and_keeps_the_roster(app, client, auth, db, make_member, open_cycle):
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    officer = make_member(first="Sid", last="Signer", badge="621")
    cycle = open_cycle()
    auth.sign_in(coordinator.badge)
    url = f"/coordinator/cycles/{cycle.id}/close"
    page = client.get(url).get_data(as_text=True)
    assert "Closing the cycle stops new signatures" in page
    closed = _post(client, url)
    assert closed.status_code == 303
    roster = client.get(f"/coordinator/cycles/{cycle.id}/roster").get_data(as_text=True)
    assert "Closed on" in roster and "Sid" in roster or "Signer" in roster
    [event] = _events(db, "cycle.close")
    assert event.actor_id == coordinator.id and event.details["before"] == {"closed_at": None}
    assert event.details["name"] == cycle.name and event.details["year"] == cycle.year
    # Closed: editing and reminders are refused, and the officer can read but not sign.
    assert client.get(f"/coordinator/cycles/{cycle.id}/edit").status_code == 303
    reminded = _post(client, f"/coordinator/cycles/{cycle.id}/reminders", {"confirm": "y"})
    assert reminded.status_code == 302 and _events(db, "reminder.queue") == []
    assert "no reminders go out" in client.get(reminded.headers["Location"]).get_data(as_text=True)
    auth.sign_out()
    auth.sign_in(officer.badge)
    assignment = assignment_of(db, officer)
    read_all_lessons(client, assignment.id)
    pass_quiz(client, db, assignment.id)
    dashboard = client.get("/training/").get_data(as_text=True)
    assert "it takes no more signatures" in dashboard
    response = sign(client, assignment.id, officer.full_name)
    assert response.status_code != 303
    assert "is closed" in client.get(f"/training/{assignment.id}/sign").get_data(as_text=True)


def test_delete_only_while_nobody_has_started(app, client, auth, db, make_member, open_cycle):
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    officer = make_member(first="Rae", last="Reader", badge="622")
    cycle = open_cycle()
    auth.sign_in(coordinator.badge)
    assignment = assignment_of(db, officer)
    mark_lesson_read(db, assignment, assignment.policy_version.lessons[0], utcnow())
    db.commit()
    url = f"/coordinator/cycles/{cycle.id}/delete"
    assert "cannot be deleted" in client.get(url).get_data(as_text=True)
    refused = _post(client, url)
    assert refused.status_code == 303 and db.get(Cycle, cycle.id) is not None and _events(db, "cycle.delete") == []

    spare = create_cycle(db, year=cycle.year, name="Mistyped cycle", due_date=cycle.due_date, today=_today(app),
                         now=utcnow(), units=["Patrol North"])
    db.commit()
    spare_id = spare.id
    url = f"/coordinator/cycles/{spare_id}/delete"
    assert "Nobody has started this cycle" in client.get(url).get_data(as_text=True)
    deleted = _post(client, url)
    assert deleted.status_code == 303 and deleted.headers["Location"] == "/coordinator/"
    db.expire_all()
    assert db.get(Cycle, spare_id) is None
    assert db.scalar(select(func.count(Assignment.id)).where(Assignment.cycle_id == spare_id)) == 0
    [event] = _events(db, "cycle.delete")
    assert event.actor_id == coordinator.id and event.target == f"cycle:{spare_id}"
    assert event.details["name"] == "Mistyped cycle" and event.details["units"] == ["Patrol North"]
    assert client.get(url).status_code == 404


def test_the_command_line_edits_closes_and_deletes(app, runner, db, make_member):
    make_member(first="Tia", last="Traffic", badge="611", unit="Traffic")
    make_member(first="Nia", last="North", badge="612", unit="Patrol North", shift="Night")
    year = _today(app).year + 1
    create = ["lms", "cycle", "create", "--year", str(year), "--due", f"{year}-03-31"]

    dry = runner.invoke(args=[*create, "--unit", "Traffic", "--dry-run"])
    assert dry.exit_code == 0 and f"Would open cycle {year} annual: 1 member assigned" in dry.output
    assert db.scalar(select(func.count(Cycle.id))) == 0
    typo = runner.invoke(args=[*create, "--unit", "Patrol Nowhere"])
    assert typo.exit_code == 1 and "no member's unit is 'Patrol Nowhere'" in typo.stderr and "(--unit)" in typo.stderr
    shift = runner.invoke(args=[*create, "--shift", "Swing"])
    assert shift.exit_code == 1 and "no member's shift is 'Swing'" in shift.stderr
    wrong_year = runner.invoke(args=["lms", "cycle", "create", "--year", str(year + 5), "--due", f"{year}-01-01"])
    assert wrong_year.exit_code == 1 and f"does not fit a {year + 5} cycle" in wrong_year.stderr
    assert runner.invoke(args=[*create, "--shift", "Night"]).exit_code == 0
    cycle_id = db.scalar(select(Cycle.id))

    preview = runner.invoke(args=["lms", "cycle", "edit", "--cycle", str(year), "--everyone", "--dry-run"])
    assert preview.exit_code == 0 and "1 added, 0 removed" in preview.output and "dry run" in preview.output
    assert _assigned(db, cycle_id) == {"612"}
    edited = runner.invoke(args=["lms", "cycle", "edit", "--cycle", f"{year} annual", "--everyone",
                                 "--name", f"{year} everyone", "--grace-days", "10"])
    assert edited.exit_code == 0, edited.output
    assert _assigned(db, cycle_id) == {"611", "612"}
    [event] = _events(db, "cycle.edit")
    assert event.actor_id is None and event.details["via"] == "cli"
    assert event.details["before"] == {"name": f"{year} annual", "grace_days": 30, "shifts": ["Night"]}
    assert event.details["after"] == {"name": f"{year} everyone", "grace_days": 10, "shifts": []}

    listed = runner.invoke(args=["lms", "cycle", "list"])
    assert f"{year}  {year} everyone" in listed.output and "open" in listed.output

    closed = runner.invoke(args=["lms", "cycle", "close", "--cycle", str(cycle_id)])
    assert closed.exit_code == 0 and f"Closed cycle {year} everyone" in closed.output
    again = runner.invoke(args=["lms", "cycle", "close", "--cycle", str(cycle_id)])
    assert again.exit_code == 1 and "already closed" in again.stderr
    assert runner.invoke(args=["lms", "cycle", "edit", "--cycle", str(cycle_id), "--grace-days", "5"]).exit_code == 1

    deleted = runner.invoke(args=["lms", "cycle", "delete", "--cycle", f"{year} EVERYONE"])
    assert deleted.exit_code == 0, deleted.output
    assert db.scalar(select(func.count(Cycle.id))) == 0 and len(_events(db, "cycle.delete")) == 1
    missing = runner.invoke(args=["lms", "cycle", "delete", "--cycle", "nothing like it"])
    assert missing.exit_code == 1 and "no cycle is named 'nothing like it' (cycles: none)" in missing.stderr


def test_an_earlier_due_date_applies_from_the_day_of_the_edit(app, runner, db, make_member):
    """Editing the due date moves unsigned assignments from today on; a roster as of yesterday
    still judges them against the due date that stood then."""
    today = _today(app)
    member = make_member(first="Eda", last="Early", badge="621")
    member.hire_date, member.created_at = today - timedelta(days=400), utcnow() - timedelta(days=10)
    cycle = create_cycle(db, year=today.year, due_date=today + timedelta(days=20), today=today - timedelta(days=5),
                         now=utcnow() - timedelta(days=5))
    db.commit()
    old_due = cycle.due_date
    result = runner.invoke(args=["lms", "cycle", "edit", "--cycle", str(cycle.id),
                                 "--due", (today + timedelta(days=3)).isoformat()])
    assert result.exit_code == 0, result.output
    tz = app.config["TIMEZONE"]
    due = {as_of: {r.badge: r.due_date for r in roster_rows(db, RosterFilters(cycle_id=cycle.id, as_of=as_of),
                                                             today=today, tz=tz)}
           for as_of in (today - timedelta(days=1), today, None)}
    assert due[today - timedelta(days=1)]["621"] == old_due
    assert due[today]["621"] == due[None]["621"] == today + timedelta(days=3)
    [moved] = db.scalars(select(DueDateChange)).all()
    assert (moved.due_before, moved.due_after, moved.effective_on, moved.reason) == (
        old_due, today + timedelta(days=3), today, "cycle_edit")
