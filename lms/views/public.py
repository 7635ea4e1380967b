"""Pages anyone may open: checking a receipt's verification code."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from lms.db import get_session
from lms.models import Acknowledgment

bp = Blueprint("public", __name__)


@bp.get("/verify")
def verify():
    """Code in; whether it matches a record, and only the essentials of that record, out."""
    code = " ".join(request.args.get("code", "").split()).upper()[:20]
    ack = None
    if code:
        ack = get_session().scalar(select(Acknowledgment).where(Acknowledgment.verification_code == code))
    return render_template("public/verify.html", code=code, ack=ack)
