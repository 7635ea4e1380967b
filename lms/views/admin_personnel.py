"""The administrator's personnel import: upload, preview, apply."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from lms.auth import role_required
from lms.db import get_session
from lms.forms.personnel import PersonnelApplyForm, PersonnelUploadForm
from lms.jobs import wake
from lms.models import PersonnelUpload
from lms.services.audit import record_event
from lms.services.clock import date_words, local_date
from lms.services.invitations import InvitationSettings, invite, members_to_invite_from_import
from lms.services.personnel import PersonnelImportError, apply_import, plan_import, purge_expired_uploads
from lms.services.personnel_history import effective_problem
from lms.web import after_commit, client_ip, keep_on_error, request_now

bp = Blueprint("admin_personnel", __name__, url_prefix="/admin/personnel")
admin_required = role_required("admin")


def _today():
    return local_date(request_now(), current_app.config["TIMEZONE"])


def _plan(upload: PersonnelUpload):
    """The upload's plan, effective on the date given with it or else today (the day it is applied)."""
    return plan_import(get_session(), upload.data, ranks=current_app.config["RANKS"],
                       max_bytes=current_app.config["IMPORT_MAX_BYTES"], full_roster=upload.full_roster,
                       effective=upload.effective or _today())


@bp.route("/import", methods=["GET", "POST"])
@admin_required
def upload():
    """Upload a CSV; a valid one is kept for preview, an invalid one is listed row by row."""
    form = PersonnelUploadForm()
    problems: list[str] = []
    valid = form.validate_on_submit()
    if valid and form.effective.data and effective_problem(form.effective.data, _today()):
        form.effective.errors.append(effective_problem(form.effective.data, _today()))
        valid = False
    if valid:
        data = form.file.data.read(current_app.config["IMPORT_MAX_BYTES"] + 1)
        db = get_session()
        purge_expired_uploads(db, now=request_now(), keep_days=current_app.config["PERSONNEL_UPLOAD_KEEP_DAYS"])
        try:
            plan = plan_import(db, data, ranks=current_app.config["RANKS"],
                               max_bytes=current_app.config["IMPORT_MAX_BYTES"],
                               full_roster=form.full_roster.data, effective=form.effective.data or _today())
        except PersonnelImportError as exc:
            problems = exc.problems
            record_event(db, "personnel.upload", at=request_now(), actor_id=current_user.id,
                         ip=client_ip(), outcome="failure",
                         details={"filename": form.file.data.filename, "problems": len(problems)})
            keep_on_error()  # the refused upload stays in the audit log
        else:
            stored = PersonnelUpload(filename=(form.file.data.filename or "upload.csv")[:255], data=data,
                                     sha256=plan.sha256, uploaded_by_id=current_user.id,
                                     uploaded_at=request_now(), full_roster=form.full_roster.data,
                                     effective=form.effective.data)
            db.add(stored)
            db.flush()
            record_event(db, "personnel.upload", at=request_now(), actor_id=current_user.id,
                         ip=client_ip(), target=f"personnel_upload:{stored.id}",
                         details={"filename": stored.filename, "sha256": plan.sha256, "rows": len(plan.rows),
                                  "effective": stored.effective.isoformat() if stored.effective else None})
            return redirect(url_for(".preview", upload_id=stored.id))
    status = 400 if form.is_submitted() and (form.errors or problems) else 200
    return render_template("admin/personnel_upload.html", form=form, problems=problems), status


@bp.get("/import/<int:upload_id>")
@admin_required
def preview(upload_id: int):
    """What applying the file would change: adds, changes, separations, members missing."""
    upload = get_session().get(PersonnelUpload, upload_id) or abort(404)
    try:
        plan = _plan(upload)
    except PersonnelImportError as exc:  # the roster changed since the upload
        return render_template("admin/personnel_upload.html", form=PersonnelUploadForm(),
                               problems=exc.problems), 409
    return render_template("admin/personnel_preview.html", upload=upload, plan=plan, today=_today(),
                           form=PersonnelApplyForm())


@bp.post("/import/<int:upload_id>/apply")
@admin_required
def apply(upload_id: int):
    """Apply a previewed file in one transaction."""
    db = get_session()
    upload = db.get(PersonnelUpload, upload_id) or abort(404)
    form = PersonnelApplyForm()
    if not form.validate_on_submit():
        abort(400)
    if upload.applied_at is not None:
        flash("This file was already applied.", "error")
        return redirect(url_for(".upload"))
    try:
        plan = _plan(upload)
    except PersonnelImportError as exc:
        return render_template("admin/personnel_upload.html", form=PersonnelUploadForm(),
                               problems=exc.problems), 409
    separate = bool(form.separate_missing.data and upload.full_roster)
    if not plan.has_changes and not (separate and plan.missing):
        flash("No changes: the roster already matches this file.", "info")
        return redirect(url_for(".upload"))
    now = request_now()
    counts = apply_import(db, plan, separate_missing=separate, actor_id=current_user.id,
                          ip=client_ip(), now=now, today=_today(), source=f"web:{upload.filename}")
    upload.applied_at = now
    invited = None
    if form.invite.data:
        # In the import's transaction: the roster and the invitation e-mails commit together.
        invited = invite(db, members_to_invite_from_import(db, [row.badge for row in plan.rows]), now=now,
                         by_id=current_user.id, ip=client_ip(),
                         settings=InvitationSettings.from_config(current_app.config), skip_open=True)
    message = (f"Imported {upload.filename}: {counts['added']} added, {counts['changed']} changed, "
               f"{counts['separated']} separated. Effective {date_words(plan.effective)}.")
    if invited is not None:
        after_commit(wake, current_app._get_current_object())
        message += (f" Invitations sent to {len(invited.sent)} member(s); "
                    f"{len(invited.skipped)} could not be invited (see Invitations).")
    flash(message, "success")
    return redirect(url_for(".upload"))
