"""A second factor for local accounts: an authenticator app (TOTP, RFC 6238) with one-time
recovery codes, enrolment, checking a code at sign-in (never the same code twice), and which
roles must have one (MFA_REQUIRED_ROLES)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from lms.models import ROLES, Member, PasskeyCredential, RecoveryCode, TotpFactor
from lms.services.accounts import SignInRules, count_failed_attempt
from lms.services.audit import record_event

#: The issuer authenticator apps show beside the account.
ISSUER = "Roll Call"
#: Seconds per TOTP code.
STEP = 30
#: Codes of the step before and after are accepted too (clocks drift, people type slowly).
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# No 0/o, 1/l/i to misread on paper.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class SecondFactorError(ValueError):
    """A second-factor request that cannot be carried out; the message says why."""


def required_roles(value) -> frozenset[str]:
    """The roles MFA_REQUIRED_ROLES names ("admin,hr", a list, or "" for none); unknown roles refused."""
    if value is None:
        return frozenset()
    names = value.split(",") if isinstance(value, str) else list(value)
    roles = frozenset(n.strip() for n in names if n and n.strip())
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"MFA_REQUIRED_ROLES: unknown role(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(ROLES)}")
    return roles


def is_required(member: Member, roles: Iterable[str]) -> bool:
    """Whether the member holds a role that must use a second factor."""
    return bool(member.role_names & set(roles))


def totp_of(session: Session, member_id: int) -> TotpFactor | None:
    """The member's authenticator app, confirmed or not."""
    return session.get(TotpFactor, member_id)


def is_enrolled(session: Session, member_id: int) -> bool:
    """Whether the member has a second factor: a confirmed authenticator app or a passkey."""
    factor = totp_of(session, member_id)
    if factor is not None and factor.confirmed_at is not None:
        return True
    return session.scalar(select(PasskeyCredential.id).where(PasskeyCredential.member_id == member_id)
                          .limit(1)) is not None


def start_totp(session: Session, member: Member, *, now: datetime) -> TotpFactor:
    """A new secret for the member to add to their authenticator app; it counts only once a code
    from it is confirmed. An enrolled member must remove the old one first."""
    import pyotp  # here and below: only the second factor needs it, not every command's start-up

    factor = totp_of(session, member.id)
    if factor is not None and factor.confirmed_at is not None:
        raise SecondFactorError("An authenticator app is already set up for this account.")
    if factor is None:
        factor = TotpFactor(member_id=member.id, secret=pyotp.random_base32(), created_at=now)
        session.add(factor)
    else:  # a fresh secret each time enrolment starts over
        factor.secret, factor.created_at, factor.last_step = pyotp.random_base32(), now, None
    session.flush()
    return factor


def provisioning_uri(factor: TotpFactor, member: Member, department: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    import pyotp

    return pyotp.TOTP(factor.secret, interval=STEP).provisioning_uri(
        name=f"{member.badge} ({department})", issuer_name=ISSUER)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code is ``code``, within the allowed drift, or None."""
    code = "".join(code.split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    import pyotp

    totp = pyotp.TOTP(secret, interval=STEP)
    current = int(now.timestamp()) // STEP
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _use_step(session: Session, factor: TotpFactor, step: int) -> bool:
    """Record ``step`` as used, only if it is later than the last one used: a code is accepted
    once, even by two servers checking it at the same moment."""
    won = session.execute(update(TotpFactor).where(  # type: ignore[attr-defined]  # DML gives a CursorResult
        TotpFactor.member_id == factor.member_id,
        (TotpFactor.last_step.is_(None)) | (TotpFactor.last_step < step),
    ).values(last_step=step)).rowcount
    if won:
        factor.last_step = step
    return bool(won)


def _recovery_digest(code: str) -> str:
    normalised = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normalised.encode()).hexdigest()


def new_recovery_codes(session: Session, member: Member, *, now: datetime) -> list[str]:
    """Replace the member's recovery codes with new ones; returns them to show once (only their
    hashes are kept). Each is 16 characters from a 31-letter alphabet, about 79 bits."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
        session.add(RecoveryCode(member_id=member.id, code_hash=_recovery_digest(code), created_at=now))
        codes.append(code)
    session.flush()
    return codes


def confirm_totp(session: Session, member: Member, code: str, *, now: datetime, ip: str | None) -> list[str]:
    """Finish enrolment with a first code from the app; returns the new recovery codes."""
    factor = totp_of(session, member.id)
    if factor is None or factor.confirmed_at is not None:
        raise SecondFactorError("Start setting up an authenticator app first.")
    step = _matching_step(factor.secret, code, now)
    if step is None or not _use_step(session, factor, step):
        record_event(session, "account.mfa_enrol", at=now, actor_id=member.id, target=f"member:{member.id}",
                     ip=ip, outcome="failure", details={"badge": member.badge, "factor": "totp"})
        raise SecondFactorError("That code is not right. Enter the 6-digit code your app shows now.")
    factor.confirmed_at = now
    codes = new_recovery_codes(session, member, now=now)
    record_event(session, "account.mfa_enrol", at=now, actor_id=member.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "factor": "totp", "recovery_codes": len(codes)})
    session.flush()
    return codes


def replace_recovery_codes(session: Session, member: Member, *, now: datetime, ip: str | None) -> list[str]:
    """New recovery codes for an enrolled member (the old ones stop working); audited."""
    if not is_enrolled(session, member.id):
        raise SecondFactorError("Set up an authenticator app or a passkey first.")
    codes = new_recovery_codes(session, member, now=now)
    record_event(session, "account.recovery_codes", at=now, actor_id=member.id, target=f"member:{member.id}",
                 ip=ip, details={"badge": member.badge, "recovery_codes": len(codes)})
    return codes


def unused_recovery_codes(session: Session, member_id: int) -> int:
    """How many recovery codes the member has left."""
    return len(session.scalars(select(RecoveryCode.id).where(RecoveryCode.member_id == member_id,
                                                             RecoveryCode.used_at.is_(None))).all())


def verify(session: Session, member: Member, code: str, *, now: datetime, ip: str | None,
           rules: SignInRules = SignInRules()) -> str | None:
    """Check the second step of a sign-in: a code from the app (each accepted once) or an unused
    recovery code (used up). Returns which ("totp" or "recovery_code"), or None; a wrong code
    counts toward lockout as a wrong password does. Audited either way."""
    factor = totp_of(session, member.id)
    used = None
    if factor is not None and factor.confirmed_at is not None and not member.is_locked(now):
        step = _matching_step(factor.secret, code, now)
        if step is not None and _use_step(session, factor, step):
            used = "totp"
        elif step is None and len(code.strip()) > 8:
            won = session.execute(update(RecoveryCode).where(  # type: ignore[attr-defined]  # DML gives a CursorResult
                RecoveryCode.member_id == member.id, RecoveryCode.code_hash == _recovery_digest(code),
                RecoveryCode.used_at.is_(None)).values(used_at=now)).rowcount
            used = "recovery_code" if won else None
    target = f"member:{member.id}"
    if used is None:
        record_event(session, "auth.second_factor", at=now, target=target, ip=ip, outcome="failure",
                     details={"badge": member.badge})
        count_failed_attempt(session, member, now=now, ip=ip, rules=rules)
        session.flush()
        return None
    member.failed_sign_ins = 0
    details: dict[str, str | int] = {"badge": member.badge, "factor": used}
    if used == "recovery_code":
        details["recovery_codes_left"] = unused_recovery_codes(session, member.id)
    record_event(session, "auth.second_factor", at=now, actor_id=member.id, target=target, ip=ip, details=details)
    session.flush()
    return used
