"""Roster actions over HTTP: the "not done" filter (page, exports, CLI), and reminding, exempting
or granting attempts to ticked rows or every row that matches, after a confirmation page listing
who is affected and who is skipped and why; all or nothing, audited, never the coordinator
themself, and the list confirmed is the list acted on."""
from __future__ import annotations

import csv
import io
import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from lms.models import AttemptGrant, AuditEvent, Exemption, Job, Member, Reminder
from lms.services import roster_actions
from lms.services.cycles import ExemptionError
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import cycle_id_of
from tests.test_coordinator import (  # noqa: F401
    assignment_of,
    coordinator,
    department,
    local_today,
    signed_in,
)

NOT_DONE_BADGES = ["601", "602", "603", "604", "607", "9000"]


def _roster_url(app, **query) -> str:
    url = f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster"
    return f"{url}?{urlencode(query, doseq=True)}" if query else url


def _actions_url(app, apply: bool = False) -> str:
    return f"/coordinator/cycles/{cycle_id_of(app, local_today(app).year)}/roster/actions" + ("/apply" if apply else "")


def _events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _badges_in(html: str, heading_id: str) -> list[str]:
    """The badges in the table of the section headed by ``heading_id``, in order."""
    section = html.split(f'id="{heading_id}"', 1)[1].split("</section>", 1)[0]
    return re.findall(r"</th><td>(\d+)</td>", section)


def _hidden(html: str, name: str) -> list[str]:
    return re.findall(rf'<input type="hidden" name="{name}" value="([^"]*)">', html)


def _confirm_fields(html: str) -> dict:
    """The confirmation form's hidden fields, as the browser would post them back."""
    data = {"csrf_token": _hidden(html, "csrf_token")[-1], "action": _hidden(html, "action")[0],
            "query": _hidden(html, "query")[-1], "fingerprint": _hidden(html, "fingerprint")[0]}
    if _hidden(html, "all_matching"):
        data["all_matching"] = "y"
    else:
        data["row"] = _hidden(html, "row")
    return data


def _choose(client, app, action: str, *, rows=None, query: dict | None = None):
    """Press an action button on the roster (ticked ``rows``, or every row that matches)."""
    query = query or {}
    token = csrf_token(client, _roster_url(app, **query))
    data = {"csrf_token": token, "action": action, "query": urlencode(query, doseq=True)}
    if rows is None:
        data["all_matching"] = "y"
    else:
        data["row"] = [str(r) for r in rows]
    return client.post(_actions_url(app), data=data)


# --- "not done" ----------------------------------------------------------------------------------

def test_not_done_filter_on_the_page_the_csv_and_the_cli(app, client, db, runner, department, signed_in, tmp_path):
    html = client.get(_roster_url(app, status="not_done")).get_data(as_text=True)
    assert "6 rows match" in html and "Not done (anything short of complete, late or exempt)" in html
    assert re.search(r'<input checked id="status-0" name="status" type="checkbox" value="not_done">', html)
    everyone = client.get(_roster_url(app)).get_data(as_text=True)
    assert "Show the 6 rows not done" in everyone

    exported = client.get(_roster_url(app, status="not_done").replace("/roster?", "/roster.csv?"))
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert sorted(r["badge"] for r in rows) == NOT_DONE_BADGES
    assert _events(db, "roster.export")[-1].details["filters"]["statuses"] == ["not_done"]

    out = tmp_path / "not-done.csv"
    result = runner.invoke(args=["lms", "roster", "--cycle", str(local_today(app).year), "--status", "not_done",
                                 "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(r["badge"] for r in csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))) == NOT_DONE_BADGES
    # Combined with a status it adds nothing twice; an unknown one is still refused, naming not_done.
    both = client.get(_roster_url(app, status=["not_done", "overdue"])).get_data(as_text=True)
    assert "6 rows match" in both
    bad = runner.invoke(args=["lms", "roster", "--cycle", str(local_today(app).year), "--status", "unfinished",
                              "--format", "csv", "--out", str(out)])
    assert bad.exit_code != 0 and "not_done" in bad.output


def test_roster_rows_have_labelled_checkboxes_and_plain_column_names(app, client, department, signed_in):
    html = client.get(_roster_url(app)).get_data(as_text=True)
    assert re.search(r'<input type="checkbox" name="row" value="\d+" id="row-(\d+)" class="row-select">\s*'
                     r'<label for="row-\1" class="visually-hidden">Select Ada Abbott, badge 601</label>', html)
    assert "<legend>Act on selected members</legend>" in html and 'role="status"' in html
    assert "Select all 9 rows that match the filters, on every page" in html
    # A sortable header's name is the column's name; the action is a description of the link.
    header = re.search(r'<th scope="col" aria-sort="ascending">\s*<a class="sort" [^>]*'
                       r'aria-describedby="sort-hint-desc">Name', html)
    assert header and ", sort" not in html and 'id="sort-hint-desc" hidden>Sort descending<' in html


# --- exempt --------------------------------------------------------------------------------------

def test_exempt_everyone_not_done_lists_who_then_applies_all_audited(app, client, db, department, signed_in):
    query = {"status": "not_done"}
    page = _choose(client, app, "exempt", query=query)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Exempt: check who is affected" in html
    assert _badges_in(html, "affected-heading") == ["601", "602", "603", "604", "607"]
    assert "Exempt: 5 members" in html
    # The coordinator is on the roster and not done, but nobody exempts themselves.
    skipped = html.split('id="skipped-heading"', 1)[1]
    assert "You: nobody exempts themselves" in skipped and "Okafor, Renee (9000)" in skipped
    assert _events(db, "roster.action_preview")[-1].details["affected"] == 5

    data = {**_confirm_fields(html), "reason": "Academy in-service week"}
    done = client.post(_actions_url(app, apply=True), data=data)
    assert done.status_code == 303
    assert done.headers["Location"] == _roster_url(app, **query)
    db.expire_all()
    exempted = db.scalars(select(Member.badge).join(Exemption, Exemption.member_id == Member.id)
                          .where(Exemption.lifted_at.is_(None), Exemption.reason == "Academy in-service week")
                          .order_by(Member.badge)).all()
    assert exempted == ["601", "602", "603", "604", "607"]
    grants = _events(db, "exemption.grant")
    assert sorted(e.details["badge"] for e in grants) == exempted
    assert all(e.actor_id == signed_in.id and e.details["via"] == "roster action" for e in grants)
    [press] = _events(db, "roster.action")
    assert press.details["action"] == "exempt" and press.details["affected"] == 5
    assert press.details["scope"] == "all matching" and press.details["filters"]["statuses"] == ["not_done"]
    assert "Exempted 5 members" in client.get(done.headers["Location"]).get_data(as_text=True)


def test_ticked_rows_skip_the_complete_the_exempt_and_oneself(app, client, db, department, signed_in):
    ids = [assignment_of(db, department[k]).id for k in ("overdue", "complete", "complete_late", "exempt")]
    ids.append(assignment_of(db, signed_in).id)
    html = _choose(client, app, "exempt", rows=ids).get_data(as_text=True)
    assert _badges_in(html, "affected-heading") == ["607"]
    skipped = html.split('id="skipped-heading"', 1)[1]
    assert re.search(r"Already complete \(2\).*Evans, Eve \(605\).*Fox, Fay \(606\)", skipped, re.S)
    assert re.search(r"Already exempt \(1\).*Hunt, Hal \(608\)", skipped, re.S)
    assert "Okafor, Renee (9000)" in skipped
    assert "The 5 rows you ticked" in html and sorted(map(int, _hidden(html, "row"))) == sorted(ids)


def test_a_missing_reason_keeps_the_selection_and_does_nothing(app, client, db, department, signed_in):
    ids = [assignment_of(db, department[k]).id for k in ("overdue", "not_started")]
    html = _choose(client, app, "exempt", rows=ids).get_data(as_text=True)
    refused = client.post(_actions_url(app, apply=True), data={**_confirm_fields(html), "reason": ""})
    again = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Give the reason for the exemption" in again
    assert sorted(map(int, _hidden(again, "row"))) == sorted(ids)  # the selection survives
    assert _badges_in(again, "affected-heading") == ["601", "607"]
    short = client.post(_actions_url(app, apply=True), data={**_confirm_fields(html), "reason": "x"})
    assert short.status_code == 400 and "Nothing was done" in short.get_data(as_text=True)
    db.expire_all()
    assert db.scalar(select(func.count(Exemption.id))) == 1  # the fixture's
    assert _events(db, "roster.action") == []


def test_one_failure_applies_nothing(app, client, db, department, signed_in, monkeypatch):
    html = _choose(client, app, "exempt", query={"status": "not_done"}).get_data(as_text=True)
    real = roster_actions.grant_exemption
    calls = []

    def fails_third(session, **kwargs):
        calls.append(kwargs["member"].badge)
        if len(calls) == 3:
            raise ExemptionError(f"{kwargs['member'].full_name} could not be exempted")
        return real(session, **kwargs)

    monkeypatch.setattr(roster_actions, "grant_exemption", fails_third)
    response = client.post(_actions_url(app, apply=True), data={**_confirm_fields(html), "reason": "In-service"})
    assert response.status_code == 400 and "Nothing was done: Cal Chen could not be exempted" in \
        response.get_data(as_text=True)
    assert len(calls) == 3
    db.expire_all()
    assert db.scalar(select(func.count(Exemption.id))) == 1
    assert _events(db, "exemption.grant") == [] and _events(db, "roster.action") == []


def test_the_list_is_checked_again_at_confirm_time(app, client, db, department, signed_in, make_member):
    """"Every row that matches" is worked out again when the coordinator confirms; if it now
    means different people, nothing is done and the new list is shown to confirm again."""
    html = _choose(client, app, "exempt", query={"status": "overdue"}).get_data(as_text=True)
    assert _badges_in(html, "affected-heading") == ["607"]
    # Meanwhile Abbott's due date passes: the filter now matches two members.
    assignment_of(db, department["not_started"]).due_date = assignment_of(db, department["overdue"]).due_date
    db.commit()
    changed = client.post(_actions_url(app, apply=True), data={**_confirm_fields(html), "reason": "Court week"})
    again = changed.get_data(as_text=True)
    assert changed.status_code == 409 and "The list changed" in again
    assert _badges_in(again, "affected-heading") == ["601", "607"]
    db.expire_all()
    assert db.scalar(select(func.count(Exemption.id))) == 1
    # Confirming the new list applies it.
    done = client.post(_actions_url(app, apply=True), data={**_confirm_fields(again), "reason": "Court week"})
    assert done.status_code == 303
    assert len(_events(db, "exemption.grant")) == 2


# --- grant attempts ------------------------------------------------------------------------------

def test_grant_attempts_asks_for_the_password_and_counts_a_wrong_one(app, client, db, department, signed_in):
    ids = [assignment_of(db, department[k]).id for k in ("quiz_failed", "not_started", "quiz_passed", "complete")]
    ids.append(assignment_of(db, signed_in).id)
    html = _choose(client, app, "grant", rows=ids).get_data(as_text=True)
    assert _badges_in(html, "affected-heading") == ["601", "603"]
    skipped = html.split('id="skipped-heading"', 1)[1]
    assert "Quiz already passed (1)" in skipped and "Diaz, Dee (604)" in skipped
    assert "Already complete (1)" in skipped and "Okafor, Renee (9000)" in skipped
    assert 'autocomplete="current-password"' in html

    fields = {**_confirm_fields(html), "attempts": "2", "reason": "Reviewed the lessons together"}
    wrong = client.post(_actions_url(app, apply=True), data={**fields, "password": "not my password"})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "That is not your current password." in page
    assert sorted(map(int, _hidden(page, "row"))) == sorted(ids)
    db.expire_all()
    assert db.scalar(select(func.count(AttemptGrant.id))) == 0
    [failure] = _events(db, "auth.reauthenticate")
    assert failure.outcome != "success" and failure.actor_id == signed_in.id

    done = client.post(_actions_url(app, apply=True), data={**fields, "password": PASSWORD})
    assert done.status_code == 303
    db.expire_all()
    granted = db.scalars(select(AttemptGrant)).all()
    assert sorted(g.assignment_id for g in granted) == sorted(ids[:2]) and {g.attempts for g in granted} == {2}
    events = _events(db, "quiz.grant_attempts")
    assert sorted(e.details["badge"] for e in events) == ["601", "603"]
    assert all(e.details["via"] == "roster action" and e.details["reason"] == "Reviewed the lessons together"
               for e in events)
    assert _events(db, "roster.action")[-1].details["attempts"] == 2
    roster = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Granted 2 more quiz attempts on 2 assignments." in roster


def test_wrong_passwords_on_a_grant_lock_the_account(app, client, db, department, signed_in):
    ids = [assignment_of(db, department["quiz_failed"]).id]
    html = _choose(client, app, "grant", rows=ids).get_data(as_text=True)
    fields = {**_confirm_fields(html), "attempts": "1", "reason": "Second chance"}
    for n in range(app.config["LOCKOUT_THRESHOLD"] - 1):
        assert client.post(_actions_url(app, apply=True), data={**fields, "password": f"guess {n}"}).status_code == 400
    last = client.post(_actions_url(app, apply=True), data={**fields, "password": "last guess"})
    assert last.status_code == 303 and last.headers["Location"].endswith("/sign-in")
    assert db.scalar(select(func.count(AttemptGrant.id))) == 0


# --- remind --------------------------------------------------------------------------------------

def test_remind_queues_one_job_per_member_and_skips_those_it_cannot(app, client, db, department, signed_in):
    for key in ("not_started", "overdue", "complete"):
        db.get(Member, department[key].id).email = f"{department[key].badge}@example.org"
    db.commit()
    ids = [assignment_of(db, department[k]).id for k in ("not_started", "overdue", "complete", "in_progress")]
    html = _choose(client, app, "remind", rows=ids).get_data(as_text=True)
    assert _badges_in(html, "affected-heading") == ["601", "607"]
    skipped = html.split('id="skipped-heading"', 1)[1]
    assert "No e-mail address on file (1)" in skipped and "Brooks, Ben (602)" in skipped
    assert "Already complete (1)" in skipped

    done = client.post(_actions_url(app, apply=True), data=_confirm_fields(html))
    assert done.status_code == 303
    db.expire_all()
    assert sorted(db.scalars(select(Reminder.member_id))) == sorted(
        [department["not_started"].id, department["overdue"].id])
    assert db.scalar(select(func.count(Job.id)).where(Job.kind == "email")) == 2
    assert _events(db, "roster.action")[-1].details["queued"] == 2
    # Reminded today: a second press skips them, saying why.
    again = _choose(client, app, "remind", rows=ids).get_data(as_text=True)
    assert "Already reminded today (2)" in again and "Remind: 0 members" in again


# --- limits and mistakes -------------------------------------------------------------------------

def test_limits_and_bad_choices_are_refused_with_a_message(app, client, db, department, signed_in):
    app.config["ROSTER_ACTION_MAX_MEMBERS"] = 3
    too_many = _choose(client, app, "exempt", query={"status": "not_done"})
    assert too_many.status_code == 303 and too_many.headers["Location"] == _roster_url(app, status="not_done")
    assert "This selection has 6 members; one action covers at most 3." in \
        client.get(too_many.headers["Location"]).get_data(as_text=True)

    nothing = _choose(client, app, "exempt", rows=[])
    assert nothing.status_code == 303
    assert "Tick at least one row" in client.get(nothing.headers["Location"]).get_data(as_text=True)
    bad_row = _choose(client, app, "exempt", rows=["12x"])
    assert "is not one of this roster" in client.get(bad_row.headers["Location"]).get_data(as_text=True)
    bad_action = _choose(client, app, "delete", rows=[assignment_of(db, department["overdue"]).id])
    assert bad_action.status_code == 303
    assert "Choose one of the actions" in client.get(bad_action.headers["Location"]).get_data(as_text=True)
    as_of = _choose(client, app, "exempt", query={"as_of": local_today(app).isoformat()})
    assert "Actions work on the roster of now" in client.get(as_of.headers["Location"]).get_data(as_text=True)
    gone = _choose(client, app, "exempt", rows=[assignment_of(db, department["overdue"]).id, 2_000_000_000])
    assert "No longer on this cycle's roster (1)" in gone.get_data(as_text=True)
    no_token = client.post(_actions_url(app, apply=True), data={"action": "exempt", "all_matching": "y"})
    assert no_token.status_code == 400  # refused before the view: no CSRF token
    db.expire_all()
    assert db.scalar(select(func.count(Exemption.id))) == 1


@pytest.mark.parametrize("role", ["officer", "hr"])
def test_only_coordinators_act_on_the_roster(app, client, db, department, make_member, auth, role):
    other = make_member(first="Not", last="Coordinator", badge="7777", roles=(role,))
    assert auth.sign_in(other.badge).status_code == 302
    token = csrf_token(client, "/account/password")
    for url in (_actions_url(app), _actions_url(app, apply=True)):
        response = client.post(url, data={"csrf_token": token, "action": "exempt", "all_matching": "y",
                                          "reason": "No"})
        assert response.status_code == 403
    assert db.scalar(select(func.count(Exemption.id))) == 1
