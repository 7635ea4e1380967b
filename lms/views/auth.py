"""Signing in and out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from lms.auth import TOKEN_KEY, current_sign_in, home_endpoint, same_site_referrer
from lms.db import get_session
from lms.forms import ActionForm, SignInForm
from lms.services.accounts import LOCKED_UNTIL_UNLOCKED, SignInRules, authenticate
from lms.services.audit import record_event
from lms.services.clock import datetime_words
from lms.services.sessions import SessionLimits, revoke_session, revoke_token, start_session, stay_signed_in
from lms.views.second_factor import begin_second_step, needs_second_step
from lms.web import client_ip, keep_on_error, request_now

bp = Blueprint("auth", __name__)


@bp.get("/")
def index():
    """Send members to their home page and everyone else to sign in."""
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)))
    return redirect(url_for("auth.sign_in"))


# One answer for every refusal, so it never tells whether a badge exists or an account is locked.
SIGN_IN_REFUSED = "Badge number or password is not right."
THROTTLED = "Too many attempts, try again later."
#: Only for a member with no password yet: the badge exists, which the issue accepts so that
#: invited members are not told their password is wrong (the refusal is audited).
NO_PASSWORD = "This account has no password yet; use the invitation e-mail or ask an administrator."


def _refusal(result) -> str:
    """What the person signing in is told. A locked account is named only to someone who typed
    its right password."""
    if result.reason == "no_password":
        return NO_PASSWORD
    if result.reason == "locked" and result.locked_until is not None:
        if result.locked_until == LOCKED_UNTIL_UNLOCKED:
            return "Your account is locked after too many failed attempts; ask an administrator to unlock it."
        until = datetime_words(result.locked_until, current_app.config["TIMEZONE"])
        return (f"Your account is locked until {until} after too many failed attempts. "
                "Try again then, or ask an administrator to unlock it.")
    return SIGN_IN_REFUSED


LOCAL_SIGN_IN_OFF = ("Sign-in with a badge number and password is turned off here: use the department "
                     "account button.")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    """Badge and password (unless turned off), and the single sign-on buttons; a fresh session and
    a new server-side session token on success."""
    from lms.views.sso import providers

    form = SignInForm()
    local = current_app.config.get("LOCAL_SIGN_IN", True)
    rules = SignInRules.from_config(current_app.config)

    def page(status: int):
        return render_template("auth/sign_in.html", form=form, rules=rules, providers=providers(),
                               local_sign_in=local), status

    if request.method == "POST" and not local:
        form.form_errors.append(LOCAL_SIGN_IN_OFF)
        return page(403)
    if form.validate_on_submit():
        db = get_session()
        now = request_now()
        result = authenticate(db, form.badge.data, form.password.data, now=now, ip=client_ip(), rules=rules)
        if result.member is None:
            keep_on_error()  # the refusal is audited and counts toward the lockout
            if result.throttled:
                form.form_errors.append(THROTTLED)
                return page(429)
            form.password.errors.append(_refusal(result))
        elif needs_second_step(result.member):
            return begin_second_step(result.member, _safe_next())
        else:
            old_token = session.get(TOKEN_KEY)
            if old_token:  # signing in over a live session: that one ends
                revoke_token(db, old_token, now=now, reason="signed_in_again")
            sign_in_session, token = start_session(db, result.member, now=now, ip=client_ip(),
                                                   user_agent=request.headers.get("User-Agent"))
            sign_in_session.auth_method = "password"
            session.clear()  # a new session at sign-in: nothing from before carries over
            session[TOKEN_KEY] = token
            login_user(result.member, fresh=True)
            return redirect(_safe_next() or url_for(home_endpoint(result.member)))
    return page(200 if request.method == "GET" or not form.errors else 400)


@bp.post("/sign-out")
def sign_out():
    """End the session, here and on the server, so a copy of the cookie is worthless."""
    form = ActionForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        db = get_session()
        sign_in = current_sign_in()
        if sign_in is not None:
            revoke_session(db, sign_in, now=request_now(), reason="sign_out")
        record_event(db, "auth.sign_out", at=request_now(), actor_id=current_user.id, ip=client_ip(),
                     target=f"sign_in_session:{sign_in.id}" if sign_in else None)
        logout_user()
        session.clear()
        flash("You have signed out.", "info")
    return redirect(url_for("auth.sign_in"))


@bp.post("/session/stay")
@login_required
def stay():
    """Keep the session alive: the "Stay signed in" answer to the warning before the idle
    sign-out. JSON for the page's script; without it, back to the page the button was on."""
    if not ActionForm().validate_on_submit():
        abort(400)
    sign_in = current_sign_in()
    if sign_in is None:
        abort(400)
    left = stay_signed_in(get_session(), sign_in, now=request_now(),
                          limits=SessionLimits.from_config(current_app.config))
    if request.accept_mimetypes.best == "application/json":
        return jsonify(seconds_left=left)
    flash("You are still signed in.", "info")
    return redirect(same_site_referrer() or url_for("auth.index"), 303)


def _safe_next() -> str | None:
    """The ?next= target if it stays on this site."""
    target = request.args.get("next")
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        current_app.logger.info("ignored off-site next=%r", target)
        return None
    return target
