"""Acknowledgments as records: the hash chain and the canonical form each record hash covers."""
from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lms.models import Acknowledgment, AcknowledgmentVoid, ChainHead, Member
from lms.services.audit import record_event
from lms.services.content import sha256_hex

GENESIS_HASH = "0" * 64
#: A void must say why in words a hearing officer can follow; "mistake" is not enough.
MIN_VOID_REASON = 10
# Crockford's base32 without look-alikes, so a code read aloud over the phone survives.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

ChainRecord = TypeVar("ChainRecord", Acknowledgment, AcknowledgmentVoid)


class VoidError(ValueError):
    """A void was refused: no reason worth the name, or the record is already void."""


def new_verification_code() -> str:
    """A random code like ``K7QM-3XPA-9RTV`` (about 59 bits)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return "-".join(raw[i:i + 4] for i in range(0, 12, 4))


def _instant(moment: datetime) -> str:
    """A timestamp as the hash sees it: UTC, to the microsecond, as the database returns it."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _canonical(facts: dict) -> str:
    return json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_acknowledgment(ack: Acknowledgment, receipt_sha256: str) -> str:
    """The exact bytes a record hash covers: every recorded fact and its receipt's hash, as
    sorted, compact JSON. Changing any field, or swapping the receipt, changes the hash.

    How the signer authenticated is covered for every record that says it (all written since
    migration 0016); records from before keep the form they were hashed in, so they still verify.
    """
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
        "signed_at": _instant(ack.signed_at),
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
    if ack.auth_method is not None:
        facts.update(auth_method=ack.auth_method, auth_provider=ack.auth_provider,
                     authenticated_at=_instant(ack.authenticated_at) if ack.authenticated_at else None)
    return _canonical(facts)


def canonical_void(void: AcknowledgmentVoid) -> str:
    """The exact bytes a void's record hash covers: which record it voids, why, who, when, from
    where, as sorted, compact JSON."""
    return _canonical({
        "kind": "void",
        "sequence": void.sequence,
        "acknowledgment_id": void.acknowledgment_id,
        "reason": void.reason,
        "voided_by_id": void.voided_by_id,
        "voided_at": _instant(void.voided_at),
        "voided_from_ip": void.voided_from_ip,
    })


def record_hash(prev_hash: str, canonical: str) -> str:
    """SHA-256 linking a record to the one before it."""
    return sha256_hex(prev_hash + "\n" + canonical)


def lock_chain_head(session: Session) -> ChainHead:
    """Take the chain head for this transaction and return it as it stands.

    The UPDATE comes first so it takes the write lock (a row lock on PostgreSQL, the database
    write lock on SQLite) before anything is read: concurrent signers queue here, and each then
    reads the head the previous one left. The UPDATE changes nothing, so a caller that finds
    nothing to append after all (a double submit) leaves the head as it was; ``append_to_chain``
    moves it.
    """
    session.execute(update(ChainHead).where(ChainHead.id == 1).values(sequence=ChainHead.sequence))
    head = session.scalar(select(ChainHead).where(ChainHead.id == 1).execution_options(populate_existing=True))
    if head is None:
        raise RuntimeError("the record chain has no head row; run 'flask --app app lms init'")
    return head


def append_to_chain(head: ChainHead, record: ChainRecord, canonical: Callable[[ChainRecord], str]) -> None:
    """Give ``record`` the next sequence, link it to the head, hash it, and move the head onto it.

    ``head`` must come from ``lock_chain_head`` in the same transaction; ``canonical`` turns the
    record (its sequence set) into the text its hash covers.
    """
    record.sequence = head.sequence + 1
    record.prev_hash = head.last_hash
    record.record_hash = record_hash(record.prev_hash, canonical(record))
    head.sequence = record.sequence
    head.last_hash = record.record_hash


def void_of(session: Session, ack_id: int) -> AcknowledgmentVoid | None:
    """The void of an acknowledgment, if it has been voided."""
    return session.scalar(select(AcknowledgmentVoid).where(AcknowledgmentVoid.acknowledgment_id == ack_id))


def void_acknowledgment(session: Session, *, ack: Acknowledgment, reason: str, actor: Member,
                        ip: str, now: datetime) -> AcknowledgmentVoid:
    """Append a void of ``ack`` to the chain, with its audit event; the original stays as it was.

    The member's assignment then has no standing signature, so they sign again (a new record of
    the next generation). Raises VoidError for a reason shorter than MIN_VOID_REASON characters or
    an acknowledgment already void; on VoidError the caller rolls back. The caller commits.
    """
    if ack.member_id == actor.id:
        # Separation of duties: a record about oneself is corrected by someone else.
        raise VoidError("You cannot void your own acknowledgment; ask another member of HR to review it.")
    reason = " ".join(reason.split())
    if len(reason) < MIN_VOID_REASON:
        raise VoidError(f"Say why this acknowledgment is void, in at least {MIN_VOID_REASON} characters "
                        "(for example: signed under the wrong badge, corrected by HR ticket 1234).")
    head = lock_chain_head(session)
    # Checked under the chain lock, so two people voiding the same record at once get one void.
    earlier = void_of(session, ack.id)
    if earlier is not None:
        raise VoidError(f"Acknowledgment #{ack.id} (badge {ack.badge}) was already voided on "
                        f"{earlier.voided_at:%Y-%m-%d} (chain sequence {earlier.sequence}).")
    void = AcknowledgmentVoid(acknowledgment_id=ack.id, reason=reason, voided_by_id=actor.id,
                              voided_at=now, voided_from_ip=ip[:64])
    append_to_chain(head, void, canonical_void)
    session.add(void)
    session.flush()
    record_event(session, "ack.void", at=now, actor_id=actor.id, target=f"acknowledgment:{ack.id}", ip=ip,
                 details={"void_id": void.id, "sequence": void.sequence, "badge": ack.badge,
                          "policy": ack.policy_ref, "version": ack.policy_effective.isoformat(),
                          "reason": reason})
    session.flush()
    return void
