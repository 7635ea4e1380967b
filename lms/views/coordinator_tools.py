"""The coordinator's item analysis (which questions people miss) and reminder e-mails to members
who are overdue or have not started."""
from __future__ import annotations

import csv
import io
from contextlib import closing

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField
from wtforms.validators import DataRequired

from lms.auth import role_required
from lms.db import get_session
from lms.models import Cycle
from lms.services import item_analysis as items_service
from lms.services import reminders as reminders_service
from lms.services.audit import record_event
from lms.web import client_ip, commit, request_now, today

bp = Blueprint("coordinator_tools", __name__, url_prefix="/coordinator")
coordinator_required = role_required("coordinator", "admin")

#: Candidates listed on the preview page; the send covers them all.
PREVIEW_LIMIT = 500


class SendRemindersForm(FlaskForm):
    """The confirmation before reminders go out (input shape only)."""

    confirm = BooleanField("I have checked the list above: send these reminders now",
                           validators=[DataRequired("Tick the box to confirm you want to send the reminders.")])


def _cycle(year: int) -> Cycle:
    """The cycle of ``year``, or 404."""
    cycle = get_session().scalar(select(Cycle).where(Cycle.year == year))
    if cycle is None:
        abort(404)
    return cycle


@bp.get("/cycles/<int:year>/items")
@coordinator_required
def items(year: int):
    """Item analysis of each policy version of the cycle: per topic and question, how often it
    was answered and right, which wrong options drew people, and the questions most people miss."""
    db = get_session()
    cycle = _cycle(year)
    analyses = [items_service.item_analysis(db, cycle, version) for version in cycle.policy_versions]
    return render_template("coordinator/items.html", cycle=cycle, analyses=analyses,
                           too_easy=items_service.TOO_EASY_ABOVE, too_hard=items_service.TOO_HARD_BELOW)


@bp.get("/cycles/<int:year>/items.csv")
@coordinator_required
def items_csv(year: int):
    """The item analysis of every policy version of the cycle as CSV, one row per question."""
    db = get_session()
    cycle = _cycle(year)
    analyses = [items_service.item_analysis(db, cycle, version) for version in cycle.policy_versions]
    header, rows = items_service.csv_rows(analyses)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    record_event(db, "items.export", at=request_now(), actor_id=current_user.id, target=f"cycle:{cycle.year}",
                 ip=client_ip(), details={"questions": len(rows)})
    commit()
    return Response(out.getvalue(), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="item-analysis-{cycle.year}.csv"'})


def _preview(cycle: Cycle, form: SendRemindersForm, status: int = 200):
    """The reminders page: who would be reminded, who is skipped, and a sample message."""
    db = get_session()
    tz = current_app.config["TIMEZONE"]
    candidates = reminders_service.reminder_candidates(db, cycle.year, today(), tz)
    skipped = reminders_service.skipped_counts(db, cycle.year, today(), tz)
    sample = None
    if candidates:
        first = candidates[0]
        sample = reminders_service.build_message(first, first.items, cycle,
                                                 current_app.config["DEPARTMENT_NAME"],
                                                 current_app.config["MAIL_SENDER"])
    # The list names members and their standing: a roster read, so it is audited.
    record_event(db, "reminder.preview", at=request_now(), actor_id=current_user.id,
                 target=f"cycle:{cycle.year}", ip=client_ip(),
                 details={"candidates": len(candidates), "already_reminded": skipped.already_reminded,
                          "no_email": skipped.no_email})
    commit()
    return render_template("coordinator/reminders.html", cycle=cycle, candidates=candidates[:PREVIEW_LIMIT],
                           total=len(candidates), skipped=skipped, sample=sample, form=form,
                           transport=current_app.config["MAIL_TRANSPORT"], today=today()), status


@bp.get("/cycles/<int:year>/reminders")
@coordinator_required
def reminders(year: int):
    """Preview the reminders: the members who would get one and a sample message."""
    return _preview(_cycle(year), SendRemindersForm(formdata=None))


@bp.post("/cycles/<int:year>/reminders")
@coordinator_required
def send_reminders(year: int):
    """Send the reminders the preview lists (recomputed now), then say how many went out."""
    cycle = _cycle(year)
    form = SendRemindersForm()
    if not form.validate_on_submit():
        return _preview(cycle, form, 400)
    db = get_session()
    tz = current_app.config["TIMEZONE"]
    already = reminders_service.skipped_counts(db, cycle.year, today(), tz).already_reminded
    candidates = reminders_service.reminder_candidates(db, cycle.year, today(), tz)
    transport = reminders_service.transport_from_config(current_app.config, current_app.instance_path)
    with closing(transport):
        result = reminders_service.send_reminders(
            db, candidates, transport=transport, now=request_now(), today=today(),
            sent_by_id=current_user.id, ip=client_ip(), cycle=cycle,
            department=current_app.config["DEPARTMENT_NAME"], sender=current_app.config["MAIL_SENDER"])
    commit()
    sent = len(result.sent)
    flash(f"Sent {sent} reminder{'' if sent == 1 else 's'}; "
          f"{already + len(result.already_reminded)} already reminded today.", "success")
    if result.failed is not None:
        current_app.logger.warning("reminder to member %s failed: %s", result.failed.member_id, result.error)
        flash(f"Sending stopped at {result.failed.full_name} (badge {result.failed.badge}): the mail "
              f"server refused the message ({result.error}). Try again later; nobody is reminded twice.",
              "error")
    return redirect(url_for(".reminders", year=cycle.year))
