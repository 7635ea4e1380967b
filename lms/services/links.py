"""Absolute links to this install, for receipts and e-mails, from ``PUBLIC_URL``.

A receipt is signed and kept for years, and an e-mail is read far from the server: both need the
address members and HR reach the install at, not the address a worker happens to listen on.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

#: Used when PUBLIC_URL is unset: only a demo on the loopback interface may run without it.
LOCAL_URL = "http://127.0.0.1:5000"


class PublicUrlError(ValueError):
    """PUBLIC_URL is malformed, or missing where it is required."""


def check_public_url(value: str) -> str:
    """``value`` without a trailing slash, or PublicUrlError naming what is wrong with it."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublicUrlError(f"LMS_PUBLIC_URL must be an http:// or https:// address with a host name, "
                             f"like https://rollcall.example.org; got {value!r}.")
    if parts.query or parts.fragment:
        raise PublicUrlError(f"LMS_PUBLIC_URL must not carry a query or fragment; got {value!r}.")
    return value.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 with or without brackets) is this machine only."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_url(host: str, port: int) -> str:
    """The address ``python app.py --host HOST --port PORT`` serves at."""
    host = host.strip("[]")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def public_url(config: Mapping[str, Any], path: str = "/") -> str:
    """The absolute URL of ``path`` (with its query, if any) on this install.

    Reads ``PUBLIC_URL``; when it is unset (a demo on the loopback interface, tests, the command
    line on a developer's machine) the local demo address.
    """
    base = check_public_url(config.get("PUBLIC_URL") or LOCAL_URL)
    return base + ("/" + path.lstrip("/") if path else "")


def verify_url(config: Mapping[str, Any], code: str | None = None) -> str:
    """The public verification page, with a receipt's code filled in when given."""
    url = public_url(config, "/verify")
    return f"{url}?code={quote(code)}" if code else url
