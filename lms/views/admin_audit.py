"""The administrator's view of the audit log: filter, page, export."""
from __future__ import annotations

import io
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user

from lms.auth import role_required
from lms.db import get_session
from lms.forms.audit import AuditFilterForm
from lms.services.audit import AuditFilters, record_event, search_events, write_events_csv
from lms.services.validators import ascii_int
from lms.web import attachment, client_ip, request_now

bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")
PER_PAGE = 100


def _filters(form: AuditFilterForm) -> AuditFilters:
    zone = ZoneInfo(current_app.config["TIMEZONE"])

    def start_of(day):
        return datetime.combine(day, time(0), zone) if day else None

    return AuditFilters(action=form.action.data or None, actor_badge=form.actor.data or None,
                        outcome=form.outcome.data or None, since=start_of(form.since.data),
                        until=start_of(form.until.data + timedelta(days=1)) if form.until.data else None)


@bp.get("/")
@role_required("admin")
def log():
    """Events newest first, filtered; reading the log is itself audited."""
    form = AuditFilterForm(request.args)
    if request.args and not form.validate():
        return render_template("admin/audit.html", form=form, rows=[], total=0, page=1, pages=1), 400
    page = ascii_int(request.args.get("page", "1"), low=1, high=100_000) or 1
    db = get_session()
    filters = _filters(form)
    rows, total = search_events(db, filters, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    record_event(db, "audit.view", at=request_now(), actor_id=current_user.id, ip=client_ip(),
                 details={k: v for k, v in request.args.items() if v})
    return render_template("admin/audit.html", form=form, rows=rows, total=total, page=page,
                           pages=max(1, -(-total // PER_PAGE)), tz=ZoneInfo(current_app.config["TIMEZONE"]))


@bp.get("/export.csv")
@role_required("admin")
def export():
    """The filtered log as CSV."""
    form = AuditFilterForm(request.args)
    if not form.validate():
        return render_template("admin/audit.html", form=form, rows=[], total=0, page=1, pages=1), 400
    db = get_session()
    out = io.StringIO()
    count = write_events_csv(db, _filters(form), out, current_app.config["TIMEZONE"])
    record_event(db, "audit.export", at=request_now(), actor_id=current_user.id, ip=client_ip(),
                 details={"rows": count, **{k: v for k, v in request.args.items() if v}})
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": attachment("audit-log.csv")})
