"""Every route in the URL map × every role (and anonymous), against a table of what each may do.

A route with no row in EXPECTED fails the suite, naming its endpoint: whoever adds a route decides
who may reach it. URL parameters are filled with real objects belonging to another member, so the
officer's pages also show that one member cannot reach another's records (404).
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from lms.db import utcnow
from lms.models import Acknowledgment, Cycle, Lesson, Member, PersonnelUpload
from lms.services.cycles import grant_exemption
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign

ROLES = ("anonymous", "officer", "supervisor", "coordinator", "hr", "admin")

# What a request may come to:
OK = "ok"          # the view ran: 2xx, a redirect other than to sign-in, or its own 400/409/410
LOGIN = "login"    # redirected to sign in
DENIED = "403"
HIDDEN = "404"     # allowed in, but the object is someone else's


def only(*allowed: str, others: str = DENIED, allowed_outcome: str = OK) -> dict[str, str]:
    """Allowed roles get ``allowed_outcome``, other members ``others``, anonymous visitors LOGIN."""
    return {role: LOGIN if role == "anonymous" else allowed_outcome if role in allowed else others
            for role in ROLES}


EVERYONE = {role: OK for role in ROLES}
SIGNED_IN = only("officer", "supervisor", "coordinator", "hr", "admin")
OFFICER = only("officer")
OFFICERS_OTHER_MEMBER = only("officer", allowed_outcome=HIDDEN)
COORDINATOR = only("coordinator", "admin")
HR = only("hr")
ADMIN = only("admin")
SUPERVISOR = only("supervisor")
#: The member in the URL does not report to the test's supervisor: not found, like any other.
SUPERVISORS_OTHER_MEMBER = only("supervisor", allowed_outcome=HIDDEN)

EXPECTED: dict[str, dict[str, str]] = {
    "static": EVERYONE,
    "public.verify": EVERYONE,
    "auth.sign_in": EVERYONE,
    "auth.index": {**SIGNED_IN, "anonymous": LOGIN},
    # Signing out sends everyone, signed in or not, to the sign-in page.
    "auth.sign_out": {role: LOGIN for role in ROLES},
    "auth.stay": SIGNED_IN,
    "account.change_password": SIGNED_IN,
    # Single sign-on is not configured here, so its pages are not there for anyone
    # (tests/test_sso.py and tests/browser/test_sso_journey.py cover them configured).
    **{f"sso.{name}": {role: HIDDEN for role in ROLES}
       for name in ("oidc_start", "oidc_callback", "saml_start", "saml_acs", "saml_finish", "saml_metadata")},
    # An invitation link is the visitor's proof; a made-up token gets its own 410 page.
    "invitation.set_password": EVERYONE,
    # The second step of sign-in exists only after a right password; without one, back to sign-in.
    "second_factor.verify": {role: LOGIN for role in ROLES},
    "second_factor.enrol": SIGNED_IN,
    "second_factor.start_totp": SIGNED_IN,
    "second_factor.confirm_totp": SIGNED_IN,
    "second_factor.passkey_options": SIGNED_IN,
    "second_factor.register_passkey": SIGNED_IN,
    "second_factor.recovery_codes": SIGNED_IN,
    # JSON steps of a pending sign-in: without one, a 400 saying to sign in again.
    "second_factor.passkey_sign_in_options": EVERYONE,
    "second_factor.passkey_sign_in": EVERYONE,

    "officer.dashboard": OFFICER,
    "officer.history": OFFICER,
    "officer.library": OFFICER,
    # The version is the other member's assignment: not on this officer's shelf, so hidden.
    "officer.library_policy": OFFICERS_OTHER_MEMBER,
    "officer.assignment": OFFICERS_OTHER_MEMBER,
    "officer.lesson": OFFICERS_OTHER_MEMBER,
    "officer.mark_read": OFFICERS_OTHER_MEMBER,
    "officer.quiz": OFFICERS_OTHER_MEMBER,
    "officer.start_quiz": OFFICERS_OTHER_MEMBER,
    "officer.submit_quiz": OFFICERS_OTHER_MEMBER,
    "officer.save_answers": OFFICERS_OTHER_MEMBER,
    "officer.quiz_result": OFFICERS_OTHER_MEMBER,
    "officer.sign": OFFICERS_OTHER_MEMBER,
    "officer.signed": OFFICERS_OTHER_MEMBER,
    "officer.receipt": OFFICERS_OTHER_MEMBER,

    "coordinator.home": COORDINATOR,
    "coordinator.new_cycle": COORDINATOR,
    # Editing, closing and deleting a cycle (each a confirmation page, then a post).
    "coordinator.edit": COORDINATOR,
    "coordinator.close": COORDINATOR,
    "coordinator.delete": COORDINATOR,
    "coordinator.roster": COORDINATOR,
    "coordinator.roster_export": COORDINATOR,
    "coordinator.member_progress": COORDINATOR,
    "coordinator.grant": COORDINATOR,
    "coordinator.grant_quiz_attempts": COORDINATOR,
    "coordinator.lift": COORDINATOR,
    "coordinator.exemptions": COORDINATOR,
    "coordinator.roster_action": COORDINATOR,
    "coordinator.roster_action_apply": COORDINATOR,
    "coordinator_tools.items": COORDINATOR,
    "coordinator_tools.items_csv": COORDINATOR,
    "coordinator_tools.reminders": COORDINATOR,
    "coordinator_tools.save_schedule": COORDINATOR,
    # Exports are seen only by whoever asked for them.
    "coordinator.export_job": only("coordinator", "admin", allowed_outcome=HIDDEN),
    "coordinator.export_job_download": only("coordinator", "admin", allowed_outcome=HIDDEN),
    "hr.export_job": only("hr", allowed_outcome=HIDDEN),
    "hr.export_job_download": only("hr", allowed_outcome=HIDDEN),
    "admin_jobs.jobs": ADMIN,
    "admin_jobs.retry": ADMIN,
    "coordinator_tools.send_reminders": COORDINATOR,

    # A supervisor's pages: their own reports only (the world's supervisor has none; the members
    # of the URLs report to nobody), so another member is a 404.
    "supervisor.home": SUPERVISOR,
    "supervisor.roster": SUPERVISOR,
    "supervisor.roster_export": SUPERVISOR,
    "supervisor.member_progress": SUPERVISORS_OTHER_MEMBER,
    "supervisor.reminders": SUPERVISOR,
    "supervisor.send_reminders": SUPERVISOR,
    "supervisor.export_job": only("supervisor", allowed_outcome=HIDDEN),
    "supervisor.export_job_download": only("supervisor", allowed_outcome=HIDDEN),

    "hr.home": HR,
    "hr.search": HR,
    "hr.member": HR,
    "hr.receipt": HR,
    "hr.export": HR,
    "hr.as_of": HR,
    "hr.evidence_pdf": HR,
    "hr.void": HR,
    "hr.check_receipt_file": HR,

    "admin.home": ADMIN,
    "admin.members": ADMIN,
    "admin.member_account": ADMIN,
    "admin.unlock": ADMIN,
    "admin.reset_password": ADMIN,
    "admin.reset_second_factor": ADMIN,
    "admin.grant_role": ADMIN,
    "admin.revoke_role": ADMIN,
    "admin.change_personnel": ADMIN,
    "admin_audit.log": ADMIN,
    "admin_audit.export": ADMIN,
    "admin_personnel.upload": ADMIN,
    "admin_personnel.preview": ADMIN,
    "admin_personnel.apply": ADMIN,
    "admin_invitations.overview": ADMIN,
    "admin_invitations.send": ADMIN,
}


def test_every_route_has_a_row_in_the_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    missing = sorted(endpoints - set(EXPECTED))
    assert not missing, ("routes with no authorization rule in tests/test_authorization_matrix.py EXPECTED: "
                         + ", ".join(missing))
    stale = sorted(set(EXPECTED) - endpoints)
    assert not stale, "EXPECTED names routes that no longer exist: " + ", ".join(stale)
    assert all(set(row) == set(ROLES) for row in EXPECTED.values())


@pytest.fixture
def world(app, client, auth, db, make_member, open_cycle):
    """Another member's assignment, lessons, quiz attempt and signed acknowledgment; an exemption;
    a stored personnel upload; and one member per role."""
    other = make_member(first="Alex", last="Rivera", badge="501")
    exempt = make_member(first="Jo", last="Kim", badge="502", unit="Traffic")
    cycle = open_cycle()
    auth.sign_in(other.badge)
    assignment = assignment_of(db, other)
    read_all_lessons(client, assignment.id)
    attempt = pass_quiz(client, db, assignment.id)
    assert sign(client, assignment.id, other.full_name).status_code == 303
    auth.sign_out()
    db.expire_all()
    ack = db.scalars(select(Acknowledgment).where(Acknowledgment.member_id == other.id)).one()
    lesson = db.scalars(select(Lesson).where(Lesson.version_id == assignment.policy_version_id)).first()
    exemption = grant_exemption(db, cycle=db.get(Cycle, cycle.id), member=db.get(Member, exempt.id),
                                reason="military leave", granted_by_id=None, now=utcnow())
    members = {role: make_member(first=role.capitalize(), last="Holder", badge=f"7{i}", roles=(role,))
               for i, role in enumerate(ROLES[1:])}
    upload = PersonnelUpload(filename="roster.csv", data=b"badge,first_name,last_name\n", sha256="0" * 64,
                             uploaded_by_id=members["admin"].id, uploaded_at=datetime.now(timezone.utc))
    db.add(upload)
    # Someone else's export (an officer cannot ask for one; any id belonging to another will do).
    from lms.services.jobs import enqueue
    job_id = enqueue(db, "export", {"type": "receipts", "download_name": "x.zip", "extension": "zip"},
                     key="export:someone-else", now=utcnow(), created_by_id=other.id)
    db.commit()
    values = {
        "cycle_id": cycle.id, "member_id": other.id, "assignment_id": assignment.id, "lesson_id": lesson.id,
        "attempt_id": attempt.id, "ack_id": ack.id, "version_id": assignment.policy_version_id,
        "exemption_id": exemption.id, "upload_id": upload.id,
        "kind": "csv", "filename": "css/app.css", "job_id": job_id, "token": "not-a-real-token",
    }
    return {"values": values, "members": members}


def _signed_in_client(app, member):
    client = app.test_client()
    if member is not None:
        response = client.post("/sign-in", data={"badge": member.badge, "password": PASSWORD,
                                                  "csrf_token": csrf_token(client)})
        assert response.status_code == 302, member.badge
    return client


def _outcome(response) -> str:
    location = response.headers.get("Location", "")
    if response.status_code in (301, 302, 303) and location.startswith("/sign-in"):
        return LOGIN
    if response.status_code in (403, 404):
        return str(response.status_code)
    if response.status_code < 300 or response.status_code in (301, 302, 303, 400, 409, 410):
        return OK
    return f"unexpected {response.status_code}"


def test_authorization_matrix(app, db, world):
    missing = sorted({r.endpoint for r in app.url_map.iter_rules()} - set(EXPECTED))
    assert not missing, f"add these endpoints to EXPECTED: {', '.join(missing)}"
    values = world["values"]
    clients = {role: _signed_in_client(app, world["members"].get(role)) for role in ROLES}
    wrong = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        unknown = set(rule.arguments) - set(values)
        assert not unknown, f"{rule.endpoint}: give the test a value for {sorted(unknown)}"
        url = rule.build({arg: values[arg] for arg in rule.arguments})[1]
        for method in sorted(rule.methods & {"GET", "POST"}):
            for role in ROLES:
                client = clients[role]
                if method == "GET":
                    response = client.get(url)
                else:
                    response = client.post(url, data={"csrf_token": csrf_token(client, "/sign-in")})
                response.close()
                got, expected = _outcome(response), EXPECTED[rule.endpoint][role]
                if got != expected:
                    wrong.append(f"{method} {url} ({rule.endpoint}) as {role}: expected {expected}, "
                                 f"got {got} [{response.status_code} {response.headers.get('Location', '')}]")
                if rule.endpoint == "auth.sign_out":
                    clients[role] = _signed_in_client(app, world["members"].get(role))
    assert not wrong, "\n".join(wrong)
