"""deploy/: gunicorn starts from its configuration and serves the package's app; a bad setting
stops it naming the variable; the systemd units verify; the nginx site passes ``nginx -t`` and,
in front of gunicorn with a test certificate, hands the app the client's scheme (LMS_PROXY_COUNT=1)."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lms.config import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(app, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATABASE_URL": app.config["DATABASE_URL"],
            "LMS_SECRET_KEY": "deploy-test-secret", "LMS_INSTANCE_PATH": str(tmp_path / "instance"),
            "LMS_LOG_FORMAT": "json", "WEB_CONCURRENCY": "2", "XDG_RUNTIME_DIR": str(tmp_path),
            "LMS_READYZ_WORKER": "false", **extra}


def _start_gunicorn(app, tmp_path: Path, port: int, **extra: str) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN / "gunicorn"), "--config", str(DEPLOY / "gunicorn.conf.py"),
                                    "--bind", f"127.0.0.1:{port}"],
                                   cwd=tmp_path, env=_env(app, tmp_path, **extra), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def _fetch(url: str, context: ssl.SSLContext | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def _wait_for(url: str, process: subprocess.Popen, log: Path, context=None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()}")
        try:
            if _fetch(url, context)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def gunicorn(app, tmp_path):
    """gunicorn from deploy/gunicorn.conf.py on a free loopback port; (base URL, log file)."""
    port = _free_port()
    process, log = _start_gunicorn(app, tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/healthz", process, log)
        yield base, log
    finally:
        _stop(process)


def test_gunicorn_serves_the_app_from_the_deploy_configuration(gunicorn):
    base, log = gunicorn

    assert _fetch(base + "/healthz")[0] == 200
    status, _, body = _fetch(base + "/readyz")
    assert status == 200 and '"status": "ready"' in body
    status, headers, body = _fetch(base + "/sign-in", headers={"X-Request-ID": "deploy-test-1"})
    assert status == 200 and "Sign in" in body and headers["X-Request-ID"] == "deploy-test-1"
    # The app logs the request itself (JSON lines); gunicorn's access log is off.
    for _ in range(50):
        if '"request_id": "deploy-test-1"' in log.read_text():
            break
        time.sleep(0.1)
    line = next(entry for entry in log.read_text().splitlines() if '"request_id": "deploy-test-1"' in entry)
    assert '"path": "/sign-in"' in line and '"status": 200' in line


def test_a_bad_setting_stops_gunicorn_naming_the_variable(app, tmp_path):
    process, log = _start_gunicorn(app, tmp_path, _free_port(), LMS_LOCKOUT_THRESHOLD="five")
    try:
        process.wait(timeout=STARTUP_TIMEOUT)
    finally:
        _stop(process)

    assert process.returncode != 0
    assert "LMS_LOCKOUT_THRESHOLD: expected a whole number ≥ 1, got 'five'" in log.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path):
    # The units name the install's virtual environment; point them at this Python's so the
    # commands they run exist here.
    for unit in [*DEPLOY.glob("*.service"), *DEPLOY.glob("*.timer")]:
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/rollcall/venv/bin/", f"{BIN}/"))
    units = sorted(str(p) for p in tmp_path.iterdir())
    assert len(units) == 4
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})

    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def _test_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def _nginx_config(tmp_path: Path, http_port: int, https_port: int, upstream_port: int) -> Path:
    """The site as shipped, on loopback ports and a test certificate, in a minimal nginx.conf."""
    cert, key = _test_certificate(tmp_path)
    site = (DEPLOY / "nginx-rollcall.conf").read_text()
    site = re.sub(r"\n\s*listen \[::\]:\d+[^;]*;", "", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
    site = site.replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
    site = site.replace("/etc/ssl/rollcall/fullchain.pem", str(cert)).replace("/etc/ssl/rollcall/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/site.conf;
}}
""")
    return conf


nginx_needed = pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("openssl") is None,
                                  reason="nginx or openssl is not installed (apt-get install nginx-light)")


@nginx_needed
def test_the_nginx_site_passes_nginx_t(tmp_path):
    conf = _nginx_config(tmp_path, _free_port(), _free_port(), 8000)
    result = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


@nginx_needed
def test_nginx_in_front_of_gunicorn_passes_https_and_the_client_to_the_app(app, tmp_path):
    upstream, http_port, https_port = _free_port(), _free_port(), _free_port()
    conf = _nginx_config(tmp_path, http_port, https_port, upstream)
    gunicorn, log = _start_gunicorn(app, tmp_path, upstream, LMS_PROXY_COUNT="1")
    nginx_log = tmp_path / "nginx.out"
    with nginx_log.open("wb") as out:
        nginx = subprocess.Popen(["nginx", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    context = ssl.create_default_context(cafile=str(tmp_path / "fullchain.pem"))
    try:
        _wait_for(f"http://127.0.0.1:{upstream}/healthz", gunicorn, log)
        _wait_for(f"https://127.0.0.1:{https_port}/healthz", nginx, nginx_log, context)

        status, headers, body = _fetch(f"https://127.0.0.1:{https_port}/sign-in", context)
        assert status == 200 and "Sign in" in body
        # The app saw HTTPS through X-Forwarded-Proto: it sends HSTS and a Secure cookie.
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Secure" in headers["Set-Cookie"]
        assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-ID"])  # nginx's $request_id
        # Plain HTTP is sent to HTTPS; the probe is answered.
        with pytest.raises(urllib.error.HTTPError) as redirect:
            urllib.request.build_opener(_NoRedirect).open(f"http://127.0.0.1:{http_port}/sign-in", timeout=10)
        redirect.value.close()
        assert redirect.value.code == 301
        assert redirect.value.headers["Location"] == "https://127.0.0.1/sign-in"
        assert _fetch(f"http://127.0.0.1:{http_port}/healthz")[0] == 200
    finally:
        _stop(nginx)
        _stop(gunicorn)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
