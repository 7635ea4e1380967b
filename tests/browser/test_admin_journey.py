"""The administrator's journey: a personnel CSV with mistakes is refused whole, row by row; the
corrected file is previewed, applied, and its new members can be found."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import sign_in

HEADER = "badge,first_name,last_name,email,rank,unit,shift,supervisor_badge,hire_date,status,role"
ANA = "3101,Ana,Quintero,ana.quintero@example.org,Officer,Patrol North,Day,1003,2024-05-01,active,officer"
BAD_DATE = "3102,Bastian,Okoro,bastian.okoro@example.org,Officer,Patrol North,Day,1003,2024-13-40,active,officer"
UNKNOWN_SUPERVISOR = "3103,Cara,Nyland,cara.nyland@example.org,Detective,Investigations,Day,9999,2023-02-14,active,officer"
GOOD_DATE = BAD_DATE.replace("2024-13-40", "2024-03-04")
KNOWN_SUPERVISOR = UNKNOWN_SUPERVISOR.replace(",9999,", ",3101,")


def _upload(page, path) -> None:
    page.get_by_label("Personnel file (CSV)").set_input_files(path)
    page.get_by_role("button", name="Check the file").click()


def _find_account(page, query: str) -> None:
    page.get_by_label("Badge number or name").fill(query)
    page.get_by_role("button", name="Find").click()


def test_admin_imports_personnel_after_a_refused_file(page, axe, tmp_path):
    """Journey: an administrator uploads a personnel CSV with a bad date on line 3 and an unknown
    supervisor on line 4, reads both problems (nothing applied), then uploads the corrected file,
    checks the preview, applies it and finds a new member among the accounts."""
    axe.watch(page)
    sign_in(page, "1005", axe=axe)

    expect(page.get_by_role("heading", level=1, name="Administration")).to_be_visible()
    axe.check(page)
    page.get_by_role("link", name="Import personnel").click()
    expect(page.get_by_role("heading", level=1, name="Import personnel")).to_be_visible()
    axe.check(page)

    bad = tmp_path / "personnel-bad.csv"
    bad.write_text("\n".join([HEADER, ANA, BAD_DATE, UNKNOWN_SUPERVISOR]) + "\n", encoding="utf-8")
    _upload(page, bad)

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The file was not imported")
    expect(alert).to_contain_text("Nothing was changed")
    expect(alert).to_contain_text("line 3, hire_date")
    expect(alert).to_contain_text("2024-13-40")
    expect(alert).to_contain_text("line 4, supervisor_badge")
    expect(alert).to_contain_text("9999")
    file_input = page.get_by_label("Personnel file (CSV)")
    expect(file_input).to_have_attribute("aria-invalid", "true")
    # The problems are part of the file input's description, so a screen reader on the input
    # hears them again.
    expect(file_input).to_have_accessible_description(re.compile(r"line 3, hire_date.*line 4, supervisor_badge"))
    axe.check(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    axe.check(page)
    page.get_by_role("link", name="Accounts").click()
    axe.check(page)
    _find_account(page, "Quintero")
    expect(page.get_by_role("status")).to_have_text("No member matches “Quintero”.")
    axe.check(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Import personnel").click()
    good = tmp_path / "personnel.csv"
    good.write_text("\n".join([HEADER, ANA, GOOD_DATE, KNOWN_SUPERVISOR]) + "\n", encoding="utf-8")
    _upload(page, good)

    expect(page.get_by_role("heading", level=1, name="Preview: personnel.csv")).to_be_visible()
    expect(page.get_by_text("3 rows checked, no errors.")).to_be_visible()
    expect(page.locator("dt:text-is('To add') + dd")).to_have_text("3")
    adds = page.get_by_role("table", name="Members who will be added")
    for badge, name in (("3101", "Quintero, Ana"), ("3102", "Okoro, Bastian"), ("3103", "Nyland, Cara")):
        row = adds.get_by_role("row").filter(has_text=badge)
        expect(row).to_contain_text(name)
    axe.check(page)
    page.get_by_role("button", name="Apply these changes").click()

    expect(page.get_by_role("status")).to_contain_text("Imported personnel.csv: 3 added, 0 changed, 0 separated.")
    expect(page.get_by_role("heading", level=1, name="Import personnel")).to_be_visible()
    axe.check(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Accounts").click()
    _find_account(page, "Quintero")
    expect(page.get_by_role("status")).to_have_text("1 member found.")
    found = page.get_by_role("table", name="Members matching “Quintero”")
    expect(found.get_by_role("row").filter(has_text="3101")).to_contain_text("Active")
    axe.check(page)
    found.get_by_role("link", name="Quintero, Ana").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ana Quintero")
    expect(page.get_by_role("heading", level=1)).to_contain_text("badge 3101")
    expect(page.locator("dt:text-is('Roles') + dd")).to_have_text("officer")
    axe.check(page)
