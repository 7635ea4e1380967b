"""Passkeys (WebAuthn) as a second factor: the registration and authentication ceremonies, with
the ``webauthn`` package checking what the browser's authenticator signed.

The relying party is the address members reach Roll Call at (PUBLIC_URL): its host name is the
RP ID and its origin the only origin accepted, so a look-alike site cannot use a member's passkey.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from lms.models import Member, PasskeyCredential
from lms.services.accounts import SignInRules, count_failed_attempt
from lms.services.audit import record_event
from lms.services.links import public_url

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

# The webauthn package (and the cryptography it loads) is imported inside the functions that use
# it: about 0.1 s that every command-line run otherwise paid through the app's blueprints.


class PasskeyError(ValueError):
    """A passkey ceremony that failed; the message says why, in the member's words."""


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys belong to (config: PUBLIC_URL, DEPARTMENT_NAME)."""

    rp_id: str
    origin: str
    name: str

    @classmethod
    def from_config(cls, config) -> RelyingParty:
        url = urlsplit(public_url(config, ""))
        return cls(rp_id=url.hostname or "localhost", origin=f"{url.scheme}://{url.netloc}",
                   name=f"Roll Call ({config['DEPARTMENT_NAME']})")


def passkeys_of(session: Session, member_id: int) -> list[PasskeyCredential]:
    """The member's passkeys, oldest first."""
    return list(session.scalars(select(PasskeyCredential).where(PasskeyCredential.member_id == member_id)
                                .order_by(PasskeyCredential.id)))


def _descriptors(credentials) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c.credential_id)) for c in credentials]


def registration_options(session: Session, member: Member, rp: RelyingParty) -> tuple[str, bytes]:
    """The options for navigator.credentials.create (JSON) and the challenge to keep until the answer."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options = generate_registration_options(
        rp_id=rp.rp_id, rp_name=rp.name, user_id=f"member:{member.id}".encode(), user_name=member.badge,
        user_display_name=member.full_name, exclude_credentials=_descriptors(passkeys_of(session, member.id)),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED, user_verification=UserVerificationRequirement.PREFERRED))
    return options_to_json(options), options.challenge


def register(session: Session, member: Member, response: str, *, challenge: bytes, rp: RelyingParty,
             name: str, now: datetime, ip: str | None) -> PasskeyCredential:
    """Check the authenticator's answer to the registration challenge and keep the credential."""
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        verified = verify_registration_response(credential=response, expected_challenge=challenge,
                                                expected_rp_id=rp.rp_id, expected_origin=rp.origin)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        record_event(session, "account.mfa_enrol", at=now, actor_id=member.id, target=f"member:{member.id}",
                     ip=ip, outcome="failure", details={"badge": member.badge, "factor": "passkey",
                                                        "error": str(exc)[:200]})
        raise PasskeyError("The passkey could not be registered. Try again.") from exc
    credential = PasskeyCredential(member_id=member.id, credential_id=bytes_to_base64url(verified.credential_id),
                                   public_key=verified.credential_public_key, sign_count=verified.sign_count,
                                   name=(name or "Passkey").strip()[:80] or "Passkey", created_at=now)
    session.add(credential)
    session.flush()
    record_event(session, "account.mfa_enrol", at=now, actor_id=member.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "factor": "passkey", "passkey": credential.id})
    return credential


def authentication_options(session: Session, member: Member, rp: RelyingParty) -> tuple[str, bytes]:
    """The options for navigator.credentials.get (JSON), naming the member's passkeys, and the challenge."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_authentication_options(rp_id=rp.rp_id,
                                              allow_credentials=_descriptors(passkeys_of(session, member.id)),
                                              user_verification=UserVerificationRequirement.PREFERRED)
    return options_to_json(options), options.challenge


def authenticate(session: Session, member: Member, response: str, *, challenge: bytes, rp: RelyingParty,
                 now: datetime, ip: str | None, rules: SignInRules = SignInRules()) -> bool:
    """Check the second step of a sign-in made with a passkey of this member; audited, and a
    failure counts toward lockout as a wrong code does."""
    from webauthn import verify_authentication_response
    from webauthn.helpers.exceptions import WebAuthnException

    credential = None
    try:
        credential_id = json.loads(response)["id"]
        credential = session.scalar(select(PasskeyCredential).where(PasskeyCredential.member_id == member.id,
                                                                    PasskeyCredential.credential_id == credential_id))
        if credential is None or member.is_locked(now):
            raise PasskeyError("not this member's passkey")
        verified = verify_authentication_response(
            credential=response, expected_challenge=challenge, expected_rp_id=rp.rp_id, expected_origin=rp.origin,
            credential_public_key=credential.public_key, credential_current_sign_count=credential.sign_count)
    except (PasskeyError, WebAuthnException, ValueError, KeyError, TypeError) as exc:
        record_event(session, "auth.second_factor", at=now, target=f"member:{member.id}", ip=ip, outcome="failure",
                     details={"badge": member.badge, "factor": "passkey", "error": str(exc)[:200]})
        count_failed_attempt(session, member, now=now, ip=ip, rules=rules)
        session.flush()
        return False
    credential.sign_count, credential.last_used_at = verified.new_sign_count, now
    member.failed_sign_ins = 0
    record_event(session, "auth.second_factor", at=now, actor_id=member.id, target=f"member:{member.id}", ip=ip,
                 details={"badge": member.badge, "factor": "passkey", "passkey": credential.id})
    session.flush()
    return True
