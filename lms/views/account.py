"""A member's own account: changing their password (required after an administrator's reset)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from lms.auth import current_sign_in, home_endpoint, signed_out_locked
from lms.db import get_session
from lms.forms.accounts import ChangePasswordForm
from lms.services import accounts
from lms.services.audit import record_event
from lms.web import client_ip, keep_on_error, request_now

bp = Blueprint("account", __name__, url_prefix="/account")

# The service names the policy's field "password"; on this form that is the new password.
_FIELDS = {"password": "new_password", "current_password": "current_password", "new_password": "new_password"}


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Current password and the new one twice; other sessions of the member end."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        db = get_session()
        member = current_user._get_current_object()
        sign_in = current_sign_in()
        try:
            accounts.change_password(db, member, current_password=form.current_password.data,
                                     new_password=form.new_password.data, now=request_now(), ip=client_ip(),
                                     hash_method=current_app.config["PASSWORD_HASH_METHOD"],
                                     keep_session_id=sign_in.id if sign_in else None)
        except accounts.AccountError as exc:
            db.rollback()
            getattr(form, _FIELDS.get(exc.field, "new_password")).errors.append(str(exc))
            # Which field failed, never what was typed.
            record_event(db, "account.password_change", at=request_now(), actor_id=member.id,
                         target=f"member:{member.id}", ip=client_ip(), outcome="failure",
                         details={"field": _FIELDS.get(exc.field, "new_password")})
            locked = exc.field == "current_password" and accounts.count_reauthentication_failure(
                db, member, action="account.password_change", now=request_now(), ip=client_ip(),
                rules=accounts.SignInRules.from_config(current_app.config))
            keep_on_error()  # the refused change is audited; a wrong current password counts
            if locked:
                return signed_out_locked()
        else:
            flash("Your password is changed.", "success")
            return redirect(url_for(home_endpoint(member)), 303)
    status = 400 if form.errors else 200
    return render_template("account/password.html", form=form,
                           must_change=current_user.must_change_password), status
