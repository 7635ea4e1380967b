"""Acknowledgments as records: the hash chain and the canonical form each record hash covers."""
from __future__ import annotations

import json
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lms.models import Acknowledgment, ChainHead
from lms.services.content import sha256_hex

GENESIS_HASH = "0" * 64
# Crockford's base32 without look-alikes, so a code read aloud over the phone survives.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"


def new_verification_code() -> str:
    """A random code like ``K7QM-3XPA-9RTV`` (about 59 bits)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def canonical_acknowledgment(ack: Acknowledgment, receipt_sha256: str) -> str:
    """The exact bytes a record hash covers: every recorded fact and its receipt's hash, as
    sorted, compact JSON. Changing any field, or swapping the receipt, changes the hash."""
    facts = {
        "kind": "acknowledgment",
        "sequence": ack.sequence,
        "member_id": ack.member_id,
        "badge": ack.badge,
        "printed_name": ack.printed_name,
        "assignment_id": ack.assignment_id,
        "generation": ack.generation,
        "cycle_id": ack.cycle_id,
        "policy_version_id": ack.policy_version_id,
        "policy_ref": ack.policy_ref,
        "policy_title": ack.policy_title,
        "policy_effective": ack.policy_effective.isoformat(),
        "text_sha256": ack.text_sha256,
        "statement": ack.statement,
        "signed_at": ack.signed_at.isoformat(timespec="microseconds"),
        "signed_at_local": ack.signed_at_local,
        "timezone": ack.timezone,
        "signed_from_ip": ack.signed_from_ip,
        "user_agent": ack.user_agent,
        "quiz_attempt_id": ack.quiz_attempt_id,
        "quiz_attempt_number": ack.quiz_attempt_number,
        "quiz_score": ack.quiz_score,
        "verification_code": ack.verification_code,
        "receipt_sha256": receipt_sha256,
    }
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(prev_hash: str, canonical: str) -> str:
    """SHA-256 linking a record to the one before it."""
    return sha256_hex(prev_hash + "\n" + canonical)


def lock_chain_head(session: Session) -> ChainHead:
    """Take the chain head for this transaction and advance its sequence.

    The UPDATE comes first so it takes the write lock (a row lock on PostgreSQL, the database
    write lock on SQLite) before anything is read: concurrent signers queue here, and each then
    reads the head the previous one left.
    """
    session.execute(update(ChainHead).where(ChainHead.id == 1).values(sequence=ChainHead.sequence + 1))
    head = session.scalar(select(ChainHead).where(ChainHead.id == 1).execution_options(populate_existing=True))
    if head is None:
        raise RuntimeError("the record chain has no head row; run 'flask --app app lms init'")
    return head
