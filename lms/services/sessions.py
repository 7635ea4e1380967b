"""Server-side sign-in sessions: started at sign-in, checked on every request against the idle
and absolute limits, ended by signing out, a password change or reset.

The browser holds a random token (inside Flask's signed cookie); the database holds only its
SHA-256, so neither a stolen cookie after sign-out nor a copy of the table lets anyone in.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from lms.models import Member, SignInSession
from lms.services.audit import record_event

TOKEN_BYTES = 32


@dataclass(frozen=True)
class SessionLimits:
    """How long a session lives (config: SESSION_IDLE_MINUTES, SESSION_ABSOLUTE_HOURS,
    SESSION_TOUCH_SECONDS)."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    #: last_seen_at is written at most this often, so browsing is not a write per request; the
    #: idle limit is therefore exact to within this much.
    touch_every: timedelta = timedelta(minutes=1)

    @classmethod
    def from_config(cls, config: Mapping) -> SessionLimits:
        return cls(idle=timedelta(minutes=float(config.get("SESSION_IDLE_MINUTES", 30))),
                   absolute=timedelta(hours=float(config.get("SESSION_ABSOLUTE_HOURS", 12))),
                   touch_every=timedelta(seconds=float(config.get("SESSION_TOUCH_SECONDS", 60))))


@dataclass(frozen=True)
class SessionCheck:
    """The session a token names, if it is live; otherwise why not (unknown, revoked, idle, expired)."""

    sign_in: SignInSession | None
    ended: str | None = None
    #: Whether the check wrote something the caller must commit.
    changed: bool = False

    @property
    def member(self) -> Member | None:
        return self.sign_in.member if self.sign_in is not None else None


def token_hash(token: str) -> str:
    """The SHA-256 (hex) stored in place of a session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, member: Member, *, now: datetime, ip: str | None,
                  user_agent: str | None) -> tuple[SignInSession, str]:
    """A new session for ``member``; returns it and the token to give the browser (never stored)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    sign_in = SignInSession(token_hash=token_hash(token), member_id=member.id, created_at=now,
                            last_seen_at=now, ip=ip, user_agent=(user_agent or "")[:255] or None)
    session.add(sign_in)
    session.flush()
    return sign_in, token


def check_session(session: Session, token: str, *, now: datetime, limits: SessionLimits) -> SessionCheck:
    """Look a token up and apply the limits: a session past either limit is ended here (and the
    end audited); a live one has last_seen_at moved on if it is older than ``touch_every``."""
    sign_in = session.scalar(select(SignInSession).options(joinedload(SignInSession.member))
                             .where(SignInSession.token_hash == token_hash(token)))
    if sign_in is None:
        return SessionCheck(None, "unknown")
    if sign_in.revoked_at is not None:
        return SessionCheck(None, "revoked")
    for reason, over in (("expired", now - sign_in.created_at >= limits.absolute),
                         ("idle", now - sign_in.last_seen_at >= limits.idle)):
        if over:
            revoke_session(session, sign_in, now=now, reason=reason)
            record_event(session, "auth.session_end", at=now, actor_id=sign_in.member_id,
                         target=f"sign_in_session:{sign_in.id}", details={"reason": reason})
            session.flush()
            return SessionCheck(None, reason, changed=True)
    if now - sign_in.last_seen_at >= limits.touch_every:
        sign_in.last_seen_at = now
        session.flush()
        return SessionCheck(sign_in, changed=True)
    return SessionCheck(sign_in)


def revoke_session(session: Session, sign_in: SignInSession, *, now: datetime, reason: str) -> None:
    """End one session (if it is still live)."""
    if sign_in.revoked_at is None:
        sign_in.revoked_at, sign_in.revoked_reason = now, reason
        session.flush()


def revoke_token(session: Session, token: str, *, now: datetime, reason: str) -> SignInSession | None:
    """End the session a token names; returns it, or None if there is none."""
    sign_in = session.scalar(select(SignInSession).where(SignInSession.token_hash == token_hash(token)))
    if sign_in is not None:
        revoke_session(session, sign_in, now=now, reason=reason)
    return sign_in


def revoke_member_sessions(session: Session, member_id: int, *, now: datetime, reason: str,
                           keep_id: int | None = None) -> int:
    """End every live session of a member, but ``keep_id``; returns how many ended."""
    statement = (update(SignInSession)
                 .where(SignInSession.member_id == member_id, SignInSession.revoked_at.is_(None))
                 .values(revoked_at=now, revoked_reason=reason)
                 .execution_options(synchronize_session="fetch"))
    if keep_id is not None:
        statement = statement.where(SignInSession.id != keep_id)
    return session.execute(statement).rowcount  # type: ignore[attr-defined]  # DML gives a CursorResult


def live_sessions(session: Session, member_id: int, *, now: datetime,
                  limits: SessionLimits) -> list[SignInSession]:
    """The member's sessions that are neither ended nor past a limit, newest first."""
    return list(session.scalars(select(SignInSession).where(
        SignInSession.member_id == member_id, SignInSession.revoked_at.is_(None),
        SignInSession.created_at > now - limits.absolute, SignInSession.last_seen_at > now - limits.idle,
    ).order_by(SignInSession.created_at.desc())))


def seconds_left(sign_in: SignInSession, *, now: datetime, limits: SessionLimits) -> int:
    """Seconds until the session ends by itself: idle since it was last seen, or at its absolute
    limit, whichever comes first (0 when past either)."""
    left = min(sign_in.last_seen_at + limits.idle - now, sign_in.created_at + limits.absolute - now)
    return max(0, int(left.total_seconds()))


def stay_signed_in(session: Session, sign_in: SignInSession, *, now: datetime, limits: SessionLimits) -> int:
    """The member asked to stay signed in (the warning before the idle sign-out): mark the session
    seen now, whatever the touch interval, and return the seconds it now has left."""
    sign_in.last_seen_at = now
    session.flush()
    return seconds_left(sign_in, now=now, limits=limits)
