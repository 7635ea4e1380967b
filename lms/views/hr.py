"""HR and records pages."""
from __future__ import annotations

from flask import Blueprint, render_template

from lms.auth import role_required
from lms.db import get_session
from lms.services.overview import acknowledgments_per_version

bp = Blueprint("hr", __name__, url_prefix="/hr")


@bp.get("/")
@role_required("hr")
def home():
    """How many acknowledgments of each policy version are on record."""
    return render_template("hr/home.html", versions=acknowledgments_per_version(get_session()))
