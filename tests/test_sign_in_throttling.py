"""Throttling that fits a police network: failures are counted per badge and address, under a
generous per-address ceiling, and a locked account is named only to someone who knows its password."""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from lms.config import PROJECT_ROOT
from lms.db import utcnow
from lms.models import AuditEvent, Member
from lms.services.accounts import LOCKED_UNTIL_UNLOCKED, SignInRules, authenticate
from tests.conftest import PASSWORD, csrf_token

GATEWAY = "203.0.113.7"
REFUSED = "Badge number or password is not right."
THROTTLED = "Too many attempts, try again later."


def sign_in(app, badge: str, password: str = PASSWORD):
    """One sign-in from a fresh browser (every test client comes from 127.0.0.1, the gateway)."""
    client = app.test_client()
    return client.post("/sign-in", data={"badge": badge, "password": password, "csrf_token": csrf_token(client)})


def test_25_members_behind_one_gateway_failing_once_each_are_not_blocked(app, db, make_member):
    members = [make_member(first=f"First{i}", last=f"Last{i}", badge=str(1000 + i)) for i in range(26)]
    for member in members[:25]:
        response = sign_in(app, member.badge, "a typo in the password")
        assert response.status_code == 400 and REFUSED in response.get_data(as_text=True)
    for member in members:  # everyone, the 25 included, still gets in from the same address
        assert sign_in(app, member.badge).status_code == 302
    assert db.scalar(select(AuditEvent).where(AuditEvent.action == "auth.throttle")) is None


def test_one_badge_failing_repeatedly_from_one_address_is_throttled(db, make_member):
    member = make_member()
    rules = SignInRules(account_ip_max_failures=10, lockout_threshold=1000)
    now = utcnow()
    for _ in range(10):
        assert authenticate(db, member.badge, "guessing guessing", now=now, ip=GATEWAY, rules=rules).reason \
            == "wrong_password"
    assert authenticate(db, member.badge, PASSWORD, now=now, ip=GATEWAY, rules=rules).throttled
    # Another member behind the same gateway, and the same member elsewhere, are not held back.
    other = make_member(first="Bea", last="Other")
    assert authenticate(db, other.badge, PASSWORD, now=now, ip=GATEWAY, rules=rules).member is not None
    assert authenticate(db, member.badge, PASSWORD, now=now, ip="198.51.100.1", rules=rules).member is not None
    later = now + timedelta(minutes=16)
    assert authenticate(db, member.badge, PASSWORD, now=later, ip=GATEWAY, rules=rules).member is not None
    db.commit()
    throttles = list(db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.throttle")))
    assert [(t.target, t.details["scope"]) for t in throttles] == [(f"member:{member.id}", "badge and address")]


def test_an_unknown_badge_is_throttled_like_a_real_one(app, make_member):
    """The 429 must not tell a guesser which badges exist."""
    app.config.update(SIGN_IN_ACCOUNT_IP_MAX_FAILURES=3, LOCKOUT_THRESHOLD=100)
    member = make_member(badge="4100")
    for badge in ("4100", "4199"):  # 4199 belongs to nobody
        statuses = [sign_in(app, badge, "guessing guessing").status_code for _ in range(4)]
        assert statuses == [400, 400, 400, 429], badge
    assert sign_in(app, " 4199 ", "guessing guessing").status_code == 429  # the same badge, typed loosely
    assert sign_in(app, "4198", "guessing guessing").status_code == 400
    assert member.badge == "4100"


def test_the_per_address_ceiling(app, db, make_member):
    app.config.update(SIGN_IN_IP_MAX_FAILURES=30)
    member = make_member(badge="5000")
    for i in range(30):
        assert sign_in(app, f"7{i:03d}", "guessing guessing").status_code == 400
    response = sign_in(app, member.badge)
    assert response.status_code == 429 and THROTTLED in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(Member, member.id).failed_sign_ins == 0  # the password was never checked
    throttle = db.scalar(select(AuditEvent).where(AuditEvent.action == "auth.throttle"))
    assert throttle.details["scope"] == "address" and throttle.ip == "127.0.0.1"


def test_the_default_ceiling_is_generous_and_documented(app):
    rules = SignInRules.from_config(app.config)
    assert rules.ip_max_failures == 300 and rules.ip_window_minutes == 15 and rules.account_ip_max_failures == 10
    assert "test-secret" not in repr(rules)
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("LMS_SIGN_IN_ACCOUNT_IP_MAX_FAILURES", "LMS_SIGN_IN_IP_MAX_FAILURES", "LMS_SIGN_IN_IP_WINDOW_MINUTES"):
        assert f"`{name}`" in text


def test_the_locked_message_appears_only_with_the_right_password(app, db, make_member):
    app.config.update(TIMEZONE="America/Chicago")
    member = make_member(badge="6000")
    for _ in range(5):
        sign_in(app, member.badge, "guessing guessing")
    db.expire_all()
    locked_until = db.get(Member, member.id).locked_until
    assert locked_until is not None
    wrong = sign_in(app, member.badge, "guessing guessing").get_data(as_text=True)
    assert REFUSED in wrong and "locked" not in wrong.split("</form>")[0].split("<form")[1]
    right = sign_in(app, member.badge)
    page = right.get_data(as_text=True)
    assert right.status_code == 400 and REFUSED not in page
    local = locked_until.astimezone(ZoneInfo("America/Chicago"))
    hour = local.hour % 12 or 12
    assert (f"Your account is locked until {local:%B} {local.day}, {local.year}, {hour}:{local:%M} "
            f"{'a.m.' if local.hour < 12 else 'p.m.'} {local.tzname()} after") in page
    db.expire_all()
    reasons = [(e.details["reason"], e.details.get("password_right", False)) for e in db.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.sign_in").order_by(AuditEvent.id))]
    assert reasons[-2:] == [("locked", False), ("locked", True)]


def test_locked_until_an_administrator_unlocks_says_so(app, db, make_member):
    member = make_member(badge="6100")
    db.execute(update(Member).where(Member.id == member.id).values(
        locked_until=LOCKED_UNTIL_UNLOCKED))
    db.commit()
    page = sign_in(app, member.badge).get_data(as_text=True)
    assert "ask an administrator to unlock it" in page and "9999" not in page
    assert REFUSED in sign_in(app, member.badge, "guessing guessing").get_data(as_text=True)


def test_a_separated_member_with_the_right_password_learns_nothing(app, db, make_member):
    member = make_member(badge="6200", status="separated")
    db.execute(update(Member).where(Member.id == member.id).values(locked_until=utcnow() + timedelta(hours=1)))
    db.commit()
    page = sign_in(app, member.badge).get_data(as_text=True)
    assert REFUSED in page and "Your account is locked" not in page
