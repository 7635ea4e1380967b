"""The training coordinator's pages."""
from __future__ import annotations

from flask import Blueprint, render_template

from lms.auth import role_required
from lms.db import get_session
from lms.services.overview import cycle_counts

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")


@bp.get("/")
@role_required("coordinator", "admin")
def home():
    """Every cycle with how many of its assignments are signed."""
    return render_template("coordinator/home.html", cycles=cycle_counts(get_session()))
