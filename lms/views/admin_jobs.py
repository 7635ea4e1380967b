"""The administrator's view of background jobs: the workers' heartbeats, how many jobs wait, and
the failed ones with their error, attempts and a Retry button."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from lms.auth import role_required
from lms.db import get_session
from lms.forms import ActionForm
from lms.jobs import wake
from lms.models import Job
from lms.services import jobs as jobs_service
from lms.web import after_commit, client_ip, request_now

bp = Blueprint("admin_jobs", __name__, url_prefix="/admin/jobs")
admin_required = role_required("admin")


@bp.get("/")
@admin_required
def jobs():
    """Workers, job counts and the failed jobs."""
    db = get_session()
    now = request_now()
    age = jobs_service.worker_heartbeat_age(db, now)
    within = timedelta(seconds=3 * float(current_app.config["JOBS_HEARTBEAT_SECONDS"]) + 30)
    return render_template("admin/jobs.html", failed=jobs_service.failed_jobs(db),
                           counts=jobs_service.status_counts(db), heartbeat_age=age,
                           workers=jobs_service.live_workers(db, now=now, within=within),
                           form=ActionForm(formdata=None))


@bp.post("/<int:job_id>/retry")
@admin_required
def retry(job_id: int):
    """Run a failed job again (audited)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    job = db.get(Job, job_id)
    if job is None:
        abort(404)
    try:
        jobs_service.retry(db, job, now=request_now(), actor_id=current_user.id, ip=client_ip())
    except jobs_service.JobError as exc:
        db.rollback()
        flash(str(exc), "error")
        return redirect(url_for(".jobs"))
    after_commit(wake, current_app._get_current_object())
    flash(f"Job {job_id} queued again.", "success")
    return redirect(url_for(".jobs"))
