"""Signing in and out."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from lms.auth import home_endpoint
from lms.db import get_session
from lms.forms import ActionForm, SignInForm
from lms.services.accounts import authenticate
from lms.services.audit import record_event
from lms.web import client_ip, commit, request_now

bp = Blueprint("auth", __name__)


@bp.get("/")
def index():
    """Send members to their home page and everyone else to sign in."""
    if current_user.is_authenticated:
        return redirect(url_for(home_endpoint(current_user)))
    return redirect(url_for("auth.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    """Badge and password; a fresh session on success."""
    form = SignInForm()
    if form.validate_on_submit():
        db = get_session()
        member = authenticate(db, form.badge.data, form.password.data)
        if member is None:
            record_event(db, "auth.sign_in", at=request_now(), ip=client_ip(), outcome="failure",
                         details={"badge": form.badge.data.strip()[:20]})
            commit()
            form.password.errors.append("Badge number or password is not right.")
        else:
            session.clear()  # a new session at sign-in: nothing from before carries over
            login_user(member, fresh=True)
            record_event(db, "auth.sign_in", at=request_now(), actor_id=member.id, ip=client_ip())
            commit()
            return redirect(_safe_next() or url_for(home_endpoint(member)))
    return render_template("auth/sign_in.html", form=form), 200 if request.method == "GET" or not form.errors else 400


@bp.post("/sign-out")
def sign_out():
    """End the session."""
    form = ActionForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        record_event(get_session(), "auth.sign_out", at=request_now(), actor_id=current_user.id, ip=client_ip())
        commit()
        logout_user()
        session.clear()
        flash("You have signed out.", "info")
    return redirect(url_for("auth.sign_in"))


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
