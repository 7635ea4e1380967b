"""Members' accounts: creating people, granting roles, checking passwords."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from lms.models import ROLES, Member, MemberRole

# Checked against when the badge is unknown, so a wrong badge costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not a password", method="scrypt:32768:8:1")


class AccountError(ValueError):
    """A request about an account that cannot be carried out; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def hash_password(password: str, method: str) -> str:
    """Hash a password with the configured werkzeug method (scrypt by default)."""
    return generate_password_hash(password, method=method)


def find_member(session: Session, badge: str) -> Member | None:
    """The member with this badge, if any."""
    return session.scalar(select(Member).where(Member.badge == badge.strip()))


def authenticate(session: Session, badge: str, password: str) -> Member | None:
    """The member if badge and password match and they may sign in, else None."""
    member = find_member(session, badge) if badge else None
    if member is None or member.password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(member.password_hash, password):
        return None
    return member if member.is_active else None


def password_matches(member: Member, password: str) -> bool:
    """Whether ``password`` is the member's current password (re-authentication)."""
    if member.password_hash is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(member.password_hash, password)


def create_or_grant(session: Session, *, badge: str, first_name: str, last_name: str, role: str,
                    unit: str | None = None, shift: str | None = None, rank: str | None = None,
                    email: str | None = None, password: str | None = None,
                    hash_method: str) -> tuple[Member, bool]:
    """Add a person, or grant ``role`` to the person who already holds ``badge``.

    Returns the member and whether they were created. A badge that belongs to someone with a
    different name is refused: badges are never reused for another person.
    """
    badge, first_name, last_name = badge.strip(), first_name.strip(), last_name.strip()
    if not badge or len(badge) > 20:
        raise AccountError("badge must be 1 to 20 characters", "badge")
    if not first_name or not last_name:
        raise AccountError("first and last name are required", "first_name")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
    if password is not None and len(password) < 12:
        raise AccountError("password must be at least 12 characters", "password")
    member = find_member(session, badge)
    created = member is None
    if member is None:
        member = Member(badge=badge, first_name=first_name, last_name=last_name, unit=unit,
                        shift=shift, rank=rank, email=email, status="active")
        session.add(member)
    elif (member.first_name.casefold(), member.last_name.casefold()) != (first_name.casefold(), last_name.casefold()):
        raise AccountError(f"badge {badge} belongs to {member.full_name}; badges are never reused", "badge")
    else:
        for name, value in (("unit", unit), ("shift", shift), ("rank", rank), ("email", email)):
            if value is not None:
                setattr(member, name, value)
    if password is not None:
        member.password_hash = hash_password(password, hash_method)
    if role not in member.role_names:
        member.roles.append(MemberRole(role=role))
    session.flush()
    return member, created
