"""A later policy version: in force from its effective date, re-acknowledged, its changes shown."""
from __future__ import annotations

import html
import shutil
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from lms import create_app
from lms.db import get_database
from lms.models import Acknowledgment, Assignment, PolicyVersion
from lms.services.content import load_packs
from lms.services.signing import signing_blockers
from lms.services.versions import diff_texts, paragraphs
from tests.conftest import TEST_CONFIG
from tests.helpers import answers_for, day_shown, open_attempt, read_all_lessons, sign, start_quiz, submit

FIXTURE = Path(__file__).parent / "fixtures" / "content_versions"


@pytest.fixture
def versions_app(app, tmp_path):
    """The test database, with a content folder holding only version 2020-01-01 of policy 99.1."""
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    later = tmp_path / "later"
    shutil.move(content / "99.1-portable-radios" / "versions" / "2024-01-01", later)
    versions_app = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["DATABASE_URL"],
                               "INSTANCE_PATH": app.instance_path, "CONTENT_DIR": str(content)})
    versions_app.later_version = later
    versions_app.content_dir = content
    yield versions_app
    get_database(versions_app).dispose()


def _complete(client, db, assignment_id: int, name: str) -> None:
    read_all_lessons(client, assignment_id)
    start_quiz(client, assignment_id)
    attempt = open_attempt(db, assignment_id)
    submit(client, assignment_id, attempt.id, answers_for(db, attempt))
    assert sign(client, assignment_id, name).status_code == 303


def test_later_version_is_reassigned_and_shows_what_changed(versions_app, make_member):
    runner = versions_app.test_cli_runner()
    assert runner.invoke(args=["lms", "init"]).exit_code == 0
    signed = make_member(first="Alex", last="Rivera", badge="501")
    pending = make_member(first="Jo", last="Kim", badge="502")
    year = date.today().year
    result = runner.invoke(args=["lms", "cycle", "create", "--year", str(year), "--due", f"{year + 1}-01-31",
                                 "--policy", "99.1"])
    assert result.exit_code == 0, result.output
    session = get_database(versions_app).sessionmaker()
    client = versions_app.test_client()
    from tests.conftest import AuthActions
    AuthActions(client).sign_in(signed.badge)
    old = session.scalars(select(Assignment).where(Assignment.member_id == signed.id)).one()
    _complete(client, session, old.id, "Alex Rivera")

    # The 2024 version arrives; init brings the open cycle onto it.
    shutil.move(versions_app.later_version, versions_app.content_dir / "99.1-portable-radios" / "versions" / "2024-01-01")
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    new_version = session.scalars(select(PolicyVersion).where(PolicyVersion.effective == date(2024, 1, 1))).one()
    for member in (signed, pending):
        current = session.scalars(select(Assignment).where(
            Assignment.member_id == member.id, Assignment.superseded_at.is_(None))).one()
        assert current.policy_version_id == new_version.id
    # The old signature stays on record; the member must sign again.
    assert session.scalars(select(Acknowledgment)).one().policy_effective == date(2020, 1, 1)
    dashboard = client.get("/training/").get_data(as_text=True)
    assert "effective " + day_shown(date(2024, 1, 1)) in dashboard and "Not started" in dashboard
    assert day_shown(date(2020, 1, 1)) not in dashboard

    current = session.scalars(select(Assignment).where(
        Assignment.member_id == signed.id, Assignment.superseded_at.is_(None))).one()
    page = html.unescape(client.get(f"/training/{current.id}").get_data(as_text=True))
    assert "This version replaces the one effective " + day_shown(date(2020, 1, 1)) in page
    lesson_links = [f"/training/{current.id}/lessons/{lesson.id}" for lesson in new_version.lessons]
    lesson = html.unescape(client.get(lesson_links[0]).get_data(as_text=True))
    assert "99.1.1.A.1: changed" in lesson
    assert "Report damage to a supervisor before the end of the shift." in lesson
    assert "Report damage to a supervisor immediately." in lesson
    other = html.unescape(client.get(lesson_links[1]).get_data(as_text=True))
    assert "99.1.2.C: added" in other and "99.1.1.A.1" not in other

    # A superseded assignment can no longer be signed; the new one signs.
    pending_old = session.scalars(select(Assignment).where(
        Assignment.member_id == pending.id, Assignment.superseded_at.is_not(None))).one()
    assert signing_blockers(session, pending_old) == [
        "A later version of this policy is now in force; sign that version instead."]
    _complete(client, session, current.id, "Alex Rivera")
    acks = session.scalars(select(Acknowledgment).order_by(Acknowledgment.sequence)).all()
    assert [a.policy_effective for a in acks] == [date(2020, 1, 1), date(2024, 1, 1)]
    # A second init changes nothing more.
    assert runner.invoke(args=["lms", "init"]).exit_code == 0
    session.expire_all()
    assert len(session.scalars(select(Assignment)).all()) == 4
    session.close()


def test_content_check_flags_questions_citing_changed_paragraphs(app, tmp_path):
    content = tmp_path / "content"
    shutil.copytree(FIXTURE, content)
    flagged_app = create_app({**TEST_CONFIG, "DATABASE_URL": app.config["DATABASE_URL"],
                              "INSTANCE_PATH": app.instance_path, "CONTENT_DIR": str(content)})
    result = flagged_app.test_cli_runner().invoke(args=["lms", "content", "check"])
    assert result.exit_code == 0
    assert "question care-02 cites 99.1.1.A.1; changed since 2020-01-01: 99.1.1.A.1" in result.output
    flags = [line for line in result.output.splitlines() if line.startswith("Flag:")]
    assert not any("disc-01" in line or "disc-02" in line for line in flags), flags


def test_paragraph_diff():
    packs = load_packs(FIXTURE)
    first, second = packs[0].versions
    labels = paragraphs(first.text, "99.1")
    assert labels["99.1.1.A.2"] == "2. Keep the radio charged."
    diff = diff_texts(first.text, second.text, "99.1", first.effective)
    assert [(c.paragraph, c.kind) for c in diff.changes] == [("99.1.1.A.1", "changed"), ("99.1.2.C", "added")]
    assert [c.paragraph for c in diff.in_sections(["99.1.2"])] == ["99.1.2.C"]


def test_the_worker_switches_open_cycles_to_a_version_on_its_effective_date(versions_app, make_member):
    """The daily effective-date switch runs as a periodic job: what ``init`` does at start."""
    from lms.services.content import sync_content

    runner = versions_app.test_cli_runner()
    assert runner.invoke(args=["lms", "init"]).exit_code == 0
    member = make_member(first="Jo", last="Kim", badge="502")
    year = date.today().year
    assert runner.invoke(args=["lms", "cycle", "create", "--year", str(year), "--due", f"{year + 1}-01-31",
                               "--policy", "99.1"]).exit_code == 0
    # The 2024 version is loaded without init's switch (as a content update the day before).
    shutil.move(versions_app.later_version, versions_app.content_dir / "99.1-portable-radios" / "versions" / "2024-01-01")
    session = get_database(versions_app).sessionmaker()
    sync_content(session, load_packs(versions_app.content_dir))
    session.commit()
    assert runner.invoke(args=["lms", "jobs", "schedule", "effective-date-switch"]).exit_code == 0
    result = runner.invoke(args=["lms", "jobs", "run"])
    assert "1 done" in result.output, result.output
    session.expire_all()
    current = session.scalars(select(Assignment).where(Assignment.member_id == member.id,
                                                       Assignment.superseded_at.is_(None))).one()
    assert current.policy_version.effective == date(2024, 1, 1)
    from lms.models import AuditEvent, Job
    assert session.scalars(select(Job).where(Job.kind == "periodic")).one().result == {"assignments": 1, "personnel_changes": 0}
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "cycle.version_switch")).one()
    session.close()
