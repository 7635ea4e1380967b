"""The administrator's pages."""
from __future__ import annotations

from flask import Blueprint, render_template

from lms.auth import role_required
from lms.db import get_session
from lms.services.overview import content_summary, personnel_summary

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required("admin")
def home():
    """Loaded content and personnel at a glance."""
    db = get_session()
    return render_template("admin/home.html", content=content_summary(db),
                           personnel=personnel_summary(db))
