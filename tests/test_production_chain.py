"""The record chain under production conditions: gunicorn with two worker processes on PostgreSQL,
members signing at the same moment. The chain head must serialise them across processes."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.cookiejar import CookieJar
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, OpenerDirector, build_opener

import pytest
from sqlalchemy import select

from lms.config import PROJECT_ROOT
from lms.db import utcnow
from lms.models import Acknowledgment, ChainHead
from lms.services import quiz as quiz_service
from lms.services.progress import mark_lesson_read
from tests.conftest import CSRF_RE, PASSWORD, PG_URL
from tests.helpers import assignment_of

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="needs PostgreSQL: set LMS_TEST_DATABASE_URL (gunicorn workers share nothing but "
                       "the database, and SQLite is not how the app scales out)")

SIGNERS = ["Alex Rivera", "Jo Kim", "Sam Ortiz", "Dana Whitfield", "Marcus Bell", "Renee Okafor",
           "Paul Lindqvist", "Carmen Reyes"]
TEXT_SHA_RE = re.compile(r'<input[^>]*name="text_sha256"[^>]*>')
# A gunicorn config that holds each signer a moment after it has read the chain head, so two
# workers overlap there every time: without the lock, they would write the same sequence.
GUNICORN_CONFIG = """
import time


def post_worker_init(worker):
    from lms.services import signing

    lock_chain_head = signing.lock_chain_head

    def lock_then_linger(session):
        head = lock_chain_head(session)
        time.sleep(0.2)
        return head

    signing.lock_chain_head = lock_then_linger
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(db, member) -> int:
    """Read every lesson and pass the quiz through the services; the assignment id."""
    assignment = assignment_of(db, member)
    now = utcnow()
    for lesson in assignment.policy_version.lessons:
        if not lesson.retired:
            mark_lesson_read(db, assignment, lesson, now)
    attempt = quiz_service.start_attempt(db, assignment, now)
    answers = {item.position: [o.id for o in item.question.options if o.correct] for item in attempt.items}
    assert quiz_service.submit_attempt(db, attempt, answers, now).passed
    db.commit()
    return assignment.id


def _form_value(html: str, name: str) -> str:
    pattern = CSRF_RE if name == "csrf_token" else TEXT_SHA_RE
    match = pattern.search(html)
    assert match, f"no {name} on the page"
    if name == "csrf_token":
        return match.group(1)
    return re.search(r'value="([0-9a-f]{64})"', match.group(0)).group(1)


def _get(opener: OpenerDirector, url: str) -> str:
    with opener.open(url, timeout=30) as response:
        return response.read().decode()


def _post(opener: OpenerDirector, url: str, data: dict) -> tuple[int, str]:
    """POST a form, following the redirect as a browser does; the final status and URL."""
    try:
        with opener.open(url, data=urlencode(data).encode(), timeout=60) as response:
            return response.status, response.url
    except HTTPError as exc:
        return exc.code, exc.url


@pytest.fixture
def gunicorn(app, tmp_path):
    """``gunicorn -w 2 app:app`` on the freshly emptied test database and a free port, each signer
    lingering a moment inside the chain lock; its base URL and log. Always stopped."""
    port = _free_port()
    instance = tmp_path / "gunicorn-instance"
    instance.mkdir()
    log_path = tmp_path / "gunicorn.log"
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(GUNICORN_CONFIG)
    env = {**os.environ, "DATABASE_URL": PG_URL, "LMS_SECRET_KEY": "production-chain-test",
           "LMS_INSTANCE_PATH": str(instance), "LMS_PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
           # gunicorn's control socket lives under XDG_RUNTIME_DIR; one per test run, not shared.
           "XDG_RUNTIME_DIR": str(tmp_path)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "60",
             "-c", str(config), "app:app"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with build_opener().open(f"{base}/sign-in", timeout=2) as response:
                    if response.status == 200:
                        break
            except (URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not answer within 30 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_simultaneous_signatures_on_two_workers_keep_the_chain(db, runner, make_member, open_cycle, gunicorn):
    base, log_path = gunicorn
    members = [make_member(first=name.split()[0], last=name.split()[1]) for name in SIGNERS]
    open_cycle()
    people = [(member.badge, member.full_name) for member in members]
    assignment_ids = [_ready(db, member) for member in members]
    db.rollback()  # hold nothing open while the workers write

    # Each member in their own browser: sign in, open the signing page.
    forms = []
    for (badge, full_name), assignment_id in zip(people, assignment_ids):
        opener = build_opener(HTTPCookieProcessor(CookieJar()))
        token = _form_value(_get(opener, f"{base}/sign-in"), "csrf_token")
        status, url = _post(opener, f"{base}/sign-in", {"badge": badge, "password": PASSWORD, "csrf_token": token})
        assert status == 200 and url.endswith("/training/"), (status, url)
        page = _get(opener, f"{base}/training/{assignment_id}/sign")
        forms.append((opener, assignment_id, {
            "full_name": full_name, "password": PASSWORD,
            "csrf_token": _form_value(page, "csrf_token"), "text_sha256": _form_value(page, "text_sha256")}))

    # Everyone presses "Sign" at once.
    barrier = threading.Barrier(len(forms))
    outcomes: dict[int, tuple[int, str] | str] = {}

    def press_sign(opener, assignment_id, data):
        try:
            barrier.wait(timeout=30)
            outcomes[assignment_id] = _post(opener, f"{base}/training/{assignment_id}/sign", data)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes[assignment_id] = repr(exc)

    threads = [threading.Thread(target=press_sign, args=form) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    for assignment_id in assignment_ids:
        status, url = outcomes[assignment_id]
        assert status == 200 and url.endswith(f"/training/{assignment_id}/signed"), outcomes[assignment_id]

    log = log_path.read_text()
    assert log.count("Booting worker with pid") >= 2, log
    acks = db.scalars(select(Acknowledgment).order_by(Acknowledgment.sequence)).all()
    assert sorted(a.assignment_id for a in acks) == sorted(assignment_ids)
    assert [a.sequence for a in acks] == list(range(1, len(SIGNERS) + 1))
    assert all(a.prev_hash == b.record_hash for b, a in zip(acks, acks[1:]))
    head = db.get(ChainHead, 1)
    assert (head.sequence, head.last_hash) == (len(SIGNERS), acks[-1].record_hash)
    result = runner.invoke(args=["lms", "verify"])
    assert result.exit_code == 0, result.output
    assert f"Chain verified: {len(SIGNERS)} records" in result.output
