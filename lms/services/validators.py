"""One check per kind of value, shared by the web forms, the personnel import and the CLI, so a
preview or a dry run refuses exactly what the real run would.

Each ``*_problem`` function returns a sentence naming what is wrong (to be prefixed with where the
value came from: a form field, or a file's line and column) or None when the value is acceptable.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date
from email.errors import HeaderParseError
from email.headerregistry import Address

#: Ids in URLs and forms fit a signed 32-bit column, the narrowest integer any supported database
#: uses for primary keys; a larger number cannot name a row, so it is "not found", not an error.
MAX_ID = 2**31 - 1
#: Dates a person could mean: a hire date, a due date, an audit filter. Far-off years overflow
#: date arithmetic (a day added to 9999-12-31) and are always typing mistakes.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)

_ASCII_DIGITS = re.compile(r"[0-9]+")
# Plain addresses only: one local part and one domain, no display name, no list, no comments.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")


def ascii_int(text: object, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """``text`` as a whole number if it is made of ASCII digits 0-9 only and lies in [low, high].

    ``str.isdigit`` accepts "²" and other characters ``int`` refuses, and ``int`` accepts digits
    of other scripts and surrounding blanks; neither is a number a form of ours sends.
    """
    if not isinstance(text, str) or not _ASCII_DIGITS.fullmatch(text) or len(text) > 18:
        return None
    value = int(text)
    return value if low <= value <= high else None


def control_character(text: str) -> str | None:
    """The first control or otherwise invisible format character in ``text`` (tab allowed), if
    any. NUL is refused by PostgreSQL outright; CR and LF in a name or e-mail turn into header
    injection in mail and broken rows in CSV."""
    for char in text:
        if char == "\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cs") or char in "\u2028\u2029":
            return char
    return None


def text_problem(text: str, *, max_length: int | None = None, multiline: bool = False) -> str | None:
    """A free-text value: no control characters (line breaks only when ``multiline``), within
    ``max_length``."""
    check = text.replace("\r\n", "").replace("\n", "") if multiline else text
    char = control_character(check)
    if char is not None:
        return f"contains a control character ({_describe(char)}); remove it"
    if max_length is not None and len(text) > max_length:
        return f"longer than {max_length} characters"
    return None


def email_problem(text: str) -> str | None:
    """One plain e-mail address (``name@example.org``): no display name, no second address, no
    control characters."""
    if control_character(text) is not None:
        return f"{_shown(text)} contains a control character, so it is not an e-mail address"
    if any(sep in text for sep in (",", ";", " ")):
        return f"{_shown(text)} is not one e-mail address (one address per member)"
    if len(text) > 254 or not _EMAIL.fullmatch(text):
        return f"{_shown(text)} is not an e-mail address"
    try:
        Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        return f"{_shown(text)} is not an e-mail address"
    return None


def date_problem(value: date) -> str | None:
    """A date within the years a department's records can mean."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        return (f"{value.isoformat()} is outside the years {EARLIEST_DATE.year}–{LATEST_DATE.year}; "
                f"check the year")
    return None


def parse_iso_date(text: str) -> date | None:
    """A date written exactly as YYYY-MM-DD that exists (``date.fromisoformat`` also takes
    20260101 and 2026-W01-1), or None."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def _shown(text: str) -> str:
    """A value quoted for a message, its control characters made visible and its length capped."""
    return repr(text[:80] + ("…" if len(text) > 80 else ""))
