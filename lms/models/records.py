"""Signed acknowledgments and their receipts: append-only records in one hash chain."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import Base, UTCDateTime
from lms.models.people import Member
from lms.models.policies import PolicyVersion


class ChainHead(Base):
    """The single row that serialises appends to the record chain (locked by an UPDATE)."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Sequence number of the last record appended; 0 when the chain is empty.
    sequence: Mapped[int] = mapped_column(default=0)
    #: record_hash of the last record; 64 zeros for the empty chain.
    last_hash: Mapped[str] = mapped_column(String(64))


class Acknowledgment(Base):
    """A member's electronic signature of one policy version. Never updated or deleted."""

    __tablename__ = "acknowledgment"
    __table_args__ = (
        UniqueConstraint("assignment_id", "generation"),
        # What the roster reads of each assignment's signature, so it never reads the wide rows
        # (migration 0008, docs/performance.md).
        Index("ix_acknowledgment_cycle_id_assignment_id", "cycle_id", "assignment_id", "signed_at",
              "signed_at_local", "policy_effective", postgresql_include=["id"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Position in the record chain, from 1.
    sequence: Mapped[int] = mapped_column(unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id"))
    #: 0 for the first signature of an assignment; one more for each voided one before it, so a
    #: double-submitted signature collides on (assignment_id, generation).
    generation: Mapped[int] = mapped_column(default=0)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycle.id"))
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_version.id"))
    quiz_attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempt.id"))
    #: Copied from the member and policy at signing so the record reads on its own.
    badge: Mapped[str] = mapped_column(String(20))
    #: The full name the member typed.
    printed_name: Mapped[str] = mapped_column(String(200))
    policy_ref: Mapped[str] = mapped_column(String(20))
    policy_title: Mapped[str] = mapped_column(String(200))
    policy_effective: Mapped[date]
    #: SHA-256 of the exact text shown on the signing page.
    text_sha256: Mapped[str] = mapped_column(String(64))
    #: The attestation statement the member signed.
    statement: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The same instant in the department's time, ISO 8601 with offset.
    signed_at_local: Mapped[str] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64))
    signed_from_ip: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    quiz_attempt_number: Mapped[int]
    quiz_score: Mapped[int]
    #: Random code printed on the receipt and looked up by the verification page.
    verification_code: Mapped[str] = mapped_column(String(20), unique=True)
    #: How the signer proved who they were at signing: "password" (re-entered), "oidc" or "saml"
    #: (a fresh sign-in at the identity provider). None on records signed before migration 0016,
    #: whose hash does not cover these three fields (see canonical_acknowledgment).
    auth_method: Mapped[str | None] = mapped_column(String(20))
    #: The identity provider (OpenID issuer or SAML entity ID) for "oidc" and "saml".
    auth_provider: Mapped[str | None] = mapped_column(String(255))
    #: When the identity provider says the member signed in (OIDC auth_time, SAML AuthnInstant);
    #: for "password", the moment of signing.
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: record_hash of the record before this one in the chain.
    prev_hash: Mapped[str] = mapped_column(String(64))
    #: SHA-256 over this record's canonical content and prev_hash.
    record_hash: Mapped[str] = mapped_column(String(64))

    member: Mapped[Member] = relationship()
    policy_version: Mapped[PolicyVersion] = relationship()
    receipt: Mapped[Receipt] = relationship(back_populates="acknowledgment", lazy="raise")


class Receipt(Base):
    """The receipt PDF rendered once at signing, in a table of its own beside its record."""

    __tablename__ = "receipt"

    acknowledgment_id: Mapped[int] = mapped_column(ForeignKey("acknowledgment.id"), primary_key=True)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    #: SHA-256 of ``pdf``.
    sha256: Mapped[str] = mapped_column(String(64))

    acknowledgment: Mapped[Acknowledgment] = relationship(back_populates="receipt")


class AcknowledgmentVoid(Base):
    """A correction: the acknowledgment it names no longer counts. Never updated or deleted;
    the voided record stays readable."""

    __tablename__ = "acknowledgment_void"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Position in the record chain, shared with acknowledgments.
    sequence: Mapped[int] = mapped_column(unique=True)
    #: One void per acknowledgment.
    acknowledgment_id: Mapped[int] = mapped_column(ForeignKey("acknowledgment.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    voided_by_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    voided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voided_from_ip: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))

    acknowledgment: Mapped[Acknowledgment] = relationship()
    voided_by: Mapped[Member] = relationship()
