"""SAML 2.0 Web Browser SSO for departments on ADFS (or any SAML identity provider), with pysaml2.

Roll Call is the service provider: it sends an AuthnRequest by the HTTP-Redirect binding
(``ForceAuthn`` for a signature) and takes the answer at its assertion consumer service by
HTTP-POST. An answer counts only if its assertion is signed by the provider's key from its
metadata, is addressed to this service (audience) at this address (recipient), is within its
validity window, answers the request this browser made (checked by the caller), and has not been
used before (``lms.services.sso.remember_assertion``).
"""
from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lms.services.sso import MEMBER_FIELDS, Identity, SsoRefused

if TYPE_CHECKING:
    from saml2.client import Saml2Client

# pysaml2 and requests are imported inside the functions that use them: loading pysaml2's XML
# schemas took about 0.6 s, which every command-line run paid through the app's blueprints.

#: How long the provider's metadata is kept before it is read again (seconds).
CACHE_SECONDS = 3600
HTTP_TIMEOUT = 10

#: After a failed read of the provider's metadata, how long before it is tried again (seconds).
RETRY_SECONDS = 60
UNREACHABLE = "The department's SAML sign-in service did not answer; try again in a minute, or ask IT."

_metadata_cache: dict[str, tuple[float, str | None]] = {}
_client_cache: dict[tuple, Saml2Client] = {}


class SamlError(SsoRefused):
    """The provider's answer did not verify; nobody is signed in."""


@dataclass(frozen=True)
class SamlSettings:
    """The service provider's settings (config: SAML_*)."""

    #: The provider's metadata: a URL or a file path.
    idp_metadata: str
    #: This service's entity ID; None means the URL of its metadata.
    entity_id: str | None = None
    #: The attribute that names the member, or "NameID".
    member_attribute: str = "NameID"
    member_field: str = "email"
    leeway: int = 10

    @classmethod
    def from_config(cls, config: Mapping) -> SamlSettings | None:
        """The settings, or None when SAML is not configured (no SAML_IDP_METADATA)."""
        if not config.get("SAML_IDP_METADATA"):
            return None
        field = config.get("SAML_MEMBER_FIELD", "email")
        if field not in MEMBER_FIELDS:
            raise ValueError(f"SAML_MEMBER_FIELD must be one of {MEMBER_FIELDS}, not {field!r}")
        return cls(idp_metadata=config["SAML_IDP_METADATA"], entity_id=config.get("SAML_SP_ENTITY_ID"),
                   member_attribute=config.get("SAML_MEMBER_ATTRIBUTE", "NameID"), member_field=field,
                   leeway=int(config.get("SSO_CLOCK_SKEW_SECONDS", 10)))


@dataclass(frozen=True)
class ServiceAddresses:
    """Where this service provider lives, as the provider must see it."""

    entity_id: str
    acs_url: str


@dataclass(frozen=True)
class VerifiedAnswer:
    """A SAML response whose assertion verified; the caller checks ``in_response_to`` and replay."""

    identity: Identity
    assertion_id: str
    in_response_to: str | None
    #: The assertion is refused after this anyway; the replay store keeps its ID until then.
    expires_at: datetime


def _idp_metadata_xml(source: str) -> str:
    """The provider's metadata document, from its URL (cached) or a file."""
    if not source.startswith(("http://", "https://")):
        try:
            return Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise SamlError("configuration", f"SAML_IDP_METADATA names a file that cannot be read: {exc}") from exc
    hit = _metadata_cache.get(source)
    if hit and hit[0] > time.monotonic():
        if hit[1] is None:
            raise SamlError("provider_unreachable", UNREACHABLE)
        return hit[1]
    import requests

    try:
        response = requests.get(source, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as exc:
        # Remembered for a minute, so pages do not each wait for a provider that is down.
        _metadata_cache[source] = (time.monotonic() + RETRY_SECONDS, None)
        raise SamlError("provider_unreachable", UNREACHABLE) from exc
    _metadata_cache[source] = (time.monotonic() + CACHE_SECONDS, response.text)
    return response.text


def _xmlsec() -> str:
    binary = shutil.which("xmlsec1")
    if binary is None:
        raise SamlError("configuration", "SAML needs the xmlsec1 program (Debian: apt-get install xmlsec1).")
    return binary


def client(settings: SamlSettings, addresses: ServiceAddresses) -> Saml2Client:
    """pysaml2's client for this service provider and the configured identity provider."""
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.saml import NAMEID_FORMAT_UNSPECIFIED

    metadata = _idp_metadata_xml(settings.idp_metadata)
    key = (addresses, settings, metadata)
    if key not in _client_cache:
        config = SPConfig()
        config.load({
            "entityid": addresses.entity_id,
            "xmlsec_binary": _xmlsec(),
            "metadata": {"inline": [metadata]},
            "accepted_time_diff": settings.leeway,
            "allow_unknown_attributes": True,
            "service": {"sp": {
                "name": "Roll Call",
                "endpoints": {"assertion_consumer_service": [(addresses.acs_url, BINDING_HTTP_POST)]},
                # Every assertion must be signed by the provider; a signed response around an
                # unsigned assertion is not enough.
                "want_assertions_signed": True,
                "want_response_signed": False,
                # The answer reaches the consumer service without the session cookie (a cross-site
                # POST); the caller checks InResponseTo against this browser's request afterwards.
                "allow_unsolicited": True,
                "authn_requests_signed": False,
                "name_id_format": NAMEID_FORMAT_UNSPECIFIED,
            }},
        })
        _client_cache.clear()  # one configuration at a time; a changed one replaces it
        _client_cache[key] = Saml2Client(config)
    return _client_cache[key]


def sp_metadata(settings: SamlSettings, addresses: ServiceAddresses) -> str:
    """This service provider's metadata XML, for the identity provider's administrator."""
    from saml2.metadata import create_metadata_string

    return create_metadata_string(None, client(settings, addresses).config, valid=None)


def _provider_entity(saml_client: Saml2Client) -> str:
    idps = list(saml_client.metadata.identity_providers())
    if len(idps) != 1:
        raise SamlError("configuration", "SAML_IDP_METADATA must describe exactly one identity provider.")
    return idps[0]


def sso_location(settings: SamlSettings, addresses: ServiceAddresses) -> str:
    """The address of the provider's single sign-on service (HTTP-Redirect binding)."""
    from saml2 import BINDING_HTTP_REDIRECT

    saml_client = client(settings, addresses)
    services = saml_client.metadata.single_sign_on_service(_provider_entity(saml_client), BINDING_HTTP_REDIRECT)
    if not services:
        raise SamlError("configuration", "The identity provider's metadata offers no HTTP-Redirect sign-on service.")
    return services[0]["location"]


def begin(settings: SamlSettings, addresses: ServiceAddresses, *, relay_state: str, fresh: bool) -> tuple[str, str]:
    """The AuthnRequest, as (its ID, the address to send the browser to). ``fresh`` (for a
    signature) sets ForceAuthn, so the provider asks the member to sign in again."""
    from saml2 import BINDING_HTTP_REDIRECT

    saml_client = client(settings, addresses)
    kwargs: dict[str, Any] = {"force_authn": "true"} if fresh else {}
    request_id, info = saml_client.prepare_for_authenticate(entityid=_provider_entity(saml_client),
                                                            relay_state=relay_state,
                                                            binding=BINDING_HTTP_REDIRECT, **kwargs)
    location = dict(info["headers"])["Location"]
    return request_id, location


def verify_answer(settings: SamlSettings, addresses: ServiceAddresses, saml_response: str, *,
                  now: datetime) -> VerifiedAnswer:
    """Check a SAMLResponse posted to the consumer service and return what it says.

    Raises SamlError with a reason: ``malformed``, ``bad_signature``, ``wrong_audience``,
    ``wrong_recipient``, ``expired``, ``missing_attribute`` or ``invalid_assertion``.
    """
    from saml2 import BINDING_HTTP_POST

    saml_client = client(settings, addresses)
    try:
        base64.b64decode(saml_response, validate=True)
    except (ValueError, TypeError) as exc:
        raise SamlError("malformed", "The SAML answer is not readable.") from exc
    try:
        response = saml_client.parse_authn_request_response(saml_response, BINDING_HTTP_POST)
    except Exception as exc:  # pysaml2 raises many unrelated classes; all mean "not accepted"
        raise _refusal(exc) from exc
    if response is None or response.assertion is None:
        raise _unaccepted(saml_response, addresses)
    assertion = response.assertion
    if not assertion.signature and not getattr(response, "require_signature", False):
        raise SamlError("bad_signature", "The SAML assertion is not signed.")
    conditions = assertion.conditions
    audiences = [a.text.strip() for r in (conditions.audience_restriction if conditions else [])
                 for a in r.audience if a.text]
    if addresses.entity_id not in audiences:
        raise SamlError("wrong_audience", "The SAML assertion is addressed to another service, not Roll Call "
                                          f"(audience {', '.join(audiences) or 'missing'}).")
    recipients = [c.subject_confirmation_data.recipient for c in assertion.subject.subject_confirmation
                  if c.subject_confirmation_data is not None]
    if addresses.acs_url not in recipients:
        raise SamlError("wrong_recipient", "The SAML assertion was meant to be delivered elsewhere "
                                           "(recipient does not match this service's address).")
    if not assertion.authn_statement:
        raise SamlError("invalid_assertion", "The SAML assertion does not say how you signed in.")
    instant = _parse_instant(assertion.authn_statement[0].authn_instant)
    expires = _parse_instant(conditions.not_on_or_after) if conditions and conditions.not_on_or_after else None
    if expires is None or expires.timestamp() + settings.leeway < now.timestamp():
        raise SamlError("expired", "The SAML assertion has expired. Start the sign-in again.")
    identity = Identity(protocol="saml", provider=assertion.issuer.text.strip(),
                        subject=_subject(response, settings), authenticated_at=instant,
                        claims=_claims(response))
    return VerifiedAnswer(identity=identity, assertion_id=assertion.id, in_response_to=response.in_response_to,
                          expires_at=expires)


def _unaccepted(saml_response: str, addresses: ServiceAddresses) -> SamlError:
    """Why pysaml2 returned nothing: a response sent to another address, or no usable assertion."""
    from saml2 import samlp

    try:
        destination = samlp.response_from_string(base64.b64decode(saml_response)).destination
    except Exception:  # unreadable: pysaml2 would have said so already
        destination = None
    if destination and destination != addresses.acs_url:
        return SamlError("wrong_recipient", "The SAML answer was meant to be delivered elsewhere (its "
                                            f"destination {destination} is not this service's address).")
    return SamlError("invalid_assertion", "The SAML answer carries no assertion that could be accepted.")


def _refusal(exc: Exception) -> SamlError:
    name, text = type(exc).__name__, str(exc)
    if "Signature" in name or "signature" in text.lower() or name == "SigverError":
        return SamlError("bad_signature", "The SAML answer's signature does not verify against the identity "
                                          "provider's certificate.")
    if "recipient" in text.lower() or "destination" in text.lower():
        return SamlError("wrong_recipient", "The SAML answer was meant to be delivered elsewhere (its recipient "
                                            "is not this service's address).")
    if "Audience" in name or "audience" in text.lower():
        return SamlError("wrong_audience", "The SAML assertion is addressed to another service, not Roll Call.")
    if "Timeout" in name or "Too old" in text or "expired" in text.lower() or "not_on_or_after" in text.lower():
        return SamlError("expired", "The SAML assertion has expired. Start the sign-in again.")
    return SamlError("invalid_assertion", f"The SAML answer was not accepted ({name}: {text[:200]}).")


def _parse_instant(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _subject(response, settings: SamlSettings) -> str:
    if settings.member_attribute == "NameID":
        value = response.name_id.text if response.name_id is not None else None
    else:
        values = (response.get_identity() or {}).get(settings.member_attribute) or []
        value = values[0] if values else None
    if not value or not str(value).strip():
        raise SamlError("missing_attribute", f"The SAML assertion does not carry “{settings.member_attribute}”, "
                                             "which names you; ask IT to release it to Roll Call.")
    return str(value).strip()


def _claims(response) -> dict[str, str]:
    ava = response.get_identity() or {}
    names = {"given_name": ("givenName", "firstName", "given_name"),
             "family_name": ("sn", "surname", "lastName", "family_name"),
             "email": ("mail", "email", "emailAddress")}
    claims = {}
    for claim, candidates in names.items():
        for name in candidates:
            if ava.get(name):
                claims[claim] = str(ava[name][0])
                break
    return claims
