"""Logging: set up once at start, and one line per request.

Every line goes to standard error (gunicorn and systemd's journal collect it) as ``key=value``
text, or as one JSON object a line when ``LMS_LOG_FORMAT=json``.

The request line names the request id (the caller's ``X-Request-ID`` when it is sane, else a new
one; sent back in the ``X-Request-ID`` response header and on the error page as its reference), the
signed-in member's id (never a name, e-mail or password), the method, the path, the status and the
time until the response was fully sent.

What a path may show: the route with its whole-number arguments (record ids) filled in and every
other argument left as its name, so ``/verify/<code>`` and a one-time link's token never reach the
log; query strings only by their parameter names (``query=q,page``): a search for a member's name
stays out of the log. Health probes (``/healthz``, ``/readyz``) are logged at DEBUG, so a load
balancer's polling does not bury the requests people make.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from flask import Flask, g, request

#: The id of the request being served, for every line logged while serving it.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("lms_request_id", default=None)

#: An incoming X-Request-ID is kept only if it looks like an id: no spaces, quotes or line breaks
#: that could forge a log line, and not too long.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}")
#: Paths answered at DEBUG level (load-balancer probes).
QUIET_PATHS = frozenset({"/healthz", "/readyz"})
_ROUTE_ARGUMENT = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")

_QUERY_KEY = re.compile(r"[A-Za-z0-9_.\[\]-]{1,40}")

request_log = logging.getLogger("lms.request")


class _StandardError(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a line is logged (so a test capturing
    standard error sees the lines)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


def _utc(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``time level logger message key=value…``: readable, and still easy to grep."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_utc(record), record.levelname, record.name, record.getMessage()]
        fields = dict(getattr(record, "fields", None) or {})
        if record.request_id and "request_id" not in fields:
            fields = {"request_id": record.request_id, **fields}
        parts += [f"{key}={_text_value(value)}" for key, value in fields.items() if value is not None]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value) -> str:
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    # Quoted when it could be mistaken for the next field or a new line.
    return json.dumps(text, ensure_ascii=False) if not text or re.search(r'[\s"=]', text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id and the line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _utc(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if record.request_id:
            line["request_id"] = record.request_id
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Send the ``lms`` loggers (the app's, the request line, the CLI's, the worker's) to
    standard error in ``log_format``. Safe to call again: the handler is replaced, not added."""
    logger = logging.getLogger("lms")
    for handler in [h for h in logger.handlers if getattr(h, "lms_handler", False)]:
        logger.removeHandler(handler)
    handler = _StandardError()
    handler.lms_handler = True
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    # With a handler here Flask adds none of its own to the app's logger ("lms"). Records still
    # propagate: the root logger has no handler in a server, and pytest's caplog listens there.


def init_app(app: Flask) -> None:
    """Note who and which route served each request, and log one line per request. Installed
    last, so the line covers everything else (the health probes included)."""

    @app.teardown_request
    def _note_request(_exc):
        member = g.get("_login_user")  # set by Flask-Login only if the request loaded the member
        if member is not None and getattr(member, "is_authenticated", False):
            request.environ["lms.member_id"] = member.id
        if request.url_rule is not None:
            request.environ["lms.route"] = loggable_path(request.url_rule.rule, request.view_args or {})

    app.wsgi_app = RequestLog(app.wsgi_app)


def loggable_path(rule: str, arguments: dict) -> str:
    """The route with whole-number arguments filled in and every other argument left as its name:
    ``/hr/members/<int:member_id>`` → ``/hr/members/17``; ``/verify/<code>`` stays as it is."""

    def fill(match: re.Match) -> str:
        value = arguments.get(match.group("name"))
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return f"<{match.group('name')}>"

    return _ROUTE_ARGUMENT.sub(fill, rule)


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is sane, else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(6)  # 12 hex digits: short enough to read out as an error reference


class RequestLog:
    """WSGI middleware: give each request an id, time it, and log one line when its response has
    been sent (a streamed export is timed to its last byte)."""

    def __init__(self, wsgi_app: Callable):
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        environ["lms.request_id"] = request_id
        token = request_id_var.set(request_id)
        status_holder: list[str] = []

        def start(status: str, headers: list, exc_info=None):
            status_holder[:] = [status]
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        def done() -> None:
            status = int(status_holder[0].split()[0]) if status_holder else 500
            _log_request(environ, status, (time.perf_counter() - started) * 1000, request_id)

        try:
            body = self.wsgi_app(environ, start)
        except BaseException:
            done()
            request_id_var.reset(token)
            raise
        request_id_var.reset(token)
        return _LoggedBody(body, done)


class _LoggedBody:
    """The response body, passed through; logs the request once, when it is exhausted or closed."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]):
        self.body = body
        self.done = done
        self.logged = False

    def __iter__(self):
        try:
            yield from self.body
        finally:
            self._log()

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self._log()

    def _log(self) -> None:
        if not self.logged:
            self.logged = True
            self.done()


def _log_request(environ: dict, status: int, duration_ms: float, request_id: str) -> None:
    path = environ.get("PATH_INFO") or "/"
    level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
    if not request_log.isEnabledFor(level):
        return
    query = environ.get("QUERY_STRING") or ""
    query_keys = sorted({key for key in (part.split("=", 1)[0] for part in query.split("&"))
                         if _QUERY_KEY.fullmatch(key)})
    fields = {
        "request_id": request_id,
        "method": environ.get("REQUEST_METHOD"),
        # The matched route; an unmatched path (a 404) as sent, cut short.
        "path": environ.get("lms.route") or path[:200],
        "query": query_keys or None,
        "status": status,
        "duration_ms": round(duration_ms, 1),
        "member_id": environ.get("lms.member_id"),
    }
    request_log.log(level, "request", extra={"fields": fields, "request_id": request_id})
