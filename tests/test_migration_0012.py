"""Migration 0012 (attempt grants, extra_attempts, saved answers) on a populated database, both
ways, and matching the models."""
from __future__ import annotations

import random

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from lms.db import Base, get_database, utcnow
from lms.migrate import downgrade, upgrade
from lms.models import Assignment, AttemptGrant, AttemptItem, Member
from lms.services import quiz as quiz_service
from lms.services.attempt_grants import grant_attempts
from lms.services.progress import mark_lesson_read
from tests.conftest import PASSWORD


def _downgrade(engine, revision: str) -> None:
    downgrade(engine, revision)


def test_0012_down_and_up_on_a_populated_database(app, db, make_member, open_cycle):
    officer = make_member(badge="501")
    coordinator = make_member(first="Cora", last="Dinator", badge="502", roles=("coordinator",))
    open_cycle()
    assignment = db.scalars(select(Assignment).where(Assignment.member_id == officer.id)).one()
    now = utcnow()
    for lesson in assignment.policy_version.lessons:
        mark_lesson_read(db, assignment, lesson, now)
    attempt = quiz_service.start_attempt(db, assignment, now, rng=random.Random(1))
    first = attempt.items[0]
    quiz_service.save_answers(db, attempt, {1: [first.option_order[0]]}, now)
    grant_attempts(db, assignment=assignment, granted_by=db.get(Member, coordinator.id), password=PASSWORD,
                   attempts=2, reason="Retake", now=now, ip=None)
    db.commit()
    db.close()
    engine = get_database(app).engine

    _downgrade(engine, "0010")
    with engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        assert "attempt_grant" not in tables
        assert "extra_attempts" not in {c["name"] for c in inspect(conn).get_columns("assignment")}
        assert conn.execute(text("SELECT count(*) FROM attempt_item")).scalar() == len(attempt.items)
        assert conn.execute(text("SELECT progress FROM assignment WHERE id = :id"),
                            {"id": assignment.id}).scalar() == "in_progress"

    upgrade(engine)
    session = get_database(app).sessionmaker()
    try:
        again = session.get(Assignment, assignment.id)
        assert again.extra_attempts == 0 and again.progress == "in_progress"  # no grant survives a downgrade
        assert session.scalar(select(AttemptItem.saved).where(AttemptItem.id == first.id)) is None
        assert session.scalars(select(AttemptGrant)).all() == []
    finally:
        session.close()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    mine = [d for d in diffs if any(n in repr(d) for n in ("attempt_grant", "extra_attempts", "'saved'", "saved_at"))]
    assert mine == []
