"""Background jobs in the browser, on ``python app.py`` with the worker it starts: a coordinator
sets a reminder schedule and queues reminders, the worker writes them to the outbox, and the
administrator reads the Background jobs page. axe-core checks every page."""
from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.browser.support import annual_cycle_path, sign_in


def test_reminders_are_queued_and_the_worker_beside_the_server_sends_them(page, axe, live_server):
    axe.watch(page)
    sign_in(page, "1003", axe=axe)
    axe.check(page)
    page.goto(f"{annual_cycle_path(page, axe)}/reminders")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reminders")
    axe.check(page)

    # A bad schedule is refused beside its field; a good one is saved.
    page.get_by_label("Days before the due date").fill("14, soon")
    page.get_by_role("button", name="Save the schedule").click()
    expect(page.get_by_role("alert")).to_contain_text("“soon” is not a number of days")
    axe.check(page)
    page.get_by_label("Days before the due date").fill("30, 7, 1")
    page.get_by_label("Send the member's supervisor a copy").check()
    page.get_by_role("button", name="Save the schedule").click()
    expect(page.get_by_text("Reminder schedule saved.")).to_be_visible()
    expect(page.get_by_text("30, 7, 1 day(s) before the due date")).to_be_visible()
    axe.check(page)

    summary = page.locator(".reminder-summary li").first.inner_text()
    to_remind = int(summary.split()[0])
    assert to_remind > 0
    page.get_by_label("I have checked the list above").check()
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text(f"Queued {to_remind} reminder")).to_be_visible()
    axe.check(page)

    # The worker python app.py started writes them to the outbox (the demo's transport).
    outbox = live_server.instance / "outbox"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(outbox.glob("*.eml"))) < to_remind:
        time.sleep(0.2)
    assert len(list(outbox.glob("*.eml"))) == to_remind

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "1005", axe=axe)
    axe.check(page)
    page.get_by_role("link", name="Background jobs").click()
    expect(page.get_by_role("heading", level=1, name="Background jobs")).to_be_visible()
    expect(page.get_by_text("No failed jobs.")).to_be_visible()
    expect(page.get_by_text("running since")).to_be_visible()
    axe.check(page)
