"""The coordinator's item analysis (which questions people miss) and reminder e-mails to members
who are not done: queued now, or on the cycle's schedule."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from lms.auth import role_required
from lms.db import get_session
from lms.jobs import wake
from lms.models import Cycle
from lms.services import item_analysis as items_service
from lms.services import reminders as reminders_service
from lms.services.audit import record_event
from lms.services.cycles import file_stem
from lms.services.links import public_url
from lms.web import after_commit, client_ip, cycle_or_404, keep_on_error, request_now, today

bp = Blueprint("coordinator_tools", __name__, url_prefix="/coordinator")
coordinator_required = role_required("coordinator", "admin")

#: Candidates listed on the preview page; the send covers them all.
PREVIEW_LIMIT = 500


class SendRemindersForm(FlaskForm):
    """The confirmation before reminders go out (input shape only)."""

    confirm = BooleanField("I have checked the list above: send these reminders now",
                           validators=[DataRequired("Tick the box to confirm you want to send the reminders.")])


class ReminderScheduleForm(FlaskForm):
    """A cycle's reminder schedule (input shape only; the days are checked by the service)."""

    days_before = StringField("Days before the due date", validators=[Length(max=100)])
    weekly_overdue = BooleanField("Every week while a member is overdue")
    copy_supervisor = BooleanField("Send the member's supervisor a copy")


@bp.get("/cycles/<int:cycle_id>/items")
@coordinator_required
def items(cycle_id: int):
    """Item analysis of each policy version of the cycle: per topic and question, how often it
    was answered and right, which wrong options drew people, and the questions most people miss."""
    db = get_session()
    cycle = cycle_or_404(cycle_id)
    analyses = [items_service.item_analysis(db, cycle, version) for version in cycle.policy_versions]
    return render_template("coordinator/items.html", cycle=cycle, analyses=analyses,
                           too_easy=items_service.TOO_EASY_ABOVE, too_hard=items_service.TOO_HARD_BELOW)


@bp.get("/cycles/<int:cycle_id>/items.csv")
@coordinator_required
def items_csv(cycle_id: int):
    """The item analysis of every policy version of the cycle as CSV, one row per question."""
    db = get_session()
    cycle = cycle_or_404(cycle_id)
    analyses = [items_service.item_analysis(db, cycle, version) for version in cycle.policy_versions]
    header, rows = items_service.csv_rows(analyses)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    record_event(db, "items.export", at=request_now(), actor_id=current_user.id, target=f"cycle:{cycle.id}",
                 ip=client_ip(), details={"questions": len(rows)})
    return Response(out.getvalue(), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{file_stem(cycle, "item-analysis")}.csv"'})


def _schedule_form(cycle: Cycle) -> ReminderScheduleForm:
    """The schedule form, filled from the cycle's schedule (or the suggested one)."""
    schedule = reminders_service.schedule_of(get_session(), cycle)
    form = ReminderScheduleForm(formdata=None, prefix="schedule")
    form.days_before.data = schedule.days_before if schedule else "14, 7, 1"
    form.weekly_overdue.data = schedule.weekly_overdue if schedule else True
    form.copy_supervisor.data = schedule.copy_supervisor if schedule else False
    return form


def _preview(cycle: Cycle, form: SendRemindersForm, status: int = 200,
             schedule_form: ReminderScheduleForm | None = None):
    """The reminders page: who would be reminded now, who is skipped, a sample message, and the
    schedule with who it reminds today."""
    db = get_session()
    tz = current_app.config["TIMEZONE"]
    candidates = reminders_service.reminder_candidates(db, cycle.id, today(), tz)
    skipped = reminders_service.skipped_counts(db, cycle.id, today(), tz)
    schedule = reminders_service.schedule_of(db, cycle)
    scheduled = reminders_service.scheduled_candidates(db, cycle, schedule, today(), tz) if schedule else []
    sample = None
    if candidates:
        first = candidates[0]
        sample = reminders_service.build_message(
            first, first.items, cycle, current_app.config["DEPARTMENT_NAME"], current_app.config["MAIL_SENDER"],
            base_url=public_url(current_app.config, ""),
            copy_to=first.supervisor_email if schedule and schedule.copy_supervisor else None)
    # The list names members and their standing: a roster read, so it is audited.
    record_event(db, "reminder.preview", at=request_now(), actor_id=current_user.id,
                 target=f"cycle:{cycle.id}", ip=client_ip(),
                 details={"candidates": len(candidates), "already_reminded": skipped.already_reminded,
                          "no_email": skipped.no_email, "scheduled_today": len(scheduled)})
    # Kept beside a refused form (400) too: the page shows the list all the same.
    keep_on_error()
    return render_template(
        "coordinator/reminders.html", cycle=cycle, candidates=candidates[:PREVIEW_LIMIT], total=len(candidates),
        skipped=skipped, sample=sample, form=form, transport=current_app.config["MAIL_TRANSPORT"], today=today(),
        schedule=schedule, scheduled=scheduled[:PREVIEW_LIMIT], scheduled_total=len(scheduled),
        upcoming=reminders_service.upcoming_dates(cycle, schedule, today()) if schedule else [],
        schedule_form=schedule_form or _schedule_form(cycle),
        reminder_hour=current_app.config["REMINDER_HOUR"]), status


@bp.get("/cycles/<int:cycle_id>/reminders")
@coordinator_required
def reminders(cycle_id: int):
    """Preview the reminders: the members who would get one and a sample message."""
    return _preview(cycle_or_404(cycle_id), SendRemindersForm(formdata=None))


@bp.post("/cycles/<int:cycle_id>/reminders")
@coordinator_required
def send_reminders(cycle_id: int):
    """Queue the reminders the preview lists (recomputed now) for the worker, and return at once."""
    cycle = cycle_or_404(cycle_id)
    if cycle.closed_at is not None:
        flash(f"The {cycle.name} cycle is closed: it takes no more signatures, so no reminders go out for it.",
              "error")
        return redirect(url_for(".reminders", cycle_id=cycle.id))
    form = SendRemindersForm()
    if not form.validate_on_submit():
        return _preview(cycle, form, 400)
    db = get_session()
    tz = current_app.config["TIMEZONE"]
    already = reminders_service.skipped_counts(db, cycle.id, today(), tz).already_reminded
    candidates = reminders_service.reminder_candidates(db, cycle.id, today(), tz)
    schedule = reminders_service.schedule_of(db, cycle)
    result = reminders_service.queue_reminders(
        db, candidates, now=request_now(), today=today(), sent_by_id=current_user.id, ip=client_ip(),
        cycle=cycle, department=current_app.config["DEPARTMENT_NAME"], sender=current_app.config["MAIL_SENDER"],
        base_url=public_url(current_app.config, ""), copy_supervisor=bool(schedule and schedule.copy_supervisor))
    # Each message is audited as "reminder.send" when the worker sends it; this records the press.
    record_event(db, "reminder.queue", at=request_now(), actor_id=current_user.id, target=f"cycle:{cycle.id}",
                 ip=client_ip(), details={"queued": len(result.queued),
                                          "already_reminded": already + len(result.already_reminded)})
    after_commit(wake, current_app._get_current_object())
    queued = len(result.queued)
    flash(f"Queued {queued} reminder{'' if queued == 1 else 's'}; "
          f"{already + len(result.already_reminded)} already reminded today. "
          "They go out in the background; failures are listed for the administrator.", "success")
    return redirect(url_for(".reminders", cycle_id=cycle.id))


@bp.post("/cycles/<int:cycle_id>/reminders/schedule")
@coordinator_required
def save_schedule(cycle_id: int):
    """Set the cycle's reminder schedule."""
    cycle = cycle_or_404(cycle_id)
    form = ReminderScheduleForm(prefix="schedule")
    if not form.validate_on_submit():
        return _preview(cycle, SendRemindersForm(formdata=None), 400, schedule_form=form)
    db = get_session()
    try:
        reminders_service.save_schedule(db, cycle, days_before=form.days_before.data or "",
                                        weekly_overdue=form.weekly_overdue.data,
                                        copy_supervisor=form.copy_supervisor.data, now=request_now(),
                                        actor_id=current_user.id, ip=client_ip())
    except reminders_service.ScheduleError as exc:
        db.rollback()
        form.days_before.errors = [str(exc)]
        return _preview(cycle, SendRemindersForm(formdata=None), 400, schedule_form=form)
    flash("Reminder schedule saved.", "success")
    return redirect(url_for(".reminders", cycle_id=cycle.id))
