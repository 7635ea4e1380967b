"""A member's invitation link: choose the first password, then sign in."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from lms.db import get_session
from lms.forms.accounts import FirstPasswordForm
from lms.services.accounts import AccountError
from lms.services.audit import record_event
from lms.services.invitations import InvitationError, accept, open_invitation
from lms.web import client_ip, keep_on_error, request_now

bp = Blueprint("invitation", __name__, url_prefix="/invitation")


@bp.route("/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Check the link, then take the member's chosen password (the policy applies); the link is used up."""
    db = get_session()
    now = request_now()
    try:
        invitation = open_invitation(db, token, now=now)
    except InvitationError as exc:
        record_event(db, "account.invitation_refused", at=now, ip=client_ip(), outcome="failure",
                     details={"why": str(exc)[:120]})
        keep_on_error()  # a refused link is audited
        return render_template("auth/invitation.html", problem=str(exc), form=None), 410
    member = invitation.member
    form = FirstPasswordForm()
    if form.validate_on_submit():
        try:
            accept(db, token, password=form.new_password.data, now=now, ip=client_ip(),
                   hash_method=current_app.config["PASSWORD_HASH_METHOD"])
        except AccountError as exc:
            db.rollback()
            form.new_password.errors.append(str(exc))
        except InvitationError as exc:
            db.rollback()
            return render_template("auth/invitation.html", problem=str(exc), form=None), 410
        else:
            flash("Your password is set. Sign in with your badge number and your new password.", "success")
            return redirect(url_for("auth.sign_in"), 303)
    status = 400 if form.errors else 200
    return render_template("auth/invitation.html", form=form, member=member, problem=None), status
