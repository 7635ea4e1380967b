"""Web plumbing shared by every blueprint: CSRF, headers, error pages, request facts."""
from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime
from urllib.parse import quote, urlsplit

from flask import Flask, abort, current_app, g, has_request_context, render_template, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from sqlalchemy.exc import OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from lms.db import get_session, utcnow
from lms.services.clock import as_moment, date_words, datetime_words, local_date, local_iso
from lms.services.links import is_loopback
from lms.services.progress import STATUS_LABELS
from lms.services.quiz import correct_needed
from lms.services.validators import MAX_ID, text_problem
from lms.transaction import after_commit, keep_on_error, on_rollback  # noqa: F401 - the views' import

csrf = CSRFProtect()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie marked Secure whenever the request came over HTTPS
    (so one configuration serves both a plain-HTTP demo and a TLS deployment safely)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: ASCII digits naming a row id. A number no row can have
    (beyond 32 bits, which PostgreSQL's integer columns refuse with an error) is a 404 like any
    other id that does not exist."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _refuse_control_characters():
    """Refuse, before any view runs, a form or query value holding a control character (NUL, ESC,
    a lone CR…; line breaks are allowed in form fields): no field of Roll Call means one, PostgreSQL
    refuses NUL outright, and CR/LF in a name or an e-mail would inject mail headers."""
    for source, values in (("query", request.args), ("form", request.form)):
        for name, value in values.items(multi=True):
            problem = text_problem(name) or text_problem(value, multiline=source == "form")
            if problem:
                abort(400, description=f"The field {name[:40]!r} {problem}. Nothing was changed.")


def init_app(app: Flask) -> None:
    # Before any blueprint registers, so every ``<int:…>`` rule is built with it.
    app.url_map.converters["int"] = IdConverter
    app.before_request(_refuse_control_characters)
    csrf.init_app(app)
    app.session_interface = SessionInterface()
    if app.config.get("PREFERRED_URL_SCHEME") == "https":
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    if app.config.get("PROXY_COUNT"):
        # Behind N reverse proxies, trust their X-Forwarded-* so IPs and https are recorded right.
        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    @app.before_request
    def _require_public_url():
        # Receipts and e-mails carry absolute links: a server reached by any other name than this
        # machine's own must be told its public address (python app.py checks at start; other
        # servers, such as gunicorn, cannot tell what they listen on, so the first request does).
        if current_app.config.get("PUBLIC_URL") or current_app.testing or current_app.debug:
            return None
        if is_loopback(urlsplit("//" + request.host).hostname or ""):
            return None
        current_app.logger.error("LMS_PUBLIC_URL is not set; refusing a request for %s", request.host)
        return render_template("errors/error.html", code=503, title="Not configured yet", reference=None,
                               description="Roll Call needs LMS_PUBLIC_URL, the address members reach it "
                                           "at, before it serves anyone but this machine. Ask the "
                                           "administrator to set it and restart."), 503

    @app.after_request
    def _security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # An error page rendered without the database must not ask it who is signed in.
        if g.get("bare_page") or current_user.is_authenticated:
            response.headers["Cache-Control"] = "no-store"
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response

    # Globals rather than a context processor, so imported macros see them too.
    app.jinja_env.globals.update(status_labels=STATUS_LABELS, department=app.config["DEPARTMENT_NAME"],
                                 this_url=this_url, correct_needed=correct_needed)
    # A UTC instant as the department's calendar day (a void at 11 pm Chicago is that day's).
    app.jinja_env.filters["local_day"] = lambda moment: local_date(moment, app.config["TIMEZONE"])
    # Every date and time a page shows goes through these two, so they read one way everywhere.
    app.jinja_env.filters["date_words"] = lambda value: date_words_html(value, app.config["TIMEZONE"])
    app.jinja_env.filters["datetime_words"] = lambda value: datetime_words_html(value, app.config["TIMEZONE"])

    for code, title in ((400, "Bad request"), (403, "Not allowed"), (404, "Not found"),
                        (405, "Method not allowed"), (409, "Conflict"), (413, "Too large"),
                        (429, "Too many attempts")):
        app.register_error_handler(code, _error_page(code, title))

    @app.errorhandler(500)
    def _server_error(error):
        # The request id, so the reference a member reads out finds the request's log lines.
        reference = request.environ.get("lms.request_id") or uuid.uuid4().hex[:12]
        original = getattr(error, "original_exception", None) or error
        current_app.logger.error("error reference %s", reference, exc_info=original)
        # The page must render whatever failed, the database included: it asks nothing of the
        # database (no signed-in member, no navigation) and the request's session is abandoned.
        g.bare_page = True
        # A "Saved." flashed before the failure (a commit that failed, say) would be false.
        session.pop("_flashes", None)
        try:
            get_session().rollback()
        except Exception:  # noqa: BLE001 - the database may be what is down
            current_app.logger.warning("error reference %s: rollback failed", reference)
        if isinstance(original, OperationalError):
            return render_template("errors/error.html", code=503, title="Roll Call is unavailable",
                                   description="The database cannot be reached. Nothing was "
                                               "changed; try again in a few minutes.",
                                   reference=reference), 503
        return render_template("errors/error.html", code=500, title="Something went wrong",
                               reference=reference), 500


def _error_page(code: int, title: str):
    def handler(error):
        description = getattr(error, "description", None)
        return render_template("errors/error.html", code=code, title=title,
                               description=description, reference=None), code
    return handler


def date_words_html(value: date | datetime | str | None, tz_name: str) -> Markup:
    """A date in words for a page, "December 31, 2026", in a ``<time>`` that gives machines the
    ISO date; an instant counts as its day in the department's time zone; nothing is "—"."""
    if value is None or value == "":
        return Markup("—")
    if isinstance(value, (datetime, str)):
        value = local_date(as_moment(value), tz_name)
    return Markup('<time datetime="{}">{}</time>').format(value.isoformat(), date_words(value))


def datetime_words_html(value: datetime | str | None, tz_name: str) -> Markup:
    """An instant in words in the department's time zone, "December 1, 2026, 7:12 a.m. CST", in a
    ``<time>`` that gives machines ISO 8601 with the offset; nothing is "—"."""
    if value is None or value == "":
        return Markup("—")
    moment = as_moment(value)
    return Markup('<time datetime="{}">{}</time>').format(local_iso(moment, tz_name),
                                                           datetime_words(moment, tz_name))


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
    """Deprecated: views no longer commit (lms.transaction commits once, after the view). Kept,
    committing at once as it always did, only so views written before that rule behave the same
    until they are converted; tests/test_transactions.py fails on any view that still calls it."""
    get_session().commit()


def this_url() -> str:
    """The current page's address, query included, without a #fragment: the action of a form that
    posts back to its own page. A form without an action posts to the address with its fragment
    (the skip link's #main), and the browser then skips autofocus on the error summary."""
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def attachment(filename: str) -> str:
    """A Content-Disposition value that offers ``filename`` for download (RFC 6266): an ASCII
    fallback in ``filename=`` and the exact name, UTF-8 and percent-encoded, in ``filename*=``
    (RFC 5987), so a badge with a quote, a slash or a non-Latin letter neither breaks the header
    nor fails to encode."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r'[^A-Za-z0-9._-]+', "_", ascii_name).strip("._") or "download"
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def cycle_or_404(cycle_id: int):
    """The training cycle with this id, or 404: the one way a view loads the cycle in its URL."""
    from lms.models import Cycle

    cycle = get_session().get(Cycle, cycle_id)
    if cycle is None:
        abort(404)
    return cycle
