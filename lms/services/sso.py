"""Single sign-on, whatever the protocol: who an identity provider's answer names, whether they may
come in, the sign-in itself, and the SAML replay store.

The protocols (``lms.services.oidc``, ``lms.services.saml``) verify what the provider sent and
turn it into an ``Identity``; everything after that is decided here.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lms.models import Member, MemberRole, SeenAssertion, SignInSession
from lms.services.audit import record_event
from lms.services.sessions import start_session

#: Personnel fields an identity provider's claim may be matched to.
MEMBER_FIELDS = ("badge", "email")
PROTOCOL_NAMES = {"oidc": "OpenID Connect", "saml": "SAML 2.0"}


class SsoRefused(Exception):
    """The identity provider's answer does not let anyone in; ``reason`` is a short code for the
    audit log, the message is for the person at the browser."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Identity:
    """What a verified answer from an identity provider says about the person."""

    #: "oidc" or "saml".
    protocol: str
    #: The OpenID issuer or the SAML identity provider's entity ID.
    provider: str
    #: The value of the configured claim or attribute (a badge or an e-mail address).
    subject: str
    #: When the person authenticated at the provider (auth_time, AuthnInstant).
    authenticated_at: datetime
    #: Other claims, for a member created on first sign-in (given_name, family_name, email).
    claims: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SsoRules:
    """How identities become members (config: OIDC_/SAML_MEMBER_FIELD, SSO_CREATE_MEMBERS)."""

    #: The personnel field the subject is matched to: "badge" or "email".
    member_field: str = "email"
    #: Create an unknown person as a member (only when matching by badge).
    create_members: bool = False


def find_member_for(session: Session, identity: Identity, member_field: str) -> Member | None:
    """The member the identity names: by badge exactly, or by e-mail ignoring case."""
    subject = identity.subject.strip()
    if not subject:
        return None
    if member_field == "badge":
        return session.scalar(select(Member).where(Member.badge == subject))
    if member_field == "email":
        # Two records with one e-mail address would make the answer a guess: refuse both.
        found = list(session.scalars(select(Member).where(func.lower(Member.email) == subject.casefold()).limit(2)))
        return found[0] if len(found) == 1 else None
    raise ValueError(f"member field must be one of {MEMBER_FIELDS}, not {member_field!r}")


def member_for_identity(session: Session, identity: Identity, rules: SsoRules, *, now: datetime,
                        ip: str | None) -> Member:
    """The member an identity signs in as; raises SsoRefused (audited) for an unknown or separated
    person. With ``create_members`` on and matching by badge, an unknown badge becomes a new
    active member with the officer role, named by the provider's given and family name claims, and
    without a password (they sign in only through the identity provider); that is audited too."""
    member = find_member_for(session, identity, rules.member_field)
    if member is None and rules.create_members and rules.member_field == "badge":
        member = _create_member(session, identity, now=now, ip=ip)
    if member is None:
        _refuse(session, identity, "unknown_member", now=now, ip=ip)
        raise SsoRefused("unknown_member", (
            f"The identity provider signed you in as “{identity.subject}”, but no member of the "
            f"department has that {'badge number' if rules.member_field == 'badge' else 'e-mail address'} "
            "on record. Ask the administrator to check your personnel record."))
    if not member.is_active:
        _refuse(session, identity, "separated", now=now, ip=ip, member=member)
        raise SsoRefused("separated", "Your personnel record shows you as separated from the department, "
                                      "so you cannot sign in. Ask the administrator if this is wrong.")
    return member


def _create_member(session: Session, identity: Identity, *, now: datetime, ip: str | None) -> Member | None:
    first = (identity.claims.get("given_name") or "").strip()[:80]
    last = (identity.claims.get("family_name") or "").strip()[:80]
    badge = identity.subject.strip()
    if not first or not last or len(badge) > 20:
        return None  # not enough to make a record a roster could show; refused as unknown
    member = Member(badge=badge, first_name=first, last_name=last,
                    email=(identity.claims.get("email") or "").strip()[:254] or None, status="active")
    member.roles.append(MemberRole(role="officer"))
    session.add(member)
    session.flush()
    record_event(session, "member.create", at=now, target=f"member:{member.id}", ip=ip,
                 details={"badge": badge, "by": f"single sign-on ({identity.protocol})",
                          "provider": identity.provider})
    return member


def _refuse(session: Session, identity: Identity, reason: str, *, now: datetime, ip: str | None,
            member: Member | None = None) -> None:
    record_event(session, "auth.sso", at=now, target=f"member:{member.id}" if member else None, ip=ip,
                 outcome="failure", details={"reason": reason, "protocol": identity.protocol,
                                             "provider": identity.provider, "subject": identity.subject[:200]})
    session.flush()


def refuse_answer(session: Session, *, protocol: str, provider: str | None, reason: str, problem: str,
                  now: datetime, ip: str | None) -> None:
    """Audit an answer from an identity provider that did not verify (bad signature, wrong
    audience, replay, state mismatch...)."""
    record_event(session, "auth.sso", at=now, ip=ip, outcome="failure",
                 details={"reason": reason, "protocol": protocol, "provider": provider, "problem": problem[:500]})
    session.flush()


def start_sso_session(session: Session, member: Member, identity: Identity, *, now: datetime, ip: str | None,
                      user_agent: str | None) -> tuple[SignInSession, str]:
    """Sign the member in through the identity provider: a new server-side session that remembers
    the provider (so signing asks it again), the lockout count cleared, the sign-in audited."""
    sign_in, token = start_session(session, member, now=now, ip=ip, user_agent=user_agent)
    sign_in.auth_method, sign_in.auth_provider = identity.protocol, identity.provider[:255]
    member.failed_sign_ins = 0
    record_event(session, "auth.sign_in", at=now, actor_id=member.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "method": identity.protocol, "provider": identity.provider,
                          "authenticated_at": identity.authenticated_at.isoformat()})
    session.flush()
    return sign_in, token


def remember_assertion(session: Session, *, issuer: str, assertion_id: str, expires_at: datetime,
                       now: datetime) -> bool:
    """Record a SAML assertion as used; False if it was used before (a replay).

    Expired entries are dropped first: an expired assertion is refused for its age anyway. The
    insert runs in a savepoint, so a replay racing the first use loses on the primary key.
    """
    session.execute(delete(SeenAssertion).where(SeenAssertion.expires_at < now))
    if session.get(SeenAssertion, (issuer[:255], assertion_id[:255])) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(SeenAssertion(issuer=issuer[:255], assertion_id=assertion_id[:255], expires_at=expires_at))
    except IntegrityError:
        return False
    return True

