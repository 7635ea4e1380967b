"""A wrong password re-entered on any form that asks for it counts toward lockout, as a failed
sign-in does: signing, changing one's password, an administrator's reset, role grant and revoke,
and HR's void. One rule (accounts.count_reauthentication_failure) serves them all."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.models import Acknowledgment, AuditEvent, Member
from tests.conftest import PASSWORD, csrf_token
from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign

THRESHOLD = 3
WRONG = "not my password at all"


def _sign(client, w):
    return sign(client, w["assignment"], w["member"].full_name, password=WRONG)


def _change_password(client, w):
    url = "/account/password"
    return client.post(url, data={"csrf_token": csrf_token(client, url), "current_password": WRONG,
                                  "new_password": "violet tractor harbour lamp",
                                  "confirm_password": "violet tractor harbour lamp"})


def _admin_form(action: str, data: dict):
    def post(client, w):
        page = f"/admin/members/{w['target'].id}"
        return client.post(f"{page}/{action}", data={"csrf_token": csrf_token(client, page), **data})
    return post


def _void(client, w):
    url = f"/hr/acknowledgments/{w['ack'].id}/void"
    return client.post(url, data={"csrf_token": csrf_token(client, url), "reason": "Signed under the wrong badge",
                                  "password": WRONG})


#: form -> (who fills it in, how it is posted with a wrong password, the action it confirms)
FORMS = {
    "sign": ("officer", _sign, "ack.sign"),
    "change password": ("officer", _change_password, "account.password_change"),
    "reset password": ("admin", _admin_form("reset-password", {"reset-admin_password": WRONG}),
                       "admin.reset_password"),
    "grant role": ("admin", _admin_form("roles/grant", {"grant-role": "hr", "grant-admin_password": WRONG}),
                   "admin.grant_role"),
    "revoke role": ("admin", _admin_form("roles/revoke", {"revoke-role": "officer", "revoke-admin_password": WRONG}),
                    "admin.revoke_role"),
    "void": ("hr", _void, "ack.void"),
}


@pytest.fixture
def scene(app, client, auth, db, make_member, open_cycle):
    """An officer ready to sign, a second officer who signed, HR, an administrator; a low threshold."""
    app.config["LOCKOUT_THRESHOLD"] = THRESHOLD
    officer = make_member(first="Alex", last="Rivera", badge="501")
    signer = make_member(first="Jo", last="Kim", badge="502")
    hr = make_member(first="Pat", last="Lee", badge="900", roles=("hr",))
    admin = make_member(first="Carmen", last="Reyes", badge="1005", roles=("admin",))
    open_cycle()
    auth.sign_in(signer.badge)
    signed = assignment_of(db, signer).id
    read_all_lessons(client, signed)
    pass_quiz(client, db, signed)
    assert sign(client, signed, "Jo Kim").status_code == 303
    auth.sign_out()
    auth.sign_in(officer.badge)
    assignment = assignment_of(db, officer).id
    read_all_lessons(client, assignment)
    pass_quiz(client, db, assignment)
    auth.sign_out()
    db.expire_all()
    ack = db.scalars(select(Acknowledgment)).one()
    return {"member": officer, "assignment": assignment, "ack": ack, "target": signer,
            "people": {"officer": officer, "hr": hr, "admin": admin}}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_wrong_passwords_on_the_form_lock_the_account(client, auth, db, scene, form):
    role, post, action = FORMS[form]
    member = scene["people"][role]
    assert auth.sign_in(member.badge).status_code == 302
    for attempt in range(1, THRESHOLD):
        response = post(client, scene)
        assert response.status_code == 400, (form, attempt)
        assert "That is not your current password." in response.get_data(as_text=True)
        db.expire_all()
        assert db.get(Member, member.id).failed_sign_ins == attempt
    # The last allowed guess: locked, every session ended, sent to sign in and told why.
    response = post(client, scene)
    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"
    db.expire_all()
    locked = db.get(Member, member.id)
    assert locked.locked_until is not None and locked.failed_sign_ins == THRESHOLD
    assert client.get("/training/").status_code == 302
    assert "Too many wrong passwords" in client.get("/sign-in").get_data(as_text=True)
    # Even the right password no longer signs in while the lock holds.
    assert auth.sign_in(member.badge, PASSWORD).status_code == 400

    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.reauthenticate")
                        .order_by(AuditEvent.id)).all()
    assert [e.details["for"] for e in events] == [action] * THRESHOLD
    assert all(e.actor_id == member.id and e.outcome == "failure" for e in events)
    assert WRONG not in str([e.details for e in events])
    [lockout] = db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.lockout")).all()
    assert lockout.target == f"member:{member.id}"


def test_a_wrong_password_then_the_right_one_goes_through_and_still_counts(client, auth, db, scene):
    """A wrong password, then the right one: the action goes through, and the wrong guess still
    counts until the next successful sign-in clears it (as at signing)."""
    admin = scene["people"]["admin"]
    auth.sign_in(admin.badge)
    _admin_form("roles/grant", {"grant-role": "hr", "grant-admin_password": WRONG})(client, scene)
    page = f"/admin/members/{scene['target'].id}"
    done = client.post(f"{page}/roles/grant", data={"csrf_token": csrf_token(client, page), "grant-role": "hr",
                                                   "grant-admin_password": PASSWORD})
    assert done.status_code == 303
    db.expire_all()
    assert "hr" in db.get(Member, scene["target"].id).role_names
    assert db.get(Member, admin.id).failed_sign_ins == 1 and db.get(Member, admin.id).locked_until is None
