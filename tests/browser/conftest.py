"""Browser fixtures: Roll Call served by ``python app.py`` in its own process on a free loopback
port, and Debian's Chromium driven by Playwright.

The demo instance is seeded once per run (the real first-run path: migrations, content, demo
personnel); each test then serves a fresh copy of it, so journeys never see each other's work.
Without Chromium the tests skip, except in CI, where a missing browser is a failure.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lms.config import PROJECT_ROOT
from tests.browser.support import AxeAudit, Screenshots

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(item.fspath).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(instance: Path) -> dict[str, str]:
    """The environment of a user's own machine: the instance folder and nothing of the test run's
    database settings, so the server uses its embedded SQLite database."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "LMS_TEST_DATABASE_URL") and not k.startswith("LMS_")}
    env["LMS_INSTANCE_PATH"] = str(instance)
    # The demo's administrator and HR sign in with a password alone in the journeys; the second
    # factor's own journey (test_second_factor_journey.py) starts a server that requires it.
    env["LMS_MFA_REQUIRED_ROLES"] = ""
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class LiveServer:
    """A running ``python app.py`` and where to reach it."""

    url: str
    instance: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server the tests started; kill it if it does not stop within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_server(instance: Path, log: Path, timeout: float = 90, *, port: int | None = None,
                 settings: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 host_name: str = "127.0.0.1") -> LiveServer:
    """Start ``python app.py`` on a free port (or ``port``) and wait until it answers; ``settings``
    (or ``env``) are extra environment variables (``LMS_*``), as an administrator would set them.
    E-mails link to the server itself (LMS_PUBLIC_URL) under ``host_name`` ("localhost" for
    passkeys: WebAuthn refuses IP addresses as relying parties)."""
    port = port or free_port()
    handle = log.open("wb")
    environment = {**_server_env(instance), "LMS_PUBLIC_URL": f"http://{host_name}:{port}",
                   **(settings or {}), **(env or {})}
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=PROJECT_ROOT,
                               env=environment, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    server = LiveServer(f"http://{host_name}:{port}", instance, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"python app.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + "/sign-in", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"python app.py did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; a skip with the reason when it is missing, a failure in CI."""
    if not CHROMIUM.exists():
        message = (f"{CHROMIUM} is missing: install Debian's chromium package "
                   "(apt-get install chromium) to run the browser tests")
        if os.environ.get("CI"):
            pytest.fail(message + " — CI must run them")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def seeded_instance(tmp_path_factory, chromium_path) -> Path:
    """An instance folder after ``python app.py``'s first run: schema, content, demo data."""
    instance = tmp_path_factory.mktemp("seeded") / "instance"
    server = start_server(instance, instance.parent / "first-run.log")
    server.stop()
    return instance


@pytest.fixture
def live_server(seeded_instance, tmp_path) -> Iterator[LiveServer]:
    """A fresh copy of the demo instance, served by ``python app.py``."""
    instance = tmp_path / "instance"
    shutil.copytree(seeded_instance, instance)
    server = start_server(instance, tmp_path / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Chromium, for one test module. Playwright's sync API keeps an asyncio loop running in this
    thread while it is open; closing it after each module lets the tests that follow call code
    that runs its own loop (pyHanko signs and validates receipts with ``asyncio.run``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _leave_evidence(request, page, tmp_path) -> None:
    """After a failed test: where the browser was, a screenshot and the server's log, so a failure
    in CI can be understood from its output alone."""
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    shot = tmp_path / "failure.png"
    try:
        page.screenshot(path=str(shot), full_page=True)
        where = page.url
    except Exception as exc:  # the page may be what broke
        where = f"(no screenshot: {exc})"
    log = tmp_path / "server.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    report.sections.append(("browser", f"page: {where}\nscreenshot: {shot}\nserver log tail:\n{tail}"))


def _open_page(request, browser, live_server, tmp_path, **options):
    """A page in a fresh browser context on the live server; evidence is kept if the test fails."""
    context = browser.new_context(base_url=live_server.url, accept_downloads=True, locale="en-US",
                                  timezone_id="America/Chicago", **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    _leave_evidence(request, page, tmp_path)
    context.close()


@pytest.fixture
def page(request, browser, live_server, tmp_path):
    """A desktop-sized page (1280×800) on a fresh server."""
    yield from _open_page(request, browser, live_server, tmp_path, viewport=DESKTOP)


@pytest.fixture
def phone_page(request, browser, live_server, tmp_path):
    """A phone-sized page (390×844, touch) on a fresh server."""
    yield from _open_page(request, browser, live_server, tmp_path, viewport=PHONE, is_mobile=True,
                          has_touch=True, device_scale_factor=2)


@pytest.fixture
def axe(request) -> Iterator[AxeAudit]:
    """Runs axe-core on pages; at the end of the test, every page the test visited must have been
    checked, so a journey cannot step past a page unaudited."""
    audit = AxeAudit()
    yield audit
    if not hasattr(request.node, "rep_call") or request.node.rep_call.passed:
        audit.assert_every_page_checked()


@pytest.fixture(scope="session")
def screenshots(request) -> Screenshots:
    """Writes screenshots to docs/screenshots/ when the run was started with --screenshots."""
    return Screenshots(PROJECT_ROOT / "docs" / "screenshots", enabled=request.config.getoption("screenshots"))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
