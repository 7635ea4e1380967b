"""Backups that restore: ``lms backup`` while members sign, ``lms restore`` into the database
DATABASE_URL names, and ``lms verify`` passing on the restored records with the backup's head."""
from __future__ import annotations

import re
import stat
import threading

import pytest
from sqlalchemy import func, select

from lms import create_app
from lms.cli import lms
from lms.db import get_database, utcnow
from lms.models import Acknowledgment, Assignment, Member
from lms.services.signing import SigningFacts, append_acknowledgment
from tests.conftest import PG_URL, TEST_CONFIG
from tests.test_production_chain import _ready

HEAD_RE = re.compile(r"sequence (\d+), hash ([0-9a-f]{64})")


class Signer(threading.Thread):
    """Members signing one after another, each in its own transaction, until told to stop."""

    def __init__(self, app, assignment_ids: list[int]):
        super().__init__(daemon=True)
        self.app, self.assignment_ids = app, assignment_ids
        self.signed = 0
        self.progress = threading.Condition()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for assignment_id in self.assignment_ids:
                if self.stop.is_set():
                    return
                with get_database(self.app).sessionmaker() as session:
                    assignment = session.get(Assignment, assignment_id)
                    member = session.get(Member, assignment.member_id)
                    now = utcnow()
                    append_acknowledgment(session, assignment=assignment, member=member, printed_name=member.full_name,
                                          facts=SigningFacts(ip="127.0.0.1", user_agent="backup test", now=now,
                                                             timezone="America/Chicago", department="Test PD"))
                    session.commit()
                with self.progress:
                    self.signed += 1
                    self.progress.notify_all()
        except BaseException as exc:  # reported by the test
            self.error = exc
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count: int) -> int:
        with self.progress:
            assert self.progress.wait_for(lambda: self.signed >= count or self.error or not self.is_alive(),
                                          timeout=120), "signing stalled"
        assert self.error is None, self.error
        return self.signed


def _head(output: str) -> tuple[int, str]:
    match = HEAD_RE.search(output)
    assert match, output
    return int(match.group(1)), match.group(2)


@pytest.fixture
def signers(app, db, make_member, open_cycle):
    members = [make_member(first=f"Signer{i}", last="Backup") for i in range(10)]
    open_cycle()
    return [_ready(db, member) for member in members]


def test_backup_under_signing_load_restores_into_a_new_database(app, db, runner, signers, tmp_path):
    out = tmp_path / "rollcall.backup"
    signer = Signer(app, signers)
    signer.start()
    try:
        before = signer.wait_for(2)
        result = runner.invoke(lms, ["backup", "--out", str(out)])
        after = signer.wait_for(signer.signed + 1)
    finally:
        signer.stop.set()
        signer.join(timeout=120)
    assert result.exit_code == 0, result.output
    backed_up_sequence, backed_up_hash = _head(result.output)
    assert before <= backed_up_sequence < after  # a moment in the middle of the signing
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]

    target = _target_app(app, tmp_path)
    try:
        restored = target.test_cli_runner().invoke(lms, ["restore", str(out)] + (["--force"] if PG_URL else []))
        assert restored.exit_code == 0, restored.output
        assert _head(restored.output) == (backed_up_sequence, backed_up_hash)

        verified = target.test_cli_runner().invoke(lms, ["verify"])
        assert verified.exit_code == 0, verified.output
        assert f"Chain verified: {backed_up_sequence} records" in verified.output
        assert _head(verified.output) == (backed_up_sequence, backed_up_hash)
        with get_database(target).sessionmaker() as session:
            assert session.scalar(select(func.count(Acknowledgment.id))) == backed_up_sequence
        assert target.test_client().get("/readyz").status_code == 200
    finally:
        get_database(target).dispose()


def _target_app(app, tmp_path):
    """An app on the database to restore into: a new SQLite file, or (PostgreSQL) the test's own
    database, which the restore then replaces (--force)."""
    url = PG_URL or f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    return create_app({**TEST_CONFIG, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / "restored")})


def test_restore_refuses_a_database_with_records_unless_forced(app, db, runner, signers, tmp_path):
    out = tmp_path / "early.backup"
    assert runner.invoke(lms, ["backup", "--out", str(out)]).exit_code == 0
    signer = Signer(app, signers[:2])
    signer.run()
    assert signer.error is None and signer.signed == 2

    refused = runner.invoke(lms, ["restore", str(out)])
    assert refused.exit_code == 1
    assert "already holds members or records" in refused.output and "--force" in refused.output
    db.expire_all()
    assert db.scalar(select(func.count(Acknowledgment.id))) == 2  # untouched
    db.rollback()  # a session left in a transaction would hold the tables the restore replaces

    forced = runner.invoke(lms, ["restore", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert _head(forced.output)[0] == 0
    assert db.scalar(select(func.count(Acknowledgment.id))) == 0
    assert db.scalar(select(func.count(Member.id))) == 10  # the members as they were at the backup
    db.rollback()
    assert runner.invoke(lms, ["verify"]).exit_code == 0


def test_restore_refuses_what_is_not_a_backup_of_this_kind(app, runner, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    other_kind = tmp_path / "other.backup"
    other_kind.write_bytes(b"PGDMP\x01\x0e\x00" if not PG_URL else b"SQLite format 3\x00" + b"\x00" * 100)

    result = runner.invoke(lms, ["restore", str(junk), "--force"])
    assert result.exit_code == 1 and "is not a Roll Call backup" in result.output

    result = runner.invoke(lms, ["restore", str(other_kind), "--force"])
    assert result.exit_code == 1
    assert re.search(r"is a (PostgreSQL|SQLite) backup but DATABASE_URL names a (SQLite|PostgreSQL) database",
                     result.output), result.output


def test_a_backup_into_a_missing_folder_says_so(runner, tmp_path):
    result = runner.invoke(lms, ["backup", "--out", str(tmp_path / "nowhere" / "x.backup")])

    assert result.exit_code == 1 and "is not a folder" in result.output
