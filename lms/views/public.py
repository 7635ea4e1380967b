"""Pages anyone may open: checking a receipt's verification code."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select

from lms.db import get_session
from lms.models import Acknowledgment
from lms.services.clock import local_date
from lms.services.records import void_of

bp = Blueprint("public", __name__)


@bp.get("/verify")
def verify():
    """Code in; whether it matches a record, and only the essentials of that record, out."""
    # Codes are read aloud and pasted: keep only letters and digits, then regroup in fours.
    raw = "".join(ch for ch in request.args.get("code", "").upper() if ch.isascii() and ch.isalnum())[:12]
    code = "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))
    ack = voided_on = None
    if code:
        db = get_session()
        ack = db.scalar(select(Acknowledgment).where(Acknowledgment.verification_code == code))
        void = void_of(db, ack.id) if ack is not None else None
        # The day only: the reason and who voided it are HR's business, not the public's.
        voided_on = local_date(void.voided_at, current_app.config["TIMEZONE"]) if void else None
    return render_template("public/verify.html", code=code, ack=ack, voided_on=voided_on)
