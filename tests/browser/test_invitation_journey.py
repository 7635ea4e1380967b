"""The invitation flow in the browser, from import to first sign-in: the administrator imports a
new member and ticks the invitation box; the worker that ``python app.py`` starts writes the e-mail
to the outbox (instance/outbox); the member opens the link, chooses a password and signs in."""
from __future__ import annotations

import re
import time
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.support import sign_in

HEADER = "badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role"
NEW = "3201,Iris,Vance,iris.vance@example.org,Officer,Patrol North,Day,1003,2025-01-06,active,officer"
LINK = re.compile(r"(https?://\S+/invitation/[A-Za-z0-9_-]+)")
PASSWORD = "copper meadow lantern ninety"


def _invitation_link(outbox: Path, address: str, timeout: float = 60) -> str:
    """The link in the invitation e-mail to ``address``, once the worker has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = message_from_bytes(path.read_bytes(), policy=email_policy.default)
            if str(message["To"]) == address:
                return LINK.search(message.get_content()).group(1)
        time.sleep(0.25)
    raise AssertionError(f"no invitation to {address} in {outbox} within {timeout} s")


def test_invited_member_sets_a_password_and_signs_in(page, axe, live_server, tmp_path):
    """Journey: import with invitations, the Invitations page, the e-mailed link, the password,
    the first sign-in; the link does not work twice."""
    axe.watch(page)
    page.goto("/sign-in")
    page.get_by_label("Badge").fill("3201")
    page.get_by_label("Password").fill("anything at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Badge number or password is not right.")  # not yet imported
    axe.check(page)

    sign_in(page, "1005")
    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    axe.check(page)
    page.goto("/admin/personnel/import")
    csv = tmp_path / "new.csv"
    csv.write_text(f"{HEADER}\n{NEW}\n", encoding="utf-8")
    page.get_by_label("Personnel file (CSV)").set_input_files(csv)
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", level=1, name=re.compile("Preview"))).to_be_visible()
    page.get_by_label(re.compile("Invite new members by e-mail")).check()
    axe.check(page)
    page.get_by_role("button", name="Apply these changes").click()
    expect(page.get_by_text(re.compile(r"Invitations sent to 1 member\(s\)"))).to_be_visible()
    axe.check(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Invitations").click()
    row = page.locator("tr", has_text="Vance, Iris")
    expect(row).to_contain_text("open until")
    axe.check(page)
    page.get_by_role("button", name="Sign out").click()

    # Before setting a password the member is told to use the invitation.
    page.get_by_label("Badge").fill("3201")
    page.get_by_label("Password").fill("anything at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("This account has no password yet; use the invitation e-mail")

    link = _invitation_link(live_server.instance / "outbox", "iris.vance@example.org")
    assert link.startswith(live_server.url + "/invitation/")
    page.goto(link)
    expect(page.get_by_role("heading", level=1, name="Set your password")).to_be_visible()
    axe.check(page)
    page.get_by_label("Choose a password").fill("password1234")
    page.get_by_label("The same password again").fill("password1234")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("alert")).to_contain_text("too common")
    axe.check(page)
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()
    axe.check(page)

    sign_in(page, "3201", PASSWORD)
    expect(page.get_by_role("link", name="My training")).to_be_visible()
    axe.check(page)

    page.goto(link)
    expect(page.get_by_text("This invitation link was already used.")).to_be_visible()
    axe.check(page)
