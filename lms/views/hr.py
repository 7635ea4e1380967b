"""HR and records pages: find a member, their acknowledgments and receipts, bulk export, "as of
date D" evidence, and voiding a record. Every view of a member, download and export is audited."""
from __future__ import annotations

import tempfile
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from lms.auth import role_required, signed_out_locked
from lms.db import get_session
from lms.forms.hr import AsOfForm, ExportForm, MemberSearchForm, ReceiptCheckForm, VoidForm
from lms.jobs import wake
from lms.models import Acknowledgment, Receipt
from lms.services import export_jobs, exports
from lms.services import hr as hr_service
from lms.services.accounts import SignInRules, count_reauthentication_failure, password_matches
from lms.services.audit import record_event
from lms.services.clock import date_words, local_date, local_iso
from lms.services.overview import acknowledgments_per_version
from lms.services.receipt_signature import check_signature_as_configured
from lms.services.records import VoidError, void_acknowledgment, void_of
from lms.services.roster_export import nothing_matches
from lms.services.verification import check_receipt
from lms.views.export_pages import export_download, export_status
from lms.web import after_commit, attachment, client_ip, keep_on_error, on_rollback, request_now, today

bp = Blueprint("hr", __name__, url_prefix="/hr")
hr_required = role_required("hr")

#: Search results shown at most; a longer list asks for a narrower search.
SEARCH_LIMIT = 50
#: Exports up to this size are built in memory, larger ones in a temporary file (see ``export``).
EXPORT_SPOOL_BYTES = 8 * 1024 * 1024
#: A receipt is tens of kB; a file larger than this is not one of ours and is not read whole.
RECEIPT_CHECK_MAX_BYTES = 10 * 1024 * 1024


def _audit(action: str, target: str | None = None, outcome: str = "success", **details) -> None:
    """Record what the signed-in HR member read or did, from where, now."""
    record_event(get_session(), action, at=request_now(), actor_id=current_user.id, target=target,
                 ip=client_ip(), outcome=outcome, details=details or None)


@bp.get("/")
@hr_required
def home():
    """How many acknowledgments of each policy version are on record, and where to go next."""
    return render_template("hr/home.html", versions=acknowledgments_per_version(get_session()),
                           form=MemberSearchForm(formdata=None))


@bp.get("/members")
@hr_required
def search():
    """Find members, separated ones included, by badge or name."""
    form = MemberSearchForm(request.args)
    members, more = None, False
    if "q" in request.args and form.validate():
        found = hr_service.search_members(get_session(), form.q.data, limit=SEARCH_LIMIT + 1)
        members, more = found[:SEARCH_LIMIT], len(found) > SEARCH_LIMIT
        _audit("hr.search", query=form.q.data.strip(), results=len(members))
    status = 400 if form.errors else 200
    return render_template("hr/search.html", form=form, members=members, more=more,
                           limit=SEARCH_LIMIT), status


@bp.get("/members/<int:member_id>")
@hr_required
def member(member_id: int):
    """A member and every acknowledgment they signed, across policies and versions."""
    record = hr_service.member_record(get_session(), member_id)
    if record is None:
        abort(404)
    _audit("hr.view_member", f"member:{member_id}", badge=record.member.badge,
           acknowledgments=len(record.acknowledgments))
    return render_template("hr/member.html", record=record, member=record.member,
                           as_of_form=AsOfForm(formdata=None, on=today()))


@bp.get("/receipts/<int:ack_id>.pdf")
@hr_required
def receipt(ack_id: int):
    """Download any member's receipt, exactly as stored at signing."""
    db = get_session()
    ack = db.get(Acknowledgment, ack_id)
    if ack is None:
        abort(404)
    stored = db.get(Receipt, ack.id)
    void = void_of(db, ack.id)
    _audit("hr.receipt_download", f"acknowledgment:{ack.id}", member_id=ack.member_id, badge=ack.badge,
           receipt_sha256=stored.sha256, voided=void is not None)
    name = exports.receipt_file_name(ack.policy_ref, ack.policy_effective, ack.badge, ack.id)
    headers = {"Content-Disposition": attachment(name), "X-Receipt-SHA256": stored.sha256}
    if void is not None:
        headers["X-Acknowledgment-Voided"] = local_date(void.voided_at, current_app.config["TIMEZONE"]).isoformat()
    return Response(stored.pdf, mimetype="application/pdf", headers=headers)


@bp.route("/receipts/check", methods=["GET", "POST"])
@hr_required
def check_receipt_file():
    """Upload a receipt someone handed in: whether it is a record, and whether that record stands
    (the same answer and audit event as ``flask --app app lms verify --receipt``)."""
    form = ReceiptCheckForm()
    check = None
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read(RECEIPT_CHECK_MAX_BYTES + 1)
        if len(data) > RECEIPT_CHECK_MAX_BYTES:
            form.file.errors.append(f"This file is larger than {RECEIPT_CHECK_MAX_BYTES // (1024 * 1024)} MB: "
                                    "it is not a receipt of this department.")
        else:
            check = check_receipt(get_session(), data, file_name=(upload.filename or "")[:255] or None,
                                  actor_id=current_user.id, ip=client_ip(), now=request_now(), via="web",
                                  signature=check_signature_as_configured(data, current_app.config,
                                                                          current_app.instance_path))
    status = 400 if form.is_submitted() and form.errors else 200
    return render_template("hr/check_receipt.html", form=form, check=check), status


def _export_form(choices: exports.FilterChoices) -> ExportForm:
    form = ExportForm()
    form.policy.choices = [("", "Any policy")] + [(p, f"{p} {title}") for p, title in choices.policies]
    form.version.choices = [("", "Any version")] + [
        (d.isoformat(), f"{date_words(d)} (policy {', '.join(ids)})") for d, ids in choices.versions]
    form.unit.choices = [("", "Any unit")] + [(u, u) for u in choices.units]
    return form


@bp.route("/export", methods=["GET", "POST"])
@hr_required
def export():
    """The export form; on submission, a ZIP of the matching receipts and manifest.csv.

    The ZIP is written to a spooled temporary file (memory up to EXPORT_SPOOL_BYTES, then disk)
    and streamed from there in chunks. Building it first, rather than zipping straight into the
    response, gives a seekable file (plain ZIP headers every tool reads), lets the audit event
    carry the exact count and be committed before a byte is sent, frees the database connection
    before a slow client downloads, and turns a failure into an error page rather than a truncated
    archive. Memory stays at one batch of receipts either way (see lms.services.exports).
    """
    db = get_session()
    tz = current_app.config["TIMEZONE"]
    form = _export_form(exports.filter_choices(db))
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("hr/export.html", form=form), status
    filters = exports.ExportFilters(policy=form.policy.data or None, version=form.version.data,
                                    unit=form.unit.data or None, since=form.since.data,
                                    until=form.until.data)
    try:
        exports.check_filters(db, filters)
    except exports.ExportError as exc:
        for name, message in exc.problems.items():
            getattr(form, name).errors.append(message)
        return render_template("hr/export.html", form=form), 400
    count = exports.count_acknowledgments(db, filters, tz)
    if count == 0:
        # Said on the form, with the filters kept, rather than handing over an empty ZIP. The
        # search itself is still a read of the records, so it is audited (count 0, no file).
        _audit("hr.export", "acknowledgments", count=0, bytes=0, filters=filters.as_details(), via="web",
               file=None)
        form.form_errors.append(nothing_matches("signed acknowledgments"))
        return render_template("hr/export.html", form=form), 200
    if count > current_app.config["EXPORT_JOB_RECEIPTS"]:
        # Many receipts: built by the worker, followed on its own page, downloaded when ready.
        job_id = export_jobs.queue_receipts(db, filters, now=request_now(), today=today(),
                                            requested_by_id=current_user.id, ip=client_ip())
        after_commit(wake, current_app._get_current_object())
        return redirect(url_for(".export_job", job_id=job_id), 303)
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL_BYTES)
    try:
        result = exports.write_ack_zip(db, spool, filters, tz=tz, now=request_now())
        _audit("hr.export", "acknowledgments", count=result.count, bytes=result.bytes_written,
               filters=filters.as_details(), via="web")
    except BaseException:
        spool.close()
        raise
    on_rollback(spool.close)  # the download is refused if its audit record cannot be committed
    name = f"acknowledgments-{today().isoformat()}.zip"
    return Response(exports.copy_chunks(spool), mimetype="application/zip", direct_passthrough=True,
                    headers={"Content-Disposition": attachment(name),
                             "Content-Length": str(result.bytes_written),
                             "X-Export-Count": str(result.count)})


@bp.get("/exports/<int:job_id>")
@hr_required
def export_job(job_id: int):
    """A queued receipt export: its progress, then its download."""
    return export_status(job_id, "receipts", download_endpoint="hr.export_job_download", back=url_for(".export"))


@bp.get("/exports/<int:job_id>/download")
@hr_required
def export_job_download(job_id: int):
    """The finished receipt export (audited as hr.export.download)."""
    return export_download(job_id, "receipts", "hr.export.download")


def _as_of_date(form: AsOfForm) -> date | None:
    """The date asked about, or None with the problem on the form; a future day has no answer yet."""
    if not form.validate():
        return None
    if form.on.data > today():
        form.on.errors.append(f"Choose a date up to today ({date_words(today())}); "
                              "the record cannot answer for days still to come.")
        return None
    return form.on.data


@bp.get("/members/<int:member_id>/as-of")
@hr_required
def as_of(member_id: int):
    """For a date: the version of each policy then in force and whether the member had signed it
    and passed its quiz by the end of that day."""
    db = get_session()
    form = AsOfForm(request.args)
    asked = "on" in request.args
    on = _as_of_date(form) if asked else None
    if on is None:
        record = hr_service.member_record(db, member_id)
        if record is None:
            abort(404)
        return render_template("hr/as_of.html", form=form, member=record.member, report=None), \
            400 if asked else 200
    report = hr_service.as_of(db, member_id, on, current_app.config["TIMEZONE"])
    if report is None:
        abort(404)
    _audit("hr.as_of", f"member:{member_id}", badge=report.member.badge, on=on.isoformat(),
           acknowledged={e.policy.id: e.acknowledged for e in report.entries})
    return render_template("hr/as_of.html", form=form, member=report.member, report=report)


@bp.get("/members/<int:member_id>/as-of.pdf")
@hr_required
def evidence_pdf(member_id: int):
    """The "as of date D" answer as a one-page PDF to print or file."""
    db = get_session()
    form = AsOfForm(request.args)
    on = _as_of_date(form)
    if on is None:
        abort(400, description="; ".join(form.on.errors) or "Give the date as YYYY-MM-DD.")
    tz = current_app.config["TIMEZONE"]
    report = hr_service.as_of(db, member_id, on, tz)
    if report is None:
        abort(404)
    generated_at = local_iso(request_now(), tz)
    from lms import pdf  # WeasyPrint loads only when a PDF is made

    html = pdf.render_template("evidence.html", report=report, department=current_app.config["DEPARTMENT_NAME"],
                               generated_at=generated_at, generated_by=current_user)
    document = pdf.create_pdf(html)
    _audit("hr.evidence_pdf", f"member:{member_id}", badge=report.member.badge, on=on.isoformat())
    name = f"as-of-{on.isoformat()}-badge-{exports.file_name_part(report.member.badge)}.pdf"
    return Response(document, mimetype="application/pdf",
                    headers={"Content-Disposition": attachment(name)})


def _password_confirmed(form: VoidForm) -> bool:
    """Whether the HR member re-entered their own password; if not, say so beside the field."""
    if password_matches(current_user, form.password.data):
        return True
    form.password.errors.append("That is not your current password.")
    return False


@bp.route("/acknowledgments/<int:ack_id>/void", methods=["GET", "POST"])
@hr_required
def void(ack_id: int):
    """Void an acknowledgment (it no longer counts; the record stays), with a reason and the HR
    member's password re-entered."""
    db = get_session()
    ack = db.get(Acknowledgment, ack_id)
    if ack is None:
        abort(404)
    existing = void_of(db, ack.id)
    form = VoidForm()
    if request.method == "GET":
        _audit("hr.view_acknowledgment", f"acknowledgment:{ack.id}", member_id=ack.member_id, badge=ack.badge)
    elif existing is None:
        valid = form.validate_on_submit()
        password_wrong = valid and not _password_confirmed(form)
        if valid and not password_wrong:
            try:
                void_acknowledgment(db, ack=ack, reason=form.reason.data, actor=current_user,
                                    ip=client_ip(), now=request_now())
            except VoidError as exc:
                db.rollback()
                form.reason.errors.append(str(exc))
            else:
                flash(f"Acknowledgment of policy {ack.policy_ref} (effective "
                      f"{date_words(ack.policy_effective)}) is void. The member must sign again.", "success")
                return redirect(url_for(".member", member_id=ack.member_id), 303)
        # A refused void is audited like a refused signature: which fields failed, never their values.
        _audit("ack.void", f"acknowledgment:{ack.id}", outcome="failure",
               fields=sorted(f.name for f in form if f.errors))
        # A wrong password here counts toward the HR member's lockout, as at signing.
        locked = password_wrong and count_reauthentication_failure(
            db, current_user._get_current_object(), action="ack.void", now=request_now(), ip=client_ip(),
            rules=SignInRules.from_config(current_app.config))
        keep_on_error()  # the refused void stays on the record; a wrong password counts
        if locked:
            return signed_out_locked()
    status = 400 if request.method == "POST" else 200
    return render_template("hr/void.html", ack=ack, void=existing, form=form), status
