"""The administrator's invitations: who was invited, who never signed in, and sending or
re-sending links in bulk."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from lms.auth import role_required
from lms.db import get_session
from lms.forms import ActionForm
from lms.jobs import wake
from lms.services.invitations import InvitationSettings, invitation_overview, invite, members_by_id
from lms.services.validators import ascii_int
from lms.web import after_commit, client_ip, request_now

bp = Blueprint("admin_invitations", __name__, url_prefix="/admin/invitations")
admin_required = role_required("admin")


@bp.get("/")
@admin_required
def overview():
    """Members without a password and invited members who never signed in, with their last link."""
    rows = invitation_overview(get_session())
    return render_template("admin/invitations.html", rows=rows, now=request_now(), form=ActionForm(formdata=None))


@bp.post("/send")
@admin_required
def send():
    """Send a new link to each ticked member (or to everyone listed without a password); an
    earlier link of theirs stops working. Audited per member."""
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    if request.form.get("scope") == "all":
        members = [row.member for row in invitation_overview(db) if row.member.password_hash is None]
    else:
        ids = [ascii_int(value) for value in request.form.getlist("member_id")]
        if None in ids:
            abort(400, description="A member to invite is named by an id in the digits 0-9.")
        members = members_by_id(db, sorted({i for i in ids if i is not None}))
    if not members:
        flash("Tick at least one member to invite.", "error")
        return redirect(url_for(".overview"), 303)
    outcome = invite(db, members, now=request_now(), by_id=current_user.id, ip=client_ip(),
                     settings=InvitationSettings.from_config(current_app.config))
    if outcome.sent:
        after_commit(wake, current_app._get_current_object())
    message = f"Invitations sent to {len(outcome.sent)} member(s)."
    if outcome.skipped:
        message += " Not sent: " + "; ".join(f"{m.badge} {m.full_name} ({why})" for m, why in outcome.skipped[:20])
        message += " …" if len(outcome.skipped) > 20 else "."
    flash(message, "success" if outcome.sent else "error")
    return redirect(url_for(".overview"), 303)
