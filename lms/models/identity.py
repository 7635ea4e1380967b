"""How local members prove who they are beyond a password: invitations to set the first
password, and second factors (TOTP, passkeys, and recovery codes)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import Base, UTCDateTime
from lms.models.people import Member


class Invitation(Base):
    """A one-time, expiring link e-mailed to a member so they set their own password."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    #: SHA-256 (hex) of the token in the link; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The link stops working then (INVITATION_DAYS after it was sent).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the member set their password with it; a used link never works again.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When a newer invitation to the same member replaced it: only the latest link works.
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The administrator who sent it; None from the command line.
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))

    member: Mapped[Member] = relationship(foreign_keys=[member_id])

    def state(self, now: datetime) -> str:
        """open, used, replaced or expired."""
        if self.used_at is not None:
            return "used"
        if self.replaced_at is not None:
            return "replaced"
        return "open" if self.expires_at > now else "expired"


class TotpFactor(Base):
    """A member's authenticator app (RFC 6238 TOTP); one per member."""

    __tablename__ = "totp_factor"

    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), primary_key=True)
    #: Base32 secret shared with the authenticator app; needed in the clear to check codes.
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set once the member typed a first right code; until then the factor does not count.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The 30-second time step of the last code accepted: a code is never accepted twice.
    last_step: Mapped[int | None]


class RecoveryCode(Base):
    """A one-time code that stands in for the second factor when the phone is lost."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    #: SHA-256 (hex) of the code (about 80 random bits, so a fast hash is enough).
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PasskeyCredential(Base):
    """A passkey (WebAuthn credential) a member registered as a second factor."""

    __tablename__ = "passkey_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    #: The authenticator's credential id, base64url.
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    #: COSE public key the authenticator's signatures are checked with.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    #: The authenticator's signature counter; a counter that goes back suggests a cloned key.
    sign_count: Mapped[int] = mapped_column(default=0)
    #: What the member calls it ("Work laptop").
    name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
