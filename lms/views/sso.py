"""Single sign-on: OpenID Connect and SAML 2.0 sign-in, and the fresh sign-in that completes a
signature. Part of the auth audience: these pages serve whoever is signing in.

What the browser carries between leaving for the identity provider and coming back is kept in the
signed session cookie under ``sso_pending``: the protocol, the state/nonce/PKCE verifier (OIDC) or
the AuthnRequest ID (SAML), what the round trip is for, and for a signature the assignment, the
typed name, the text hash shown and when the fresh sign-in was asked for. It is popped on return,
so each round trip completes once.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from lms.auth import TOKEN_KEY, current_sign_in, home_endpoint
from lms.db import get_session
from lms.services import oidc, saml
from lms.services.sessions import revoke_token
from lms.services.signing import SignerProof
from lms.services.sso import (
    Identity,
    SsoRefused,
    SsoRules,
    member_for_identity,
    refuse_answer,
    remember_assertion,
    start_sso_session,
)
from lms.web import CSP, client_ip, csrf, keep_on_error, request_now

bp = Blueprint("sso", __name__, url_prefix="/sso")

PENDING_KEY = "sso_pending"
#: The verified SAML answer rides from the consumer service to the finishing page in this cookie
#: (the consumer service is reached by a cross-site POST, which carries no session cookie).
ANSWER_COOKIE = "saml_answer"
ANSWER_SECONDS = 120


def oidc_settings() -> oidc.OidcSettings | None:
    """The OpenID Connect settings of this app, or None."""
    return oidc.OidcSettings.from_config(current_app.config)


def saml_settings() -> saml.SamlSettings | None:
    """The SAML settings of this app, or None."""
    return saml.SamlSettings.from_config(current_app.config)


def saml_addresses(settings: saml.SamlSettings) -> saml.ServiceAddresses:
    """This service provider's entity ID and consumer service URL, as the provider sees them."""
    return saml.ServiceAddresses(entity_id=settings.entity_id or url_for("sso.saml_metadata", _external=True),
                                 acs_url=url_for("sso.saml_acs", _external=True))


def providers() -> list[dict]:
    """The single sign-on buttons the sign-in page offers."""
    found = []
    if current_app.config.get("OIDC_ISSUER"):
        found.append({"url": url_for("sso.oidc_start"), "label": current_app.config["OIDC_LABEL"]})
    if current_app.config.get("SAML_IDP_METADATA"):
        found.append({"url": url_for("sso.saml_start"), "label": current_app.config["SAML_LABEL"]})
    return found


def _rules(protocol: str) -> SsoRules:
    field = current_app.config.get("OIDC_MEMBER_FIELD" if protocol == "oidc" else "SAML_MEMBER_FIELD", "email")
    return SsoRules(member_field=field, create_members=bool(current_app.config.get("SSO_CREATE_MEMBERS")))


def _skew() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("SSO_CLOCK_SKEW_SECONDS", 10)))


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _refused(exc: SsoRefused, protocol: str, *, audited: bool = False):
    """The clear page for a refused sign-in; the refusal is audited (once) and kept. ``audited``:
    the service that refused recorded it already (nothing else is written then)."""
    db = get_session()
    if not audited:
        db.rollback()
        refuse_answer(db, protocol=protocol, provider=g.get("sso_provider"), reason=exc.reason, problem=exc.message,
                      now=request_now(), ip=client_ip())
    keep_on_error()  # the refusal stays in the audit log
    status = 403 if exc.reason in ("unknown_member", "separated") else 400
    return render_template("auth/sso_refused.html", message=exc.message, reason=exc.reason,
                           local_sign_in=current_app.config.get("LOCAL_SIGN_IN", True)), status


# --- starting a round trip -----------------------------------------------------------------------

def send_to_provider(protocol: str, *, purpose: str, next_url: str | None = None,
                     signature: dict | None = None):
    """Keep what the round trip needs in the session and redirect to the identity provider.

    ``purpose`` is "sign_in" or "sign" (a signature: the provider must ask the member to sign in
    afresh; ``signature`` holds the assignment, typed name and text hash to complete on return).
    """
    fresh = purpose == "sign"
    pending = {"protocol": protocol, "purpose": purpose, "next": _safe_next(next_url),
               "requested_at": request_now().isoformat()}
    if signature is not None:
        pending["signature"] = signature
    try:
        if protocol == "oidc":
            settings = oidc_settings()
            if settings is None:
                abort(404)
            g.sso_provider = settings.issuer
            metadata = oidc.provider_metadata(settings.issuer)
            auth = oidc.begin(settings, metadata, url_for("sso.oidc_callback", _external=True), fresh=fresh)
            pending.update(state=auth.state, nonce=auth.nonce, code_verifier=auth.code_verifier)
            location = auth.url
        else:
            settings = saml_settings()
            if settings is None:
                abort(404)
            request_id, location = saml.begin(settings, saml_addresses(settings), relay_state=purpose, fresh=fresh)
            pending.update(request_id=request_id)
    except SsoRefused as exc:
        return _refused(exc, protocol)
    session[PENDING_KEY] = pending
    return redirect(location, 303)


@bp.get("/oidc/start")
def oidc_start():
    """Sign in through the OpenID Connect provider."""
    return send_to_provider("oidc", purpose="sign_in", next_url=request.args.get("next"))


@bp.get("/saml/start")
def saml_start():
    """Sign in through the SAML identity provider."""
    return send_to_provider("saml", purpose="sign_in", next_url=request.args.get("next"))


# --- coming back ---------------------------------------------------------------------------------

def _take_pending(protocol: str) -> dict | None:
    pending = session.pop(PENDING_KEY, None)
    if not isinstance(pending, dict) or pending.get("protocol") != protocol:
        return None
    return pending


@bp.get("/oidc/callback")
def oidc_callback():
    """The OpenID Connect provider's answer: verify it, then sign in or complete the signature."""
    settings = oidc_settings()
    if settings is None:
        abort(404)
    g.sso_provider = settings.issuer
    pending = _take_pending("oidc") or {}
    fresh = pending.get("purpose") == "sign"
    try:
        metadata = oidc.provider_metadata(settings.issuer)
        identity = oidc.finish(settings, metadata, answer=request.args, redirect_uri=url_for(
            "sso.oidc_callback", _external=True), state=pending.get("state"), nonce=pending.get("nonce"),
            code_verifier=pending.get("code_verifier"), now=request_now(), fresh=fresh)
    except SsoRefused as exc:
        return _refused(exc, "oidc")
    return _arrive(identity, pending)


@bp.post("/saml/acs")
@csrf.exempt
def saml_acs():
    """The SAML assertion consumer service: verify the posted answer and refuse a replay, then
    hand the identity to the finishing page in a short-lived signed cookie."""
    settings = saml_settings()
    if settings is None:
        abort(404)
    db = get_session()
    try:
        answer = saml.verify_answer(settings, saml_addresses(settings), request.form.get("SAMLResponse", ""),
                                    now=request_now())
        g.sso_provider = answer.identity.provider
        if not remember_assertion(db, issuer=answer.identity.provider, assertion_id=answer.assertion_id,
                                  expires_at=answer.expires_at, now=request_now()):
            raise saml.SamlError("replayed", "This SAML answer was already used once; an answer counts only "
                                             "once. Start the sign-in again.")
    except SsoRefused as exc:
        return _refused(exc, "saml")
    identity = answer.identity
    payload = {"provider": identity.provider, "subject": identity.subject,
               "authenticated_at": identity.authenticated_at.isoformat(), "claims": dict(identity.claims),
               "in_response_to": answer.in_response_to}
    response = redirect(url_for("sso.saml_finish"), 303)
    response.set_cookie(ANSWER_COOKIE, _answer_serializer().dumps(payload), max_age=ANSWER_SECONDS,
                        path=url_for("sso.saml_finish"), httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response


def _answer_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="saml-answer")


@bp.get("/saml/finish")
def saml_finish():
    """Match the verified SAML answer to the request this browser made, then sign in or sign."""
    if saml_settings() is None:
        abort(404)
    pending = _take_pending("saml") or {}
    raw = request.cookies.get(ANSWER_COOKIE, "")
    try:
        payload = _answer_serializer().loads(raw, max_age=ANSWER_SECONDS)
    except BadSignature:
        payload = None
    if payload is None or not pending.get("request_id") or payload.get("in_response_to") != pending["request_id"]:
        g.sso_provider = payload.get("provider") if payload else None
        response = _refused(saml.SamlError("state_mismatch", "This SAML answer does not belong to a sign-in this "
                                                             "browser started (it may be old, or unsolicited). "
                                                             "Start again."), "saml")
    else:
        identity = Identity(protocol="saml", provider=payload["provider"], subject=payload["subject"],
                            authenticated_at=datetime.fromisoformat(payload["authenticated_at"]),
                            claims=payload.get("claims") or {})
        response = _arrive(identity, pending)
    response = current_app.make_response(response)
    response.delete_cookie(ANSWER_COOKIE, path=url_for("sso.saml_finish"))
    return response


def _arrive(identity: Identity, pending: dict):
    """A verified identity: the member it names signs in, or completes their signature."""
    db = get_session()
    now = request_now()
    try:
        member = member_for_identity(db, identity, _rules(identity.protocol), now=now, ip=client_ip())
    except SsoRefused as exc:
        return _refused(exc, identity.protocol, audited=True)
    if pending.get("purpose") == "sign":
        from lms.views.officer import complete_signature

        signature = pending.get("signature") or {}
        proof = SignerProof(method=identity.protocol, provider=identity.provider, member_id=member.id,
                            authenticated_at=identity.authenticated_at,
                            requested_at=datetime.fromisoformat(pending["requested_at"]), skew=_skew())
        return complete_signature(signature, proof)
    old_token = session.get(TOKEN_KEY)
    if old_token:
        revoke_token(db, old_token, now=now, reason="signed_in_again")
    _, token = start_sso_session(db, member, identity, now=now, ip=client_ip(),
                                 user_agent=request.headers.get("User-Agent"))
    session.clear()  # a new session at sign-in: nothing from before carries over
    session[TOKEN_KEY] = token
    login_user(member, fresh=True)
    return redirect(pending.get("next") or url_for(home_endpoint(member)), 303)


@bp.get("/saml/metadata")
def saml_metadata():
    """This service provider's SAML metadata, for the identity provider's administrator."""
    settings = saml_settings()
    if settings is None:
        abort(404)
    try:
        xml = saml.sp_metadata(settings, saml_addresses(settings))
    except SsoRefused as exc:
        return _refused(exc, "saml")
    return Response(xml, mimetype="application/samlmetadata+xml")


def signing_protocol() -> str | None:
    """The identity provider protocol a signature in this session must go through, or None for
    the password: the same kind of proof the member signed in with."""
    sign_in = current_sign_in()
    method = sign_in.auth_method if sign_in is not None else None
    if method == "oidc" and current_app.config.get("OIDC_ISSUER"):
        return "oidc"
    if method == "saml" and current_app.config.get("SAML_IDP_METADATA"):
        return "saml"
    return None


@bp.after_app_request
def _allow_provider_forms(response):
    """Let forms on our pages lead to the identity provider: a form whose answer redirects there
    (signing under single sign-on) is held to the CSP's form-action, redirects included."""
    if response.mimetype != "text/html":
        return response
    origins = _provider_origins()
    # This runs before lms.web's own header hook (after-request hooks run last-registered first),
    # so the policy is set here and that hook's setdefault leaves it.
    csp = response.headers.get("Content-Security-Policy", CSP)
    if origins and "form-action 'self'" in csp:
        response.headers["Content-Security-Policy"] = csp.replace(
            "form-action 'self'", "form-action 'self' " + " ".join(sorted(origins)))
    return response


def _provider_origins() -> set[str]:
    origins = set()
    urls = [current_app.config.get("OIDC_ISSUER")]
    settings = saml_settings()
    if settings is not None:
        try:
            urls.append(saml.sso_location(settings, saml_addresses(settings)))
        except SsoRefused:  # metadata unreadable now: the sign-in page says so when it is used
            pass
    for url in filter(None, urls):
        parts = urlsplit(url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins

