"""The built wheel, installed into a fresh virtual environment, serves the app and runs the CLI
outside the checkout (.ci/wheel-smoke). It builds a wheel and a virtual environment, so it runs in
CI only (``CI`` set), or by hand with ``CI=1 python -m pytest -m wheel``."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lms.config import PROJECT_ROOT

pytestmark = [pytest.mark.wheel,
              pytest.mark.skipif(not os.environ.get("CI"), reason="builds and installs the wheel: CI only")]


def test_the_wheel_installs_and_serves_outside_the_checkout():
    result = subprocess.run([str(PROJECT_ROOT / ".ci" / "wheel-smoke")], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PYTHON": sys.executable})

    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("Database is up to date.", "GET /readyz: 200", "GET /sign-in: 200", "GET /static/css/app.css: 200",
                 "wheel smoke test passed"):
        assert line in result.stdout, result.stdout
