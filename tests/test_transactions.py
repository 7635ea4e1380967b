"""One transaction per request and per command (lms/transaction.py): a success commits, a refusal
rolls back unless the view kept it on purpose, an exception leaves nothing; no view or command
commits by hand."""
from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from flask import abort, flash
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from lms.cli import _Command
from lms.config import PACKAGE_DIR
from lms.db import get_database, get_session, utcnow
from lms.models import AuditEvent, Member
from lms.services.audit import record_event
from lms.web import after_commit, keep_on_error
from tests.conftest import PASSWORD, csrf_token

#: Where writes are decided by lms.transaction, never by hand.
NO_HAND_COMMITS = sorted((PACKAGE_DIR / "views").glob("*.py")) + [PACKAGE_DIR / "cli.py", PACKAGE_DIR / "auth.py"]


def _hand_commits(path: Path) -> list[str]:
    """Each call of ``commit()`` or ``<anything>.commit()`` in a module, as file:line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name == "commit":
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_view_or_command_commits_by_hand():
    """Views, the sign-in plumbing and CLI commands leave committing to lms.transaction (mark a
    refusal that must stay on the record with keep_on_error instead)."""
    offenders = [where for path in NO_HAND_COMMITS for where in _hand_commits(path)]
    assert offenders == []


def test_the_scan_finds_a_hand_commit(tmp_path):
    """The scan above is not vacuous: both spellings are found."""
    module = tmp_path / "probe.py"
    module.write_text("from lms.web import commit\n\ndef view(db):\n    commit()\n    db.commit()\n")
    assert _hand_commits(module) == ["probe.py:4", "probe.py:5"]


# --- web requests --------------------------------------------------------------------------------

def _events(db, action: str) -> int:
    db.rollback()  # a fresh snapshot: the requests wrote through their own sessions
    return db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _write(action: str) -> None:
    record_event(get_session(), action, at=utcnow(), details={"probe": True})
    get_session().flush()


@pytest.fixture
def probes(app):
    """Routes that write an audit event and then end each way a view can."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # the error page renders, as in production

    def raises():
        _write("probe.raises")
        raise RuntimeError("after writing")

    def refused():
        _write("probe.refused")
        return "no", 400

    def refused_kept():
        _write("probe.kept")
        keep_on_error()
        return "no, on the record", 403

    def aborted():
        _write("probe.aborted")
        abort(404)

    def succeeds():
        _write("probe.succeeds")

        def seen_from_elsewhere():
            with get_database(app).sessionmaker() as other:
                app.extensions["probe_seen"] = _events(other, "probe.succeeds")

        after_commit(seen_from_elsewhere)
        return "yes"

    def commit_fails():
        flash("Saved.", "success")
        # Two members with one badge: the unique index refuses them when the commit flushes.
        get_session().add_all([Member(badge="dup-1", first_name="A", last_name="B"),
                               Member(badge="dup-1", first_name="C", last_name="D")])
        return "saved"

    for view in (raises, refused, refused_kept, aborted, succeeds, commit_fails):
        app.add_url_rule(f"/probe/{view.__name__}", f"probe_{view.__name__}", view)
    return app


def test_a_view_that_raises_after_writing_leaves_nothing(probes, client, db):
    response = client.get("/probe/raises")
    assert response.status_code == 500 and "Something went wrong" in response.get_data(as_text=True)
    assert _events(db, "probe.raises") == 0


def test_a_refusal_after_a_flush_leaves_nothing(probes, client, db):
    assert client.get("/probe/refused").status_code == 400
    assert client.get("/probe/aborted").status_code == 404
    assert _events(db, "probe.refused") == 0 and _events(db, "probe.aborted") == 0


def test_a_refusal_kept_on_purpose_is_committed(probes, client, db):
    assert client.get("/probe/refused_kept").status_code == 403
    assert _events(db, "probe.kept") == 1


def test_a_success_commits_then_runs_the_after_commit_work(probes, client, db):
    assert client.get("/probe/succeeds").get_data(as_text=True) == "yes"
    assert _events(db, "probe.succeeds") == 1
    # The callback ran after the commit: another connection already saw the request's write.
    assert probes.extensions["probe_seen"] == 1


def test_a_commit_that_fails_gives_the_error_page_and_no_false_message(probes, client, db):
    response = client.get("/probe/commit_fails")
    assert response.status_code == 500 and "Something went wrong" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Member).where(Member.badge == "dup-1")) == 0
    # The "Saved." flashed before the failed commit is not shown on the next page.
    assert "Saved." not in client.get("/sign-in").get_data(as_text=True)


def test_a_commit_that_loses_the_database_says_so(probes, app, client, monkeypatch):
    from sqlalchemy.orm import Session

    def down(self):
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Session, "commit", down)
    response = client.get("/probe/succeeds")
    assert response.status_code == 503 and "database cannot be reached" in response.get_data(as_text=True)


def test_a_streamed_export_is_audited_before_its_first_byte(client, auth, db, make_member, open_cycle):
    coordinator = make_member(roles=("coordinator",))
    cycle = open_cycle()
    auth.sign_in(coordinator.badge)
    response = client.get(f"/coordinator/cycles/{cycle.id}/roster.csv", buffered=False)
    try:
        assert response.status_code == 200
        assert _events(db, "roster.export") == 1  # before any of the body was read
    finally:
        response.close()


def test_a_refused_sign_in_is_audited_and_counts_toward_the_lockout(app, client, db, make_member):
    member = make_member()
    threshold = app.config["LOCKOUT_THRESHOLD"]
    for _ in range(threshold):
        response = client.post("/sign-in", data={"badge": member.badge, "password": "not it",
                                                 "csrf_token": csrf_token(client)})
        assert response.status_code == 400
    db.rollback()
    refusals = db.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "auth.sign_in", AuditEvent.outcome == "failure",
        AuditEvent.target == f"member:{member.id}"))
    assert refusals == threshold
    assert db.get(Member, member.id, populate_existing=True).is_locked(utcnow())
    # Locked: the right password is refused now too.
    response = client.post("/sign-in", data={"badge": member.badge, "password": PASSWORD,
                                             "csrf_token": csrf_token(client)})
    assert response.status_code == 400


# --- CLI commands --------------------------------------------------------------------------------

def _probe_command(ending: str) -> click.Command:
    """A command (run like every ``lms`` command) that writes an event and then ends ``ending``."""

    @click.command(f"probe-{ending}", cls=_Command)
    @with_appcontext
    def probe() -> None:
        _write(f"probe.cli.{ending}")
        if ending == "raises":
            raise RuntimeError("after writing")
        if ending == "fails":
            raise SystemExit(1)
        if ending == "fails_kept":
            keep_on_error()
            raise SystemExit(2)
        if ending == "exits":
            click.get_current_context().exit(0)
        after_commit(click.echo, "committed")

    return probe


@pytest.mark.parametrize("ending, exit_code, kept", [("returns", 0, 1), ("exits", 0, 1), ("raises", 1, 0),
                                                     ("fails", 1, 0), ("fails_kept", 2, 1)])
def test_a_command_commits_once_when_it_succeeds_or_keeps_a_failure(app, db, ending, exit_code, kept):
    result = app.test_cli_runner().invoke(_probe_command(ending))
    assert result.exit_code == exit_code, result.output
    assert _events(db, f"probe.cli.{ending}") == kept
    assert ("committed" in result.output) == (ending == "returns")  # after_commit ran only then
