"""HR's forms: the shape of input only; which policies, versions and units exist is the service's
to check (the view passes the choices in, so the forms never query the database)."""
import re
from datetime import date

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from lms.services.validators import date_problem

_DATE_MESSAGE = "Enter a date as YYYY-MM-DD, for example 2026-03-31."


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _is_date_input_value(text: str) -> bool:
    """Whether a date input can show ``text``: YYYY-MM-DD naming a real day."""
    if not _ISO_DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


class IsoDateField(DateField):
    """A YYYY-MM-DD date (what a browser's date input sends) with a message that shows the form."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format="%Y-%m-%d", **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_DATE_MESSAGE) from exc
        problem = date_problem(self.data) if self.data else None
        if problem:
            self.data = None
            raise ValueError(f"{problem[:1].upper()}{problem[1:]}.")

    def __call__(self, **kwargs):
        """A date picker, except when what was submitted is not a date at all: a date input shows
        such a value as blank (and HTML forbids it there), so it comes back in a text box, as
        typed, beside its error."""
        raw = " ".join(self.raw_data or ()).strip()
        if raw and not _is_date_input_value(raw):
            kwargs["type"] = "text"
        return super().__call__(**kwargs)


def _optional_date(value) -> date | None:
    """A select's value as a date; the empty value (any) as None."""
    if value is None or isinstance(value, date):
        return value
    value = str(value).strip()
    return date.fromisoformat(value) if value else None


class DateSelectField(SelectField):
    """A select whose values are YYYY-MM-DD dates; the empty value means any."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, coerce=_optional_date, validate_choice=False, **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(_DATE_MESSAGE) from exc


class MemberSearchForm(FlaskForm):
    """A GET search: nothing changes, so no CSRF token in the URL."""

    class Meta:
        csrf = False

    q = StringField("Badge number or name", validators=[DataRequired("Enter a badge number or a name."),
                                                         Length(max=100)])


class ExportForm(FlaskForm):
    # Selects that accept any value: an unknown one is reported by the service in the same words
    # as the command line's, beside the field.
    policy = SelectField("Policy", validate_choice=False)
    version = DateSelectField("Policy version (effective date)")
    unit = SelectField("Member's current unit", validate_choice=False)
    since = IsoDateField("Signed on or after", validators=[Optional()])
    until = IsoDateField("Signed on or before", validators=[Optional()])


class AsOfForm(FlaskForm):
    """A GET question about a date: no CSRF token in the URL."""

    class Meta:
        csrf = False

    on = IsoDateField("Date", validators=[DataRequired(_DATE_MESSAGE)])


class VoidForm(FlaskForm):
    # The minimum length is the service's rule (records.MIN_VOID_REASON); it reports it.
    reason = TextAreaField("Reason for voiding", validators=[
        DataRequired("Say why this acknowledgment no longer counts."),
        Length(max=2000, message="Keep the reason under 2,000 characters.")])
    password = PasswordField("Your current password", validators=[
        DataRequired("Re-enter your password to void a record."), Length(max=256)])


class ReceiptCheckForm(FlaskForm):
    """A receipt PDF someone handed in, to match against the records."""

    file = FileField("Receipt file (PDF)", validators=[FileRequired("Choose the receipt PDF to check.")])
