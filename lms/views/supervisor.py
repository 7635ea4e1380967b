"""A supervisor's pages (sergeant, lieutenant): the cycles, the roster of the members who report to
them (directly and through their sergeants) with the coordinator's statuses, filters and exports,
a member's progress, and reminders to the members who are not done.

Every page narrows to the supervisor's own reports on the server (RosterFilters.reports_to, a
recursive query over the chain of command): a member outside them is a 404, and an export holds
their reports only. Every roster read, export and member view is audited as the coordinator's are.
The roster's form, filters, paging and templates are the coordinator's (lms.views.coordinator),
so a filter added there reaches supervisors too.
"""
from __future__ import annotations

from dataclasses import replace
from math import ceil

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from lms.auth import role_required
from lms.db import get_session
from lms.forms.coordinator import ExemptionForm
from lms.jobs import wake
from lms.models import Assignment, Cycle, Member
from lms.services import reminders as reminders_service
from lms.services.audit import record_event
from lms.services.charts import completion_by_unit_svg, percent_complete
from lms.services.cycles import file_stem
from lms.services.links import public_url
from lms.services.roster import NOT_DONE_STATUSES, RosterFilters, roster_rows, roster_summary
from lms.services.roster_export import (
    describe_filters,
    filters_details,
)
from lms.services.supervision import is_report, report_counts, supervised_cycles
from lms.views.coordinator import (
    PAGE_SIZE,
    SORT_LABELS,
    Pages,
    _folded_in_use,
    _member_page,
    _query_args,
    _roster_filters,
    _roster_form,
    send_roster_export,
)
from lms.views.coordinator_tools import PREVIEW_LIMIT, SendRemindersForm
from lms.views.export_pages import export_download, export_status
from lms.web import after_commit, client_ip, cycle_or_404, request_now, today

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")
supervisor_required = role_required("supervisor")


def _audit(action: str, target: str | None = None, **details) -> None:
    """Record what the signed-in supervisor read or did, from where, now."""
    record_event(get_session(), action, at=request_now(), actor_id=current_user.id, target=target,
                 ip=client_ip(), details=details or None)


def _tz() -> str:
    return current_app.config["TIMEZONE"]


def _my_filters(filters: RosterFilters) -> RosterFilters:
    """The filters narrowed to the signed-in supervisor's reports, whatever the form asked."""
    return replace(filters, reports_to=current_user.badge)


def _my_member_or_404(cycle: Cycle, member_id: int) -> Member:
    """A member who reports to the signed-in supervisor now and whom the cycle assigned something;
    404 for anyone else, so a supervisor cannot tell whether a member outside their people exists."""
    db = get_session()
    assigned = db.scalar(select(Assignment.id).where(Assignment.cycle_id == cycle.id,
                                                     Assignment.member_id == member_id).limit(1))
    if assigned is None or not is_report(db, current_user.badge, member_id):
        abort(404)
    return db.get(Member, member_id)


@bp.get("/")
@supervisor_required
def home():
    """The cycles, each with how far the supervisor's members have come, and who reports to them."""
    db = get_session()
    direct, everyone = report_counts(db, current_user.badge)
    return render_template("supervisor/home.html", cycles=supervised_cycles(db, current_user.badge, today=today(),
                                                                             tz=_tz()),
                           direct=direct, everyone=everyone)


@bp.get("/cycles/<int:cycle_id>/roster")
@supervisor_required
def roster(cycle_id: int):
    """The supervisor's members in a cycle: the coordinator's roster, narrowed to their reports."""
    cycle = cycle_or_404(cycle_id)
    form = _roster_form(cycle)
    filters = _roster_filters(cycle, form)
    if filters is None:
        return render_template("supervisor/roster.html", cycle=cycle, form=form, filters=None, roster_area="supervisor",
                               folded_in_use=_folded_in_use(form), folded_open=True), 400
    filters = _my_filters(filters)
    db, tz = get_session(), _tz()
    sort, descending = form.sort.data, form.dir.data == "desc"
    head = roster_summary(db, filters, today=today(), tz=tz)
    total = sum(head.counts.values())
    page_count = max(1, ceil(total / PAGE_SIZE))
    pages = Pages(number=min(form.page.data or 1, page_count), count=page_count, total_rows=total)
    rows = list(roster_rows(db, filters, today=today(), tz=tz, sort=sort, descending=descending,
                            limit=PAGE_SIZE, offset=pages.offset))
    _audit("roster.view", f"cycle:{cycle.id}", filters=filters_details(filters), sort=sort,
           direction=form.dir.data, page=pages.number, rows=total)
    return render_template(
        "supervisor/roster.html", cycle=cycle, form=form, filters=filters, rows=rows, counts=head.counts,
        total=total, pages=pages, sort=sort, descending=descending, query_args=_query_args,
        summary=[(unit, n, done, percent_complete(n, done)) for unit, n, done in head.units],
        chart=completion_by_unit_svg(head.units),
        chart_narrow=completion_by_unit_svg(head.units, narrow=True, id_prefix="unit-chart-narrow"),
        not_done=sum(head.counts[s] for s in NOT_DONE_STATUSES), filters_text=describe_filters(filters, cycle.name),
        sort_labels=SORT_LABELS, pdf_max_rows=current_app.config["ROSTER_PDF_MAX_ROWS"], roster_area="supervisor",
        printed_at=request_now(),
        folded_in_use=_folded_in_use(form), folded_open=_folded_in_use(form),
        multiple_policies=len(cycle.policy_versions) > 1 and not filters.policy_id)


@bp.get("/cycles/<int:cycle_id>/roster.<any(csv, xlsx, pdf):kind>")
@supervisor_required
def roster_export(cycle_id: int, kind: str):
    """The supervisor's view of the roster (every page of it, their reports only) as CSV, XLSX or PDF."""
    cycle = cycle_or_404(cycle_id)
    form = _roster_form(cycle)
    filters = _roster_filters(cycle, form)
    if filters is None:
        problems = "; ".join(e for f in form for e in f.errors)
        abort(400, description=f"The roster filters are not right: {problems}")
    return send_roster_export(cycle, form, _my_filters(filters), kind,
                              title=f"{cycle.name} roster: members reporting to {current_user.full_name}",
                              stem=f"{file_stem(cycle)}-{current_user.badge}")


@bp.get("/exports/<int:job_id>")
@supervisor_required
def export_job(job_id: int):
    """A queued roster export the supervisor asked for: its progress, then its download."""
    return export_status(job_id, "roster", download_endpoint="supervisor.export_job_download",
                         back=url_for(".home"))


@bp.get("/exports/<int:job_id>/download")
@supervisor_required
def export_job_download(job_id: int):
    """The finished roster export (audited as roster.export.download)."""
    return export_download(job_id, "roster", "roster.export.download")


@bp.get("/cycles/<int:cycle_id>/members/<int:member_id>")
@supervisor_required
def member_progress(cycle_id: int, member_id: int):
    """One of the supervisor's members in a cycle: lessons, quiz attempts, signature, exemption
    (read only: exemptions and extra attempts stay with the coordinator)."""
    cycle = cycle_or_404(cycle_id)
    member = _my_member_or_404(cycle, member_id)
    _audit("roster.view_member", f"member:{member.id}", cycle=cycle.id, cycle_name=cycle.name, badge=member.badge)
    return _member_page(cycle, member, ExemptionForm(formdata=None), template="supervisor/member.html",
                       read_only=True)


def _reminders_page(cycle: Cycle, form: SendRemindersForm, status: int = 200):
    """Who among the supervisor's members would be reminded now, who is skipped, a sample message."""
    db, tz = get_session(), _tz()
    candidates = reminders_service.reminder_candidates(db, cycle.id, today(), tz, reports_to=current_user.badge)
    skipped = reminders_service.skipped_counts(db, cycle.id, today(), tz, reports_to=current_user.badge)
    sample = None
    if candidates:
        first = candidates[0]
        sample = reminders_service.build_message(
            first, first.items, cycle, current_app.config["DEPARTMENT_NAME"], current_app.config["MAIL_SENDER"],
            base_url=public_url(current_app.config, ""))
    # The list names members and their standing: a roster read, so it is audited.
    _audit("reminder.preview", f"cycle:{cycle.id}", candidates=len(candidates),
           already_reminded=skipped.already_reminded, no_email=skipped.no_email, reports_to=current_user.badge)
    return render_template("supervisor/reminders.html", cycle=cycle, candidates=candidates[:PREVIEW_LIMIT],
                           total=len(candidates), skipped=skipped, sample=sample, form=form,
                           transport=current_app.config["MAIL_TRANSPORT"], today=today()), status


@bp.get("/cycles/<int:cycle_id>/reminders")
@supervisor_required
def reminders(cycle_id: int):
    """Preview the reminders to the supervisor's members who are not done."""
    return _reminders_page(cycle_or_404(cycle_id), SendRemindersForm(formdata=None))


@bp.post("/cycles/<int:cycle_id>/reminders")
@supervisor_required
def send_reminders(cycle_id: int):
    """Queue the reminders the preview lists (recomputed now, their reports only) for the worker."""
    cycle = cycle_or_404(cycle_id)
    form = SendRemindersForm()
    if not form.validate_on_submit():
        return _reminders_page(cycle, form, 400)
    db, tz = get_session(), _tz()
    already = reminders_service.skipped_counts(db, cycle.id, today(), tz,
                                               reports_to=current_user.badge).already_reminded
    candidates = reminders_service.reminder_candidates(db, cycle.id, today(), tz, reports_to=current_user.badge)
    result = reminders_service.queue_reminders(
        db, candidates, now=request_now(), today=today(), sent_by_id=current_user.id, ip=client_ip(),
        cycle=cycle, department=current_app.config["DEPARTMENT_NAME"], sender=current_app.config["MAIL_SENDER"],
        base_url=public_url(current_app.config, ""), campaign="supervisor")
    # Each message is audited as "reminder.send" when the worker sends it; this records the press.
    _audit("reminder.queue", f"cycle:{cycle.id}", queued=len(result.queued),
           already_reminded=already + len(result.already_reminded), reports_to=current_user.badge)
    after_commit(wake, current_app._get_current_object())
    queued = len(result.queued)
    flash(f"Queued {queued} reminder{'' if queued == 1 else 's'} to your members; "
          f"{already + len(result.already_reminded)} already reminded today. "
          "They go out in the background within a minute.", "success")
    return redirect(url_for(".reminders", cycle_id=cycle.id), 303)
