"""Web plumbing shared by every blueprint: CSRF, headers, error pages, request facts."""
from __future__ import annotations

import uuid
from datetime import datetime

from flask import Flask, current_app, g, has_request_context, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from lms.db import get_session, utcnow
from lms.services.clock import local_date
from lms.services.progress import STATUS_LABELS

csrf = CSRFProtect()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie marked Secure whenever the request came over HTTPS
    (so one configuration serves both a plain-HTTP demo and a TLS deployment safely)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    app.session_interface = SessionInterface()
    if app.config.get("PREFERRED_URL_SCHEME") == "https":
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    if app.config.get("PROXY_COUNT"):
        # Behind N reverse proxies, trust their X-Forwarded-* so IPs and https are recorded right.
        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if current_user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    # Globals rather than a context processor, so imported macros see them too.
    app.jinja_env.globals.update(status_labels=STATUS_LABELS, department=app.config["DEPARTMENT_NAME"],
                                 this_url=this_url)
    # A UTC instant as the department's calendar day (a void at 11 pm Chicago is that day's).
    app.jinja_env.filters["local_day"] = lambda moment: local_date(moment, app.config["TIMEZONE"])

    for code, title in ((400, "Bad request"), (403, "Not allowed"), (404, "Not found"),
                        (405, "Method not allowed"), (409, "Conflict"), (413, "Too large"),
                        (429, "Too many attempts")):
        app.register_error_handler(code, _error_page(code, title))

    @app.errorhandler(500)
    def _server_error(error):
        reference = uuid.uuid4().hex[:12]
        current_app.logger.error("error reference %s", reference, exc_info=getattr(error, "original_exception", error))
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               reference=reference), 500


def _error_page(code: int, title: str):
    def handler(error):
        description = getattr(error, "description", None)
        return render_template("errors/error.html", code=code, title=title,
                               description=description, reference=None), code
    return handler


def request_now() -> datetime:
    """One 'now' per request, so every record a request writes agrees on the time."""
    if "now" not in g:
        g.now = utcnow()
    return g.now


def today() -> datetime.date:
    """The department's local date."""
    return local_date(request_now(), current_app.config["TIMEZONE"])


def client_ip() -> str:
    """The client's address as the app sees it (see PROXY_COUNT)."""
    return request.remote_addr or "unknown"


def commit() -> None:
    """Commit the request's session: the one place a view's writes land."""
    get_session().commit()


def this_url() -> str:
    """The current page's address, query included, without a #fragment: the action of a form that
    posts back to its own page. A form without an action posts to the address with its fragment
    (the skip link's #main), and the browser then skips autofocus on the error summary."""
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")
