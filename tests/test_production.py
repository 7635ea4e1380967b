"""Production serving, tested once: gunicorn with two workers on PostgreSQL, and a signed-in
member whose requests land on either worker. The browser's session rides in a signed cookie (the
same LMS_SECRET_KEY on every worker) and everything else lives in the database, so no server
affinity is needed.

Needs PostgreSQL: run with LMS_TEST_DATABASE_URL=postgresql+psycopg://… (see tests/conftest.py).
"""
from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gunicorn.config import Config

from lms.config import PROJECT_ROOT
from tests.conftest import CSRF_RE, PASSWORD, PG_URL

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="production serving is tested on PostgreSQL only: set LMS_TEST_DATABASE_URL")

STARTUP_TIMEOUT = 20  # seconds for gunicorn to bind and a worker to answer
#: Access log line per request: worker pid, request line, status.
ACCESS_FORMAT = "access pid=%(p)s status=%(s)s %(r)s"
#: gunicorn >= 25.1 runs a control socket server; this test does not use it (and stops faster).
_NO_CONTROL_SOCKET = ["--no-control-socket"] if "control_socket_disable" in Config().settings else []


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report redirects instead of following them, so a lost session shows as a 302 to /sign-in."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Browser:
    """A cookie-keeping HTTP client on the standard library."""

    def __init__(self, base: str):
        self.base = base
        self.cookies = http.cookiejar.CookieJar()  # thread-safe
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies),
                                                  _NoRedirect())

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, str]:
        """(status, Location header, body) of one request."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, data=body, timeout=10) as response:
                return response.status, "", response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location", ""), error.read().decode()

    def csrf_token(self, path: str) -> str:
        status, _, html = self.request(path)
        assert status == 200, f"GET {path} answered {status}"
        match = CSRF_RE.search(html)
        assert match, f"no csrf_token on {path}"
        return match.group(1)


def _start_gunicorn(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": PG_URL,
        "LMS_SECRET_KEY": "production-test-secret",
        "LMS_INSTANCE_PATH": str(tmp_path / "instance"),
        "LMS_PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        # gunicorn >= 25.1 opens a control socket, by default one per user; keep this one apart.
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:0",
             "--access-logfile", "-", "--access-logformat", ACCESS_FORMAT, *_NO_CONTROL_SOCKET,
             "app:app"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def _wait_until_serving(process: subprocess.Popen, log: Path) -> str:
    """The base URL once gunicorn listens (port 0 lets the OS pick a free one) and answers."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    base = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        if base is None:
            match = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.read_text())
            base = match and match.group(1)
        if base:
            try:
                with urllib.request.urlopen(base + "/sign-in", timeout=2) as response:
                    if response.status == 200:
                        return base
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not answer within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    """Graceful shutdown (SIGTERM, as in production); kill the process group if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def test_gunicorn_workers_share_sessions_through_cookies_and_postgres(
        app, make_member, open_cycle, tmp_path):
    officer = make_member(first="Dana", last="Okafor")
    open_cycle()

    process, log = _start_gunicorn(tmp_path)
    try:
        base = _wait_until_serving(process, log)
        browser = Browser(base)

        token = browser.csrf_token("/sign-in")
        status, location, _ = browser.request(
            "/sign-in", {"badge": officer.badge, "password": PASSWORD, "csrf_token": token})
        assert status == 302 and location.endswith("/training/"), (status, location)

        # Concurrent requests, so that while one worker is busy the other must answer.
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda _: browser.request("/training/"), range(20)))
        for status, location, html in results:
            assert status == 200, f"{status} → {location}: the session was not recognised"
            assert f"Dana Okafor · badge {officer.badge}" in html and "16.3 Social Media" in html

        # A form rendered by one worker is accepted by whichever worker gets the POST.
        token = browser.csrf_token("/verify")
        status, location, _ = browser.request("/sign-out", {"csrf_token": token})
        assert status == 302 and location.endswith("/sign-in")
        status, location, _ = browser.request("/training/")
        assert status == 302 and "/sign-in" in location
    except AssertionError as error:
        _stop(process)
        raise AssertionError(f"{error}\n--- gunicorn's log ---\n{log.read_text()}") from None
    finally:
        _stop(process)

    output = log.read_text()
    assert process.returncode == 0, output
    pids = set(re.findall(r"access pid=<(\d+)> status=200 GET /training/ ", output))
    assert len(pids) == 2, f"expected both workers to serve /training/, got {pids}:\n{output}"
    assert "Traceback" not in output, output
