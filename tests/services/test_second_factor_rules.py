"""The second factor's rules without HTTP, over many inputs (Hypothesis): which TOTP codes are
accepted when, how recovery codes may be typed, and how typed badges are keyed for throttling."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyotp
from hypothesis import given, settings
from hypothesis import strategies as st

from lms.services.accounts import attempt_target
from lms.services.second_factor import STEP, _matching_step, _recovery_digest

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1),
                       timezones=st.just(timezone.utc))


@settings(max_examples=200, deadline=None)
@given(now=moments, offset=st.integers(min_value=-5, max_value=5))
def test_a_code_is_accepted_only_within_one_step_of_now(now, offset):
    totp = pyotp.TOTP(SECRET, interval=STEP)
    step = int(now.timestamp()) // STEP + offset
    accepted = _matching_step(SECRET, totp.generate_otp(step), now)
    if abs(offset) <= 1:
        assert accepted is not None and abs(accepted - int(now.timestamp()) // STEP) <= 1
    else:
        # A far step's code is refused, unless by chance it equals a near step's code.
        near = {totp.generate_otp(int(now.timestamp()) // STEP + d) for d in (-1, 0, 1)}
        assert (accepted is None) == (totp.generate_otp(step) not in near)


@settings(max_examples=200, deadline=None)
@given(code=st.text(alphabet="abcdefghjkmnpqrstuvwxyz23456789", min_size=16, max_size=16),
       upper=st.booleans(), separator=st.sampled_from(["-", " ", "", "  "]))
def test_a_recovery_code_may_be_typed_with_any_case_and_separators(code, upper, separator):
    printed = "-".join(code[i:i + 4] for i in range(0, 16, 4))
    typed = separator.join(code[i:i + 4] for i in range(0, 16, 4))
    assert _recovery_digest(typed.upper() if upper else typed) == _recovery_digest(printed)


@given(badge=st.text(alphabet="0123456789ABCDEFGHXYZabcxyz-", min_size=1, max_size=20),
       pad=st.sampled_from(["", " ", "  ", "\t"]))
def test_typed_badges_are_keyed_the_same_however_typed_and_never_kept(badge, pad):
    target = attempt_target(None, badge, "secret")
    assert target.startswith("attempt:") and len(target) == len("attempt:") + 24
    assert attempt_target(None, f"{pad}{badge.upper()}{pad}", "secret") == attempt_target(None, badge.lower(), "secret")
    assert attempt_target(None, badge, "another secret") != target  # keyed: a table of badge hashes is useless


def test_a_code_from_long_ago_is_refused():
    now = datetime(2030, 6, 1, tzinfo=timezone.utc)
    old = pyotp.TOTP(SECRET, interval=STEP).at(now - timedelta(minutes=5))
    assert _matching_step(SECRET, old, now) is None or old in {
        pyotp.TOTP(SECRET, interval=STEP).at(now + timedelta(seconds=d)) for d in (-30, 0, 30)}
