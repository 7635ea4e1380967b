"""Bringing a database up to date: schema, content, and on first run the demo data."""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from lms import migrate
from lms.db import get_database, utcnow
from lms.models import Member, PolicyVersion
from lms.services.audit import record_event
from lms.services.clock import local_date
from lms.services.content import PolicyPack, load_packs, sync_content
from lms.services.personnel import purge_expired_uploads
from lms.services.personnel_history import apply_due_changes
from lms.services.receipt_signature import describe_signing
from lms.services.versions import reassign_superseded


def init_database(app: Flask) -> list[PolicyPack]:
    """Apply migrations and load content/ into the database; raises ContentError on bad content,
    before anything of the content is written. Also checks the receipt-signing configuration,
    generating the self-signed default pair if none is configured (SigningConfigError)."""
    describe_signing(app.config, app.instance_path)
    database = get_database(app)
    packs = load_packs(Path(app.config["CONTENT_DIR"]))
    migrate.upgrade(database.engine)
    now = utcnow()
    with database.sessionmaker() as session:
        loaded = {tuple(row) for row in session.execute(select(PolicyVersion.policy_id, PolicyVersion.effective))}
        sync_content(session, packs)
        # Versions added to a database that already held content are audited; the first load into
        # an empty one is the installation itself, like the schema it follows.
        for pack in packs if loaded else []:
            for version in pack.versions:
                if (pack.id, version.effective) not in loaded:
                    record_event(session, "content.version_added", at=now, target=f"policy:{pack.id}",
                                 details={"by": "system", "policy": pack.id, "title": pack.title,
                                          "version": version.effective.isoformat(),
                                          "text_sha256": version.text_sha256, "folder": pack.folder})
        # A version loaded with today's effective date (or reached since the last run) replaces
        # the one open cycles assigned; running init daily keeps cycles on the version in force.
        today = local_date(now, app.config["TIMEZONE"])
        reassign_superseded(session, today=today, now=now)
        # Personnel changes recorded ahead of their effective date reach the member rows (and
        # the cycles' audiences) when the date comes.
        apply_due_changes(session, today=today, now=now)
        purge_expired_uploads(session, now=now, keep_days=app.config["PERSONNEL_UPLOAD_KEEP_DAYS"])
        session.commit()
    return packs


def has_members(app: Flask) -> bool:
    """Whether anyone is on the personnel roster yet."""
    with get_database(app).sessionmaker() as session:
        return bool(session.scalar(select(func.count(Member.id))))
