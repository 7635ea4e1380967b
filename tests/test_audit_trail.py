"""Every change leaves a trace: each state-changing route and each command writes an audit event
naming who did it (or the system) and what changed.

Both tables are checked against the application itself: a POST route or a CLI command with no row
here fails the suite, naming it, so whoever adds one decides what it records. Then each row is run
for real and the events written by that one request or command are read back.
"""
from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
from sqlalchemy import func, select

from lms import create_app
from lms.cli import lms as lms_group
from lms.db import get_database, utcnow
from lms.models import Acknowledgment, AuditEvent, Cycle, Member, Receipt
from lms.services.clock import local_date
from lms.services.cycles import grant_exemption
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token
from tests.helpers import answers_for, assignment_of, lesson_links, open_attempt, pass_quiz, read_all_lessons, sign
from tests.helpers import start_quiz as start_quiz_page

NEW_PASSWORD = "violet tractor harbour lamp"
FIXTURE = Path(__file__).parent / "fixtures" / "content_versions"


def _client(app, member=None):
    client = app.test_client()
    if member is not None:
        response = client.post("/sign-in", data={"badge": member.badge, "password": PASSWORD,
                                                  "csrf_token": csrf_token(client)})
        assert response.status_code == 302, member.badge
    return client


def _last_event_id(db) -> int:
    db.expire_all()
    return db.scalar(select(func.max(AuditEvent.id))) or 0


def _events_since(db, mark: int) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.id > mark).order_by(AuditEvent.id)))


@dataclass
class Step:
    """One state change: ``prepare`` sets the scene (its events do not count), ``act`` makes the
    change; the events ``act`` writes must include ``action`` by ``actor`` (a world key, or None
    for the system), with details saying what changed."""

    action: str
    actor: str | None
    act: object
    prepare: object = None
    #: Details the event must carry (key: value), beyond being non-empty.
    details: dict = field(default_factory=dict)


# --- the web ---------------------------------------------------------------------------------------

@pytest.fixture
def world(app, db, make_member, open_cycle):
    """Officers (one per officer action), a coordinator, HR, an administrator and this year's cycle."""
    w = SimpleNamespace(app=app, db=db)
    w.officers = {name: make_member(first=name.capitalize(), last="Officer", badge=f"50{i}")
                  for i, name in enumerate(("reader", "starter", "taker", "signer", "voided", "exempt",
                                            "lifted", "reminded", "mover", "locked", "bulk"))}
    w.coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    w.hr = make_member(first="Pat", last="Lee", badge="900", roles=("hr",))
    w.admin = make_member(first="Carmen", last="Reyes", badge="1005", roles=("admin",))
    w.supervisor = make_member(first="Sam", last="Sarge", badge="1006", roles=("supervisor",))
    cycle = open_cycle()
    w.year, w.cycle_id = cycle.year, cycle.id
    db.get(Member, w.officers["reminded"].id).email = "reminded@example.org"
    # The sergeant's squad: the member to remind.
    db.get(Member, w.officers["reminded"].id).supervisor_id = w.supervisor.id
    db.commit()
    return w


def _member(w, key: str) -> Member:
    if key in ("coordinator", "hr", "admin", "supervisor"):
        return getattr(w, key)
    return w.officers[key]


def _signed_ack(w, key: str) -> Acknowledgment:
    officer = w.officers[key]
    client = _client(w.app, officer)
    assignment_id = assignment_of(w.db, officer).id
    read_all_lessons(client, assignment_id)
    pass_quiz(client, w.db, assignment_id)
    assert sign(client, assignment_id, officer.full_name).status_code == 303
    w.db.expire_all()
    return w.db.scalars(select(Acknowledgment).where(Acknowledgment.member_id == officer.id)).one()


def _post(client, url: str, data: dict | None = None, token_from: str | None = None, **kwargs):
    token = csrf_token(client, token_from or url)
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def _sign_in(w, s):
    s.client = w.app.test_client()
    token = csrf_token(s.client)
    return s.client.post("/sign-in", data={"badge": w.officers["reader"].badge, "password": PASSWORD,
                                           "csrf_token": token})


def _prepare_officer(key):
    def prepare(w, s):
        s.client = _client(w.app, w.officers[key])
        s.assignment = assignment_of(w.db, w.officers[key]).id
    return prepare


def _prepare_quiz(w, s):
    _prepare_officer("taker")(w, s)
    read_all_lessons(s.client, s.assignment)
    start_quiz_page(s.client, s.assignment)
    s.attempt = open_attempt(w.db, s.assignment)


def _prepare_sign(w, s):
    _prepare_officer("signer")(w, s)
    read_all_lessons(s.client, s.assignment)
    pass_quiz(s.client, w.db, s.assignment)


def _prepare_as(key):
    def prepare(w, s):
        s.client = _client(w.app, _member(w, key))
    return prepare


def _prepare_lift(w, s):
    officer = w.db.get(Member, w.officers["lifted"].id)
    s.exemption = grant_exemption(w.db, cycle=w.db.scalars(select(Cycle)).one(), member=officer,
                                  reason="Light duty until March", granted_by_id=w.coordinator.id, now=utcnow())
    w.db.commit()
    s.client = _client(w.app, w.coordinator)


def _prepare_void(w, s):
    s.ack = _signed_ack(w, "voided")
    s.client = _client(w.app, w.hr)


def _prepare_check(w, s):
    s.pdf = w.db.get(Receipt, _signed_ack(w, "voided").id).pdf
    s.client = _client(w.app, w.hr)


PERSONNEL_CSV = (b"badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role\n"
                 b"777,Nia,Newhire,nia@example.org,Officer,Patrol North,Day,,2026-01-05,active,officer\n")


def _prepare_apply(w, s):
    s.client = _client(w.app, w.admin)
    response = _post(s.client, "/admin/personnel/import", {"file": (io.BytesIO(PERSONNEL_CSV), "roster.csv")},
                     content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    s.preview = response.headers["Location"]


def _due_of(w) -> str:
    return w.db.get(Cycle, w.cycle_id).due_date.isoformat()


def _prepare_unstarted_cycle(w, s):
    """A second cycle this year that nobody has started, to delete."""
    from lms.services.cycles import create_cycle

    today = local_date(utcnow(), w.app.config["TIMEZONE"])
    cycle = create_cycle(w.db, year=w.year, name="Remedial (unstarted)", due_date=w.db.get(Cycle, w.cycle_id).due_date,
                         today=today, now=utcnow())
    w.db.commit()
    s.cycle_id = cycle.id
    s.client = _client(w.app, w.coordinator)


def _prepare_grant(w, s):
    officer = w.officers["starter"]
    s.assignment = assignment_of(w.db, officer).id
    s.member_url = f"/coordinator/cycles/{w.cycle_id}/members/{officer.id}"
    s.grant_url = f"{s.member_url}/assignments/{s.assignment}/attempts"
    s.prefix = f"grant{s.assignment}-"
    s.client = _client(w.app, w.coordinator)


def _roster_choice(w, s) -> dict:
    """Exempt the "bulk" officer's row, chosen on the roster."""
    s.client = _client(w.app, w.coordinator)
    roster = f"/coordinator/cycles/{w.cycle_id}/roster"
    return {"csrf_token": csrf_token(s.client, roster), "action": "exempt", "query": "",
            "row": str(assignment_of(w.db, w.officers["bulk"]).id)}


def _prepare_roster_action(w, s):
    s.choice = _roster_choice(w, s)
    page = s.client.post(f"/coordinator/cycles/{w.cycle_id}/roster/actions", data=s.choice).get_data(as_text=True)
    s.choice["fingerprint"] = re.search(r'name="fingerprint" value="([0-9a-f]{64})"', page).group(1)


def _prepare_failed_job(w, s):
    from lms.models import Job

    job = Job(kind="email", key="audit-trail-failed", payload={}, status="failed", attempts=5, max_attempts=5,
              run_after=utcnow(), created_at=utcnow(), last_error="SMTPRecipientsRefused: 550 No such user")
    w.db.add(job)
    w.db.commit()
    s.job_id = job.id
    s.client = _client(w.app, w.admin)


SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
CODES_RE = re.compile(r"<li><code>([a-z2-9-]{19})</code></li>")


def _pending_secret(client) -> str:
    match = SECRET_RE.search(client.get("/account/second-factor").get_data(as_text=True))
    assert match, "no TOTP secret on the enrolment page"
    return match.group(1)


def _prepare_totp(w, s):
    import pyotp

    s.client = _client(w.app, w.officers["reader"])
    _post(s.client, "/account/second-factor/totp", token_from="/account/second-factor")
    s.totp = pyotp.TOTP(_pending_secret(s.client))


def _prepare_enrolled(key):
    def prepare(w, s):
        _prepare_totp_for(w, s, key)
    return prepare


def _prepare_totp_for(w, s, key):
    import pyotp

    s.client = _client(w.app, w.officers[key])
    _post(s.client, "/account/second-factor/totp", token_from="/account/second-factor")
    s.totp = pyotp.TOTP(_pending_secret(s.client))
    page = _post(s.client, "/account/second-factor/totp/confirm", {"code": s.totp.now()},
                 token_from="/account/second-factor").get_data(as_text=True)
    s.codes = CODES_RE.findall(page)


def _prepare_second_step(w, s):
    _prepare_totp_for(w, s, "mover")
    assert s.codes, "no recovery codes shown"
    s.code = s.codes[0]
    s.client = w.app.test_client()
    response = s.client.post("/sign-in", data={"badge": w.officers["mover"].badge, "password": PASSWORD,
                                               "csrf_token": csrf_token(s.client)})
    assert response.status_code in (302, 303), response.status_code
    s.verify_url = response.headers["Location"]


def _prepare_reset_second_factor(w, s):
    _prepare_totp_for(w, s, "mover")
    s.client = _client(w.app, w.admin)


def _newcomer(w) -> Member:
    """A member imported with an e-mail address and no password yet."""
    member = Member(badge="777", first_name="Nia", last_name="Newhire", email="nia@example.org", status="active")
    w.db.add(member)
    w.db.commit()
    return member


def _prepare_invite(w, s):
    s.newcomer = _newcomer(w)
    s.client = _client(w.app, w.admin)


def _prepare_invitation(w, s):
    from lms.models import Job

    newcomer = _newcomer(w)
    admin = _client(w.app, w.admin)
    response = _post(admin, "/admin/invitations/send", {"member_id": [str(newcomer.id)], "scope": "selected"},
                     token_from="/admin/invitations/")
    assert response.status_code in (302, 303), response.status_code
    w.db.expire_all()
    job = w.db.scalars(select(Job).where(Job.kind == "email").order_by(Job.id.desc())).first()
    from lms.services.mail import message_of

    body = message_of(job.payload).get_body(preferencelist=("plain",)).get_content()
    s.link = "/invitation/" + re.search(r"/invitation/([A-Za-z0-9_-]+)", body).group(1)
    s.client = w.app.test_client()
    s.actor_id = newcomer.id


def _admin_url(w, s, action: str) -> str:
    return f"/admin/members/{w.officers['mover'].id}/{action}"


WEB_STEPS: dict[str, Step] = {
    "auth.sign_in": Step("auth.sign_in", "reader", prepare=lambda w, s: None, act=_sign_in,
                         details={"badge": "500"}),
    "auth.sign_out": Step("auth.sign_out", "reader", prepare=_prepare_as("reader"),
                          act=lambda w, s: _post(s.client, "/sign-out", token_from="/verify")),
    "account.change_password": Step(
        "account.password_change", "reader", prepare=_prepare_as("reader"),
        act=lambda w, s: _post(s.client, "/account/password", {
            "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})),
    "officer.mark_read": Step(
        "lesson.read", "reader", prepare=_prepare_officer("reader"),
        act=lambda w, s: _post(s.client, lesson_links(s.client.get(f"/training/{s.assignment}").get_data(
            as_text=True), s.assignment)[0] + "/read", token_from=f"/training/{s.assignment}")),
    "officer.start_quiz": Step(
        "quiz.start", "starter",
        prepare=lambda w, s: (_prepare_officer("starter")(w, s), read_all_lessons(s.client, s.assignment)),
        act=lambda w, s: _post(s.client, f"/training/{s.assignment}/quiz/start",
                               token_from=f"/training/{s.assignment}/quiz"),
        details={"attempt": 1}),
    "officer.submit_quiz": Step(
        "quiz.submit", "taker", prepare=_prepare_quiz,
        act=lambda w, s: _post(s.client, f"/training/{s.assignment}/quiz/{s.attempt.id}",
                               answers_for(w.db, s.attempt), token_from=f"/training/{s.assignment}/quiz"),
        details={"attempt": 1, "score": 100, "passed": True}),
    "officer.sign": Step("ack.sign", "signer", prepare=_prepare_sign,
                         act=lambda w, s: sign(s.client, s.assignment, w.officers["signer"].full_name)),
    "coordinator.new_cycle": Step(
        "cycle.create", "coordinator", prepare=_prepare_as("coordinator"),
        act=lambda w, s: _post(s.client, "/coordinator/cycles/new", {
            "year": w.year + 1, "due_date": f"{w.year + 1}-12-31", "policies": ["16.3"], "grace_days": 30,
            "confirm": "yes"}),
        details={"via": "web", "policies": ["16.3"], "name": f"{date.today().year + 1} annual"}),
    "coordinator.edit": Step(
        "cycle.edit", "coordinator", prepare=_prepare_as("coordinator"),
        act=lambda w, s: _post(s.client, f"/coordinator/cycles/{w.cycle_id}/edit", {
            "name": f"{w.year} annual (all)", "due_date": _due_of(w), "grace_days": 21, "confirm": "yes"}),
        details={"via": "web", "before": {"name": f"{date.today().year} annual", "grace_days": 30},
                 "after": {"name": f"{date.today().year} annual (all)", "grace_days": 21}}),
    "coordinator.close": Step(
        "cycle.close", "coordinator", prepare=_prepare_as("coordinator"),
        act=lambda w, s: _post(s.client, f"/coordinator/cycles/{w.cycle_id}/close")),
    "coordinator.delete": Step(
        "cycle.delete", "coordinator", prepare=_prepare_unstarted_cycle,
        act=lambda w, s: _post(s.client, f"/coordinator/cycles/{s.cycle_id}/delete"),
        details={"via": "web", "name": "Remedial (unstarted)"}),
    "coordinator.grant": Step(
        "exemption.grant", "coordinator", prepare=_prepare_as("coordinator"),
        act=lambda w, s: _post(s.client, f"/coordinator/cycles/{w.cycle_id}/members/{w.officers['exempt'].id}/exemption",
                               {"reason": "Military leave until June"},
                               token_from=f"/coordinator/cycles/{w.cycle_id}/members/{w.officers['exempt'].id}"),
        details={"reason": "Military leave until June"}),
    "coordinator.lift": Step(
        "exemption.lift", "coordinator", prepare=_prepare_lift,
        act=lambda w, s: _post(s.client, f"/coordinator/cycles/{w.cycle_id}/exemptions/{s.exemption.id}/lift",
                               token_from=f"/coordinator/cycles/{w.cycle_id}/exemptions")),
    "coordinator.roster_action": Step(
        "roster.action_preview", "coordinator", prepare=lambda w, s: setattr(s, "choice", _roster_choice(w, s)),
        act=lambda w, s: s.client.post(f"/coordinator/cycles/{w.cycle_id}/roster/actions", data=s.choice),
        details={"action": "exempt", "affected": 1}),
    "coordinator.roster_action_apply": Step(
        "roster.action", "coordinator", prepare=_prepare_roster_action,
        act=lambda w, s: s.client.post(f"/coordinator/cycles/{w.cycle_id}/roster/actions/apply",
                                       data={**s.choice, "reason": "Academy week"}),
        details={"action": "exempt", "affected": 1, "reason": "Academy week"}),
    "coordinator_tools.send_reminders": Step(
        "reminder.queue", "coordinator", prepare=_prepare_as("coordinator"),
        act=lambda w, s: _post(s.client, f"/coordinator/cycles/{w.cycle_id}/reminders", {"confirm": "y"})),
    "supervisor.send_reminders": Step(
        "reminder.queue", "supervisor", prepare=_prepare_as("supervisor"),
        act=lambda w, s: _post(s.client, f"/supervisor/cycles/{w.cycle_id}/reminders", {"confirm": "y"}),
        details={"queued": 1, "reports_to": "1006"}),
    "coordinator_tools.save_schedule": Step(
        "reminder.schedule", "coordinator", prepare=_prepare_as("coordinator"),
        act=lambda w, s: s.client.post(f"/coordinator/cycles/{w.cycle_id}/reminders/schedule", data={
            "schedule-csrf_token": csrf_token(s.client, f"/coordinator/cycles/{w.cycle_id}/reminders"),
            "schedule-days_before": "14, 7, 1"}),
        details={"days_before": [14, 7, 1]}),
    "coordinator.grant_quiz_attempts": Step(
        "quiz.grant_attempts", "coordinator", prepare=_prepare_grant,
        act=lambda w, s: s.client.post(s.grant_url, data={
            "csrf_token": csrf_token(s.client, s.member_url), s.prefix + "attempts": "2",
            s.prefix + "reason": "Reviewed the lessons with her", s.prefix + "password": PASSWORD}),
        details={"badge": "501"}),
    "hr.export": Step("hr.export", "hr", prepare=_prepare_as("hr"),
                      act=lambda w, s: _post(s.client, "/hr/export", {"policy": "", "version": "", "unit": ""}),
                      details={"via": "web"}),
    "hr.void": Step("ack.void", "hr", prepare=_prepare_void,
                    act=lambda w, s: _post(s.client, f"/hr/acknowledgments/{s.ack.id}/void",
                                           {"reason": "Signed under the wrong badge", "password": PASSWORD}),
                    details={"reason": "Signed under the wrong badge"}),
    "hr.check_receipt_file": Step(
        "receipt.verify", "hr", prepare=_prepare_check,
        act=lambda w, s: _post(s.client, "/hr/receipts/check", {"file": (io.BytesIO(s.pdf), "r.pdf")},
                               content_type="multipart/form-data"),
        details={"via": "web", "result": "stands"}),
    "admin.unlock": Step("admin.unlock", "admin", prepare=_prepare_as("admin"),
                         act=lambda w, s: _post(s.client, _admin_url(w, s, "unlock"),
                                                token_from=_admin_url(w, s, "")[:-1])),
    "admin.reset_password": Step(
        "admin.reset_password", "admin", prepare=_prepare_as("admin"),
        act=lambda w, s: _post(s.client, _admin_url(w, s, "reset-password"), {"reset-admin_password": PASSWORD},
                               token_from=_admin_url(w, s, "")[:-1])),
    "admin.grant_role": Step(
        "admin.grant_role", "admin", prepare=_prepare_as("admin"),
        act=lambda w, s: _post(s.client, _admin_url(w, s, "roles/grant"),
                               {"grant-role": "coordinator", "grant-admin_password": PASSWORD},
                               token_from=_admin_url(w, s, "")[:-1]),
        details={"role": "coordinator"}),
    "admin.revoke_role": Step(
        "admin.revoke_role", "admin", prepare=_prepare_as("admin"),
        act=lambda w, s: _post(s.client, _admin_url(w, s, "roles/revoke"),
                               {"revoke-role": "officer", "revoke-admin_password": PASSWORD},
                               token_from=_admin_url(w, s, "")[:-1]),
        details={"role": "officer"}),
    "admin.change_personnel": Step(
        "admin.personnel_change", "admin", prepare=_prepare_as("admin"),
        act=lambda w, s: s.client.post(_admin_url(w, s, "personnel"), data={
            "csrf_token": csrf_token(s.client, _admin_url(w, s, "")[:-1]), "personnel-status": "active",
            "personnel-unit": "Traffic", "personnel-shift": "Day", "personnel-rank": "Officer"}),
        details={"badge": "508"}),
    "admin_jobs.retry": Step(
        "job.retry", "admin", prepare=_prepare_failed_job,
        act=lambda w, s: _post(s.client, f"/admin/jobs/{s.job_id}/retry", token_from="/admin/jobs/")),
    "admin.reset_second_factor": Step(
        "admin.reset_second_factor", "admin", prepare=_prepare_reset_second_factor,
        act=lambda w, s: s.client.post(_admin_url(w, s, "second-factor/reset"), data={
            "mfa-csrf_token": csrf_token(s.client, _admin_url(w, s, "")[:-1]), "mfa-admin_password": PASSWORD})),
    "second_factor.confirm_totp": Step(
        "account.mfa_enrol", "reader", prepare=_prepare_totp,
        act=lambda w, s: _post(s.client, "/account/second-factor/totp/confirm", {"code": s.totp.now()},
                               token_from="/account/second-factor")),
    "second_factor.recovery_codes": Step(
        "account.recovery_codes", "mover", prepare=_prepare_enrolled("mover"),
        act=lambda w, s: _post(s.client, "/account/second-factor/recovery-codes",
                               token_from="/account/second-factor")),
    "second_factor.verify": Step(
        "auth.second_factor", "mover", prepare=_prepare_second_step,
        act=lambda w, s: s.client.post(s.verify_url, data={
            "code": s.code, "csrf_token": csrf_token(s.client, s.verify_url)}),
        details={"factor": "recovery_code"}),
    "admin_invitations.send": Step(
        "account.invite", "admin", prepare=_prepare_invite,
        act=lambda w, s: _post(s.client, "/admin/invitations/send",
                               {"member_id": [str(s.newcomer.id)], "scope": "selected"},
                               token_from="/admin/invitations/"),
        details={"badge": "777"}),
    "invitation.set_password": Step(
        "account.invitation_accept", "newcomer", prepare=_prepare_invitation,
        act=lambda w, s: _post(s.client, s.link, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})),
    "admin_personnel.upload": Step(
        "personnel.upload", "admin", prepare=_prepare_as("admin"),
        act=lambda w, s: _post(s.client, "/admin/personnel/import",
                               {"file": (io.BytesIO(PERSONNEL_CSV), "roster.csv")}, content_type="multipart/form-data"),
        details={"filename": "roster.csv", "rows": 1}),
    "admin_personnel.apply": Step("personnel.import", "admin", prepare=_prepare_apply,
                                  act=lambda w, s: _post(s.client, s.preview + "/apply", token_from=s.preview),
                                  details={"added": 1}),
}


#: POST routes that change no record of the department, so record nothing; each says why.
NOT_RECORDS = {
    # Keeps the signed-in session alive (the idle warning's "Stay signed in").
    "auth.stay": "touches the session's last-seen time only",
    # Autosave of a quiz answer as the member clicks: the submitted attempt is audited.
    "officer.save_answers": "saves answers in progress; quiz.submit records the attempt",
    # The identity provider's answer: verified, then handed to /sso/saml/finish, which signs in
    # (auth.sign_in / auth.sso) or refuses (auth.sso failure).
    "sso.saml_acs": "hands a verified assertion to the sign-in that audits it",
    # The first half of second-factor set-up and of the passkey ceremonies: a secret or a
    # challenge kept in the session; the second half records the enrolment or the sign-in.
    "second_factor.start_totp": "keeps a pending secret; confirm_totp records the enrolment",
    "second_factor.passkey_options": "issues a challenge; register_passkey records the enrolment",
    "second_factor.passkey_sign_in_options": "issues a challenge; passkey_sign_in records the sign-in",
}
#: Routes that need a real authenticator's signature: their audit events (account.mfa_enrol,
#: auth.second_factor, with the factor) are checked in tests/browser/test_second_factor_journey.py
#: with Chromium's virtual authenticator, and refused forgeries in tests/test_second_factor.py.
NEEDS_AUTHENTICATOR = {"second_factor.register_passkey", "second_factor.passkey_sign_in"}


def _state_changing_endpoints(app) -> set[str]:
    return ({rule.endpoint for rule in app.url_map.iter_rules() if "POST" in rule.methods}
            - set(NOT_RECORDS) - NEEDS_AUTHENTICATOR)


def test_every_state_changing_route_has_a_step(app):
    endpoints = _state_changing_endpoints(app)
    missing = sorted(endpoints - set(WEB_STEPS))
    assert not missing, "POST routes with no audit step in tests/test_audit_trail.py: " + ", ".join(missing)
    assert not set(WEB_STEPS) - endpoints, "steps for routes that no longer exist"


@pytest.mark.parametrize("endpoint", sorted(WEB_STEPS))
def test_every_state_changing_route_is_audited(world, endpoint):
    step = WEB_STEPS[endpoint]
    scene = SimpleNamespace()
    step.prepare(world, scene)
    mark = _last_event_id(world.db)
    response = step.act(world, scene)
    assert response.status_code in (200, 302, 303), (endpoint, response.status_code,
                                                     response.get_data(as_text=True)[:2000])
    events = [e for e in _events_since(world.db, mark) if e.action == step.action]
    assert events, f"{endpoint} wrote no {step.action} event; it wrote " + \
        ", ".join(e.action for e in _events_since(world.db, mark))
    actor_id = scene.actor_id if step.actor == "newcomer" else _member(world, step.actor).id
    for event in events:
        assert event.actor_id == actor_id and event.outcome == "success" and event.ip == "127.0.0.1", endpoint
        assert event.details or event.target, f"{endpoint}: {step.action} says nothing of what changed"
        for key, value in step.details.items():
            assert event.details.get(key) == value, (endpoint, key, event.details)


# --- the command line ----------------------------------------------------------------------------

def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    names = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            names |= _commands(command, prefix + (name,))
        else:
            names.add(" ".join(prefix + (name,)))
    return names


#: Commands that change nothing, so record nothing.
READ_ONLY = {"content check", "jobs list", "cycle list"}
#: Commands that run queued work: each job records its own events (reminder.send, job.retry, the
#: periodic tasks' cycle.version_switch or chain.anchor…), tested in tests/test_jobs.py.
RUNS_JOBS = {"worker", "jobs run", "jobs schedule"}


def _cli_steps(tmp: Path, year: int, receipt: Path) -> dict[str, tuple[list[str], str, dict]]:
    """Command -> (arguments, the action it must record, details it must carry). Run in this order
    after ``seed-demo``, whose data the others use; ``init`` has a test of its own below."""
    csv_file = tmp / "people.csv"
    csv_file.write_bytes(PERSONNEL_CSV)
    return {
        "cycle create": (["cycle", "create", "--year", str(year + 1), "--due", f"{year + 1}-12-31"],
                         "cycle.create", {"via": "cli", "year": year + 1, "name": f"{year + 1} annual"}),
        "cycle edit": (["cycle", "edit", "--cycle", f"{year + 1} annual", "--grace-days", "20"],
                       "cycle.edit", {"via": "cli", "before": {"grace_days": 30}, "after": {"grace_days": 20}}),
        "cycle delete": (["cycle", "delete", "--cycle", f"{year + 1} annual"], "cycle.delete",
                         {"via": "cli", "name": f"{year + 1} annual"}),
        "cycle close": (["cycle", "close", "--cycle", str(year)], "cycle.close", {"via": "cli"}),
        "verify": (["verify"], "chain.verify", {"via": "cli"}),
        "verify --receipt": (["verify", "--receipt", str(receipt)], "receipt.verify",
                             {"via": "cli", "result": "stands"}),
        "import-personnel": (["import-personnel", str(csv_file)], "personnel.import", {"added": 1}),
        "create-user": (["create-user", "--badge", "4242", "--first", "Ana", "--last", "Diaz",
                         "--role", "coordinator"], "admin.create_user", {"via": "cli", "role": "coordinator"}),
        "export-acks": (["export-acks", "--out", str(tmp / "acks.zip")], "hr.export", {"via": "cli"}),
        "roster": (["roster", "--cycle", str(year), "--format", "csv", "--out", str(tmp / "roster.csv")],
                   "roster.export", {"via": "cli", "format": "csv"}),
        "anchor": (["anchor"], "chain.anchor", {}),
        "backup": (["backup", "--out", str(tmp / "backup.db")], "database.backup", {"via": "cli"}),
        "jobs retry": (["jobs", "retry", "JOB"], "job.retry", {}),
        "restore": (["restore", str(tmp / "backup.db"), "--force"], "database.restore", {"via": "cli", "forced": True}),
    }


def test_every_command_is_audited(app, runner, db, tmp_path):
    result = runner.invoke(args=["lms", "seed-demo", "--people", "4", "--seed", "7"])
    assert result.exit_code == 0, result.output
    [seeded] = [e for e in _events_since(db, 0) if e.action == "demo.seed"]
    assert seeded.actor_id is None and seeded.details == {"people": 4, "seed": 7, "via": "cli"}

    year = local_date(utcnow(), app.config["TIMEZONE"]).year
    receipt = tmp_path / "receipt.pdf"
    receipt.write_bytes(db.scalars(select(Receipt.pdf).limit(1)).first())
    steps = _cli_steps(tmp_path, year, receipt)
    covered = {name.split(" --")[0] for name in steps} | READ_ONLY | RUNS_JOBS | {"seed-demo", "init", "grant-attempts"}
    missing = sorted(_commands(lms_group) - covered)
    assert not missing, "commands with no audit step in tests/test_audit_trail.py: " + ", ".join(missing)

    for name, (args, action, details) in steps.items():
        if args[:2] == ["jobs", "retry"]:
            args = ["jobs", "retry", str(_failed_job(db))]
        mark = _last_event_id(db)
        db.rollback()  # no transaction of the test's own stays open (a restore replaces the tables)
        result = runner.invoke(args=["lms", *args])
        assert result.exit_code == 0, (name, result.output)
        if name == "restore":  # the database is the backup now: its newest event is the restore
            mark = _last_event_id(db) - 1
        events = [e for e in _events_since(db, mark) if e.action == action]
        assert events, f"{name} wrote no {action} event"
        for event in events:
            # The operator at the server's command line, not a signed-in member.
            assert event.actor_id is None, name
            for key, value in details.items():
                assert event.details.get(key) == value, (name, key, event.details)

    mark = _last_event_id(db)
    assert runner.invoke(args=["lms", "content", "check"]).exit_code == 0
    assert _events_since(db, mark) == []


def _failed_job(db) -> int:
    from lms.models import Job

    job = Job(kind="email", key="audit-trail-cli-failed", payload={}, status="failed", attempts=5, max_attempts=5,
              run_after=utcnow(), created_at=utcnow(), last_error="SMTPRecipientsRefused: 550 No such user")
    db.add(job)
    db.commit()
    return job.id


def test_a_grant_of_attempts_from_the_command_line_names_the_coordinator(app, runner, db, make_member, open_cycle):
    """grant-attempts acts for the coordinator --by names (their password on standard input)."""
    officer = make_member(first="Alex", last="Rivera", badge="501")
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    cycle = open_cycle()
    mark = _last_event_id(db)
    result = runner.invoke(args=["lms", "grant-attempts", "--cycle", cycle.name, "--badge", officer.badge,
                                 "--attempts", "1", "--reason", "Asked in person", "--by", coordinator.badge],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    [event] = [e for e in _events_since(db, mark) if e.action == "quiz.grant_attempts"]
    assert event.actor_id == coordinator.id and event.details["badge"] == "501" and event.details["attempts"] == 1


def test_init_moving_cycles_onto_a_new_version_is_audited_as_the_system(app, db, make_member, tmp_path):
    """A later version arrives in content/ and the daily ``init`` moves the open cycle onto it."""
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    later = tmp_path / "later"
    shutil.move(content / "99.1-portable-radios" / "versions" / "2024-01-01", later)
    radios = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["DATABASE_URL"],
                         "INSTANCE_PATH": app.instance_path, "CONTENT_DIR": str(content)})
    try:
        runner = radios.test_cli_runner()
        assert runner.invoke(args=["lms", "init"]).exit_code == 0
        make_member(first="Alex", last="Rivera", badge="501")
        year = date.today().year + 2
        result = runner.invoke(args=["lms", "cycle", "create", "--year", str(year), "--due", f"{year}-01-31",
                                     "--policy", "99.1"])
        assert result.exit_code == 0, result.output
        mark = _last_event_id(db)
        shutil.move(later, content / "99.1-portable-radios" / "versions" / "2024-01-01")
        assert runner.invoke(args=["lms", "init"]).exit_code == 0
        events = {e.action: e for e in _events_since(db, mark)}
        added, moved = events["content.version_added"], events["cycle.reassign"]
        assert added.actor_id is None and added.details["by"] == "system"
        assert (added.details["policy"], added.details["version"]) == ("99.1", "2024-01-01")
        cycle_id = db.scalar(select(Cycle.id).where(Cycle.year == year))
        assert moved.actor_id is None and moved.target == f"cycle:{cycle_id}"
        assert moved.details == {"by": "system", "policy": "99.1", "from_version": "2020-01-01",
                                 "to_version": "2024-01-01", "assignments": 1,
                                 "due_date": moved.details["due_date"]}
        assert date.fromisoformat(moved.details["due_date"]) >= date.today() + timedelta(days=30)
        # A second init moves nothing and records nothing.
        mark = _last_event_id(db)
        assert runner.invoke(args=["lms", "init"]).exit_code == 0
        assert _events_since(db, mark) == []
    finally:
        get_database(radios).dispose()
