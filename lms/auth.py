"""Sign-in plumbing: Flask-Login on server-side sessions, the current member, and role guards."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_required, login_url, logout_user

from lms.db import get_session
from lms.models import Member, SignInSession
from lms.services.sessions import SessionLimits, check_session, seconds_left
from lms.web import request_now

login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"

#: Where the session cookie keeps the sign-in token (the database keeps only its hash).
TOKEN_KEY = "sign_in_token"
SESSION_ENDED_MESSAGE = "Your session has ended; sign in again."
#: What a member who must change their password may still reach.
OPEN_WHILE_PASSWORD_MUST_CHANGE = {"account.change_password", "auth.sign_out", "auth.sign_in", "auth.stay", "static",
                                   "public.verify"}


@login_manager.user_loader
def _load_member(member_id: str) -> Member | None:
    """The member of the server-side session the cookie's token names, if it is still live."""
    token = session.get(TOKEN_KEY)
    if not token:
        return None
    result = check_session(get_session(), token, now=request_now(),
                           limits=SessionLimits.from_config(current_app.config))
    # A touch or an end (result.changed) is committed alone, before the view runs: the member is
    # loaded by _gate, and lms.transaction commits that preamble.
    member = result.member
    if result.ended is not None or member is None or str(member.id) != member_id or not member.is_active:
        session.pop(TOKEN_KEY, None)
        if result.ended in ("revoked", "idle", "expired"):
            g.session_ended = True
            flash(SESSION_ENDED_MESSAGE, "info")
        return None
    g.sign_in_session = result.sign_in
    return member


@login_manager.unauthorized_handler
def _unauthorized():
    """To sign-in, with one message: why the session ended, or that sign-in is needed; and back
    to the same place afterwards. A form posted after the session ended cannot be replayed (its
    address answers only POST: going back there would end on 405), so the member comes back to
    the page the form was on; what they were answering is saved on the server."""
    if not g.get("session_ended"):
        flash(login_manager.login_message, login_manager.login_message_category)
    if request.method in ("GET", "HEAD"):
        back = request.full_path.rstrip("?")
    else:
        back = same_site_referrer() or url_for("auth.index")
    status = 303 if request.method not in ("GET", "HEAD") else 302
    return redirect(login_url(login_manager.login_view, next_url=back), status)


def same_site_referrer() -> str | None:
    """The path (and query) of the page that sent this request, if it is a page of this site."""
    referrer = request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc != request.host or parts.scheme not in ("http", "https"):
        return None
    if not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def current_sign_in() -> SignInSession | None:
    """The server-side session of this request, once the member is loaded."""
    return g.get("sign_in_session") if current_user.is_authenticated else None


def _gate():
    """Load the member before any view (so the session check's writes are committed on their own,
    by lms.transaction, before the view's) and keep
    a member whose password was reset on the change-password page until they change it."""
    if current_user.is_authenticated and current_user.must_change_password \
            and request.endpoint not in OPEN_WHILE_PASSWORD_MUST_CHANGE:
        return redirect(url_for("account.change_password"))
    return None


def session_seconds_left() -> int | None:
    """Seconds the signed-in member's session has left before the idle (or absolute) sign-out."""
    sign_in = current_sign_in()
    if sign_in is None:
        return None
    return seconds_left(sign_in, now=request_now(), limits=SessionLimits.from_config(current_app.config))


def session_timeout() -> dict | None:
    """What a page's idle-sign-out warning needs (seconds the session has left, when to warn), or
    None when no one is signed in."""
    sign_in = current_sign_in()
    if sign_in is None:
        return None
    limits = SessionLimits.from_config(current_app.config)
    idle = limits.idle.total_seconds()
    # Warn early enough to answer, but never before the session has been idle a little while.
    warn = min(float(current_app.config.get("SESSION_WARNING_MINUTES", 2)) * 60, idle / 2)
    return {"seconds_left": seconds_left(sign_in, now=request_now(), limits=limits),
            "warn_seconds": int(warn), "idle_minutes": round(idle / 60, 1)}


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.before_request(_gate)
    app.jinja_env.globals["session_timeout"] = session_timeout


def role_required(*roles: str):
    """Let a view run only for signed-in members holding one of ``roles``; others get 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.role_names & set(roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def home_endpoint(member: Member) -> str:
    """Where a member lands after signing in: their own role's home page."""
    # Staff are usually members in training too; their work page comes first, and "My training"
    # stays one link away in the header.
    for role, endpoint in (("coordinator", "coordinator.home"), ("hr", "hr.home"), ("admin", "admin.home"),
                           ("supervisor", "supervisor.home"), ("officer", "officer.dashboard")):
        if member.has_role(role):
            return endpoint
    return "officer.dashboard"

#: Shown when wrong passwords typed to confirm an action locked the account.
LOCKED_MESSAGE = ("Too many wrong passwords: your account is locked and you have been signed out. "
                  "Wait and sign in again, or ask an administrator to unlock it.")


def signed_out_locked():
    """End this browser's session after a lockout (the server-side sessions already ended) and
    send the member to sign-in, saying why."""
    logout_user()
    session.clear()
    flash(LOCKED_MESSAGE, "error")
    return redirect(url_for("auth.sign_in"), 303)
