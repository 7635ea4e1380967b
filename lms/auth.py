"""Sign-in plumbing: Flask-Login, the current member, and role guards for views."""
from __future__ import annotations

from functools import wraps

from flask import Flask, abort
from flask_login import LoginManager, current_user, login_required

from lms.db import get_session
from lms.models import Member

login_manager = LoginManager()
login_manager.login_view = "auth.sign_in"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_member(member_id: str) -> Member | None:
    member = get_session().get(Member, int(member_id)) if member_id.isdigit() else None
    return member if member is not None and member.is_active else None


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


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
    for role, endpoint in (("officer", "officer.dashboard"), ("coordinator", "coordinator.home"),
                           ("hr", "hr.home"), ("admin", "admin.home")):
        if member.has_role(role):
            return endpoint
    return "officer.dashboard"
