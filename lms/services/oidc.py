"""OpenID Connect: the authorization code flow with PKCE against the department's identity provider
(Microsoft Entra ID, Okta, Keycloak, ADFS...), found by discovery from its issuer URL.

``begin`` makes the address to send the browser to and the secrets to keep until it comes back;
``finish`` checks the answer (state, issuer), exchanges the code with Authlib's client, verifies
the ID token (signature against the provider's published keys, issuer, audience, expiry, nonce,
and for a signature the time of the fresh sign-in) and returns the ``Identity`` it names.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from lms.services.sso import MEMBER_FIELDS, Identity, SsoRefused

if TYPE_CHECKING:
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

# requests, Authlib and joserfc are imported inside the functions that use them: about 0.1 s that
# every command-line run otherwise paid through the app's blueprints.

#: Signature algorithms an ID token may use; "none" and the HMAC family (keyed by the client
#: secret, which another client of a shared tenant may not hold, but the provider's staff does)
#: are refused.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
#: How long discovery documents and key sets are kept before they are read again (seconds).
CACHE_SECONDS = 3600
HTTP_TIMEOUT = 10

_cache: dict[str, tuple[float, object]] = {}


class OidcError(SsoRefused):
    """The provider's answer did not verify; nobody is signed in."""


@dataclass(frozen=True)
class OidcSettings:
    """The OpenID Connect client's settings (config: OIDC_*)."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid profile email"
    member_claim: str = "email"
    member_field: str = "email"
    #: Allowed clock difference with the provider, in seconds.
    leeway: int = 10

    @classmethod
    def from_config(cls, config: Mapping) -> OidcSettings | None:
        """The settings, or None when OpenID Connect is not configured (no OIDC_ISSUER)."""
        issuer = config.get("OIDC_ISSUER")
        if not issuer:
            return None
        field = config.get("OIDC_MEMBER_FIELD", "email")
        if field not in MEMBER_FIELDS:
            raise ValueError(f"OIDC_MEMBER_FIELD must be one of {MEMBER_FIELDS}, not {field!r}")
        if not config.get("OIDC_CLIENT_ID") or not config.get("OIDC_CLIENT_SECRET"):
            raise ValueError("OIDC_ISSUER is set, so OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be too")
        scopes = config.get("OIDC_SCOPES") or "openid"
        if "openid" not in scopes.split():
            scopes = "openid " + scopes
        return cls(issuer=issuer.rstrip("/"), client_id=config["OIDC_CLIENT_ID"],
                   client_secret=config["OIDC_CLIENT_SECRET"], scopes=scopes,
                   member_claim=config.get("OIDC_MEMBER_CLAIM", "email"), member_field=field,
                   leeway=int(config.get("SSO_CLOCK_SKEW_SECONDS", 10)))


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what to keep (in the session) until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def _cached(key: str, load):
    hit = _cache.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    value = load()
    _cache[key] = (time.monotonic() + CACHE_SECONDS, value)
    return value


def _get_json(url: str) -> dict:
    import requests

    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError) as exc:
        raise OidcError("provider_unreachable", "The department's sign-in service did not answer; try again "
                                                "in a minute, or ask IT.") from exc


def provider_metadata(issuer: str) -> dict:
    """The provider's discovery document; its issuer must be the one configured (OIDC Discovery §4.3)."""
    def load():
        metadata = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if metadata.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
            raise OidcError("wrong_issuer", "The sign-in service describes itself as another issuer "
                                            f"({metadata.get('issuer')!r}); ask IT to check OIDC_ISSUER.")
        return metadata
    return _cached("metadata " + issuer, load)


def provider_keys(metadata: Mapping, *, refresh: bool = False) -> KeySet:
    """The provider's published signing keys (read again when a token names a key not among them)."""
    from joserfc.jwk import KeySet

    if refresh:
        _cache.pop("jwks " + metadata["jwks_uri"], None)
    return _cached("jwks " + metadata["jwks_uri"], lambda: KeySet.import_key_set(_get_json(metadata["jwks_uri"])))  # type: ignore[arg-type]


def begin(settings: OidcSettings, metadata: Mapping, redirect_uri: str, *, fresh: bool) -> AuthorizationRequest:
    """The authorization request. ``fresh`` (for a signature) makes the provider ask the member to
    sign in again whatever session they have there: ``prompt=login`` and ``max_age=0``."""
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": settings.client_id, "redirect_uri": redirect_uri,
              "scope": settings.scopes, "state": state, "nonce": nonce,
              "code_challenge": challenge, "code_challenge_method": "S256"}
    if fresh:
        params.update(prompt="login", max_age="0")
    endpoint = metadata["authorization_endpoint"]
    url = endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)


def finish(settings: OidcSettings, metadata: Mapping, *, answer: Mapping[str, str], redirect_uri: str,
           state: str | None, nonce: str | None, code_verifier: str | None, now: datetime,
           fresh: bool) -> Identity:
    """Check the provider's answer (the callback's query) and return the identity it names.

    Raises OidcError with a reason: ``provider_error``, ``state_mismatch``, ``wrong_issuer``,
    ``token_exchange`` or one from ``verify_id_token``.
    """
    if not state or not secrets.compare_digest(answer.get("state", ""), state):
        raise OidcError("state_mismatch", "This sign-in answer does not belong to the sign-in this browser "
                                          "started (it may be old, or from another tab). Start again.")
    if answer.get("error"):
        raise OidcError("provider_error", "The department's sign-in service did not sign you in "
                                          f"({answer.get('error_description') or answer['error']}).")
    # RFC 9207: a provider that names itself in the answer must name the issuer we asked.
    if "iss" in answer and answer["iss"].rstrip("/") != settings.issuer:
        raise OidcError("wrong_issuer", "The sign-in answer came from another issuer than the department's.")
    if not answer.get("code"):
        raise OidcError("provider_error", "The sign-in answer carries no authorization code. Start again.")
    from authlib.integrations.requests_client import OAuth2Session

    supported = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    client = OAuth2Session(settings.client_id, settings.client_secret,
                           token_endpoint_auth_method="client_secret_basic" if "client_secret_basic" in supported
                           else "client_secret_post")
    try:
        token = client.fetch_token(metadata["token_endpoint"], grant_type="authorization_code",
                                   code=answer["code"], redirect_uri=redirect_uri, code_verifier=code_verifier,
                                   timeout=HTTP_TIMEOUT)
    except Exception as exc:  # Authlib raises its own OAuthError, requests' errors, or ValueError
        raise OidcError("token_exchange", "The department's sign-in service would not confirm the sign-in "
                                          "(the code exchange failed). Start again.") from exc
    finally:
        client.close()
    if not token.get("id_token"):
        raise OidcError("token_exchange", "The sign-in service sent no ID token; ask IT to check the scopes.")
    claims = verify_id_token(token["id_token"], metadata, settings=settings, nonce=nonce or "", now=now,
                             fresh=fresh)
    return identity_from_claims(claims, settings)


def verify_id_token(id_token: str, metadata: Mapping, *, settings: OidcSettings, nonce: str, now: datetime,
                    fresh: bool, keys: KeySet | None = None) -> dict:
    """The ID token's claims once its signature, issuer, audience, times and nonce check out.

    For a ``fresh`` sign-in, ``auth_time`` must be present (OIDC Core §3.1.2.1, max_age). Raises
    OidcError with reason ``bad_signature``, ``wrong_issuer``, ``wrong_audience``, ``expired``,
    ``nonce_mismatch`` or ``invalid_token``.
    """
    from joserfc import jwt
    from joserfc.errors import JoseError

    try:
        token = jwt.decode(id_token, keys or provider_keys(metadata), algorithms=ID_TOKEN_ALGORITHMS)
    except JoseError as exc:
        if keys is None and "kid" in str(exc).lower():  # the provider rolled its keys
            try:
                token = jwt.decode(id_token, provider_keys(metadata, refresh=True), algorithms=ID_TOKEN_ALGORITHMS)
            except JoseError as again:
                raise _token_error(again) from again
        else:
            raise _token_error(exc) from exc
    claims = dict(token.claims)
    if str(claims.get("iss", "")).rstrip("/") != settings.issuer:
        raise OidcError("wrong_issuer", "The ID token was issued by another issuer than the department's.")
    audiences: list = claims["aud"] if isinstance(claims.get("aud"), list) else [claims.get("aud")]
    if settings.client_id not in audiences or (len(audiences) > 1 and claims.get("azp") != settings.client_id):
        raise OidcError("wrong_audience", "The ID token was issued for another application, not Roll Call.")
    registry = jwt.JWTClaimsRegistry(now=int(now.timestamp()), leeway=settings.leeway,
                                     exp={"essential": True}, iat={"essential": True}, sub={"essential": True})
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise _token_error(exc) from exc
    if not nonce or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcError("nonce_mismatch", "The ID token does not answer this browser's sign-in (nonce "
                                          "mismatch). Start again.")
    if fresh and "auth_time" not in claims:
        raise OidcError("invalid_token", "The sign-in service did not say when you signed in, so the "
                                         "signature cannot be completed.")
    return claims


def _token_error(exc: JoseError) -> OidcError:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return OidcError("expired", "The ID token has expired. Start the sign-in again.")
    if name in ("BadSignatureError", "MissingKeyError", "InvalidKeyIdError", "UnsupportedAlgorithmError"):
        return OidcError("bad_signature", "The ID token's signature does not verify against the sign-in "
                                          "service's keys.")
    return OidcError("invalid_token", f"The ID token is not valid ({exc.error}).")


def identity_from_claims(claims: Mapping, settings: OidcSettings) -> Identity:
    """The identity a verified ID token names, by the configured claim."""
    subject = claims.get(settings.member_claim)
    if not isinstance(subject, (str, int)) or not str(subject).strip():
        raise OidcError("missing_claim", f"The sign-in service did not send the “{settings.member_claim}” "
                                         "claim that names you; ask IT to add it to the ID token.")
    at = claims.get("auth_time") or claims["iat"]
    return Identity(protocol="oidc", provider=settings.issuer, subject=str(subject).strip(),
                    authenticated_at=datetime.fromtimestamp(int(at), timezone.utc),
                    claims={k: str(claims[k]) for k in ("given_name", "family_name", "email") if k in claims})
