"""A second factor for local accounts: enrolment of an authenticator app (TOTP) with recovery
codes, the second step of sign-in, no code accepted twice, and the roles that must enrol."""
from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import select

from lms import create_app
from lms.db import utcnow
from lms.models import AuditEvent, Member, RecoveryCode, TotpFactor
from tests.conftest import PASSWORD, TEST_CONFIG, csrf_token, wrong_code_for

SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
CODES_RE = re.compile(r"<li><code>([a-z2-9-]{19})</code></li>")


@pytest.fixture
def required(app):
    app.config.update(MFA_REQUIRED_ROLES="admin,hr")


def _sign_in(client, badge: str, password: str = PASSWORD):
    return client.post("/sign-in", data={"badge": badge, "password": password, "csrf_token": csrf_token(client)})


def _code(client, path: str, code: str):
    return client.post(path, data={"code": code, "csrf_token": csrf_token(client)})


def _enrol(client) -> tuple[pyotp.TOTP, list[str]]:
    """Set up an authenticator app from the account page; the app and the recovery codes shown."""
    client.post("/account/second-factor/totp", data={"csrf_token": csrf_token(client)})
    page = client.get("/account/second-factor").get_data(as_text=True)
    assert 'alt="QR code to add Roll Call to an authenticator app"' in page
    totp = pyotp.TOTP(SECRET_RE.search(page).group(1))
    response = _code(client, "/account/second-factor/totp/confirm", totp.now())
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    codes = CODES_RE.findall(response.get_data(as_text=True))
    assert len(codes) == 10
    return totp, codes


def _events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_an_administrator_must_enrol_before_reaching_anything(app, client, db, make_member, required):
    admin = make_member(first="Ada", last="Minter", roles=("admin",), badge="9001")
    assert _sign_in(client, admin.badge).status_code == 302
    for path in ("/admin/", "/admin/members", "/training/", "/account/second-factor/totp/confirm"):
        response = client.get(path)
        assert response.status_code in (302, 405)
        if response.status_code == 302:
            assert response.headers["Location"].endswith("/account/second-factor"), path
    page = client.get("/account/second-factor").get_data(as_text=True)
    assert "Your role requires a second factor" in page
    # A wrong first code does not enrol.
    client.post("/account/second-factor/totp", data={"csrf_token": csrf_token(client)})
    pending = pyotp.TOTP(SECRET_RE.search(client.get("/account/second-factor").get_data(as_text=True)).group(1))
    wrong = _code(client, "/account/second-factor/totp/confirm", wrong_code_for(pending))
    assert wrong.status_code == 400 and "That code is not right" in wrong.get_data(as_text=True)
    totp, codes = _enrol(client)
    assert client.get("/admin/").status_code == 200
    stored = db.scalars(select(RecoveryCode).where(RecoveryCode.member_id == admin.id)).all()
    assert len(stored) == 10 and not any(code in {s.code_hash for s in stored} for code in codes)
    enrolments = _events(db, "account.mfa_enrol")
    assert [e.outcome for e in enrolments] == ["failure", "success"]


def test_an_officer_is_not_required_but_may_enrol(app, client, db, make_member, required):
    officer = make_member()
    assert _sign_in(client, officer.badge).status_code == 302
    assert client.get("/training/").status_code == 200
    assert "Your role requires" not in client.get("/account/second-factor").get_data(as_text=True)
    _enrol(client)
    other = app.test_client()
    response = _sign_in(other, officer.badge)
    assert response.headers["Location"].endswith("/sign-in/second-factor")


def test_sign_in_asks_for_the_code_and_never_accepts_one_twice(app, client, db, make_member, required):
    hr = make_member(first="Hana", last="Records", roles=("hr",), badge="7001")
    _sign_in(client, hr.badge)
    totp, codes = _enrol(client)

    browser = app.test_client()
    response = _sign_in(browser, hr.badge, "not the password at all")
    assert response.status_code == 400  # the password step comes first
    response = _sign_in(browser, hr.badge)
    assert response.status_code == 302 and response.headers["Location"].endswith("/sign-in/second-factor")
    assert browser.get("/hr/").status_code == 302  # no session before the second step
    assert _code(browser, "/sign-in/second-factor", wrong_code_for(totp)).status_code == 400
    # The code of the next 30-second step (accepted: clocks drift); the enrolment used this one's.
    code = totp.at(time.time() + 30)
    response = _code(browser, "/sign-in/second-factor", code)
    assert response.status_code == 303 and response.headers["Location"].endswith("/hr/")
    assert browser.get("/hr/").status_code == 200

    # The same code again, from another browser with the right password: refused.
    replay = app.test_client()
    _sign_in(replay, hr.badge)
    refused = _code(replay, "/sign-in/second-factor", code)
    assert refused.status_code == 400 and "used already" in refused.get_data(as_text=True)
    assert replay.get("/hr/").status_code == 302

    # A recovery code works once.
    response = _code(replay, "/sign-in/second-factor", codes[0].upper().replace("-", " "))
    assert response.status_code == 303
    assert "9 left" in replay.get(response.headers["Location"], follow_redirects=True).get_data(as_text=True)
    again = app.test_client()
    _sign_in(again, hr.badge)
    assert _code(again, "/sign-in/second-factor", codes[0]).status_code == 400
    outcomes = [(e.outcome, e.details.get("factor")) for e in _events(db, "auth.second_factor")]
    assert outcomes == [("failure", None), ("success", "totp"), ("failure", None), ("success", "recovery_code"),
                        ("failure", None)]


def test_wrong_codes_lock_the_account_and_the_password_does_not_reset_the_count(app, client, db, make_member):
    member = make_member()
    _sign_in(client, member.badge)
    totp, _ = _enrol(client)
    attacker = app.test_client()
    for round_ in range(2):  # the right password between rounds must not reset the count
        assert _sign_in(attacker, member.badge).status_code == 302
        for _ in range(3 if round_ == 0 else 2):
            response = _code(attacker, "/sign-in/second-factor", wrong_code_for(totp))
    assert response.status_code == 303 and response.headers["Location"].endswith("/sign-in")
    db.expire_all()
    assert db.get(Member, member.id).is_locked(utcnow())
    assert _events(db, "auth.lockout")
    page = _sign_in(attacker, member.badge).get_data(as_text=True)
    assert "Your account is locked" in page


def test_a_second_factor_secret_stays_in_its_table(app, client, db, make_member):
    member = make_member()
    _sign_in(client, member.badge)
    _enrol(client)
    factor = db.get(TotpFactor, member.id)
    assert factor.confirmed_at is not None and factor.last_step is not None
    assert not any(factor.secret in str(e.details) for e in _events(db, "account.mfa_enrol"))


def test_an_unknown_role_in_the_setting_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="MFA_REQUIRED_ROLES: unknown role"):
        create_app({**TEST_CONFIG, "MFA_REQUIRED_ROLES": "admin,sheriff", "INSTANCE_PATH": str(tmp_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})


def test_the_default_requires_admin_and_hr(tmp_path):
    from lms.config import Defaults
    from lms.services.second_factor import required_roles

    assert required_roles(Defaults.MFA_REQUIRED_ROLES) == {"admin", "hr"}
    assert required_roles("") == frozenset()


def _json_post(client, path: str, body: dict):
    return client.post(path, json=body, headers={"X-CSRFToken": csrf_token(client)})


def test_passkey_options_name_the_relying_party_from_public_url(app, client, make_member):
    app.config.update(PUBLIC_URL="https://rollcall.elgin.example")
    member = make_member()
    _sign_in(client, member.badge)
    options = _json_post(client, "/account/second-factor/passkey/options", {}).get_json()
    assert options["rp"] == {"id": "rollcall.elgin.example", "name": "Roll Call (Elgin Police Department)"}
    assert options["user"]["name"] == member.badge and options["challenge"]


def test_a_forged_passkey_answer_is_refused_audited_and_counted(app, client, db, make_member):
    member = make_member()
    _sign_in(client, member.badge)
    _enrol(client)
    # Registration without a challenge first, or with garbage: refused.
    assert _json_post(client, "/account/second-factor/passkey", {"credential": {"id": "x"}}).status_code == 400
    _json_post(client, "/account/second-factor/passkey/options", {})
    refused = _json_post(client, "/account/second-factor/passkey", {"credential": {"id": "x", "response": {}}})
    assert refused.status_code == 400 and "could not be registered" in refused.get_json()["error"]

    browser = app.test_client()
    _sign_in(browser, member.badge)
    assert _json_post(browser, "/sign-in/second-factor/passkey/options", {}).status_code == 200
    forged = _json_post(browser, "/sign-in/second-factor/passkey",
                        {"credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}})
    assert forged.status_code == 400 and "not accepted" in forged.get_json()["error"]
    assert browser.get("/training/").status_code == 302  # no session
    db.expire_all()
    assert db.get(Member, member.id).failed_sign_ins == 1
    failure = _events(db, "auth.second_factor")[-1]
    assert failure.outcome == "failure" and failure.details["factor"] == "passkey"


def test_the_migration_matches_the_identity_models(app):
    """Migration 0017 builds exactly what the models declare for invitations and second factors."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lms.db import Base, get_database

    with get_database(app).engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    tables = ("'invitation'", "'totp_factor'", "'recovery_code'", "'passkey_credential'")
    assert [d for d in diffs if any(name in repr(d) for name in tables)] == []


def test_an_administrator_resets_a_lost_second_factor(app, client, db, make_member):
    member = make_member(badge="640")
    _sign_in(client, member.badge)
    _enrol(client)
    admin = make_member(first="Ada", last="Minter", roles=("admin",), badge="9001")
    boss = app.test_client()
    _sign_in(boss, admin.badge)
    page = boss.get(f"/admin/members/{member.id}").get_data(as_text=True)
    assert "Reset second factor" in page
    token = csrf_token(boss, f"/admin/members/{member.id}")
    wrong = boss.post(f"/admin/members/{member.id}/second-factor/reset",
                      data={"mfa-csrf_token": token, "mfa-admin_password": "not my password at all"})
    assert wrong.status_code == 400 and db.get(TotpFactor, member.id) is not None
    done = boss.post(f"/admin/members/{member.id}/second-factor/reset",
                     data={"mfa-csrf_token": token, "mfa-admin_password": PASSWORD})
    assert done.status_code == 303
    db.expire_all()
    assert db.get(TotpFactor, member.id) is None
    assert not db.scalars(select(RecoveryCode).where(RecoveryCode.member_id == member.id)).all()
    assert client.get("/training/").status_code == 302  # their session ended
    assert _sign_in(app.test_client(), member.badge).headers["Location"].endswith("/training/")
    event = _events(db, "admin.reset_second_factor")[-1]
    assert event.outcome == "success" and event.actor_id == admin.id and event.details["removed"]["totp"] == 1
