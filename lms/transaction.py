"""One transaction per request and per command, committed or rolled back in one place.

Views and CLI commands never call ``commit()``: they write through the services (which flush)
and return. What happens to the writes is decided here, from how the request or command ended
(the rule of indico's ``indico/web/rh.py``):

- A web request whose response is a success or a redirect (status < 400) commits.
- A refusal (4xx) rolls back, so a validation error after a flush leaves nothing, unless the
  view called :func:`keep_on_error` first: a refused attempt that must stay on the record (a
  wrong password, a wrong code, a lockout counted, a refused signature audited). Keeping is a
  named decision in the view, never a default.
- An exception (5xx) always rolls back.
- A CLI command that returns (or exits 0) commits; one that fails (a non-zero exit or an
  exception) rolls back, unless it called :func:`keep_on_error` before exiting non-zero.

Work that must follow the commit (waking a worker for the jobs just queued, renaming an export
into place once its audit record stands) is registered with :func:`after_commit`; what must undo
an effect if the writes do not land, with :func:`on_rollback`.

The commit happens before a response's body is sent (streamed CSV, file downloads), so a
download never goes out unaudited, and a commit that fails (a constraint, the database down)
becomes the error page rather than a half-sent response.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import click
from flask import Flask, g, has_app_context
from sqlalchemy.orm import Session

#: The flag set by keep_on_error, and the callbacks registered for this request or command.
_KEEP, _AFTER_COMMIT, _ON_ROLLBACK = "lms_keep_on_error", "lms_after_commit", "lms_on_rollback"


def keep_on_error() -> None:
    """Commit this request's (or command's) writes even though it ends refused (4xx, or a CLI
    exit status other than 0): the audit record and failure count of a refused attempt.

    Everything the session holds is kept, so roll back first what must not land (the refused
    change itself), then record the refusal, then call this."""
    setattr(g, _KEEP, True)


def after_commit(callback: Callable, *args, **kwargs) -> None:
    """Run ``callback(*args, **kwargs)`` once this request's or command's writes are committed
    (and never if they are rolled back)."""
    g.setdefault(_AFTER_COMMIT, []).append(partial(callback, *args, **kwargs))


def on_rollback(callback: Callable, *args, **kwargs) -> None:
    """Run ``callback(*args, **kwargs)`` if this request's or command's writes are rolled back
    (or their commit fails): to undo an effect outside the database."""
    g.setdefault(_ON_ROLLBACK, []).append(partial(callback, *args, **kwargs))


def kept_on_error() -> bool:
    """Whether the view or command asked for its writes to be kept although it was refused."""
    return bool(g.get(_KEEP))


def _session() -> Session | None:
    # Only a session this request or command opened: one that never touched the database has
    # nothing to settle (and a static file must not open a connection to find that out).
    return g.get("db_session") if has_app_context() else None


def settle(commit: bool) -> None:
    """Commit (then run the after-commit callbacks) or roll back (then the on-rollback ones).
    A failed commit rolls back, runs the on-rollback callbacks and raises."""
    session = _session()
    if not commit:
        if session is not None:
            session.rollback()
        _run(_ON_ROLLBACK)
        return
    if session is not None:
        try:
            session.commit()
        except BaseException:
            try:
                session.rollback()
            finally:
                _run(_ON_ROLLBACK)
            raise
    _run(_AFTER_COMMIT)


def _run(key: str) -> None:
    """Run the callbacks of one outcome (and forget both lists: each runs at most once)."""
    callbacks = g.pop(key, None) or ()
    g.pop(_AFTER_COMMIT, None)
    g.pop(_ON_ROLLBACK, None)
    for callback in callbacks:
        callback()


# --------------------------------------------------------------------------------- web requests

def response_commits(status: int) -> bool:
    """The rule for a finished request: success and redirects commit; a refusal (4xx) only when
    the view kept it on purpose; a server error never."""
    if status < 400:
        return True
    return status < 500 and kept_on_error()


def init_app(app: Flask) -> None:
    """Settle each request's transaction. Call after lms.auth.init_app, whose before-request
    gate loads the signed-in member first (see _commit_preamble)."""

    @app.before_request
    def _commit_preamble():
        # Loading the signed-in member moves their session's last-seen time on, or ends a session
        # past its limits (audited). That is the request's preamble, not the view's work: it lands
        # on its own, so a view refused with a 4xx does not undo it.
        session = _session()
        if session is not None and session.in_transaction():
            session.commit()

    @app.after_request
    def _settle_request(response):
        # Runs before the response's body is sent: a streamed export is committed (and so
        # audited) before its first byte. An exception raised here (a failed commit) becomes the
        # 500 (or 503) error page through lms.web's error handler.
        settle(response_commits(response.status_code))
        return response


# --------------------------------------------------------------------------------- CLI commands

def run_command(invoke: Callable[[], object]) -> object:
    """Run a CLI command's body in one transaction: commit when it returns or exits 0, roll back
    when it fails (unless it called keep_on_error), then let the exit or exception go on."""
    try:
        result = invoke()
    except (SystemExit, click.exceptions.Exit) as exc:  # sys.exit(n), or click's ctx.exit(n)
        code = exc.code if isinstance(exc, SystemExit) else exc.exit_code
        if has_app_context():
            settle(code in (None, 0) or kept_on_error())
        raise
    except BaseException:
        if has_app_context():
            settle(False)
        raise
    if has_app_context():
        settle(True)
    return result
