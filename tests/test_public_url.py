"""LMS_PUBLIC_URL: the absolute address receipts and e-mails link to, required when serving anywhere
but on this machine's own loopback interface."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lms import create_app
from lms.config import PROJECT_ROOT
from lms.services.links import PublicUrlError, check_public_url, is_loopback, local_url, public_url, verify_url
from tests.conftest import TEST_CONFIG


def test_links_are_absolute_on_the_configured_address():
    config = {"PUBLIC_URL": "https://rollcall.elgin.example/training/"}
    assert public_url(config, "/verify") == "https://rollcall.elgin.example/training/verify"
    assert verify_url(config, "K7QM-3XPA-9RTV") == "https://rollcall.elgin.example/training/verify?code=K7QM-3XPA-9RTV"
    assert verify_url({}, None) == "http://127.0.0.1:5000/verify"  # the local demo, unconfigured


@pytest.mark.parametrize("value", ["rollcall.elgin.example", "ftp://rollcall.elgin.example", "https://",
                                   "https://rollcall.elgin.example/?x=1", "https://rollcall.elgin.example/#top"])
def test_a_malformed_public_url_is_refused_at_start(value, tmp_path):
    with pytest.raises(PublicUrlError, match="LMS_PUBLIC_URL"):
        check_public_url(value)
    with pytest.raises(PublicUrlError, match="LMS_PUBLIC_URL"):
        create_app({**TEST_CONFIG, "PUBLIC_URL": value, "INSTANCE_PATH": str(tmp_path)})


@given(st.ip_addresses())
def test_only_loopback_addresses_count_as_this_machine(address):
    assert is_loopback(str(address)) == address.is_loopback
    assert is_loopback(f"[{address}]") == address.is_loopback


@pytest.mark.parametrize("host, expected", [("localhost", True), ("LOCALHOST", True), ("app.localhost", True),
                                            ("0.0.0.0", False), ("rollcall.elgin.example", False), ("", False)])
def test_loopback_names(host, expected):
    assert is_loopback(host) is expected


def test_local_url_brackets_ipv6():
    assert local_url("::1", 8080) == "http://[::1]:8080"
    assert local_url("127.0.0.1", 5000) == "http://127.0.0.1:5000"


def test_a_server_reached_by_another_name_needs_the_public_url(database_template, tmp_path):
    """Outside testing and debugging, without LMS_PUBLIC_URL only requests to this machine itself
    are served; the others get a page naming the setting, not a receipt with a wrong link."""
    config = {**TEST_CONFIG, "TESTING": False, "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
              "INSTANCE_PATH": str(tmp_path)}
    client = create_app(config).test_client()
    refused = client.get("/verify", base_url="http://rollcall.elgin.example")
    assert refused.status_code == 503
    assert "LMS_PUBLIC_URL" in refused.get_data(as_text=True)
    assert client.get("/verify", base_url="http://127.0.0.1:5000").status_code == 200
    assert client.get("/verify", base_url="http://[::1]:5000").status_code == 200

    configured = create_app({**config, "PUBLIC_URL": "https://rollcall.elgin.example"}).test_client()
    assert configured.get("/verify", base_url="https://rollcall.elgin.example").status_code == 200


def test_python_app_py_on_a_public_interface_needs_the_public_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LMS_PUBLIC_URL"}
    env.update(LMS_INSTANCE_PATH=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'rollcall.sqlite3'}")
    result = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0", "--port", "8999"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Set LMS_PUBLIC_URL" in result.stderr and "0.0.0.0" in result.stderr
    assert not (tmp_path / "rollcall.sqlite3").exists()  # refused before touching anything
