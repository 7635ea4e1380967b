"""Members' accounts: creating people, the password policy, signing in (with lockout and per-IP
throttling), and the administrator's account actions (unlock, reset, roles)."""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from lms.models import ROLES, AuditEvent, Member, MemberRole, PasskeyCredential, RecoveryCode, TotpFactor
from lms.services.audit import record_event
from lms.services.personnel_history import record_changes, record_initial
from lms.services.sessions import revoke_member_sessions


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the badge is unknown, so a wrong badge costs as long as a wrong
    password; made on first use so commands that never sign anyone in skip the scrypt work."""
    return generate_password_hash("not a password", method="scrypt:32768:8:1")


MIN_PASSWORD_LENGTH = 12
#: ASVS asks that at least 64 be allowed; the cap only bounds hashing work per attempt.
MAX_PASSWORD_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"
#: A lock that only an administrator lifts (LOCKOUT_MINUTES = 0).
LOCKED_UNTIL_UNLOCKED = datetime(9999, 12, 31, tzinfo=timezone.utc)
# Undo the letter-for-symbol swaps people make to dress up a common word ("P@ssw0rd").
_UNLEET = str.maketrans({"@": "a", "4": "a", "0": "o", "3": "e", "1": "i", "!": "i", "$": "s",
                         "5": "s", "7": "t"})
_PADDING = string.digits + string.punctuation + string.whitespace
# Temporary passwords: no 0/o, 1/l/i to misread when an administrator passes one on.
_TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class AccountError(ValueError):
    """A request about an account that cannot be carried out; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- passwords -------------------------------------------------------------------------------------

def _normalise(password: str) -> str:
    """NFKC, as NIST SP 800-63B asks, so the same password typed on another keyboard matches."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str, method: str) -> str:
    """Hash a password with the configured werkzeug method (scrypt by default)."""
    return generate_password_hash(_normalise(password), method=method)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords and words, lower case."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("# "))


def is_common_password(password: str) -> bool:
    """Whether the password is on the list, also once digits and symbols around a listed word are
    stripped ("Policeofficer2024!") or symbol swaps undone ("p@ssw0rd"); case does not matter."""
    listed = common_passwords()
    folded = _normalise(password).casefold()
    core = folded.strip(_PADDING)
    candidates = {folded, core, folded.translate(_UNLEET), core.translate(_UNLEET),
                  folded.translate(_UNLEET).strip(_PADDING)}
    if len(set(folded)) == 1:  # one character repeated
        return True
    return any(c in listed for c in candidates if c)


def password_problem(password: str, *, badge: str = "", first_name: str = "", last_name: str = "") -> str | None:
    """Why ``password`` is refused, or None. Length and the common list only: no composition
    rules (upper case, digits, symbols), which make passwords harder to remember, not to guess."""
    length = len(_normalise(password))
    if length < MIN_PASSWORD_LENGTH:
        return (f"password must be at least {MIN_PASSWORD_LENGTH} characters; "
                "a few unrelated words make a good one")
    if length > MAX_PASSWORD_LENGTH:
        return f"password must be at most {MAX_PASSWORD_LENGTH} characters"
    if is_common_password(password):
        return "password is too common to be safe; choose another"
    folded = _normalise(password).casefold()
    personal = [badge.strip(), first_name.strip(), last_name.strip()]
    # Very short badges and names would refuse half of all passwords by accident.
    if any(len(p) >= 3 and _normalise(p).casefold() in folded for p in personal):
        return "password must not contain your badge number or name"
    return None


def check_password_policy(password: str, *, badge: str = "", first_name: str = "", last_name: str = "") -> None:
    """Raise AccountError(field="password") if the password breaks the policy."""
    problem = password_problem(password, badge=badge, first_name=first_name, last_name=last_name)
    if problem:
        raise AccountError(problem, "password")


def password_matches(member: Member, password: str) -> bool:
    """Whether ``password`` is the member's current password (re-authentication)."""
    if member.password_hash is None:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(member.password_hash, _normalise(password))


def _set_password(member: Member, password: str, *, now: datetime, hash_method: str,
                  must_change: bool) -> None:
    member.password_hash = hash_password(password, hash_method)
    member.password_changed_at = now
    member.must_change_password = must_change
    member.failed_sign_ins = 0
    member.locked_until = None


def set_first_password(member: Member, password: str, *, now: datetime, hash_method: str) -> None:
    """Set the password a member chose themselves (from an invitation): the policy applies, and
    any lock or failure count from before is cleared."""
    check_password_policy(password, badge=member.badge, first_name=member.first_name,
                          last_name=member.last_name)
    _set_password(member, password, now=now, hash_method=hash_method, must_change=False)


def temporary_password() -> str:
    """A random password to hand over once: 16 characters in four groups (about 79 bits)."""
    groups = ("".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(4)) for _ in range(4))
    return "-".join(groups)


# --- people and roles --------------------------------------------------------------------------------

def find_member(session: Session, badge: str) -> Member | None:
    """The member with this badge, if any."""
    return session.scalar(select(Member).where(Member.badge == badge.strip()))


def create_or_grant(session: Session, *, badge: str, first_name: str, last_name: str, role: str,
                    unit: str | None = None, shift: str | None = None, rank: str | None = None,
                    email: str | None = None, password: str | None = None,
                    hash_method: str, now: datetime | None = None,
                    today: date | None = None) -> tuple[Member, bool]:
    """Add a person, or grant ``role`` to the person who already holds ``badge``.

    Returns the member and whether they were created. A badge that belongs to someone with a
    different name is refused: badges are never reused for another person. A password must meet
    the password policy. A new unit, shift or rank of an existing member is appended to their
    history, effective ``today`` (the department's date; the UTC date if not given). A new
    member's values start their history on ``today`` when it is given; without it (test and demo
    factories) the member row stands for their history until their first recorded change.
    """
    badge, first_name, last_name = badge.strip(), first_name.strip(), last_name.strip()
    if not badge or len(badge) > 20:
        raise AccountError("badge must be 1 to 20 characters", "badge")
    if not first_name or not last_name:
        raise AccountError("first and last name are required", "first_name")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
    if password is not None:
        check_password_policy(password, badge=badge, first_name=first_name, last_name=last_name)
    member = find_member(session, badge)
    created = member is None
    now = now or datetime.now(timezone.utc)
    if member is None:
        member = Member(badge=badge, first_name=first_name, last_name=last_name, unit=unit,
                        shift=shift, rank=rank, email=email, status="active")
        session.add(member)
        if today is not None:
            session.flush()
            record_initial(session, member, effective=today, now=now, today=today, actor_id=None,
                           source="create-user")
    elif (member.first_name.casefold(), member.last_name.casefold()) != \
            (first_name.casefold(), last_name.casefold()):
        raise AccountError(f"badge {badge} belongs to {member.full_name}; badges are never reused", "badge")
    else:
        if email is not None:
            member.email = email
        changes = {name: value for name, value in (("unit", unit), ("shift", shift), ("rank", rank))
                   if value is not None}
        if changes:
            day = today or now.date()
            record_changes(session, member, changes, effective=day, today=day, now=now, actor_id=None,
                           source="create-user")
    if password is not None:
        _set_password(member, password, now=now, hash_method=hash_method,
                      must_change=False)
    if role not in member.role_names:
        member.roles.append(MemberRole(role=role))
    session.flush()
    return member, created


# --- signing in --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInRules:
    """Lockout and throttling limits (config: LOCKOUT_THRESHOLD, LOCKOUT_MINUTES,
    SIGN_IN_ACCOUNT_IP_MAX_FAILURES, SIGN_IN_IP_MAX_FAILURES, SIGN_IN_IP_WINDOW_MINUTES).

    Throttling counts failures of one badge from one address: a whole station or fleet of patrol
    cars behind one NAT gateway shares an address, so a per-address limit low enough to slow a
    guesser would lock out everyone behind it. The per-address ceiling stays, set high enough
    that only a scripted attack reaches it."""

    lockout_threshold: int = 5
    #: 0 locks until an administrator unlocks.
    lockout_minutes: int = 30
    #: Failures of one badge from one address within the window before that pair is refused.
    account_ip_max_failures: int = 10
    #: Failures of any badges from one address within the window before the address is refused.
    ip_max_failures: int = 300
    ip_window_minutes: int = 15
    #: Keys the hash under which failures of unknown badges are counted (SECRET_KEY).
    key: str = field(default="", repr=False)

    @classmethod
    def from_config(cls, config: Mapping) -> SignInRules:
        return cls(lockout_threshold=int(config.get("LOCKOUT_THRESHOLD", 5)),
                   lockout_minutes=int(config.get("LOCKOUT_MINUTES", 30)),
                   account_ip_max_failures=int(config.get("SIGN_IN_ACCOUNT_IP_MAX_FAILURES", 10)),
                   ip_max_failures=int(config.get("SIGN_IN_IP_MAX_FAILURES", 300)),
                   ip_window_minutes=int(config.get("SIGN_IN_IP_WINDOW_MINUTES", 15)),
                   key=str(config.get("SECRET_KEY") or ""))


@dataclass(frozen=True)
class SignInResult:
    """What a sign-in attempt came to. ``member`` is set only on success; every refusal looks the
    same to the person signing in, whatever ``reason`` the audit log records."""

    member: Member | None
    reason: str  # ok, throttled, unknown_badge, wrong_password, locked, inactive, no_password
    #: Set only when the right password was given for a locked account: the member may be told
    #: until when (LOCKED_UNTIL_UNLOCKED: until an administrator unlocks it).
    locked_until: datetime | None = None

    @property
    def throttled(self) -> bool:
        return self.reason == "throttled"


def recent_failures_from(session: Session, ip: str, *, since: datetime, target: str | None = None) -> int:
    """Failed sign-ins from ``ip`` since ``since`` (of one ``target`` when given), counted in the
    audit log (index on action, ip, at)."""
    query = select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "auth.sign_in", AuditEvent.ip == ip, AuditEvent.at > since,
        AuditEvent.outcome == "failure")
    if target is not None:
        query = query.where(AuditEvent.target == target)
    return session.scalar(query) or 0


def attempt_target(member: Member | None, badge: str, key: str) -> str:
    """What failures of one badge are counted under: the member, or for a badge nobody holds a
    keyed hash of what was typed. Counting unknown badges too keeps the throttle from telling
    which badges exist; keyed, because the typed text is sometimes a password in the wrong box."""
    if member is not None:
        return f"member:{member.id}"
    typed = unicodedata.normalize("NFKC", badge or "").strip().casefold()
    digest = hmac.new(key.encode(), typed.encode(), hashlib.sha256).hexdigest()[:24]
    return f"attempt:{digest}"


def authenticate(session: Session, badge: str, password: str, *, now: datetime, ip: str | None,
                 rules: SignInRules = SignInRules()) -> SignInResult:
    """Check a sign-in attempt and audit it: throttled per badge and address and under a
    per-address ceiling, refused while the account is locked, locking it at the threshold of
    consecutive failures, resetting the count on success.

    Lockout state lives in the member row, so it holds across workers and servers.
    """
    since = now - timedelta(minutes=rules.ip_window_minutes)
    if ip and recent_failures_from(session, ip, since=since) >= rules.ip_max_failures:
        # The password is not even checked: throttling exists to stop guessing.
        record_event(session, "auth.throttle", at=now, ip=ip, outcome="failure",
                     details={"window_minutes": rules.ip_window_minutes, "scope": "address"})
        return SignInResult(None, "throttled")
    member = find_member(session, badge) if badge and badge.strip() else None
    target = attempt_target(member, badge, rules.key)
    if ip and recent_failures_from(session, ip, since=since, target=target) >= rules.account_ip_max_failures:
        record_event(session, "auth.throttle", at=now, ip=ip, outcome="failure", target=target,
                     details={"window_minutes": rules.ip_window_minutes, "scope": "badge and address"})
        return SignInResult(None, "throttled")
    if member is None:
        check_password_hash(_dummy_hash(), password)
        # The typed badge is not kept (people type their password into the wrong box), only its
        # keyed hash, so that its failures count toward the throttle as a real badge's do.
        return _refuse(session, None, "unknown_badge", now, ip, target=target)
    if member.locked_until is not None and not member.is_locked(now):
        member.failed_sign_ins, member.locked_until = 0, None
        record_event(session, "auth.unlock", at=now, target=f"member:{member.id}", ip=ip,
                     details={"badge": member.badge, "by": "lock expired"})
    matches = password_matches(member, password)  # always hashed, so timing says nothing
    if member.is_locked(now):
        # Only someone who knows the password learns that the account is locked, and until when.
        result = _refuse(session, member, "locked", now, ip, password_right=matches)
        if matches and member.is_active:
            return SignInResult(None, "locked", locked_until=member.locked_until)
        return result
    if member.password_hash is None:
        return _refuse(session, member, "no_password" if member.is_active else "inactive", now, ip)
    if not matches:
        _count_failure(session, member, now, ip, rules)
        return _refuse(session, member, "wrong_password", now, ip)
    if not member.is_active:
        return _refuse(session, member, "inactive", now, ip)
    details = {"badge": member.badge}
    if _has_second_factor(session, member):
        # The password was the first step; auth.second_factor records the second. The failure
        # count resets only once that is passed too: otherwise the password alone would reset it
        # between rounds of guessed codes.
        details["second_factor"] = "pending"
    else:
        member.failed_sign_ins = 0
    record_event(session, "auth.sign_in", at=now, actor_id=member.id, target=f"member:{member.id}", ip=ip,
                 details=details)
    session.flush()
    return SignInResult(member, "ok")


def _has_second_factor(session: Session, member: Member) -> bool:
    return (session.scalar(select(TotpFactor.confirmed_at).where(TotpFactor.member_id == member.id)) is not None
            or session.scalar(select(PasskeyCredential.id).where(PasskeyCredential.member_id == member.id)
                              .limit(1)) is not None)


def _refuse(session: Session, member: Member | None, reason: str, now: datetime, ip: str | None, *,
            target: str | None = None, password_right: bool | None = None) -> SignInResult:
    details: dict = {"reason": reason}
    if member is not None:
        details["badge"] = member.badge
        target = f"member:{member.id}"
    if password_right:
        details["password_right"] = True
    record_event(session, "auth.sign_in", at=now, target=target, ip=ip, outcome="failure", details=details)
    session.flush()
    return SignInResult(None, reason)


def _count_failure(session: Session, member: Member, now: datetime, ip: str | None, rules: SignInRules) -> None:
    """Add one failure in SQL (two workers failing at once both count) and lock at the threshold."""
    failures = session.execute(
        update(Member).where(Member.id == member.id)
        .values(failed_sign_ins=Member.failed_sign_ins + 1).returning(Member.failed_sign_ins)
    ).scalar_one()
    member.failed_sign_ins = failures
    session.flush()
    if failures < rules.lockout_threshold:
        return
    until = now + timedelta(minutes=rules.lockout_minutes) if rules.lockout_minutes > 0 else LOCKED_UNTIL_UNLOCKED
    member.locked_until = until
    record_event(session, "auth.lockout", at=now, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "failed_sign_ins": failures,
                          "locked_until": None if until == LOCKED_UNTIL_UNLOCKED else until.isoformat()})


def count_failed_attempt(session: Session, member: Member, *, now: datetime, ip: str | None,
                         rules: SignInRules = SignInRules()) -> bool:
    """Count one failed proof of identity toward lockout (a wrong second-factor code counts as a
    wrong password does); returns whether the account is now locked."""
    _count_failure(session, member, now, ip, rules)
    return member.is_locked(now)


def count_reauthentication_failure(session: Session, member: Member, *, action: str, now: datetime,
                                   ip: str | None, rules: SignInRules = SignInRules()) -> bool:
    """A wrong password typed to confirm an action (signing, changing the password) counts toward
    lockout as a failed sign-in does: otherwise a screen left signed in would allow unlimited
    guesses. At the threshold the account locks and every session of the member ends. Returns
    whether the account is now locked."""
    record_event(session, "auth.reauthenticate", at=now, actor_id=member.id, target=f"member:{member.id}",
                 ip=ip, outcome="failure", details={"badge": member.badge, "for": action})
    _count_failure(session, member, now, ip, rules)
    if not member.is_locked(now):
        return False
    revoke_member_sessions(session, member.id, now=now, reason="locked")
    return True


# --- the member's own password -------------------------------------------------------------------------

def change_password(session: Session, member: Member, *, current_password: str, new_password: str,
                    now: datetime, ip: str | None, hash_method: str, keep_session_id: int | None) -> int:
    """The member changes their own password: the current one is required, the new one must meet
    the policy and differ from it. Their other sessions end; returns how many."""
    if not password_matches(member, current_password):
        raise AccountError("That is not your current password.", "current_password")
    check_password_policy(new_password, badge=member.badge, first_name=member.first_name,
                          last_name=member.last_name)
    if password_matches(member, new_password):
        raise AccountError("Choose a password different from your current one.", "new_password")
    _set_password(member, new_password, now=now, hash_method=hash_method, must_change=False)
    ended = revoke_member_sessions(session, member.id, now=now, reason="password_change", keep_id=keep_session_id)
    record_event(session, "account.password_change", at=now, actor_id=member.id, target=f"member:{member.id}",
                 ip=ip, details={"other_sessions_ended": ended})
    session.flush()
    return ended


# --- the administrator's actions -----------------------------------------------------------------------

def _confirm_admin(admin: Member, admin_password: str) -> None:
    if not admin.has_role("admin"):
        raise AccountError("Only an administrator may do this.")
    if not password_matches(admin, admin_password):
        raise AccountError("That is not your current password.", "admin_password")


def unlock(session: Session, member: Member, *, admin: Member, now: datetime, ip: str | None) -> bool:
    """Lift a lockout and clear the failure count; returns whether the account was locked."""
    was_locked = member.is_locked(now)
    member.failed_sign_ins, member.locked_until = 0, None
    record_event(session, "admin.unlock", at=now, actor_id=admin.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "was_locked": was_locked})
    session.flush()
    return was_locked


def reset_password(session: Session, member: Member, *, admin: Member, admin_password: str, now: datetime,
                   ip: str | None, hash_method: str) -> str:
    """Give the member a temporary password they must change at next sign-in, end their sessions,
    unlock the account; returns the temporary password (to show once, never to store)."""
    _confirm_admin(admin, admin_password)
    if member.id == admin.id:
        raise AccountError("Change your own password from your account page.")
    while True:
        password = temporary_password()
        if password_problem(password, badge=member.badge, first_name=member.first_name,
                            last_name=member.last_name) is None:
            break
    _set_password(member, password, now=now, hash_method=hash_method, must_change=True)
    ended = revoke_member_sessions(session, member.id, now=now, reason="password_reset")
    record_event(session, "admin.reset_password", at=now, actor_id=admin.id, target=f"member:{member.id}",
                 ip=ip, details={"badge": member.badge, "sessions_ended": ended})
    session.flush()
    return password


def has_second_factor(session: Session, member: Member) -> bool:
    """Whether the member has an authenticator app or a passkey."""
    return _has_second_factor(session, member)


def reset_second_factor(session: Session, member: Member, *, admin: Member, admin_password: str, now: datetime,
                        ip: str | None) -> None:
    """Remove the member's authenticator app, passkeys and recovery codes (a lost phone and lost
    codes) and end their sessions; the administrator re-enters their password. A member of a role
    that requires a second factor enrols again at next sign-in."""
    _confirm_admin(admin, admin_password)
    if member.id == admin.id:
        raise AccountError("Another administrator must reset your own second factor.")
    removed = {}
    for name, model in (("totp", TotpFactor), ("passkeys", PasskeyCredential), ("recovery_codes", RecoveryCode)):
        removed[name] = session.execute(  # type: ignore[attr-defined]  # DML gives a CursorResult
            delete(model).where(model.member_id == member.id)).rowcount
    ended = revoke_member_sessions(session, member.id, now=now, reason="mfa_reset")
    record_event(session, "admin.reset_second_factor", at=now, actor_id=admin.id, target=f"member:{member.id}",
                 ip=ip, details={"badge": member.badge, "removed": removed, "sessions_ended": ended})
    session.flush()


def active_admin_count(session: Session) -> int:
    """Members who hold the admin role and can still sign in."""
    return session.scalar(select(func.count()).select_from(MemberRole).join(Member).where(
        MemberRole.role == "admin", Member.status != "separated")) or 0


def grant_role(session: Session, member: Member, role: str, *, admin: Member, admin_password: str,
               now: datetime, ip: str | None) -> None:
    """Grant ``role``; the administrator re-enters their password."""
    if role not in ROLES:
        raise AccountError(f"Choose one of {', '.join(ROLES)}.", "role")
    if member.id == admin.id:
        raise AccountError("You cannot grant yourself a role; another administrator must.", "role")
    _confirm_admin(admin, admin_password)
    if member.has_role(role):
        raise AccountError(f"{member.full_name} already holds the {role} role.", "role")
    member.roles.append(MemberRole(role=role))
    record_event(session, "admin.grant_role", at=now, actor_id=admin.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "role": role})
    session.flush()


def revoke_role(session: Session, member: Member, role: str, *, admin: Member, admin_password: str,
                now: datetime, ip: str | None) -> None:
    """Revoke ``role``; the administrator re-enters their password. The last administrator who
    can sign in keeps the role, so the system is never left without one."""
    if role not in ROLES:
        raise AccountError(f"Choose one of {', '.join(ROLES)}.", "role")
    _confirm_admin(admin, admin_password)
    held = next((r for r in member.roles if r.role == role), None)
    if held is None:
        raise AccountError(f"{member.full_name} does not hold the {role} role.", "role")
    if role == "admin" and member.is_active and active_admin_count(session) <= 1:
        raise AccountError("This is the last administrator; grant the role to someone else first.", "role")
    member.roles.remove(held)
    record_event(session, "admin.revoke_role", at=now, actor_id=admin.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "role": role})
    session.flush()


# --- what the administrator's pages show -----------------------------------------------------------

def accounts_needing_attention(session: Session, *, now: datetime, limit: int = 100) -> list[Member]:
    """Locked accounts and accounts waiting for a password change, by last name."""
    return list(session.scalars(select(Member).where(
        (Member.locked_until > now) | Member.must_change_password
    ).order_by(Member.last_name, Member.first_name, Member.badge).limit(limit)))


def account_events(session: Session, member_id: int, *, limit: int = 20) -> list[AuditEvent]:
    """The latest sign-in and account events about a member, newest first."""
    return list(session.scalars(select(AuditEvent).where(
        AuditEvent.target == f"member:{member_id}",
        AuditEvent.action.like("auth.%") | AuditEvent.action.like("admin.%") | AuditEvent.action.like("account.%"),
    ).order_by(AuditEvent.id.desc()).limit(limit)))
