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
    # Codes are read aloud and pasted: keep only letters and digits, then regroup in fours.
    raw = "".join(ch for ch in request.args.get("code", "").upper() if ch.isascii() and ch.isalnum())[:12]
    code = "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))
    ack = None
    if code:
        ack = get_session().scalar(select(Acknowledgment).where(Acknowledgment.verification_code == code))
    return render_template("public/verify.html", code=code, ack=ack)
