"""Accounts: the password policy, lockout and per-IP throttling, server-side sessions (timeouts,
sign-out, fixation), password reset and change, role administration, headers and cookies, and that
no password or token reaches the audit log or the application's logs."""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, update

from lms.db import Base, get_database, utcnow
from lms.models import AuditEvent, Member, MemberRole, SignInSession
from lms.services import accounts
from lms.services.accounts import AccountError, SignInRules, authenticate, password_problem
from lms.services.sessions import token_hash
from tests.conftest import CSRF_RE, PASSWORD, csrf_token

REFUSED = "Badge number or password is not right."
ENDED = "Your session has ended; sign in again."


def events(db, action: str | None = None) -> list[AuditEvent]:
    db.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.scalars(query))


def sessions_of(db, member) -> list[SignInSession]:
    db.expire_all()
    return list(db.scalars(select(SignInSession).where(SignInSession.member_id == member.id)
                           .order_by(SignInSession.id)))


def fresh(db, member) -> Member:
    db.expire_all()
    return db.get(Member, member.id)


@pytest.fixture
def admin(make_member):
    return make_member(first="Ada", last="Minter", roles=("admin",), badge="9001", unit="Administration")


def admin_client(app, admin):
    client = app.test_client()
    token = csrf_token(client)
    assert client.post("/sign-in", data={"badge": admin.badge, "password": PASSWORD,
                                         "csrf_token": token}).status_code == 302
    return client


# --- the password policy --------------------------------------------------------------------------

@pytest.mark.parametrize("password", [
    "x" * 11 + "",                      # 11 characters (and one repeated character)
    "short pass!",                      # 11
    "Password1234", "PASSWORD1234", "qwertyuiop12", "123456789012", "Policeofficer2024!",
    "p@ssw0rd2024", "ThinBlueLine!!", "summer2024summer", "111111111111", "1q2w3e4r5t6y",
    "x" * 129,
])
def test_policy_refuses_short_long_and_common_passwords(password):
    assert password_problem(password) is not None


@pytest.mark.parametrize("password", [
    "lanterns drift over quiet harbors",      # lower case only: no composition rules
    "a" * 10 + "bc",                           # 12, nothing clever required
    "correct horse battery staple",
    "z" * 30 + "-" + "y" * 33,                 # 64
    "w9" * 64,                                 # 128
    "мой пароль надёжный",                      # Cyrillic
    "パスワードは長くて覚えやすい",                # Japanese, 14 characters
    "tabs\tand   spaces count too",
])
def test_policy_accepts_any_long_enough_uncommon_password(password):
    assert password_problem(password) is None, password


def test_policy_refuses_the_members_own_badge_or_name():
    assert password_problem("my badge is 4242 ok", badge="4242") is not None
    assert password_problem("jo MARCH forever and ever", first_name="Jo", last_name="March") is not None
    assert password_problem("jo is short and fine", first_name="Jo", last_name="March") is None


def test_common_list_ships_with_the_project_and_is_case_insensitive():
    listed = accounts.common_passwords()
    assert len(listed) >= 1000
    assert all(entry == entry.lower() for entry in listed)
    assert accounts.is_common_password("QwErTyUiOp1234")


def test_unicode_passwords_match_whatever_the_normal_form(app, db, client, auth, make_member):
    composed = unicodedata.normalize("NFC", "Ünïcödé pässwörd ñ")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    member = make_member(password=composed)
    assert auth.sign_in(member.badge, decomposed).status_code == 302


def test_create_user_applies_the_policy(app, runner, db):
    for password, message in (("password1234", "too common"), ("Jo March is my name", "badge number or name")):
        result = runner.invoke(args=["lms", "create-user", "--badge", "4242", "--first", "Jo", "--last", "March",
                                     "--role", "officer", "--password-stdin"], input=f"{password}\n")
        assert result.exit_code == 1 and message in result.stderr
    assert db.scalar(select(func.count(Member.id))) == 0


# --- lockout ----------------------------------------------------------------------------------------

def test_five_failures_lock_the_account_even_for_the_right_password(client, auth, db, make_member):
    member = make_member()
    for attempt in range(5):
        response = auth.sign_in(member.badge, f"wrong password {attempt}")
        assert response.status_code == 400 and REFUSED in response.get_data(as_text=True)
    assert fresh(db, member).failed_sign_ins == 5 and fresh(db, member).is_locked(utcnow())
    response = auth.sign_in(member.badge, PASSWORD)
    # The right password is told of the lock (and until when), but does not sign in.
    assert response.status_code == 400 and "Your account is locked" in response.get_data(as_text=True)
    assert client.get("/training/").status_code == 302
    lockouts = events(db, "auth.lockout")
    assert len(lockouts) == 1 and lockouts[0].target == f"member:{member.id}"
    assert [e.details["reason"] for e in events(db, "auth.sign_in")][-1] == "locked"


def test_success_resets_the_failure_count(auth, db, make_member):
    member = make_member()
    for _ in range(4):
        auth.sign_in(member.badge, "wrong password here")
    assert auth.sign_in(member.badge).status_code == 302
    assert fresh(db, member).failed_sign_ins == 0


def _page_without_tokens(response) -> str:
    html = response.get_data(as_text=True)
    html = CSRF_RE.sub("csrf", html)
    return re.sub(r'(id="badge" [^>]*value=")[^"]*"', r'\1"', html)


def test_unknown_locked_wrong_and_separated_look_the_same(app, db, make_member):
    member = make_member(badge="700")
    make_member(first="Sep", last="Arated", badge="701", status="separated")
    locked = make_member(first="Lo", last="Cked", badge="702")
    db.execute(update(Member).where(Member.id == locked.id).values(locked_until=utcnow() + timedelta(hours=1),
                                                                     failed_sign_ins=5))
    db.commit()
    answers = []
    # A locked account with a wrong password: only the right one learns of the lock
    # (tests/test_sign_in_throttling.py).
    for badge, password in (("99999", PASSWORD), ("702", "not the password!"), ("700", "not the password!"),
                            ("701", PASSWORD)):
        client = app.test_client()
        response = client.post("/sign-in", data={"badge": badge, "password": password,
                                                 "csrf_token": csrf_token(client)})
        answers.append((response.status_code, _page_without_tokens(response)))
    assert answers[0][0] == 400 and REFUSED in answers[0][1]
    assert all(answer == answers[0] for answer in answers), "a refusal gives something away"
    reasons = [e.details["reason"] for e in events(db, "auth.sign_in")]
    assert reasons == ["unknown_badge", "locked", "wrong_password", "inactive"]
    assert fresh(db, member).failed_sign_ins == 1


def test_lock_expires_after_the_configured_time(db, make_member):
    member = make_member()
    rules = SignInRules(lockout_threshold=5, lockout_minutes=30)
    start = utcnow()
    for i in range(5):
        assert authenticate(db, member.badge, "nope nope nope", now=start + timedelta(seconds=i), ip="10.0.0.1",
                            rules=rules).member is None
    assert authenticate(db, member.badge, PASSWORD, now=start + timedelta(minutes=29), ip="10.0.0.2",
                        rules=rules).reason == "locked"
    result = authenticate(db, member.badge, PASSWORD, now=start + timedelta(minutes=31), ip="10.0.0.2", rules=rules)
    assert result.member is not None and result.member.id == member.id
    db.commit()
    assert [e.details["by"] for e in events(db, "auth.unlock")] == ["lock expired"]
    assert fresh(db, member).failed_sign_ins == 0 and fresh(db, member).locked_until is None


def test_lockout_minutes_zero_holds_until_an_admin_unlocks(db, make_member, admin):
    member = make_member()
    rules = SignInRules(lockout_minutes=0)
    start = utcnow()
    for _ in range(5):
        authenticate(db, member.badge, "nope nope nope", now=start, ip="10.0.0.1", rules=rules)
    assert authenticate(db, member.badge, PASSWORD, now=start + timedelta(days=400), ip="10.0.0.1",
                        rules=rules).reason == "locked"
    accounts.unlock(db, member, admin=admin, now=start, ip="10.0.0.9")
    assert authenticate(db, member.badge, PASSWORD, now=start, ip="10.0.0.1", rules=rules).member is not None


def test_admin_unlocks_from_the_account_page(app, client, auth, db, make_member, admin):
    member = make_member()
    for _ in range(5):
        auth.sign_in(member.badge, "wrong password here")
    boss = admin_client(app, admin)
    page = boss.get(f"/admin/members/{member.id}").get_data(as_text=True)
    assert "Locked until" in page
    assert member.full_name in boss.get("/admin/members").get_data(as_text=True)  # listed as needing attention
    token = csrf_token(boss, f"/admin/members/{member.id}")
    response = boss.post(f"/admin/members/{member.id}/unlock", data={"unlock-csrf_token": token})
    assert response.status_code == 303
    assert auth.sign_in(member.badge).status_code == 302
    unlocks = events(db, "admin.unlock")
    assert len(unlocks) == 1 and unlocks[0].actor_id == admin.id and unlocks[0].details["was_locked"] is True


# --- per-IP throttling ------------------------------------------------------------------------------

def test_throttle_refuses_an_address_after_too_many_failures(db, make_member):
    member = make_member()
    rules = SignInRules(ip_max_failures=20, ip_window_minutes=15)
    now = utcnow()
    for i in range(20):  # spread over many badges, so no single account locks
        authenticate(db, f"9{i:03d}", "guessing guessing", now=now, ip="203.0.113.7", rules=rules)
    result = authenticate(db, member.badge, PASSWORD, now=now, ip="203.0.113.7", rules=rules)
    assert result.throttled and result.member is None
    assert authenticate(db, member.badge, PASSWORD, now=now, ip="198.51.100.1", rules=rules).member is not None
    later = now + timedelta(minutes=16)
    assert authenticate(db, member.badge, PASSWORD, now=later, ip="203.0.113.7", rules=rules).member is not None
    db.commit()
    assert len(events(db, "auth.throttle")) == 1


def test_throttled_sign_in_is_a_429_with_a_generic_message(app, client, auth, db, make_member):
    app.config.update(SIGN_IN_IP_MAX_FAILURES=3)
    member = make_member()
    for _ in range(3):
        assert auth.sign_in("123456", "guessing guessing").status_code == 400
    response = auth.sign_in(member.badge)
    assert response.status_code == 429
    assert "Too many attempts, try again later." in response.get_data(as_text=True)
    assert fresh(db, member).failed_sign_ins == 0  # the password was never checked


# --- server-side sessions ---------------------------------------------------------------------------

def test_sign_in_starts_a_new_session_and_token(app, client, auth, db, make_member):
    member = make_member()
    client.get("/sign-in")
    before = client.get_cookie("session").value
    # A cookie planted before sign-in (session fixation) stays anonymous after it.
    planted = app.test_client()
    planted.set_cookie("session", before)
    auth.sign_in(member.badge)
    after = client.get_cookie("session").value
    assert after != before
    assert planted.get("/training/").status_code == 302
    auth.sign_in(member.badge)  # signing in again over a live session
    rows = sessions_of(db, member)
    assert len(rows) == 2 and rows[0].token_hash != rows[1].token_hash
    assert rows[0].revoked_reason == "signed_in_again" and rows[1].revoked_at is None
    assert rows[1].ip == "127.0.0.1" and len(rows[1].token_hash) == 64


def test_a_copied_cookie_stops_working_at_sign_out(app, client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get("/training/").status_code == 200  # a bearer cookie works until...
    auth.sign_out()
    response = thief.get("/training/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert sessions_of(db, member)[0].revoked_reason == "sign_out"
    assert ENDED in thief.get("/sign-in").get_data(as_text=True)


def test_idle_timeout(client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    assert client.get("/training/").status_code == 200
    db.execute(update(SignInSession).values(last_seen_at=utcnow() - timedelta(minutes=31),
                                            created_at=utcnow() - timedelta(minutes=40)))
    db.commit()
    response = client.get("/training/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in?next=")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert ENDED in page and "Please sign in to continue." not in page
    assert sessions_of(db, member)[0].revoked_reason == "idle"
    assert [e.details["reason"] for e in events(db, "auth.session_end")] == ["idle"]


def test_absolute_timeout_despite_activity(client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    db.execute(update(SignInSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1),
                                            last_seen_at=utcnow() - timedelta(seconds=5)))
    db.commit()
    assert client.get("/training/").status_code == 302
    assert sessions_of(db, member)[0].revoked_reason == "expired"


def test_last_seen_is_written_at_most_once_a_minute(client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    first = sessions_of(db, member)[0].last_seen_at
    client.get("/training/")
    client.get("/training/history")
    assert sessions_of(db, member)[0].last_seen_at == first
    two_minutes_ago = utcnow() - timedelta(minutes=2)
    db.execute(update(SignInSession).values(last_seen_at=two_minutes_ago))
    db.commit()
    client.get("/training/")
    assert sessions_of(db, member)[0].last_seen_at > two_minutes_ago + timedelta(minutes=1)


def test_only_the_token_hash_is_stored(client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    with client.session_transaction() as flask_session:
        token = flask_session["sign_in_token"]
    row = sessions_of(db, member)[0]
    assert row.token_hash == token_hash(token) and token not in json.dumps(
        {c.name: str(getattr(row, c.key)) for c in SignInSession.__table__.columns})


def test_separating_a_member_ends_their_session(client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    db.get(Member, member.id).status = "separated"
    db.commit()
    assert client.get("/training/").status_code == 302


# --- reset and change of password ---------------------------------------------------------------------

def _reset(boss, member, admin_password=PASSWORD):
    token = csrf_token(boss, f"/admin/members/{member.id}")
    return boss.post(f"/admin/members/{member.id}/reset-password",
                     data={"reset-csrf_token": token, "reset-admin_password": admin_password})


def _temporary(response) -> str:
    match = re.search(r'<p class="temporary-password"><code>([^<]+)</code>', response.get_data(as_text=True))
    assert match, "temporary password not shown"
    return match.group(1)


def change(client, current: str, new: str, confirm: str | None = None):
    token = csrf_token(client, "/account/password")
    return client.post("/account/password", data={"csrf_token": token, "current_password": current,
                                                  "new_password": new, "confirm_password": confirm or new})


def test_reset_forces_a_change_at_next_sign_in(app, client, auth, db, make_member, admin):
    member = make_member()
    auth.sign_in(member.badge)
    boss = admin_client(app, admin)
    assert _reset(boss, member, "not my password at all").status_code == 400
    response = _reset(boss, member)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    temporary = _temporary(response)
    assert password_problem(temporary) is None
    # Their session ended at the reset; the old password no longer works.
    assert client.get("/training/").status_code == 302
    assert auth.sign_in(member.badge, PASSWORD).status_code == 400
    assert auth.sign_in(member.badge, temporary).status_code == 302
    for url in ("/training/", "/training/history", "/verify"):
        response = client.get(url)
        if url == "/verify":
            assert response.status_code == 200
        else:
            assert response.status_code == 302 and response.headers["Location"] == "/account/password", url
    assert "An administrator has reset your password" in client.get("/account/password").get_data(as_text=True)

    response = change(client, "wrong current password", "lanterns drift over quiet harbors")
    assert response.status_code == 400 and "That is not your current password." in response.get_data(as_text=True)
    response = change(client, temporary, "lanterns drift over quiet harbors", "lanterns drift over quiet harbours")
    assert response.status_code == 400 and "The two new passwords are not the same." in response.get_data(as_text=True)
    response = change(client, temporary, "Password12345")
    assert response.status_code == 400 and "too common" in response.get_data(as_text=True)
    assert 'id="new_password-error"' in response.get_data(as_text=True)  # beside its field
    response = change(client, temporary, "lanterns drift over quiet harbors")
    assert response.status_code == 303 and response.headers["Location"] == "/training/"
    assert client.get("/training/").status_code == 200
    stored = fresh(db, member)
    assert not stored.must_change_password and stored.password_changed_at is not None
    auth.sign_out()
    assert auth.sign_in(member.badge, "lanterns drift over quiet harbors").status_code == 302
    assert [e.outcome for e in events(db, "admin.reset_password")] == ["failure", "success"]
    assert [e.outcome for e in events(db, "account.password_change")] == ["failure", "failure", "success"]


def test_changing_a_password_ends_the_members_other_sessions(app, client, auth, db, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    other = app.test_client()
    other.post("/sign-in", data={"badge": member.badge, "password": PASSWORD, "csrf_token": csrf_token(other)})
    assert other.get("/training/").status_code == 200
    assert change(client, PASSWORD, "lanterns drift over quiet harbors").status_code == 303
    assert client.get("/training/").status_code == 200
    assert other.get("/training/").status_code == 302


def test_new_password_must_differ_from_the_current_one(client, auth, make_member):
    member = make_member()
    auth.sign_in(member.badge)
    response = change(client, PASSWORD, PASSWORD)
    assert response.status_code == 400 and "different from your current one" in response.get_data(as_text=True)


def test_change_password_page_is_linked_from_the_header(client, auth, make_member):
    auth.sign_in(make_member().badge)
    assert 'href="/account/password"' in client.get("/training/").get_data(as_text=True)


# --- roles --------------------------------------------------------------------------------------------

def _role(boss, member, verb: str, role: str, admin_password: str = PASSWORD):
    token = csrf_token(boss, f"/admin/members/{member.id}")
    return boss.post(f"/admin/members/{member.id}/roles/{verb}",
                     data={f"{verb}-csrf_token": token, f"{verb}-role": role, f"{verb}-admin_password": admin_password})


def roles_of(db, member) -> set[str]:
    db.expire_all()
    return set(db.scalars(select(MemberRole.role).where(MemberRole.member_id == member.id)))


def test_granting_and_revoking_a_role_needs_the_admins_password_and_is_audited(app, db, make_member, admin):
    member = make_member()
    boss = admin_client(app, admin)
    response = _role(boss, member, "grant", "hr", "not my password at all")
    assert response.status_code == 400 and "That is not your current password." in response.get_data(as_text=True)
    assert roles_of(db, member) == {"officer"}
    assert _role(boss, member, "grant", "hr").status_code == 303
    assert roles_of(db, member) == {"officer", "hr"}
    assert _role(boss, member, "grant", "hr").status_code == 400  # already held
    assert _role(boss, member, "revoke", "officer", "wrong again, sorry").status_code == 400
    assert _role(boss, member, "revoke", "officer").status_code == 303
    assert roles_of(db, member) == {"hr"}
    grants, revokes = events(db, "admin.grant_role"), events(db, "admin.revoke_role")
    assert [e.outcome for e in grants] == ["failure", "success", "failure"]
    assert [e.outcome for e in revokes] == ["failure", "success"]
    assert all(e.actor_id == admin.id and e.target == f"member:{member.id}" and e.ip for e in grants + revokes)
    assert grants[1].details == {"badge": member.badge, "role": "hr"}


def test_the_last_admin_keeps_the_role(app, db, make_member, admin):
    boss = admin_client(app, admin)
    response = _role(boss, admin, "revoke", "admin")
    assert response.status_code == 400 and "last administrator" in response.get_data(as_text=True)
    assert "admin" in roles_of(db, admin)
    second = make_member(first="Bea", last="Second", roles=("admin",), badge="9002")
    assert _role(boss, admin, "revoke", "admin").status_code == 303
    assert roles_of(db, admin) == set() and roles_of(db, second) == {"admin"}
    assert boss.get("/admin/").status_code == 403  # takes effect on the next request


def test_a_non_admin_cannot_use_the_services_either(db, make_member):
    member, other = make_member(), make_member(first="Oth", last="Er")
    with pytest.raises(AccountError):
        accounts.grant_role(db, other, "admin", admin=member, admin_password=PASSWORD, now=utcnow(), ip=None)


# --- nothing secret is written down ----------------------------------------------------------------------

def test_no_password_or_token_reaches_the_audit_log_or_the_logs(app, client, auth, db, make_member, admin, caplog):
    caplog.set_level(logging.DEBUG)
    member = make_member()
    typed_in_badge_box = "my secret pass phrase typed in the wrong box"
    secrets_used = [PASSWORD, typed_in_badge_box, "wrong password here", "lanterns drift over quiet harbors"]
    auth.sign_in(typed_in_badge_box[:20], typed_in_badge_box)
    auth.sign_in(member.badge, "wrong password here")
    boss = admin_client(app, admin)
    temporary = _temporary(_reset(boss, member))
    _role(boss, member, "grant", "hr", "wrong password here")
    _role(boss, member, "grant", "hr")
    auth.sign_in(member.badge, temporary)
    change(client, temporary, "lanterns drift over quiet harbors")
    with client.session_transaction() as flask_session:
        token = flask_session["sign_in_token"]
    secrets_used += [temporary, token, typed_in_badge_box[:20]]

    written = json.dumps([[e.action, e.target, e.ip, e.details] for e in events(db)])
    assert len(events(db)) >= 8
    for secret in secrets_used:
        assert secret not in written, secret
        assert secret not in caplog.text, secret


# --- headers, cookies, banner, errors ----------------------------------------------------------------------

def test_cookies_are_secure_over_https_and_hsts_is_sent(app, make_member):
    member = make_member()
    plain = app.test_client()
    plain.get("/sign-in")
    assert not plain.get_cookie("session").secure
    secure = app.test_client()
    response = secure.get("/sign-in", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = secure.get_cookie("session")
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"
    token = CSRF_RE.search(response.get_data(as_text=True)).group(1)
    response = secure.post("/sign-in", base_url="https://localhost", headers={"Referer": "https://localhost/sign-in"},
                           data={"badge": member.badge, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and "Secure" in response.headers["Set-Cookie"]


def test_preferred_scheme_https_makes_cookies_secure(tmp_path):
    from lms import create_app
    from tests.conftest import TEST_CONFIG
    app = create_app({**TEST_CONFIG, "DATABASE_URL": "sqlite://", "INSTANCE_PATH": str(tmp_path),
                      "PREFERRED_URL_SCHEME": "https"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    get_database(app).dispose()


def test_sign_in_banner_says_use_is_monitored(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Authorized use only" in page and "monitored" in page


@pytest.mark.parametrize("path", ["/sign-in", "/verify", "/no/such/page", "/static/css/app.css"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path)
    response.close()
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP here


def test_signed_in_pages_are_not_cached(client, auth, make_member):
    auth.sign_in(make_member().badge)
    for path in ("/training/", "/account/password", "/verify"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_an_error_shows_a_reference_never_a_trace(app, client, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom():
        raise RuntimeError("internal detail that must not leak")

    app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    response = client.get("/boom-for-test")
    page = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong" in page
    reference = re.search(r"quote reference <strong>([0-9a-f]{12})</strong>", page).group(1)
    assert "internal detail" not in page and "Traceback" not in page
    assert reference in caplog.text and "internal detail" in caplog.text  # the log has what support needs
    assert response.headers["Content-Security-Policy"]


# --- the migration ---------------------------------------------------------------------------------------

def test_migration_matches_the_account_models(app):
    """The accounts migration builds exactly what the models declare (member, sessions, audit index)."""
    with get_database(app).engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    mine = [d for d in diffs if any(name in repr(d) for name in ("'member'", "sign_in_session", "audit_event"))]
    assert mine == []


def test_wrong_current_passwords_when_changing_it_lock_the_account(app, client, auth, db, make_member):
    """The current password on the change form is a password check too, and counts toward lockout."""
    member = make_member()
    auth.sign_in(member.badge)
    for n in range(app.config["LOCKOUT_THRESHOLD"] - 1):
        assert change(client, f"not it, guess {n}", "lanterns drift over quiet harbors").status_code == 400
    response = change(client, "not it, the last guess", "lanterns drift over quiet harbors")
    assert response.status_code == 303 and response.headers["Location"].endswith("/sign-in")
    assert fresh(db, member).is_locked(utcnow())
    assert client.get("/training/").status_code == 302
    assert auth.sign_in(member.badge).status_code == 400
    assert len(events(db, "auth.lockout")) == 1
