"""The second factor in the browser, on a server that requires it for administrators and HR
(LMS_MFA_REQUIRED_ROLES=admin,hr, the production default): enrolment of an authenticator app
right after the password, then a sign-in with a code. Codes are computed with pyotp, as the
member's phone would."""
from __future__ import annotations

import shutil
import time

import pyotp
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, _open_page, start_server
from tests.browser.support import sign_in
from tests.conftest import wrong_code_for


@pytest.fixture
def mfa_server(seeded_instance, tmp_path):
    """A fresh copy of the demo instance, served with the second factor required for admin and HR."""
    instance = tmp_path / "instance"
    shutil.copytree(seeded_instance, instance)
    server = start_server(instance, tmp_path / "server.log", env={"LMS_MFA_REQUIRED_ROLES": "admin,hr"})
    yield server
    server.stop()


@pytest.fixture
def mfa_page(request, browser, mfa_server, tmp_path):
    yield from _open_page(request, browser, mfa_server, tmp_path, viewport=DESKTOP)


@pytest.fixture
def passkey_page(request, browser, seeded_instance, tmp_path):
    """A page on a server reached as http://localhost (a passkey's relying party must be a domain),
    with Chromium's virtual authenticator standing in for the member's phone or laptop."""
    instance = tmp_path / "instance"
    shutil.copytree(seeded_instance, instance)
    server = start_server(instance, tmp_path / "server.log", env={"LMS_MFA_REQUIRED_ROLES": "admin,hr"},
                          host_name="localhost")
    try:
        for page in _open_page(request, browser, server, tmp_path, viewport=DESKTOP):
            cdp = page.context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True}})
            yield page, cdp, added["authenticatorId"]
    finally:
        server.stop()


def test_administrator_enrols_an_authenticator_app_then_signs_in_with_a_code(mfa_page, axe):
    """Journey: the administrator signs in with the password, is kept on the enrolment page,
    scans (here: reads) the key, confirms a code, keeps the recovery codes, and reaches the
    administration; signing in again asks for a code after the password."""
    page = mfa_page
    axe.watch(page)
    sign_in(page, "1005", axe=axe)
    expect(page.get_by_role("heading", level=1, name="Second factor")).to_be_visible()
    expect(page.get_by_text("Your role requires a second factor")).to_be_visible()
    axe.check(page)
    page.goto("/admin/")  # nothing else is reachable before enrolling
    expect(page.get_by_role("heading", level=1, name="Second factor")).to_be_visible()

    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name="QR code to add Roll Call to an authenticator app")).to_be_visible()
    axe.check(page)
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.get_by_label("Code").fill(wrong_code_for(totp))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    axe.check(page)
    page.get_by_label("Code").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1, name="Your recovery codes")).to_be_visible()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    recovery = page.locator("#recovery-codes li").first.inner_text()
    axe.check(page)
    page.get_by_role("link", name="Continue").click()
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    axe.check(page)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "1005")
    expect(page.get_by_role("heading", level=1, name="Second step of sign-in")).to_be_visible()
    axe.check(page)
    page.get_by_label("Code").fill(totp.at(time.time() + 30))  # the next step's code: the last one was used
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()

    # Without the phone: a recovery code, once.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "1005")
    page.get_by_label("Code").fill(recovery)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    expect(page.get_by_text("You used a recovery code; 9 left.")).to_be_visible()
    axe.check(page)


def test_an_officer_signs_in_with_a_password_alone(mfa_page, axe):
    """Officers are not required to enrol: the password leads straight to their training."""
    page = mfa_page
    axe.watch(page)
    sign_in(page, "1001", axe=axe)
    expect(page.get_by_role("heading", level=1, name="Second factor")).not_to_be_visible()
    expect(page.get_by_role("link", name="My training")).to_be_visible()
    axe.check(page)


def test_hr_enrols_a_passkey_then_signs_in_with_it(passkey_page, axe):
    """Journey: HR signs in with the password, adds a passkey from the enrolment page (the virtual
    authenticator answers the browser's prompt), makes recovery codes, and signs in again with the
    password and then the passkey."""
    page, cdp, authenticator = passkey_page
    axe.watch(page)
    sign_in(page, "1004", axe=axe)
    expect(page.get_by_text("Your role requires a second factor")).to_be_visible()
    axe.check(page)
    page.get_by_label("Name for the new passkey").fill("Records office PC")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Passkey added.")).to_be_visible()
    expect(page.get_by_text("Records office PC, added")).to_be_visible()
    axe.check(page)
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1
    page.get_by_role("button", name="Make new recovery codes").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    axe.check(page)
    page.get_by_role("link", name="Continue").click()
    expect(page.get_by_role("heading", level=1, name="Records")).to_be_visible()
    axe.check(page)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "1004")
    expect(page.get_by_role("heading", level=1, name="Second step of sign-in")).to_be_visible()
    axe.check(page)
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("heading", level=1, name="Records")).to_be_visible()
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert credentials[0]["signCount"] >= 2  # registration and sign-in both signed
