"""The page that follows a queued export and its download, shared by HR (receipts) and the
coordinator (roster): only the member who asked for an export sees it."""
from __future__ import annotations

from flask import abort, current_app, render_template, send_file, url_for
from flask_login import current_user

from lms.db import get_session
from lms.jobs import export_folder
from lms.models import Job
from lms.services.audit import record_event
from lms.services.export_jobs import EXPORT, MIMETYPES
from lms.web import client_ip, request_now


def _own_export_or_404(job_id: int, kind: str) -> Job:
    """The export job ``job_id`` of type ``kind`` that the signed-in member asked for, or 404."""
    job = get_session().get(Job, job_id)
    if job is None or job.kind != EXPORT or job.payload.get("type") != kind or job.created_by_id != current_user.id:
        abort(404)
    return job


def export_status(job_id: int, kind: str, *, download_endpoint: str, back: str):
    """Where the export stands: waiting, being built (with progress), ready, failed or expired."""
    job = _own_export_or_404(job_id, kind)
    ready = job.status == "done" and (export_folder(current_app) / job.result["file"]).is_file()
    expired = job.status == "done" and not ready
    return render_template("export_job.html", job=job, ready=ready, expired=expired, back=back,
                           download=url_for(download_endpoint, job_id=job.id) if ready else None,
                           name=job.payload["download_name"])


def export_download(job_id: int, kind: str, action: str):
    """The finished file, audited with ``action``; 404 until it is ready or once it expired."""
    job = _own_export_or_404(job_id, kind)
    if job.status != "done":
        abort(404)
    path = export_folder(current_app) / job.result["file"]
    if not path.is_file():
        abort(404)
    db = get_session()
    record_event(db, action, at=request_now(), actor_id=current_user.id, target=f"job:{job.id}", ip=client_ip(),
                 details={"count": job.result.get("count"), "bytes": job.result.get("bytes"),
                          "file": job.payload["download_name"]})
    return send_file(path, mimetype=MIMETYPES[job.payload["extension"]], as_attachment=True,
                     download_name=job.payload["download_name"], max_age=0)
