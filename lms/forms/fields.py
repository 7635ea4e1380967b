"""Fields shared by every audience's forms."""
from __future__ import annotations

from wtforms import IntegerField
from wtforms.validators import Regexp

from lms.services.validators import ascii_int

#: What a member reads when a number holds anything but the digits 0-9.
DIGITS_MESSAGE = "Enter a whole number in the digits 0-9 (at most 9 of them)."


class WholeNumberField(IntegerField):
    """A whole number written in ASCII digits (``int`` also takes "٣" and other scripts' digits),
    at most 9 of them: no count or year here is larger, and a longer one overflows the database.
    Every number a form asks for is one of these."""

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0].strip() and ascii_int(valuelist[0].strip(), low=0, high=999_999_999) is None:
            self.data = None
            raise ValueError(DIGITS_MESSAGE)
        super().process_formdata(valuelist)


def ascii_code(message: str) -> Regexp:
    """A code typed from an app or a sheet: ASCII letters and digits, spaces and dashes only."""
    return Regexp(r"\A[A-Za-z0-9 \-]*\Z", message=message)
