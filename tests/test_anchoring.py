"""Anchoring the chain head (``lms anchor``): an RFC 3161 token from a real timestamp authority
(OpenSSL ``ts`` on 127.0.0.1), or a department-key signature without one; ``verify`` checks every
anchor, so rewriting the whole chain with recomputed hashes is caught."""
from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from lms.db import utcnow
from lms.models import Acknowledgment, AcknowledgmentVoid, AuditEvent, ChainAnchor, ChainHead, Receipt
from lms.services.anchoring import DEPARTMENT_SIGNATURE, RFC3161, anchor_as_configured, anchor_chain, verify_anchors
from lms.services.receipt_signature import signing_identity, timestamper
from lms.services.records import canonical_acknowledgment, canonical_void, record_hash
from tests.pki import OPENSSL, TimestampAuthority, require_openssl
from tests.test_records import behind_the_apps_back, signed_three, verify  # noqa: F401 - fixture

ANCHOR_TABLES = ["chain_anchor"]


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    require_openssl()
    authority = TimestampAuthority(tmp_path_factory.mktemp("tsa"))
    yield authority
    authority.stop()


def anchor(runner):
    return runner.invoke(args=["lms", "anchor"])


def anchors(db) -> list[ChainAnchor]:
    db.expire_all()
    return db.scalars(select(ChainAnchor).order_by(ChainAnchor.id)).all()


def rewrite_whole_chain(db, change: str) -> None:
    """What someone holding the database could do: change a record, then recompute every record
    hash after it and the head, so that the chain on its own verifies again."""
    behind_the_apps_back(db, change)
    records = sorted([*db.scalars(select(Acknowledgment)), *db.scalars(select(AcknowledgmentVoid))],
                     key=lambda r: r.sequence)
    previous = "0" * 64
    for record in records:
        if isinstance(record, Acknowledgment):
            canonical = canonical_acknowledgment(record, db.get(Receipt, record.id).sha256)
            table = "acknowledgment"
        else:
            canonical = canonical_void(record)
            table = "acknowledgment_void"
        new_hash = record_hash(previous, canonical)
        behind_the_apps_back(db, f"UPDATE {table} SET prev_hash = :p, record_hash = :h WHERE id = :id",
                             p=previous, h=new_hash, id=record.id)
        previous = new_hash
    behind_the_apps_back(db, "UPDATE chain_head SET last_hash = :h WHERE id = 1", h=previous)


def test_an_anchor_from_the_timestamp_authority_verifies_independently(app, db, runner, signed_three, tsa,
                                                                     tmp_path):
    app.config["TSA_URL"] = tsa.url
    result = anchor(runner)
    assert result.exit_code == 0, result.output
    head = db.get(ChainHead, 1)
    assert f"Anchored the chain head: sequence 3, hash {head.last_hash}" in result.output
    assert "an RFC 3161 timestamp token from the timestamp authority" in result.output
    [stored] = anchors(db)
    assert (stored.method, stored.sequence, stored.head_hash, stored.authority) == \
        (RFC3161, 3, head.last_hash, tsa.url)
    assert abs((stored.token_time - stored.anchored_at).total_seconds()) < 120

    # OpenSSL, independently: the token is the authority's, over exactly the head hash.
    token = tmp_path / "anchor.tst"
    token.write_bytes(stored.token)
    check = subprocess.run([OPENSSL, "ts", "-verify", "-digest", stored.head_hash, "-in", str(token), "-token_in",
                            "-CAfile", str(tsa.ca_path), "-untrusted", str(tsa.cert_path)],
                           capture_output=True, text=True, timeout=30)
    assert "Verification: OK" in check.stdout, check.stdout + check.stderr

    app.config["TSA_CERT"] = str(tsa.ca_path)  # trusted only when it chains to the configured root
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Anchors verified: 1 (1 rfc3161); the latest covers sequence 3" in result.output
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "chain.anchor")).one()
    assert event.outcome == "success" and event.details["head_hash"] == head.last_hash


def test_without_a_timestamp_authority_the_department_key_signs_and_says_it_is_weaker(app, db, runner,
                                                                                   signed_three):
    result = anchor(runner)
    assert result.exit_code == 0, result.output
    assert "no timestamp authority is configured (LMS_TSA_URL)" in result.output
    assert "weaker than a timestamp" in result.output
    [stored] = anchors(db)
    assert stored.method == DEPARTMENT_SIGNATURE
    assert stored.authority == signing_identity(app.config, app.instance_path).common_name
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Anchors verified: 1 (1 department-signature)" in result.output


@pytest.mark.parametrize("with_tsa", [True, False], ids=["rfc3161", "department-signature"])
def test_rewriting_the_whole_chain_fails_verification_at_the_anchor(app, db, runner, signed_three, tsa, with_tsa):
    if with_tsa:
        app.config["TSA_URL"] = tsa.url
    assert anchor(runner).exit_code == 0
    first = signed_three[0]

    rewrite_whole_chain(db, f"UPDATE acknowledgment SET printed_name = 'Someone Else' WHERE id = {first.id}")

    result = verify(runner)
    assert result.exit_code == 1
    # The rewritten chain on its own is consistent again: only the anchor shows the rewrite.
    assert "Chain verified: 3 records" in result.output
    assert ("Anchor verification failed: anchor #" in result.output
            and "the record at sequence 3 no longer has the hash anchored on" in result.output
            and "the chain was rewritten" in result.output), result.output


def test_removing_anchored_records_fails_verification(app, db, runner, signed_three):
    assert anchor(runner).exit_code == 0
    last = signed_three[-1]
    previous = db.scalar(select(Acknowledgment.record_hash).where(Acknowledgment.sequence == 2))
    behind_the_apps_back(db, f"DELETE FROM receipt WHERE acknowledgment_id = {last.id}",
                         f"DELETE FROM acknowledgment WHERE id = {last.id}")
    behind_the_apps_back(db, "UPDATE chain_head SET sequence = 2, last_hash = :h WHERE id = 1", h=previous)
    result = verify(runner)
    assert result.exit_code == 1
    assert "the chain has no record at sequence 3, which was anchored on" in result.output


def test_an_altered_token_fails_verification(app, db, runner, signed_three, tsa):
    """A token whose signed content (here the hash it vouches for) was changed no longer verifies."""
    app.config["TSA_URL"] = tsa.url
    assert anchor(runner).exit_code == 0
    [stored] = anchors(db)
    token = bytearray(stored.token)
    token[stored.token.index(bytes.fromhex(stored.head_hash)) + 5] ^= 0x01
    if db.get_bind().dialect.name == "sqlite":
        db.execute(text("DROP TRIGGER chain_anchor_no_update"))
    behind_the_apps_back(db, "UPDATE chain_anchor SET token = :t WHERE id = :id", t=bytes(token), id=stored.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert "Anchor verification failed" in result.output and "its timestamp token is not over" in result.output


def test_an_anchor_signed_with_another_key_fails_verification(app, db, runner, signed_three, tmp_path):
    """Without a timestamp authority, anchors count only when the department's key made them."""
    from tests.pki import issue, make_ca

    forger = issue(make_ca(), "Not the department")
    (tmp_path / "key.pem").write_bytes(forger.key_pem())
    (tmp_path / "cert.pem").write_bytes(forger.cert_pem())
    department = dict(SIGNING_KEY=app.config["SIGNING_KEY"], SIGNING_CERT=app.config["SIGNING_CERT"])
    app.config.update(SIGNING_KEY=str(tmp_path / "key.pem"), SIGNING_CERT=str(tmp_path / "cert.pem"))
    assert anchor(runner).exit_code == 0
    app.config.update(department)
    result = verify(runner)
    assert result.exit_code == 1
    assert "it is signed by" in result.output and "Not the department" in result.output


def test_anchors_are_append_only_records(app, db, runner, signed_three):
    assert anchor(runner).exit_code == 0
    for statement in ("UPDATE chain_anchor SET head_hash = 'x'", "DELETE FROM chain_anchor"):
        with pytest.raises(DBAPIError, match="are records: they are never updated or deleted"):
            db.execute(text(statement))
        db.rollback()
    assert len(anchors(db)) == 1


def test_a_timestamp_authority_that_does_not_answer_stores_nothing(app, db, runner, signed_three):
    app.config.update(TSA_URL="http://127.0.0.1:9/tsa", TSA_TIMEOUT=2)
    result = anchor(runner)
    assert result.exit_code == 1
    assert "nothing was anchored: the timestamp authority at http://127.0.0.1:9/tsa did not give a timestamp" \
        in result.output
    assert anchors(db) == []
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "chain.anchor")).one()
    assert event.outcome == "failure"


def test_the_service_anchors_an_empty_chain_and_later_heads(app, db, tsa):
    """anchor_chain is what a daily job calls: no request, no CLI."""
    config = {**app.config, "TSA_URL": tsa.url}
    first = anchor_chain(db, now=utcnow(), tsa=timestamper(config), tsa_url=tsa.url)
    db.commit()
    assert (first.sequence, first.head_hash) == (0, "0" * 64)
    second = anchor_as_configured(db, config=app.config, instance_path=app.instance_path, now=utcnow())
    db.commit()
    assert second.method == DEPARTMENT_SIGNATURE  # no TSA_URL in the app's own configuration
    identity = signing_identity(app.config, app.instance_path)
    report = verify_anchors(db, department_certs=(identity.certificate,))
    assert report.ok and report.anchors == 2 and report.by_method == {RFC3161: 1, DEPARTMENT_SIGNATURE: 1}
    assert report.unpinned_authorities == ("Organization: Roll Call test PKI, Common Name: Test Timestamp Authority",)


def test_migration_0013_down_and_up_on_a_database_with_records(app, db, runner, signed_three):
    """The anchor table comes and goes on a populated database, its records untouched, and the
    guard against changing anchors comes back with it."""
    import importlib.util
    from pathlib import Path

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from lms.db import get_database
    from lms.migrate import alembic_config

    # 0013's own downgrade and upgrade, applied in place: later revisions stay as they are.
    folder = Path(alembic_config().get_main_option("script_location")) / "versions"
    spec = importlib.util.spec_from_file_location("revision_0013", next(folder.glob("0013_*.py")))
    revision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(revision)
    db.close()
    with get_database(app).engine.begin() as connection:
        with Operations.context(MigrationContext.configure(connection)):
            revision.downgrade()
            assert "chain_anchor" not in inspect(connection).get_table_names()
            revision.upgrade()
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert anchor(runner).exit_code == 0
    assert verify(runner).exit_code == 0
    with pytest.raises(DBAPIError, match="are records: they are never updated or deleted"):
        db.execute(text("DELETE FROM chain_anchor"))
    db.rollback()


def test_the_worker_schedule_anchors_the_chain_daily(app, db, runner, signed_three):
    """The scheduled task stores an anchor through the job runner, as the daily worker does."""
    from lms.jobs import SCHEDULE, enqueue_periodic, run_pending

    assert "anchor" in {entry.name for entry in SCHEDULE}
    assert enqueue_periodic(app, "anchor", utcnow()) is not None
    summary = run_pending(app)
    assert summary.failed == [] and len(summary.done) == 1
    db.expire_all()
    anchor = db.scalars(select(ChainAnchor)).one()
    head = db.get(ChainHead, 1)
    assert anchor.method == DEPARTMENT_SIGNATURE and anchor.head_hash == head.last_hash
    result = verify(runner)
    assert result.exit_code == 0 and "Anchors verified: 1" in result.output, result.output
