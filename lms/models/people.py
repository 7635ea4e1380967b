"""Members of the department and the roles they hold."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import Base, UTCDateTime

MEMBER_STATUSES = ("active", "leave", "separated")
ROLES = ("officer", "supervisor", "coordinator", "hr", "admin")


class Member(Base):
    """A sworn or civilian member, keyed by badge number."""

    __tablename__ = "member"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'leave', 'separated')", name="status"),
        # The roster's default order: PostgreSQL reads a page of it from here (migration 0008).
        Index("ix_member_last_name_first_name_badge", "last_name", "first_name", "badge"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Badge or employee number; never reused for another person.
    badge: Mapped[str] = mapped_column(String(20), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(254))
    # Indexed so the roster's choices of rank and shift are a short walk (migration 0009).
    rank: Mapped[str | None] = mapped_column(String(40), index=True)
    unit: Mapped[str | None] = mapped_column(String(80), index=True)
    shift: Mapped[str | None] = mapped_column(String(40), index=True)
    #: Indexed: a supervisor's roster walks down from them, one level of reports at a time
    #: (lms.services.roster.reports_of; migration 0019).
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    hire_date: Mapped[date | None]
    #: active, leave or separated; separated members keep every record but cannot sign in.
    status: Mapped[str] = mapped_column(String(20), default="active")
    #: werkzeug hash; None means the member cannot sign in until a password is set.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    #: Failed sign-ins since the last success; at LOCKOUT_THRESHOLD the account locks.
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Sign-in is refused until then (UTC); None when not locked. An admin unlock clears it.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set by an administrator's reset: the member must choose a new password before anything else.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: When the password was last set, by anyone.
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    supervisor: Mapped[Member | None] = relationship(remote_side=[id])
    roles: Mapped[list[MemberRole]] = relationship(
        back_populates="member", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}

    def has_role(self, role: str) -> bool:
        return role in self.role_names

    # Flask-Login's user protocol, written out so the model need not import Flask.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.status != "separated"

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def is_locked(self, now: datetime) -> bool:
        """Whether sign-in is refused at ``now`` because of failed attempts."""
        return self.locked_until is not None and self.locked_until > now


class MemberRole(Base):
    """One role held by a member; a member may hold several."""

    __tablename__ = "member_role"
    __table_args__ = (
        CheckConstraint("role IN ('officer', 'supervisor', 'coordinator', 'hr', 'admin')", name="role"),
        # Who holds a role (the training coordinators every quiz page names), migration 0021.
        Index("ix_member_role_role", "role", "member_id"),
    )

    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)

    member: Mapped[Member] = relationship(back_populates="roles")


class SignInSession(Base):
    """One signed-in session, held server-side so that signing out, a password reset or a timeout
    ends it everywhere, whatever copies of the browser's cookie exist."""

    __tablename__ = "sign_in_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: SHA-256 (hex) of the random token kept in the browser's signed cookie; the token itself is
    #: never stored, so a copy of this table cannot be used to sign in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    #: Sign-in time; the absolute limit counts from here.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Last request seen (written at most once a minute); the idle limit counts from here.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: When the session was ended; None while it is live.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Why it ended: sign_out, idle, expired, password_reset, password_change, signed_in_again,
    #: mfa_reset.
    revoked_reason: Mapped[str | None] = mapped_column(String(20))
    #: Where the sign-in came from.
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    #: How the member signed in: "password", "oidc" or "saml" (None: before migration 0016, a
    #: password). A signature asks for the same kind of proof again.
    auth_method: Mapped[str | None] = mapped_column(String(20))
    #: The identity provider of an "oidc" or "saml" sign-in.
    auth_provider: Mapped[str | None] = mapped_column(String(255))

    member: Mapped[Member] = relationship()


class SeenAssertion(Base):
    """A SAML assertion already used to sign in, kept until it expires, so it cannot be replayed."""

    __tablename__ = "seen_assertion"

    #: The identity provider's entity ID and the assertion's ID.
    issuer: Mapped[str] = mapped_column(String(255), primary_key=True)
    assertion_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: After this the assertion is refused as expired anyway, so the row may go.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


#: The personnel attributes rosters group and filter by, each effective-dated in PersonnelChange.
TRACKED_FIELDS = ("status", "unit", "shift", "rank", "supervisor")


class PersonnelChange(Base):
    """One personnel attribute of a member taking a value from a date: the effective-dated history
    behind "as of D" rosters and evidence. Rows are only ever appended (database triggers); a
    correction is a later row. The member row keeps the values in force today, for speed."""

    __tablename__ = "personnel_change"
    __table_args__ = (
        CheckConstraint("field IN ('status', 'unit', 'shift', 'rank', 'supervisor')", name="field"),
        # A member's value of a field on a date is the latest row here up to that date.
        Index("ix_personnel_change_member_id_field_effective", "member_id", "field", "effective", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    #: status, unit, shift, rank or supervisor.
    field: Mapped[str] = mapped_column(String(20))
    #: The new value of status, unit, shift or rank; None for supervisor, and for an emptied value.
    value: Mapped[str | None] = mapped_column(String(80))
    #: The new supervisor (field supervisor only); None when the member reports to nobody.
    #: Indexed: a supervisor's roster as of a date finds who ever reported to them here (0019).
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), index=True)
    #: The department's local date from which the value holds.
    effective: Mapped[date]
    #: When the change was written (UTC) and the department's local date then: a change written
    #: before its effective date is applied to the member row when that date comes.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_on: Mapped[date]
    #: The administrator who wrote it; None for the command line and the migration.
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"))
    #: Where it came from: "cli:FILE", "web:FILE", "admin", "create-user", "baseline".
    source: Mapped[str] = mapped_column(String(255))
