"""The second factor: the step after the password at sign-in, and a member's own enrolment of an
authenticator app (with recovery codes shown once)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user

from lms.auth import TOKEN_KEY, current_sign_in, home_endpoint
from lms.db import get_session
from lms.forms import ActionForm
from lms.forms.accounts import SecondFactorForm
from lms.models import Member
from lms.services import passkeys
from lms.services import second_factor as mfa
from lms.services.accounts import SignInRules
from lms.services.sessions import revoke_token, start_session
from lms.web import client_ip, keep_on_error, request_now


# webauthn's helpers are imported when a passkey is used, not when the app starts (the package
# loads cryptography and OpenSSL bindings: about 0.1 s of every command-line run).
def base64url_to_bytes(value: str) -> bytes:
    """A challenge kept in the session, back as bytes."""
    from webauthn.helpers import base64url_to_bytes as decode

    return decode(value)


def bytes_to_base64url(value: bytes) -> str:
    """A challenge as text the session can keep."""
    from webauthn.helpers import bytes_to_base64url as encode

    return encode(value)


bp = Blueprint("second_factor", __name__)

#: The flask-session keys of a sign-in waiting for its second step.
PENDING = ("mfa_member_id", "mfa_started", "mfa_next")
#: How long the second step may take after the password.
PENDING_MINUTES = 5
#: What a member who must enrol may still reach.
OPEN_WHILE_ENROLLING = {"second_factor.enrol", "second_factor.start_totp", "second_factor.confirm_totp",
                        "second_factor.passkey_options", "second_factor.register_passkey",
                        "auth.sign_out", "auth.sign_in", "static", "public.verify", "account.change_password"}


@bp.record_once
def _check_setting(state) -> None:
    """Refuse to start with a misspelt role in MFA_REQUIRED_ROLES rather than guard nobody."""
    mfa.required_roles(state.app.config.get("MFA_REQUIRED_ROLES"))


def required_roles() -> frozenset[str]:
    """The roles that must use a second factor here."""
    return mfa.required_roles(current_app.config.get("MFA_REQUIRED_ROLES"))


def needs_second_step(member: Member) -> bool:
    """Whether the password was only the first step for this member."""
    return mfa.is_enrolled(get_session(), member.id)


def begin_second_step(member: Member, next_url: str | None):
    """After a right password: remember who is half signed in (in the signed cookie, for a few
    minutes) and ask for the second factor. No session exists until that is passed."""
    old_token = session.get(TOKEN_KEY)
    if old_token:  # signing in over a live session: that one ends
        revoke_token(get_session(), old_token, now=request_now(), reason="signed_in_again")
    session.clear()
    session.update({"mfa_member_id": member.id, "mfa_started": request_now().timestamp(), "mfa_next": next_url})
    return redirect(url_for("second_factor.verify"))


def _pending_member() -> Member | None:
    member_id, started = session.get("mfa_member_id"), session.get("mfa_started")
    if member_id is None or started is None:
        return None
    started_at = datetime.fromtimestamp(float(started), tz=timezone.utc)
    if request_now() - started_at > timedelta(minutes=PENDING_MINUTES):
        return None
    member = get_session().get(Member, int(member_id))
    return member if member is not None and member.is_active else None


@bp.route("/sign-in/second-factor", methods=["GET", "POST"])
def verify():
    """The second step of signing in: a code from the app or a recovery code."""
    member = _pending_member()
    if member is None:
        for key in PENDING:
            session.pop(key, None)
        flash("Sign in again: the second step was not completed in time.", "info")
        return redirect(url_for("auth.sign_in"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        db = get_session()
        now = request_now()
        used = mfa.verify(db, member, form.code.data, now=now, ip=client_ip(),
                          rules=SignInRules.from_config(current_app.config))
        if used is None:
            locked = member.is_locked(now)
            keep_on_error()  # the wrong code is audited and counts toward the lockout
            if locked:
                session.clear()
                flash("Too many wrong codes: your account is locked. Wait and sign in again, or ask an "
                      "administrator to unlock it.", "error")
                return redirect(url_for("auth.sign_in"), 303)
            form.code.errors.append("That code is not right, or was used already. Enter the code your app shows now.")
        else:
            target = _finish_sign_in(member, now)
            if used == "recovery_code":
                left = mfa.unused_recovery_codes(db, member.id)
                flash(f"You used a recovery code; {left} left. Make new ones from your account page "
                      "if you are running out.", "info")
            return redirect(target, 303)
    status = 400 if form.errors else 200
    db = get_session()
    factor = mfa.totp_of(db, member.id)
    return render_template("auth/second_factor.html", form=form,
                           has_totp=factor is not None and factor.confirmed_at is not None,
                           has_passkey=bool(passkeys.passkeys_of(db, member.id))), status


def _finish_sign_in(member: Member, now) -> str:
    """Both steps passed: the session starts (as after a password alone); where to go next."""
    db = get_session()
    next_url = session.get("mfa_next")
    sign_in_session, token = start_session(db, member, now=now, ip=client_ip(),
                                           user_agent=request.headers.get("User-Agent"))
    sign_in_session.auth_method = "password"
    session.clear()
    session[TOKEN_KEY] = token
    login_user(member, fresh=True)
    return next_url or url_for(home_endpoint(member))


def _challenge(key: str) -> bytes | None:
    value = session.pop(key, None)
    return base64url_to_bytes(value) if value else None


@bp.post("/sign-in/second-factor/passkey/options")
def passkey_sign_in_options():
    """The challenge for the pending member's passkeys (JSON)."""
    member = _pending_member()
    if member is None:
        return jsonify(error="Sign in again: the second step was not completed in time."), 400
    options, challenge = passkeys.authentication_options(get_session(), member,
                                                         passkeys.RelyingParty.from_config(current_app.config))
    session["passkey_sign_in_challenge"] = bytes_to_base64url(challenge)
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/sign-in/second-factor/passkey")
def passkey_sign_in():
    """The authenticator's answer; on success the session starts (JSON: where to go)."""
    member = _pending_member()
    challenge = _challenge("passkey_sign_in_challenge")
    body = request.get_json(silent=True) or {}
    if member is None or challenge is None or not isinstance(body.get("credential"), dict):
        return jsonify(error="Sign in again: the second step was not completed in time."), 400
    db = get_session()
    now = request_now()
    if not passkeys.authenticate(db, member, json.dumps(body["credential"]), challenge=challenge,
                                 rp=passkeys.RelyingParty.from_config(current_app.config), now=now, ip=client_ip(),
                                 rules=SignInRules.from_config(current_app.config)):
        locked = member.is_locked(now)
        keep_on_error()  # the refused passkey is audited and counts toward the lockout
        if locked:
            session.clear()
            return jsonify(redirect=url_for("auth.sign_in")), 400
        return jsonify(error="That passkey was not accepted. Try again, or use a code."), 400
    return jsonify(redirect=_finish_sign_in(member, now))


def _enrol_page(factor=None, form=None, status: int = 200):
    db = get_session()
    member = current_user._get_current_object()
    factor = factor or mfa.totp_of(db, member.id)
    qr = uri = None
    if factor is not None and factor.confirmed_at is None:
        uri = mfa.provisioning_uri(factor, member, current_app.config["DEPARTMENT_NAME"])
        import segno  # here: only enrolment draws a QR code

        qr = segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff")
    return render_template("account/second_factor.html", factor=factor, qr=qr, uri=uri,
                           passkeys=passkeys.passkeys_of(db, member.id),
                           enrolled=mfa.is_enrolled(db, member.id),
                           required=mfa.is_required(member, required_roles()),
                           codes_left=mfa.unused_recovery_codes(db, member.id),
                           form=form or SecondFactorForm(formdata=None), action=ActionForm(formdata=None)), status


@bp.get("/account/second-factor")
@login_required
def enrol():
    """Whether the member has a second factor, and setting one up."""
    return _enrol_page()


@bp.post("/account/second-factor/totp")
@login_required
def start_totp():
    """A new secret to add to the authenticator app (shown as a QR code and as text)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        mfa.start_totp(get_session(), current_user._get_current_object(), now=request_now())
    except mfa.SecondFactorError as exc:
        flash(str(exc), "error")
    return redirect(url_for(".enrol"), 303)


@bp.post("/account/second-factor/passkey/options")
@login_required
def passkey_options():
    """The challenge to register a new passkey (JSON)."""
    options, challenge = passkeys.registration_options(get_session(), current_user._get_current_object(),
                                                       passkeys.RelyingParty.from_config(current_app.config))
    session["passkey_register_challenge"] = bytes_to_base64url(challenge)
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/account/second-factor/passkey")
@login_required
def register_passkey():
    """The authenticator's new credential; kept once checked (JSON: where to go)."""
    challenge = _challenge("passkey_register_challenge")
    body = request.get_json(silent=True) or {}
    if challenge is None or not isinstance(body.get("credential"), dict):
        return jsonify(error="Start again: press the button to add a passkey."), 400
    db = get_session()
    try:
        passkeys.register(db, current_user._get_current_object(), json.dumps(body["credential"]),
                          challenge=challenge, rp=passkeys.RelyingParty.from_config(current_app.config),
                          name=str(body.get("name") or "Passkey"), now=request_now(), ip=client_ip())
    except passkeys.PasskeyError as exc:
        keep_on_error()  # the failure is audited
        return jsonify(error=str(exc)), 400
    flash("Passkey added. Sign-in asks for it after your password.", "success")
    return jsonify(redirect=url_for(".enrol"))


@bp.post("/account/second-factor/recovery-codes")
@login_required
def recovery_codes():
    """New recovery codes, shown once; the old ones stop working."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        codes = mfa.replace_recovery_codes(get_session(), current_user._get_current_object(), now=request_now(),
                                           ip=client_ip())
    except mfa.SecondFactorError as exc:
        get_session().rollback()
        flash(str(exc), "error")
        return redirect(url_for(".enrol"), 303)
    return _codes_page(codes)


def _codes_page(codes: list[str]):
    response = current_app.make_response(render_template("account/recovery_codes.html", codes=codes,
                                                         home=url_for(home_endpoint(current_user))))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/account/second-factor/totp/confirm")
@login_required
def confirm_totp():
    """The first code from the app confirms it; the recovery codes are shown once."""
    form = SecondFactorForm()
    if not form.validate_on_submit():
        return _enrol_page(form=form, status=400)
    db = get_session()
    try:
        codes = mfa.confirm_totp(db, current_user._get_current_object(), form.code.data, now=request_now(),
                                 ip=client_ip())
    except mfa.SecondFactorError as exc:
        keep_on_error()  # the failed attempt is audited
        form.code.errors.append(str(exc))
        return _enrol_page(form=form, status=400)
    return _codes_page(codes)


def init_gate(app) -> None:
    """Keep a member of a role that must use a second factor on the enrolment page until enrolled."""

    @app.before_request
    def _require_enrolment():
        if not current_user.is_authenticated or request.endpoint in OPEN_WHILE_ENROLLING:
            return None
        signed_in = current_sign_in()
        if signed_in is not None and signed_in.auth_method in ("oidc", "saml"):
            return None  # the identity provider signed them in, with its own multi-factor rules
        roles = required_roles()
        if roles and mfa.is_required(current_user, roles) and not mfa.is_enrolled(get_session(), current_user.id):
            return redirect(url_for("second_factor.enrol"))
        return None

