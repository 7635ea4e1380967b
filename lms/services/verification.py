"""Checking the record chain end to end, and matching a receipt someone hands in to its record."""
from __future__ import annotations

import heapq
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session, aliased

from lms.models import Acknowledgment, AcknowledgmentVoid, ChainHead, Receipt
from lms.services.audit import record_event
from lms.services.content import sha256_hex
from lms.services.records import GENESIS_HASH, canonical_acknowledgment, canonical_void, record_hash, void_of

#: Rows fetched per round trip while streaming the chain; receipts are a few tens of kB each, so
#: memory stays at a few MB however long the chain is. The records are read as plain rows, not
#: ORM objects: at 133,000 records, building the objects was most of ``verify``'s time.
BATCH = 200


@dataclass(frozen=True)
class ChainFailure:
    """The first record that does not verify, and what is wrong with it."""

    #: "acknowledgment", "void" or "chain head".
    kind: str
    record_id: int | None
    sequence: int | None
    badge: str | None
    problem: str

    def __str__(self) -> str:
        if self.kind == "chain head":
            return f"chain head: {self.problem}"
        return f"{self.kind} #{self.record_id} (sequence {self.sequence}, badge {self.badge}): {self.problem}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of walking the chain: how many records verified, and the first that did not."""

    #: Records that verified, in chain order, before the first failure (all of them when ok).
    records: int
    acknowledgments: int
    voids: int
    #: The chain head as read when the walk began.
    head_sequence: int
    head_hash: str
    failure: ChainFailure | None = None

    @property
    def ok(self) -> bool:
        """Whether every record verified."""
        return self.failure is None


@dataclass(frozen=True)
class _Link:
    """One record as the walk sees it: where it sits, how it links, and any fault of its own."""

    sequence: int
    kind: str
    record_id: int
    badge: str | None
    prev_hash: str
    record_hash: str
    #: What is wrong with the record itself (its content or receipt), or None.
    fault: str | None

    def failure(self, problem: str) -> ChainFailure:
        return ChainFailure(self.kind, self.record_id, self.sequence, self.badge, problem)


def _columns(model) -> list:
    """Every mapped column of ``model``, labelled with its attribute name: selected this way (and
    run on the session's connection, as Core), rows come back as plain named tuples that read like
    the model (``row.badge``), with no ORM object, identity map, change tracking or ORM result
    processing for each of the chain's records."""
    return [attribute.columns[0].label(attribute.key) for attribute in inspect(model).column_attrs]


def _acknowledgment_links(session: Session, up_to: int) -> Generator[_Link]:
    """Acknowledgments in sequence order, each with its receipt checked and its hash recomputed."""
    rows = session.connection().execute(
        select(*_columns(Acknowledgment), Receipt.pdf.label("receipt_pdf"), Receipt.sha256.label("receipt_sha256"))
        .outerjoin(Receipt, Receipt.acknowledgment_id == Acknowledgment.id)
        .where(Acknowledgment.sequence <= up_to)
        .order_by(Acknowledgment.sequence)
        .execution_options(yield_per=BATCH))
    try:
        for ack in rows:
            yield _Link(ack.sequence, "acknowledgment", ack.id, ack.badge, ack.prev_hash, ack.record_hash,
                        _acknowledgment_fault(ack, ack.receipt_pdf, ack.receipt_sha256))
    finally:  # a walk that stops at a failure closes the cursor here, not whenever it is collected
        rows.close()


def _acknowledgment_fault(ack, pdf: bytes | None, receipt_sha256: str | None) -> str | None:
    """What is wrong with an acknowledgment or its receipt, or None."""
    if pdf is None:
        return "its receipt is missing"
    if sha256_hex(pdf) != receipt_sha256:
        return "its receipt PDF does not match the receipt's stored SHA-256: the PDF was altered"
    if record_hash(ack.prev_hash, canonical_acknowledgment(ack, receipt_sha256)) != ack.record_hash:
        return ("its record hash does not match its content: a field of the record, or its receipt, "
                "was changed after signing")
    return None


def _void_links(session: Session, up_to: int) -> Generator[_Link]:
    """Voids in sequence order, each with its hash recomputed and its target checked."""
    voided = aliased(Acknowledgment)
    rows = session.connection().execute(
        select(*_columns(AcknowledgmentVoid), voided.sequence.label("voided_sequence"), voided.badge.label("voided_badge"))
        .outerjoin(voided, voided.id == AcknowledgmentVoid.acknowledgment_id)
        .where(AcknowledgmentVoid.sequence <= up_to)
        .order_by(AcknowledgmentVoid.sequence)
        .execution_options(yield_per=BATCH))
    try:
        for void in rows:
            yield _Link(void.sequence, "void", void.id, void.voided_badge, void.prev_hash, void.record_hash,
                        _void_fault(void, void.voided_sequence))
    finally:
        rows.close()


def _void_fault(void, voided_sequence: int | None) -> str | None:
    """What is wrong with a void, or None."""
    if voided_sequence is None:
        return f"it voids acknowledgment #{void.acknowledgment_id}, which is not on record"
    if voided_sequence >= void.sequence:
        return (f"it voids acknowledgment #{void.acknowledgment_id} (sequence {voided_sequence}), "
                "which comes after it in the chain")
    if record_hash(void.prev_hash, canonical_void(void)) != void.record_hash:
        return "its record hash does not match its content: a field of the void was changed"
    return None


def verify_chain(session: Session) -> VerifyReport:
    """Walk every record in chain order and recompute it; report the first that does not verify.

    Checks that sequences run from 1 without gaps or repeats, that each record's prev_hash is the
    record hash before it, that each receipt PDF matches its stored SHA-256, that each record hash
    matches the record's content (for an acknowledgment, including its receipt's hash), and that
    the chain head points at the last record. Records are streamed, not loaded all at once.

    Signers may append while this runs: the walk covers the chain up to the head read at the start,
    then checks that nothing sits beyond the head as it is at the end.
    """
    head = session.scalar(select(ChainHead).where(ChainHead.id == 1).execution_options(populate_existing=True))
    if head is None:
        return VerifyReport(0, 0, 0, 0, GENESIS_HASH,
                            ChainFailure("chain head", None, None, None, "the chain head row is missing"))
    counts = {"acknowledgment": 0, "void": 0}
    acks = _acknowledgment_links(session, head.sequence)
    voids = _void_links(session, head.sequence)
    try:
        failure = _walk(heapq.merge(acks, voids, key=lambda link: link.sequence), counts,
                        head.sequence, head.last_hash)
    finally:
        acks.close()
        voids.close()
    if failure is None:
        failure = _beyond_head(session)
    return VerifyReport(counts["acknowledgment"] + counts["void"], counts["acknowledgment"], counts["void"],
                        head.sequence, head.last_hash, failure)


def _walk(links: Iterator[_Link], counts: dict[str, int], head_sequence: int,
          head_hash: str) -> ChainFailure | None:
    """Follow the links in sequence order, counting good records; the first failure, or None."""
    previous: _Link | None = None
    for link in links:
        expected = previous.sequence + 1 if previous else 1
        if link.sequence < expected:
            return link.failure(f"sequence {link.sequence} is used twice in the chain")
        if link.sequence > expected:
            return link.failure(f"the record before it ({_span(expected, link.sequence - 1)}) is missing: "
                                "a record was removed")
        if link.prev_hash != (previous.record_hash if previous else GENESIS_HASH):
            before = (f"{previous.kind} #{previous.record_id} (sequence {previous.sequence})" if previous
                      else "the start of the chain")
            return link.failure(f"its prev_hash does not match the record hash of {before}: "
                                "a record before it was altered, replaced or removed")
        if link.fault:
            return link.failure(link.fault)
        counts[link.kind] += 1
        previous = link
    last_sequence = previous.sequence if previous else 0
    if last_sequence < head_sequence:
        return ChainFailure("chain head", None, head_sequence, None,
                            f"the head is at sequence {head_sequence} but the chain ends at {last_sequence}: "
                            f"{_span(last_sequence + 1, head_sequence)} removed from the end")
    if (previous.record_hash if previous else GENESIS_HASH) != head_hash:
        return ChainFailure("chain head", None, head_sequence, None,
                            f"the head's hash does not match the record hash at sequence {last_sequence}: "
                            "the last record was altered or replaced")
    return None


def _beyond_head(session: Session) -> ChainFailure | None:
    """A record past the chain head, which no append through the chain could have written."""
    # The highest sequence is read before the head: the head only moves forward, so a record
    # beyond even this later head was not appended through the chain.
    highest = max(session.scalar(select(func.max(Acknowledgment.sequence))) or 0,
                  session.scalar(select(func.max(AcknowledgmentVoid.sequence))) or 0)
    head_now = session.scalar(select(ChainHead.sequence).where(ChainHead.id == 1)) or 0
    if highest > head_now:
        return ChainFailure("chain head", None, highest, None,
                            f"a record with sequence {highest} lies beyond the chain head (sequence "
                            f"{head_now}): it was not appended through the chain")
    return None


def _span(first: int, last: int) -> str:
    return f"sequence {first}" if first == last else f"sequences {first} to {last}"


@dataclass(frozen=True)
class ReceiptMatch:
    """The stored record a receipt file belongs to."""

    acknowledgment: Acknowledgment
    #: The void of that record, if it has been voided.
    void: AcknowledgmentVoid | None
    #: Whether the record's own hash still matches its content and this receipt's hash.
    record_intact: bool


def verify_receipt(session: Session, pdf_bytes: bytes) -> ReceiptMatch | None:
    """The record whose stored receipt has exactly these bytes (by SHA-256), or None."""
    digest = sha256_hex(pdf_bytes)
    ack = session.scalars(select(Acknowledgment).join(Receipt, Receipt.acknowledgment_id == Acknowledgment.id)
                          .where(Receipt.sha256 == digest).limit(1)).first()
    if ack is None:
        return None
    intact = record_hash(ack.prev_hash, canonical_acknowledgment(ack, digest)) == ack.record_hash
    return ReceiptMatch(acknowledgment=ack, void=void_of(session, ack.id), record_intact=intact)


#: What checking a receipt file can come to, and the exit code ``verify --receipt`` gives each
#: (2 is click's own, for a command line it cannot read). Listed in the README.
RECEIPT_EXIT_CODES = {"stands": 0, "no_match": 1, "voided": 3, "altered": 4, "signature_broken": 5}


@dataclass(frozen=True)
class ReceiptCheck:
    """The answer to "is this receipt file one of our records, and does it still stand?", the same
    for ``verify --receipt`` and HR's upload page."""

    #: "stands", "voided", "altered" (the stored record no longer matches its hash), "no_match",
    #: or "signature_broken" (the record stands, the file's PDF signature does not verify).
    outcome: str
    #: SHA-256 of the file checked.
    sha256: str
    match: ReceiptMatch | None
    #: The file's PDF signature (lms.services.receipt_signature.SignatureCheck), when checked.
    signature: Any = None

    @property
    def exit_code(self) -> int:
        """The exit code of ``verify --receipt`` for this answer."""
        return RECEIPT_EXIT_CODES[self.outcome]

    @property
    def void(self) -> AcknowledgmentVoid | None:
        """The void of the matched acknowledgment, if it was voided."""
        return self.match.void if self.match else None


def check_receipt(session: Session, pdf_bytes: bytes, *, file_name: str | None, actor_id: int | None,
                  ip: str | None, now: datetime, via: str, signature: Any = None) -> ReceiptCheck:
    """Match a receipt file to its record and say whether it stands, audited as "receipt.verify";
    ``signature`` is the file's PDF signature as checked by the caller, if it was.

    A record altered since signing outranks a void: the record itself can no longer be trusted.
    """
    match = verify_receipt(session, pdf_bytes)
    if match is None:
        outcome = "no_match"
    elif not match.record_intact:
        outcome = "altered"
    elif match.void is not None:
        outcome = "voided"
    elif signature is not None and signature.status not in ("valid", "unsigned"):
        outcome = "signature_broken"
    else:
        outcome = "stands"
    check = ReceiptCheck(outcome=outcome, sha256=sha256_hex(pdf_bytes), match=match, signature=signature)
    record_event(session, "receipt.verify", at=now, actor_id=actor_id, ip=ip,
                 target=f"acknowledgment:{match.acknowledgment.id}" if match else None,
                 outcome="success" if outcome == "stands" else "failure",
                 details={"file": file_name, "result": outcome, "sha256": check.sha256, "via": via,
                          "signature": signature.status if signature is not None else None})
    session.flush()
    return check
