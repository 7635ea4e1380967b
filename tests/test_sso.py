"""Single sign-on below the browser: ID tokens crafted and signed by a test key (wrong issuer,
audience, signature, expiry, nonce), the callback's state check, matching identities to members,
the SAML replay store, the fresh-sign-in proof that completes a signature, and the record chain
with the authentication method in it. The journeys against real identity providers are in
tests/browser/test_sso_journey.py."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from sqlalchemy import select

from lms.db import utcnow
from lms.models import Acknowledgment, AuditEvent, Member, SeenAssertion
from lms.services import oidc
from lms.services.records import canonical_acknowledgment
from lms.services.signing import (
    Authentication,
    SignerProof,
    SigningError,
    SigningFacts,
    append_acknowledgment,
    proof_problems,
    sign_acknowledgment,
)
from lms.services.sso import Identity, SsoRefused, SsoRules, member_for_identity, remember_assertion
from lms.services.verification import verify_chain
from tests.conftest import csrf_token
from tests.helpers import assignment_of, pass_quiz, read_all_lessons

ISSUER = "https://login.example.test/tenant"
CLIENT = "rollcall-client"
SETTINGS = oidc.OidcSettings(issuer=ISSUER, client_id=CLIENT, client_secret="s", member_claim="badge",
                             member_field="badge", leeway=10)
KEY = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
KEYS = KeySet([KEY])
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def id_token(key=KEY, alg="RS256", **overrides) -> str:
    """An ID token as a provider would issue it, with ``overrides`` changing its claims."""
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "abc", "badge": "1001", "nonce": "n-1",
              "iat": int(NOW.timestamp()) - 5, "exp": int(NOW.timestamp()) + 300,
              "auth_time": int(NOW.timestamp()) - 5}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": key.kid or "x"}, claims, key)


def verify(token: str, *, nonce: str = "n-1", fresh: bool = False) -> dict:
    return oidc.verify_id_token(token, {}, settings=SETTINGS, nonce=nonce, now=NOW, fresh=fresh, keys=KEYS)


# --- ID tokens ----------------------------------------------------------------------------------

def test_a_good_id_token_names_the_member_by_the_configured_claim():
    claims = verify(id_token())
    identity = oidc.identity_from_claims(claims, SETTINGS)
    assert identity.subject == "1001" and identity.provider == ISSUER and identity.protocol == "oidc"
    assert identity.authenticated_at == NOW - timedelta(seconds=5)


@pytest.mark.parametrize("token, reason", [
    (lambda: id_token(iss="https://evil.example.test"), "wrong_issuer"),
    (lambda: id_token(aud="another-app"), "wrong_audience"),
    (lambda: id_token(aud=[CLIENT, "another-app"]), "wrong_audience"),  # no azp naming us
    (lambda: id_token(key=RSAKey.generate_key(2048, parameters={"kid": "test-key"})), "bad_signature"),
    (lambda: id_token(key=OctKey.import_key("s" * 32), alg="HS256"), "bad_signature"),
    (lambda: id_token(exp=int(NOW.timestamp()) - 60), "expired"),
    (lambda: id_token(nonce="someone-elses"), "nonce_mismatch"),
    (lambda: id_token(nonce=None), "nonce_mismatch"),
])
def test_id_tokens_that_must_not_sign_anyone_in(token, reason):
    """Wrong issuer or audience, a signature by another key or by a shared secret, an expired
    token, a nonce that is not this browser's: each refused, with its reason."""
    with pytest.raises(oidc.OidcError) as refused:
        verify(token())
    assert refused.value.reason == reason


def test_a_fresh_sign_in_must_say_when_it_happened():
    with pytest.raises(oidc.OidcError) as refused:
        verify(id_token(auth_time=None), fresh=True)
    assert refused.value.reason == "invalid_token"
    assert verify(id_token(auth_time=None), fresh=False)["badge"] == "1001"


def test_a_token_without_the_member_claim_is_refused():
    with pytest.raises(oidc.OidcError) as refused:
        oidc.identity_from_claims(verify(id_token(badge=None)), SETTINGS)
    assert refused.value.reason == "missing_claim"


def test_the_fresh_authorization_request_asks_for_a_new_sign_in():
    metadata = {"authorization_endpoint": f"{ISSUER}/authorize"}
    plain = oidc.begin(SETTINGS, metadata, "https://rollcall.test/sso/oidc/callback", fresh=False)
    fresh = oidc.begin(SETTINGS, metadata, "https://rollcall.test/sso/oidc/callback", fresh=True)
    assert "prompt=login" in fresh.url and "max_age=0" in fresh.url and "code_challenge_method=S256" in fresh.url
    assert "prompt" not in plain.url and plain.state != fresh.state and plain.nonce != fresh.nonce


# --- the callback ---------------------------------------------------------------------------------

@pytest.fixture
def oidc_app(app, monkeypatch):
    app.config.update(OIDC_ISSUER=ISSUER, OIDC_CLIENT_ID=CLIENT, OIDC_CLIENT_SECRET="s",
                      OIDC_MEMBER_CLAIM="badge", OIDC_MEMBER_FIELD="badge")
    metadata = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/keys"}
    monkeypatch.setattr(oidc, "provider_metadata", lambda issuer: metadata)
    return app


def test_an_answer_with_another_state_is_refused_and_audited(oidc_app, client, db):
    started = client.get("/sso/oidc/start")
    assert started.status_code == 303 and started.location.startswith(f"{ISSUER}/authorize?")
    refused = client.get("/sso/oidc/callback?code=abc&state=not-the-one-we-sent")
    assert refused.status_code == 400
    assert "does not belong to the sign-in this browser started" in refused.get_data(as_text=True)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sso")).one()
    assert event.outcome == "failure" and event.details["reason"] == "state_mismatch"
    # The pending sign-in was used up: the right state, replayed later, is refused too.
    state = dict(p.split("=", 1) for p in started.location.split("?", 1)[1].split("&"))["state"]
    assert client.get(f"/sso/oidc/callback?code=abc&state={state}").status_code == 400


def test_an_answer_from_another_issuer_is_refused(oidc_app, client):
    started = client.get("/sso/oidc/start")
    state = dict(p.split("=", 1) for p in started.location.split("?", 1)[1].split("&"))["state"]
    refused = client.get(f"/sso/oidc/callback?code=abc&state={state}&iss=https://evil.example.test")
    assert refused.status_code == 400 and "another issuer" in refused.get_data(as_text=True)


def test_sign_in_page_offers_single_sign_on_and_local_sign_in_can_be_turned_off(oidc_app, client, make_member):
    make_member(badge="4100")
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with the department account" in page and 'name="password"' in page
    token = csrf_token(client)
    oidc_app.config["LOCAL_SIGN_IN"] = False
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with the department account" in page and 'name="password"' not in page
    refused = client.post("/sign-in", data={"badge": "4100", "password": "correct horse battery staple",
                                            "csrf_token": token})
    assert refused.status_code == 403 and "turned off" in refused.get_data(as_text=True)
    assert client.get("/training/").status_code == 302


# --- members -------------------------------------------------------------------------------------

def identity(subject: str, **claims) -> Identity:
    return Identity(protocol="oidc", provider=ISSUER, subject=subject, authenticated_at=NOW, claims=claims)


def test_identities_match_members_by_badge_or_email(db, make_member):
    member = make_member(badge="4200")
    member.email = "Alex.Rivera@Dept.example"
    db.commit()
    assert member_for_identity(db, identity("4200"), SsoRules("badge"), now=NOW, ip="10.0.0.1") == member
    assert member_for_identity(db, identity("alex.rivera@dept.example"), SsoRules("email"), now=NOW,
                               ip="10.0.0.1") == member


def test_unknown_separated_and_ambiguous_people_are_refused_and_audited(db, make_member):
    make_member(badge="4300", status="separated")
    for twin in ("4301", "4302"):
        make_member(badge=twin).email = "shared@dept.example"
    db.commit()
    cases = [(identity("9999"), SsoRules("badge"), "unknown_member"),
             (identity("4300"), SsoRules("badge"), "separated"),
             (identity("shared@dept.example"), SsoRules("email"), "unknown_member")]
    for who, rules, reason in cases:
        with pytest.raises(SsoRefused) as refused:
            member_for_identity(db, who, rules, now=NOW, ip="10.0.0.1")
        assert refused.value.reason == reason
    reasons = [e.details["reason"] for e in db.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sso")
                                                      .order_by(AuditEvent.id))]
    assert reasons == ["unknown_member", "separated", "unknown_member"]


def test_members_are_created_on_first_sign_in_only_when_turned_on(db):
    newcomer = identity("4400", given_name="Jo", family_name="Park", email="jo.park@dept.example")
    with pytest.raises(SsoRefused):
        member_for_identity(db, newcomer, SsoRules("badge", create_members=False), now=NOW, ip=None)
    member = member_for_identity(db, newcomer, SsoRules("badge", create_members=True), now=NOW, ip=None)
    db.commit()
    assert (member.badge, member.full_name, member.email, member.role_names, member.password_hash) == \
        ("4400", "Jo Park", "jo.park@dept.example", {"officer"}, None)
    # Without names to put on a roster, no record is made.
    with pytest.raises(SsoRefused):
        member_for_identity(db, identity("4401"), SsoRules("badge", create_members=True), now=NOW, ip=None)


# --- SAML replay store ----------------------------------------------------------------------------

def test_a_saml_assertion_counts_once_until_it_expires(db):
    issuer = "http://adfs.example.test/adfs/services/trust"
    assert remember_assertion(db, issuer=issuer, assertion_id="_a1", expires_at=NOW + timedelta(minutes=5), now=NOW)
    assert not remember_assertion(db, issuer=issuer, assertion_id="_a1", expires_at=NOW + timedelta(minutes=5),
                                  now=NOW + timedelta(minutes=1))
    assert remember_assertion(db, issuer="another-idp", assertion_id="_a1", expires_at=NOW + timedelta(minutes=5),
                              now=NOW)
    db.commit()
    # Once expired, the entry is dropped (the assertion is refused for its age by then anyway).
    remember_assertion(db, issuer=issuer, assertion_id="_a2", expires_at=NOW + timedelta(hours=2),
                       now=NOW + timedelta(hours=1))
    db.commit()
    assert sorted(db.scalars(select(SeenAssertion.assertion_id).where(SeenAssertion.issuer == issuer))) == ["_a2"]


# --- the signature ---------------------------------------------------------------------------------

@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(min_value=-3600, max_value=3600), skew=st.integers(min_value=0, max_value=60))
def test_only_a_sign_in_after_the_request_proves_the_signer(offset, skew):
    """Whatever the clocks, a sign-in at the provider counts only if it happened after the signature
    asked for it (less the allowed skew) and not in the future."""
    member = Member(id=7, badge="7", first_name="A", last_name="B")
    requested = NOW
    at = requested + timedelta(seconds=offset)
    proof = SignerProof(method="oidc", provider=ISSUER, member_id=7, authenticated_at=at, requested_at=requested,
                        skew=timedelta(seconds=skew))
    now = requested + timedelta(seconds=30)
    ok = not proof_problems(member, proof, now)
    assert ok == (requested - timedelta(seconds=skew) <= at <= now + timedelta(seconds=skew))
    someone_else = SignerProof(method="oidc", provider=ISSUER, member_id=8, authenticated_at=at,
                               requested_at=requested, skew=timedelta(seconds=skew))
    assert proof_problems(member, someone_else, now)


@pytest.fixture
def ready(client, auth, db, make_member, open_cycle):
    member = make_member(first="Sam", last="Ortiz", badge="4500")
    open_cycle()
    auth.sign_in(member.badge)
    assignment_id = assignment_of(db, member).id
    read_all_lessons(client, assignment_id)
    pass_quiz(client, db, assignment_id)
    db.expire_all()
    return db.get(Member, member.id), assignment_of(db, member)


def _facts(now):
    return SigningFacts(ip="10.0.0.9", user_agent="pytest", now=now, timezone="America/Chicago",
                        department="Test PD")


def test_a_stale_provider_sign_in_does_not_sign(ready, db):
    member, assignment = ready
    now = utcnow()
    stale = SignerProof(method="oidc", provider=ISSUER, member_id=member.id, requested_at=now,
                        authenticated_at=now - timedelta(hours=2))
    with pytest.raises(SigningError) as refused:
        sign_acknowledgment(db, assignment=assignment, member=member, typed_name="Sam Ortiz",
                            shown_text_sha256=assignment.policy_version.text_sha256, facts=_facts(now), proof=stale)
    assert "did not ask you to sign in again" in str(refused.value)
    assert db.scalar(select(Acknowledgment.id)) is None


def test_the_record_says_how_the_signer_authenticated_and_old_records_still_verify(ready, db):
    """A legacy record (no method, hashed as before migration 0016) and a new one signed through the
    provider both verify; the new record's hash covers the method, so changing it would show."""
    member, assignment = ready
    now = utcnow()
    fresh = SignerProof(method="saml", provider="http://adfs.example.test/adfs/services/trust", member_id=member.id,
                        requested_at=now - timedelta(seconds=20), authenticated_at=now - timedelta(seconds=10))
    ack, created = sign_acknowledgment(db, assignment=assignment, member=member, typed_name="Sam Ortiz",
                                       shown_text_sha256=assignment.policy_version.text_sha256, facts=_facts(now),
                                       proof=fresh)
    db.commit()
    assert created and (ack.auth_method, ack.auth_provider) == ("saml", fresh.provider)
    assert ack.authenticated_at == fresh.authenticated_at
    facts = json.loads(canonical_acknowledgment(ack, "r"))
    assert facts["auth_method"] == "saml" and facts["auth_provider"] == fresh.provider

    legacy = Acknowledgment(**{c: getattr(ack, c) for c in ("member_id", "badge", "printed_name", "policy_ref",
                                                            "policy_title", "policy_effective", "text_sha256",
                                                            "statement", "signed_at", "signed_at_local",
                                                            "timezone", "signed_from_ip", "user_agent",
                                                            "quiz_attempt_number", "quiz_score",
                                                            "verification_code")})
    assert "auth_method" not in json.loads(canonical_acknowledgment(legacy, "r"))
    assert verify_chain(db).ok


def test_records_without_a_method_hash_as_before_and_verify(ready, db):
    member, assignment = ready
    now = utcnow()
    ack, _ = append_acknowledgment(db, assignment=assignment, member=member, printed_name="Sam Ortiz",
                                   facts=_facts(now), authentication=Authentication(None, None, None))
    db.commit()
    assert ack.auth_method is None
    assert set(json.loads(canonical_acknowledgment(ack, "r"))) == {
        "kind", "sequence", "member_id", "badge", "printed_name", "assignment_id", "generation", "cycle_id",
        "policy_version_id", "policy_ref", "policy_title", "policy_effective", "text_sha256", "statement",
        "signed_at", "signed_at_local", "timezone", "signed_from_ip", "user_agent", "quiz_attempt_id",
        "quiz_attempt_number", "quiz_score", "verification_code", "receipt_sha256"}
    assert verify_chain(db).ok
