"""The administrator's pages."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from lms.auth import role_required, signed_out_locked
from lms.db import get_session
from lms.forms import ActionForm
from lms.forms.accounts import AdminPasswordForm, MemberLookupForm, PersonnelForm, RoleForm, role_choices
from lms.models import ROLES, Member
from lms.services import accounts
from lms.services.audit import record_event
from lms.services.clock import date_words, local_date
from lms.services.hr import search_members
from lms.services.overview import content_summary, personnel_summary
from lms.services.personnel_history import PersonnelChangeError, edit_personnel, member_history
from lms.services.sessions import SessionLimits, live_sessions
from lms.web import client_ip, keep_on_error, request_now

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def home():
    """Loaded content and personnel at a glance."""
    db = get_session()
    return render_template("admin/home.html", content=content_summary(db),
                           personnel=personnel_summary(db))


# --- accounts: find a member, unlock, reset a password, grant and revoke roles -----------------------
# Kept together, apart from the other admin pages.

admin_required = role_required("admin")
MEMBER_LIMIT = 50


def _member_or_404(member_id: int) -> Member:
    member = get_session().get(Member, member_id)
    if member is None:
        abort(404)
    return member


def _personnel_form(member: Member, formdata=None) -> PersonnelForm:
    """The personnel form, filled with the member's values today unless submitted."""
    supervisor = member.supervisor.badge if member.supervisor else ""
    form = PersonnelForm(prefix="personnel", formdata=formdata,
                         data=None if formdata else {"status": member.status, "unit": member.unit,
                                                     "shift": member.shift, "rank": member.rank or "",
                                                     "supervisor": supervisor})
    form.rank.choices = [SelectChoice("", "(none)")] + [SelectChoice(r, r) for r in current_app.config["RANKS"]]
    return form


def _account_forms(member: Member, **given) -> dict:
    """The account page's forms, each with its own prefix so their fields never share an id."""
    forms = {
        "unlock_form": ActionForm(prefix="unlock", formdata=None),
        "reset_form": AdminPasswordForm(prefix="reset", formdata=None),
        "mfa_form": AdminPasswordForm(prefix="mfa", formdata=None),
        "grant_form": RoleForm(prefix="grant", formdata=None),
        "revoke_form": RoleForm(prefix="revoke", formdata=None),
        "personnel_form": _personnel_form(member),
    }
    forms.update(given)
    # A required menu starts with an empty choice (HTML requires it), so nobody grants or revokes
    # the first role in the list by not looking.
    choose = [SelectChoice("", "Choose a role")]
    forms["grant_form"].role.choices = choose + role_choices([r for r in ROLES if not member.has_role(r)])
    forms["revoke_form"].role.choices = choose + role_choices(member.role_names)
    return forms


def _account_page(member: Member, status: int = 200, **forms):
    db = get_session()
    now = request_now()
    return render_template(
        "admin/member.html", member=member, now=now, locked=member.is_locked(now),
        sessions=live_sessions(db, member.id, now=now, limits=SessionLimits.from_config(current_app.config)),
        events=accounts.account_events(db, member.id),
        history=member_history(db, member.id),
        second_factor=accounts.has_second_factor(db, member),
        **_account_forms(member, **forms)), status


def _refused(action: str, member: Member, form_name: str, form, exc: accounts.AccountError):
    """Put the refusal beside its field, audit it (the field, never what was typed), re-show the page.

    A wrong password re-entered here counts toward the administrator's own lockout, as at signing.
    """
    db = get_session()
    db.rollback()
    field = getattr(form, exc.field, None) if exc.field else None
    (field.errors if field is not None else form.form_errors).append(str(exc))
    record_event(db, action, at=request_now(), actor_id=current_user.id, target=f"member:{member.id}",
                 ip=client_ip(), outcome="failure", details={"badge": member.badge, "field": exc.field})
    locked = exc.field == "admin_password" and accounts.count_reauthentication_failure(
        db, current_user._get_current_object(), action=action, now=request_now(), ip=client_ip(),
        rules=accounts.SignInRules.from_config(current_app.config))
    keep_on_error()  # the refusal is audited; a wrong password counts toward the lockout
    if locked:
        return signed_out_locked()
    return _account_page(member, 400, **{form_name: form})


@bp.get("/members")
@admin_required
def members():
    """Find a member by badge or name; locked accounts and pending password changes are listed."""
    db = get_session()
    form = MemberLookupForm(request.args)
    found, more = None, False
    if form.validate() and (form.q.data or "").strip():
        found = search_members(db, form.q.data, limit=MEMBER_LIMIT + 1)
        found, more = found[:MEMBER_LIMIT], len(found) > MEMBER_LIMIT
    attention = accounts.accounts_needing_attention(db, now=request_now())
    return render_template("admin/members.html", form=form, found=found, more=more, limit=MEMBER_LIMIT,
                           attention=attention, now=request_now()), 400 if form.errors else 200


@bp.get("/members/<int:member_id>")
@admin_required
def member_account(member_id: int):
    """A member's account: lock state, roles, live sessions and recent sign-in history."""
    return _account_page(_member_or_404(member_id))


@bp.post("/members/<int:member_id>/second-factor/reset")
@admin_required
def reset_second_factor(member_id: int):
    """Remove a member's second factors and recovery codes (lost phone and codes); sessions end."""
    member = _member_or_404(member_id)
    form = AdminPasswordForm(prefix="mfa")
    if not form.validate_on_submit():
        return _account_page(member, 400, mfa_form=form)
    try:
        accounts.reset_second_factor(get_session(), member, admin=current_user._get_current_object(),
                                     admin_password=form.admin_password.data, now=request_now(), ip=client_ip())
    except accounts.AccountError as exc:
        return _refused("admin.reset_second_factor", member, "mfa_form", form, exc)
    flash(f"The second factor of {member.full_name} is removed; they can set up a new one.", "success")
    return redirect(url_for(".member_account", member_id=member.id), 303)


@bp.post("/members/<int:member_id>/unlock")
@admin_required
def unlock(member_id: int):
    """Lift a lockout."""
    member = _member_or_404(member_id)
    form = ActionForm(prefix="unlock")
    if not form.validate_on_submit():
        abort(400)
    accounts.unlock(get_session(), member, admin=current_user._get_current_object(), now=request_now(),
                    ip=client_ip())
    flash(f"The account of {member.full_name} is unlocked.", "success")
    return redirect(url_for(".member_account", member_id=member.id), 303)


@bp.post("/members/<int:member_id>/reset-password")
@admin_required
def reset_password(member_id: int):
    """A temporary password, shown once on this response and never stored or sent anywhere; the
    member must change it at next sign-in and their sessions end now."""
    member = _member_or_404(member_id)
    form = AdminPasswordForm(prefix="reset")
    if not form.validate_on_submit():
        return _account_page(member, 400, reset_form=form)
    try:
        password = accounts.reset_password(get_session(), member, admin=current_user._get_current_object(),
                                           admin_password=form.admin_password.data, now=request_now(),
                                           ip=client_ip(), hash_method=current_app.config["PASSWORD_HASH_METHOD"])
    except accounts.AccountError as exc:
        return _refused("admin.reset_password", member, "reset_form", form, exc)
    # Rendered, not redirected: a redirect would need the password kept somewhere until shown.
    return render_template("admin/temporary_password.html", member=member, password=password)


@bp.post("/members/<int:member_id>/roles/grant")
@admin_required
def grant_role(member_id: int):
    """Grant a role, with the administrator's password re-entered."""
    return _change_role(member_id, "grant")


@bp.post("/members/<int:member_id>/roles/revoke")
@admin_required
def revoke_role(member_id: int):
    """Revoke a role, with the administrator's password re-entered."""
    return _change_role(member_id, "revoke")


def _change_role(member_id: int, verb: str):
    member = _member_or_404(member_id)
    form = RoleForm(prefix=verb)
    if not form.validate_on_submit():
        return _account_page(member, 400, **{f"{verb}_form": form})
    change = accounts.grant_role if verb == "grant" else accounts.revoke_role
    try:
        change(get_session(), member, form.role.data, admin=current_user._get_current_object(),
               admin_password=form.admin_password.data, now=request_now(), ip=client_ip())
    except accounts.AccountError as exc:
        return _refused(f"admin.{verb}_role", member, f"{verb}_form", form, exc)
    done = "granted to" if verb == "grant" else "revoked from"
    flash(f"The {form.role.data} role is {done} {member.full_name}.", "success")
    return redirect(url_for(".member_account", member_id=member.id), 303)


@bp.post("/members/<int:member_id>/personnel")
@admin_required
def change_personnel(member_id: int):
    """Record a change of status, unit, shift, rank or supervisor from a date (today unless
    given); earlier dates keep the values they had."""
    member = _member_or_404(member_id)
    form = _personnel_form(member, formdata=request.form)
    if not form.validate_on_submit():
        return _account_page(member, 400, personnel_form=form)
    now = request_now()
    today = local_date(now, current_app.config["TIMEZONE"])
    effective = form.effective.data or today
    try:
        diff = edit_personnel(get_session(), member, status=form.status.data, unit=form.unit.data,
                              shift=form.shift.data, rank=form.rank.data or None,
                              supervisor_badge=form.supervisor.data, effective=effective, today=today,
                              now=now, actor_id=current_user.id, ranks=current_app.config["RANKS"],
                              ip=client_ip())
    except PersonnelChangeError as exc:
        get_session().rollback()
        field = getattr(form, exc.field, None) if exc.field else None
        (field.errors if field is not None else form.form_errors).append(str(exc))
        return _account_page(member, 400, personnel_form=form)
    if diff:
        flash(f"Recorded for {member.full_name} from {date_words(effective)}: "
              + "; ".join(f"{name} {old or '(none)'} → {new or '(none)'}" for name, (old, new) in diff.items())
              + ".", "success")
    else:
        flash(f"No change: {member.full_name} already had these values on {date_words(effective)}.", "info")
    return redirect(url_for(".member_account", member_id=member.id), 303)
