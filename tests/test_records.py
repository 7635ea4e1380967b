"""Acknowledgments as records: append-only in the database, one hash chain, voids, ``lms verify``,
and signing under concurrency and failure."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from lms.db import get_database, utcnow
from lms.models import Acknowledgment, AcknowledgmentVoid, Assignment, AuditEvent, ChainHead, Member, Receipt
from lms.services import signing
from lms.services.records import (
    GENESIS_HASH,
    VoidError,
    canonical_acknowledgment,
    record_hash,
    void_acknowledgment,
)
from lms.services.signing import SigningFacts, sign_acknowledgment
from tests.conftest import PASSWORD
from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign

RECORD_TABLES = ["acknowledgment", "receipt", "acknowledgment_void", "audit_event"]


# --- helpers --------------------------------------------------------------------------------------

def ready_to_sign(client, auth, db, member) -> int:
    """Sign the member in, read every lesson and pass the quiz through the pages; the assignment id."""
    auth.sign_in(member.badge)
    assignment_id = assignment_of(db, member).id
    read_all_lessons(client, assignment_id)
    pass_quiz(client, db, assignment_id)
    return assignment_id


def sign_through_web(client, auth, db, member) -> Acknowledgment:
    """Take a member from nothing done to signed, through the pages; their acknowledgment."""
    assignment_id = ready_to_sign(client, auth, db, member)
    assert sign(client, assignment_id, member.full_name).status_code == 303
    auth.sign_out()
    db.expire_all()
    return db.scalars(select(Acknowledgment).where(Acknowledgment.assignment_id == assignment_id)
                      .order_by(Acknowledgment.generation.desc())).first()


def void(db, ack: Acknowledgment, actor: Member,
         reason: str = "Signed under the wrong badge number") -> AcknowledgmentVoid:
    """Void through the service, as an HR page would, and commit."""
    record = void_acknowledgment(db, ack=ack, reason=reason, actor=actor, ip="10.1.2.3", now=utcnow())
    db.commit()
    return record


def behind_the_apps_back(db, *statements: str, **params) -> None:
    """Run raw SQL past the record triggers, as someone with direct database access could."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL session_replication_role = replica"))  # skips triggers, this transaction only
    else:
        for table in RECORD_TABLES:
            for event in ("update", "delete"):
                db.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{event}"))
    for statement in statements:
        db.execute(text(statement), params)
    db.commit()
    db.expire_all()


def verify(runner, *args: str):
    return runner.invoke(args=["lms", "verify", *args])


def count(db, model, *where) -> int:
    db.expire_all()
    column = model.acknowledgment_id if model is Receipt else model.id
    return db.scalar(select(func.count(column)).where(*where))


def chain_head(db) -> tuple[int, str]:
    db.expire_all()
    head = db.get(ChainHead, 1)
    return head.sequence, head.last_hash


@pytest.fixture
def signed_three(client, auth, db, make_member, open_cycle):
    """Three members who each signed through the pages, in chain order."""
    members = [make_member(first="Alex", last="Rivera"), make_member(first="Jo", last="Kim"),
               make_member(first="Sam", last="Ortiz")]
    open_cycle()
    return [sign_through_web(client, auth, db, member) for member in members]


# --- the database refuses changes to records ------------------------------------------------------

def test_database_refuses_update_and_delete_of_records(client, auth, db, runner, make_member, open_cycle):
    member = make_member()
    hr = make_member(first="Paul", last="Lindqvist", roles=("hr",))
    open_cycle()
    void(db, sign_through_web(client, auth, db, member), hr)
    assert all(db.scalar(text(f"SELECT count(*) FROM {table}")) for table in RECORD_TABLES)
    statements = [
        "UPDATE acknowledgment SET printed_name = 'Someone Else'",
        "DELETE FROM acknowledgment",
        "UPDATE receipt SET sha256 = 'f'",
        "DELETE FROM receipt",
        "UPDATE acknowledgment_void SET reason = 'never mind'",
        "DELETE FROM acknowledgment_void",
        "UPDATE audit_event SET outcome = 'failure'",
        "DELETE FROM audit_event",
    ]
    if db.get_bind().dialect.name == "postgresql":
        statements += [f"TRUNCATE {table} CASCADE" for table in RECORD_TABLES]
    for statement in statements:
        with pytest.raises(DBAPIError, match="are records: they are never updated or deleted"):
            db.execute(text(statement))
        db.rollback()
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Chain verified: 2 records (1 acknowledgment, 1 void)." in result.output


# --- verify: the whole chain ----------------------------------------------------------------------

def test_verify_passes_on_an_empty_chain(runner):
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Chain verified: 0 records" in result.output


def test_verify_passes_after_signatures_and_a_void(signed_three, db, runner, make_member):
    hr = make_member(first="Paul", last="Lindqvist", roles=("hr",))
    void(db, signed_three[1], hr)
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Chain verified: 4 records (3 acknowledgments, 1 void)." in result.output
    sequence, last_hash = chain_head(db)
    assert sequence == 4 and f"Chain head: sequence 4, hash {last_hash}" in result.output
    events = db.scalars(select(AuditEvent).where(AuditEvent.action == "chain.verify")).all()
    assert [(e.outcome, e.details["records"]) for e in events] == [("success", 4)]


def test_verify_names_a_record_altered_behind_the_apps_back(signed_three, db, runner):
    second = signed_three[1]
    behind_the_apps_back(db, "UPDATE acknowledgment SET printed_name = 'Somebody Else' WHERE id = :id", id=second.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"acknowledgment #{second.id} (sequence 2, badge {second.badge}): its record hash does not "
            "match its content") in result.output
    assert "1 record before it verified." in result.output


def test_verify_names_an_altered_void(signed_three, db, runner, make_member):
    hr = make_member(first="Paul", last="Lindqvist", roles=("hr",))
    record = void(db, signed_three[0], hr)
    behind_the_apps_back(db, "UPDATE acknowledgment_void SET reason = 'No reason at all' WHERE id = :id",
                         id=record.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert f"void #{record.id} (sequence 4, badge {signed_three[0].badge}): its record hash" in result.output


def test_verify_notices_a_record_rewritten_with_a_fresh_hash(signed_three, db, runner):
    """Someone who alters a record and recomputes its hash breaks the link from the record after it."""
    first, second = signed_three[0], signed_three[1]
    forged = SimpleNamespace(**{column.key: getattr(first, column.key) for column in Acknowledgment.__table__.columns})
    forged.printed_name = "Somebody Else"
    forged_hash = record_hash(first.prev_hash, canonical_acknowledgment(forged, db.get(Receipt, first.id).sha256))
    behind_the_apps_back(db, "UPDATE acknowledgment SET printed_name = 'Somebody Else', record_hash = :h "
                             "WHERE id = :id", h=forged_hash, id=first.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"acknowledgment #{second.id} (sequence 2, badge {second.badge}): its prev_hash does not match the "
            f"record hash of acknowledgment #{first.id} (sequence 1)") in result.output


def test_verify_names_the_record_after_a_removed_one(signed_three, db, runner):
    first, second, third = signed_three
    behind_the_apps_back(db, "DELETE FROM receipt WHERE acknowledgment_id = :id",
                         "DELETE FROM acknowledgment WHERE id = :id", id=second.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"acknowledgment #{third.id} (sequence 3, badge {third.badge}): the record before it "
            "(sequence 2) is missing: a record was removed") in result.output


def test_verify_detects_a_swapped_receipt(signed_three, db, runner):
    """A receipt replaced by another, with its stored hash updated to match, still breaks the record hash."""
    first, second = signed_three[0], signed_three[1]
    behind_the_apps_back(
        db, "UPDATE receipt SET pdf = (SELECT pdf FROM receipt WHERE acknowledgment_id = :other), "
            "sha256 = (SELECT sha256 FROM receipt WHERE acknowledgment_id = :other) WHERE acknowledgment_id = :id",
        id=first.id, other=second.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert (f"acknowledgment #{first.id} (sequence 1, badge {first.badge}): its record hash does not match "
            "its content: a field of the record, or its receipt, was changed") in result.output


def test_verify_detects_an_altered_receipt_pdf(signed_three, db, runner):
    third = signed_three[2]
    behind_the_apps_back(db, "UPDATE receipt SET pdf = :pdf WHERE acknowledgment_id = :id",
                         pdf=b"%PDF-1.7 forged", id=third.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert f"acknowledgment #{third.id} (sequence 3, badge {third.badge}): its receipt PDF does not match" \
        in result.output


def test_verify_detects_a_truncated_tail(signed_three, db, runner):
    third = signed_three[2]
    behind_the_apps_back(db, "DELETE FROM receipt WHERE acknowledgment_id = :id",
                         "DELETE FROM acknowledgment WHERE id = :id", id=third.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert ("chain head: the head is at sequence 3 but the chain ends at 2: sequence 3 removed from the end"
            in result.output)


def test_verify_detects_a_record_past_the_head(signed_three, db, runner):
    """A record beyond the head (here the head was wound back; a forged record appended without
    moving the head looks the same) was not appended through the chain."""
    third = signed_three[2]
    behind_the_apps_back(db, "UPDATE chain_head SET sequence = 2, last_hash = :h", h=signed_three[1].record_hash)
    result = verify(runner)
    assert result.exit_code == 1
    assert "a record with sequence 3 lies beyond the chain head (sequence 2)" in result.output
    assert third.sequence == 3


def test_verify_on_a_demo_database(runner, db):
    result = runner.invoke(args=["lms", "seed-demo", "--people", "30", "--seed", "7"])
    assert result.exit_code == 0, result.output
    acks = count(db, Acknowledgment)
    assert acks >= 5
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"Chain verified: {acks} records ({acks} acknowledgments, 0 voids)." in result.output

    victim = db.scalars(select(Acknowledgment).order_by(Acknowledgment.sequence).offset(acks // 2)).first()
    behind_the_apps_back(db, "UPDATE acknowledgment SET quiz_score = 100 - quiz_score + 1 WHERE id = :id",
                         id=victim.id)
    result = verify(runner)
    assert result.exit_code == 1
    assert f"acknowledgment #{victim.id} (sequence {victim.sequence}, badge {victim.badge})" in result.output


# --- verify --receipt -----------------------------------------------------------------------------

def test_verify_receipt_matches_a_downloaded_receipt(client, auth, db, runner, make_member, open_cycle, tmp_path):
    member = make_member(first="Alex", last="Rivera")
    open_cycle()
    ack = sign_through_web(client, auth, db, member)
    auth.sign_in(member.badge)
    download = client.get(f"/training/receipts/{ack.id}.pdf")
    assert download.status_code == 200
    handed_in = tmp_path / "receipt.pdf"
    handed_in.write_bytes(download.data)

    result = verify(runner, "--receipt", str(handed_in))
    assert result.exit_code == 0, result.output
    for expected in (f"Receipt matches stored acknowledgment #{ack.id} (sequence 1).", "Name:              Alex Rivera",
                     f"Badge:             {member.badge}", "Policy:            16.3 Social Media",
                     "Version:           effective 2013-11-26", f"Signed at:         {ack.signed_at_local}",
                     f"Verification code: {ack.verification_code}", "Voided:            no"):
        assert expected in result.output
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "receipt.verify")).one()
    assert event.target == f"acknowledgment:{ack.id}" and event.outcome == "success"

    # One byte changed anywhere and it is no longer the receipt on record.
    altered = bytearray(download.data)
    altered[len(altered) // 2] ^= 0x01
    handed_in.write_bytes(bytes(altered))
    result = verify(runner, "--receipt", str(handed_in))
    assert result.exit_code == 1
    assert "Receipt does not match any stored record" in result.output
    assert "Alex Rivera" not in result.output


def test_verify_receipt_flags_a_record_altered_since(client, auth, db, runner, make_member, open_cycle, tmp_path):
    member = make_member(first="Alex", last="Rivera")
    open_cycle()
    ack = sign_through_web(client, auth, db, member)
    handed_in = tmp_path / "receipt.pdf"
    handed_in.write_bytes(db.get(Receipt, ack.id).pdf)
    behind_the_apps_back(db, "UPDATE acknowledgment SET signed_at_local = '2001-01-01T00:00:00-06:00'")
    result = verify(runner, "--receipt", str(handed_in))
    assert result.exit_code == 4
    assert "the stored record no longer matches its own hash" in result.output


# --- voiding --------------------------------------------------------------------------------------

def test_void_keeps_the_original_and_the_member_signs_again(client, auth, db, runner, make_member, open_cycle,
                                                            tmp_path):
    member = make_member(first="Alex", last="Rivera")
    hr = make_member(first="Paul", last="Lindqvist", roles=("hr",))
    open_cycle()
    original = sign_through_web(client, auth, db, member)
    auth.sign_in(member.badge)
    assert "Complete" in client.get("/training/").get_data(as_text=True)

    record = void(db, original, hr, reason="  Signed while the   wrong version was assigned ")
    assert record.reason == "Signed while the wrong version was assigned"
    assert (record.sequence, record.prev_hash) == (2, original.record_hash)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "ack.void")).one()
    assert event.actor_id == hr.id and event.target == f"acknowledgment:{original.id}"
    assert event.details["reason"] == record.reason and event.ip == "10.1.2.3"

    # The original stays on record and readable, its receipt too; it no longer counts.
    assert db.get(Acknowledgment, original.id).printed_name == "Alex Rivera"
    assert original.verification_code in client.get("/training/history").get_data(as_text=True)
    receipt = client.get(f"/training/receipts/{original.id}.pdf")
    assert receipt.status_code == 200
    dashboard = client.get("/training/").get_data(as_text=True)
    assert "Quiz passed — ready to sign" in dashboard and "wrong version was assigned" in dashboard
    (tmp_path / "old.pdf").write_bytes(receipt.data)
    result = verify(runner, "--receipt", str(tmp_path / "old.pdf"))
    assert result.exit_code == 3, result.output  # voided: neither a match that stands nor no match
    assert "Voided:            YES" in result.output and "wrong version was assigned" in result.output

    # Signing again writes a new record of the next generation, after the void in the chain.
    assert sign(client, original.assignment_id, "Alex Rivera").status_code == 303
    db.expire_all()
    again = db.scalars(select(Acknowledgment).where(Acknowledgment.id != original.id)).one()
    assert (again.generation, again.sequence, again.prev_hash) == (1, 3, record.record_hash)
    assert "Complete" in client.get("/training/").get_data(as_text=True)
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Chain verified: 3 records (2 acknowledgments, 1 void)." in result.output


def test_void_needs_a_reason_and_happens_once(client, auth, db, make_member, open_cycle):
    member = make_member()
    hr = make_member(first="Paul", last="Lindqvist", roles=("hr",))
    open_cycle()
    ack = sign_through_web(client, auth, db, member)
    head = chain_head(db)
    for reason in ("", "   ", "oops"):
        with pytest.raises(VoidError, match="Say why this acknowledgment is void, in at least 10 characters"):
            void_acknowledgment(db, ack=ack, reason=reason, actor=hr, ip="10.1.2.3", now=utcnow())
        db.rollback()
    assert chain_head(db) == head and count(db, AcknowledgmentVoid) == 0

    void(db, ack, hr)
    head = chain_head(db)
    with pytest.raises(VoidError, match=rf"Acknowledgment #{ack.id} \(badge {ack.badge}\) was already voided"):
        void_acknowledgment(db, ack=ack, reason="Voiding it a second time", actor=hr, ip="10.1.2.3", now=utcnow())
    db.rollback()
    assert chain_head(db) == head and count(db, AcknowledgmentVoid) == 1
    assert count(db, AuditEvent, AuditEvent.action == "ack.void") == 1


# --- concurrency and failure ----------------------------------------------------------------------

def test_twenty_simultaneous_submits_give_one_record(app, client, auth, db, runner, make_member, open_cycle):
    member = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment_id = ready_to_sign(client, auth, db, member)
    text_sha256 = assignment_of(db, member).policy_version.text_sha256
    submitters = 20
    barrier = threading.Barrier(submitters)
    outcomes: list[str] = []

    def submit() -> None:
        # Each submit is its own request: its own session and connection, as in a worker.
        with get_database(app).sessionmaker() as session:
            try:
                assignment = session.get(Assignment, assignment_id)
                signer = session.get(Member, member.id)
                facts = SigningFacts(ip="10.9.8.7", user_agent="pytest", now=utcnow(),
                                     timezone=app.config["TIMEZONE"], department=app.config["DEPARTMENT_NAME"])
                session.commit()  # nothing read so far holds the database while we wait
                barrier.wait(timeout=60)
                _ack, created = sign_acknowledgment(
                    session, assignment=assignment, member=signer, typed_name="Alex Rivera",
                    password=PASSWORD, shown_text_sha256=text_sha256, facts=facts)
                session.commit()
                outcomes.append("created" if created else "existing")
            except (IntegrityError, OperationalError) as exc:  # what the sign view would catch or 500 on
                session.rollback()
                outcomes.append(f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                session.rollback()
                outcomes.append(f"unexpected {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=submit) for _ in range(submitters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads)

    assert sorted(outcomes) == ["created"] + ["existing"] * (submitters - 1), outcomes
    assert count(db, Acknowledgment) == 1
    assert count(db, Receipt) == 1
    assert count(db, AuditEvent, AuditEvent.action == "ack.sign") == 1
    ack = db.scalars(select(Acknowledgment)).one()
    assert chain_head(db) == (1, ack.record_hash)
    result = verify(runner)
    assert result.exit_code == 0, result.output


def _fail(*_args, **_kwargs):
    raise RuntimeError("injected failure")


@pytest.mark.parametrize("where", ["receipt", "audit event"])
def test_failure_mid_signing_leaves_nothing(app, client, auth, db, runner, make_member, open_cycle, monkeypatch,
                                            where):
    member = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment_id = ready_to_sign(client, auth, db, member)
    # The acknowledgment row is flushed before either of these fails.
    monkeypatch.setattr(signing, "Receipt" if where == "receipt" else "record_event", _fail)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # let the 500 page render, as in production

    response = sign(client, assignment_id, "Alex Rivera")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    assert count(db, Acknowledgment) == 0
    assert count(db, Receipt) == 0
    assert count(db, AuditEvent, AuditEvent.action == "ack.sign") == 0
    assert chain_head(db) == (0, GENESIS_HASH)

    monkeypatch.undo()
    assert sign(client, assignment_id, "Alex Rivera").status_code == 303
    assert count(db, Acknowledgment) == 1 and count(db, Receipt) == 1
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert "Chain verified: 1 records" in result.output
