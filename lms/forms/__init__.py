"""WTForms: the shape of input only; the rules live in lms.services."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class SignInForm(FlaskForm):
    badge = StringField("Badge number", validators=[DataRequired("Enter your badge number."),
                                                    Length(max=20)])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."),
                                                     Length(max=256)])


class SignatureForm(FlaskForm):
    full_name = StringField("Your full name", validators=[
        DataRequired("Type your full name."), Length(max=200)])
    password = PasswordField("Your current password", validators=[
        DataRequired("Re-enter your password to sign."), Length(max=256)])
    text_sha256 = HiddenField(validators=[DataRequired()])


class SsoSignatureForm(FlaskForm):
    """Signing under single sign-on: the typed name here, the proof at the identity provider."""
    full_name = StringField("Your full name", validators=[
        DataRequired("Type your full name."), Length(max=200)])
    text_sha256 = HiddenField(validators=[DataRequired()])


class ActionForm(FlaskForm):
    """A form with no fields: a CSRF-protected button (mark read, start quiz, submit answers)."""
