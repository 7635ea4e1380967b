"""Invitations: a one-time, expiring link e-mailed to a member so they set their own password,
sent in bulk from an import or the administrator's page, and what the administrator sees of them.

The link's token is stored only as its SHA-256; the e-mail is queued as a job in the caller's
transaction (``lms.services.mail.queue_email``), so an import that rolls back sends nothing.
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from lms.models import Invitation, Member, SignInSession
from lms.services.accounts import set_first_password
from lms.services.audit import record_event
from lms.services.clock import datetime_words
from lms.services.links import public_url
from lms.services.mail import Audit, queue_email


class InvitationError(ValueError):
    """An invitation link that cannot be used; the message says why, in the member's words."""


@dataclass(frozen=True)
class InvitationSettings:
    """What an invitation e-mail needs (config: PUBLIC_URL, MAIL_SENDER, DEPARTMENT_NAME,
    TIMEZONE, INVITATION_DAYS)."""

    public_url: str
    sender: str
    department: str
    timezone: str
    days: int = 7

    @classmethod
    def from_config(cls, config) -> InvitationSettings:
        return cls(public_url=public_url(config, ""), sender=config["MAIL_SENDER"],
                   department=config["DEPARTMENT_NAME"], timezone=config["TIMEZONE"],
                   days=int(config.get("INVITATION_DAYS", 7)))


@dataclass
class Invited:
    """What a bulk invitation did: who was sent a link, who was skipped and why."""

    sent: list[Member] = field(default_factory=list)
    skipped: list[tuple[Member, str]] = field(default_factory=list)


def token_digest(token: str) -> str:
    """The stored form of a link's token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _why_not(member: Member) -> str | None:
    if member.status == "separated":
        return "separated"
    if not member.email:
        return "no e-mail address on record"
    if member.password_hash is not None:
        return "already has a password"
    return None


def build_message(member: Member, link: str, expires_at: datetime, settings: InvitationSettings) -> EmailMessage:
    """The invitation e-mail: who it is for, the link, and until when it works."""
    message = EmailMessage()
    message["To"] = member.email
    message["Subject"] = f"Set your Roll Call password ({settings.department})"
    message.set_content(
        f"{member.first_name} {member.last_name},\n\n"
        f"The {settings.department} uses Roll Call for policy training and acknowledgments. "
        f"Your badge number {member.badge} is your sign-in name.\n\n"
        f"Choose your password here (the link works once):\n\n    {link}\n\n"
        f"The link expires at {datetime_words(expires_at, settings.timezone)}. If it has expired, "
        f"ask an administrator to send a new one.\n\n"
        f"If you did not expect this e-mail, tell your supervisor; do not forward it.\n")
    return message


def invite(session: Session, members: Sequence[Member], *, now: datetime, by_id: int | None, ip: str | None,
           settings: InvitationSettings, skip_open: bool = False) -> Invited:
    """Send each member who can be invited (active or on leave, an e-mail address, no password
    yet) a new link; an earlier link of theirs stops working. With ``skip_open``, members whose
    last link is still open are left alone (a weekly import does not re-send every week).
    Audited per member; the e-mails are queued as jobs in this transaction."""
    outcome = Invited()
    for member in members:
        reason = _why_not(member)
        if reason is None and skip_open and latest_invitation(session, member.id, now=now, only_open=True):
            reason = "has an open invitation"
        if reason is not None:
            outcome.skipped.append((member, reason))
            continue
        session.execute(update(Invitation).where(
            Invitation.member_id == member.id, Invitation.used_at.is_(None), Invitation.replaced_at.is_(None)
        ).values(replaced_at=now))
        token = secrets.token_urlsafe(32)
        invitation = Invitation(member_id=member.id, token_hash=token_digest(token), created_at=now,
                                expires_at=now + timedelta(days=settings.days), sent_by_id=by_id)
        session.add(invitation)
        session.flush()
        link = f"{settings.public_url}/invitation/{token}"
        details = {"badge": member.badge, "invitation": invitation.id}
        queue_email(session, build_message(member, link, invitation.expires_at, settings),
                    key=f"invitation:{invitation.id}", now=now, sender=settings.sender, created_by_id=by_id,
                    audit=Audit("invitation.send", by_id, f"member:{member.id}", ip, details))
        record_event(session, "account.invite", at=now, actor_id=by_id, target=f"member:{member.id}", ip=ip,
                     details={**details, "expires_at": invitation.expires_at.isoformat()})
        outcome.sent.append(member)
    session.flush()
    return outcome


def latest_invitation(session: Session, member_id: int, *, now: datetime, only_open: bool = False) -> Invitation | None:
    """The member's most recent invitation (only if still usable, with ``only_open``)."""
    query = select(Invitation).where(Invitation.member_id == member_id).order_by(Invitation.id.desc()).limit(1)
    invitation = session.scalar(query)
    if invitation is not None and only_open and invitation.state(now) != "open":
        return None
    return invitation


def open_invitation(session: Session, token: str, *, now: datetime) -> Invitation:
    """The invitation a link names, if it can still be used; InvitationError says why not."""
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == token_digest(token or "")))
    if invitation is None:
        raise InvitationError("This invitation link is not valid. Ask an administrator to send a new one.")
    state = invitation.state(now)
    if state == "used":
        raise InvitationError("This invitation link was already used. Sign in with your badge number and "
                              "the password you chose, or ask an administrator for help.")
    if state == "replaced":
        raise InvitationError("A newer invitation was sent to you; use the link in the latest e-mail.")
    if state == "expired":
        raise InvitationError("This invitation link has expired. Ask an administrator to send a new one.")
    if invitation.member.status == "separated" or invitation.member.password_hash is not None:
        raise InvitationError("This invitation link can no longer be used. Ask an administrator for help.")
    return invitation


def accept(session: Session, token: str, *, password: str, now: datetime, ip: str | None,
           hash_method: str) -> Member:
    """Set the member's first password from their invitation; the link is used up. The policy
    applies (AccountError, field "password"); two tabs racing with one link: one wins."""
    invitation = open_invitation(session, token, now=now)
    member = invitation.member
    set_first_password(member, password, now=now, hash_method=hash_method)
    won = session.execute(  # type: ignore[attr-defined]  # DML gives a CursorResult
        update(Invitation).where(Invitation.id == invitation.id, Invitation.used_at.is_(None)).values(used_at=now)).rowcount
    if won != 1:
        raise InvitationError("This invitation link was already used.")
    record_event(session, "account.invitation_accept", at=now, actor_id=member.id, target=f"member:{member.id}",
                 ip=ip, details={"badge": member.badge, "invitation": invitation.id})
    session.flush()
    return member


@dataclass(frozen=True)
class InvitationRow:
    """One line of the administrator's invitations page."""

    member: Member
    invitation: Invitation | None
    #: The member's latest sign-in, None if they never signed in.
    last_sign_in: datetime | None


def invitation_overview(session: Session, *, limit: int = 2000) -> list[InvitationRow]:
    """Members not yet using Roll Call: those without a password (invited or not) and those
    invited who never signed in, by last name, with their latest invitation."""
    earlier = aliased(Invitation)
    latest = (select(func.max(earlier.id)).where(earlier.member_id == Member.id)
              .correlate(Member).scalar_subquery())
    last_sign_in = (select(func.max(SignInSession.created_at)).where(SignInSession.member_id == Member.id)
                    .correlate(Member).scalar_subquery())
    invited = exists().where(earlier.member_id == Member.id).correlate(Member)
    rows = session.execute(
        select(Member, Invitation, last_sign_in.label("last_sign_in"))
        .outerjoin(Invitation, Invitation.id == latest)
        .where(Member.status != "separated",
               or_(Member.password_hash.is_(None), invited & last_sign_in.is_(None)))
        .order_by(Member.last_name, Member.first_name, Member.badge).limit(limit)).all()
    return [InvitationRow(member, invitation, signed_in) for member, invitation, signed_in in rows]


def members_by_id(session: Session, ids: Sequence[int]) -> list[Member]:
    """The members with these ids, by last name (unknown ids are ignored)."""
    if not ids:
        return []
    return list(session.scalars(select(Member).where(Member.id.in_(ids))
                                .order_by(Member.last_name, Member.first_name, Member.badge)))



def members_to_invite_from_import(session: Session, badges: Sequence[str]) -> list[Member]:
    """The members of an imported file who could be invited: no password yet, not separated."""
    wanted = set(badges)
    candidates = session.scalars(select(Member).where(Member.password_hash.is_(None), Member.status != "separated")
                                 .order_by(Member.last_name, Member.first_name, Member.badge))
    return [m for m in candidates if m.badge in wanted]
