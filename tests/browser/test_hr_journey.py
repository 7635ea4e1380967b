"""HR's journey: find a member who signed, download their receipt, and bulk-export receipts with
their manifest."""
from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
import zipfile

from playwright.sync_api import expect

from tests.browser.support import sign_in

MANIFEST_COLUMNS = ["receipt_file", "badge", "last_name", "first_name", "policy", "policy_version",
                    "signed_at", "text_sha256", "receipt_sha256", "record_hash", "verification_code"]


def _search(page, query: str) -> None:
    page.get_by_label("Badge number or name").fill(query)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", level=2, name="Results")).to_be_visible()


def _acknowledgments(page):
    """The member page's table of acknowledgments (absent when they signed none)."""
    return page.get_by_role("table", name=re.compile(r"^Every acknowledgment"))


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def test_hr_finds_a_member_downloads_a_receipt_and_exports_receipts(page, axe, tmp_path):
    """Journey: HR looks through members by badge, finds one who signed, searches them by name,
    downloads their receipt (the PDF names them and carries the code shown), then exports the
    receipts of their unit as a ZIP whose manifest matches its PDFs."""
    axe.watch(page)
    sign_in(page, "1004", axe=axe)

    expect(page.get_by_role("heading", level=1, name="Acknowledgment records")).to_be_visible()
    axe.check(page)

    # The demo personnel have badges from 2000; open them in turn until one has signed.
    _search(page, "200")
    expect(page.get_by_role("status")).to_contain_text("members found for “200”")
    axe.check(page)
    results = page.get_by_role("table", name=re.compile("Members matching"))
    names = [link.inner_text().strip() for link in results.get_by_role("link").all()]
    assert names
    for name in names:
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=2, name="Acknowledgments")).to_be_visible()
        axe.check(page)
        if _acknowledgments(page).count():
            break
        page.go_back()
    else:
        raise AssertionError(f"none of {names} has signed an acknowledgment")
    last_name, first_name = name.split(", ", 1)

    # Finding that person again by name, as HR would when asked for their record.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    axe.check(page)
    _search(page, last_name)
    results = page.get_by_role("table", name=re.compile("Members matching"))
    expect(results.get_by_role("link", name=name, exact=True)).to_be_visible()
    axe.check(page)
    results.get_by_role("link", name=name, exact=True).click()

    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(f"{first_name} {last_name}")
    badge = re.search(r"badge (\S+)", heading.inner_text()).group(1)
    unit = page.locator("dt:text-is('Unit') + dd").inner_text().strip()
    acks = _acknowledgments(page)
    first_ack = acks.get_by_role("row").nth(1)
    expect(first_ack.get_by_role("cell").nth(3)).to_have_text("Stands")
    code = first_ack.get_by_role("cell").nth(2).inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9-]{6,}", code), code
    expect(page.get_by_text(re.compile(r"^\d+ on record"))).to_be_visible()
    axe.check(page)

    with page.expect_download() as receipt_download:
        first_ack.get_by_role("link", name=re.compile(r"^Receipt PDF")).click()
    receipt = tmp_path / receipt_download.value.suggested_filename
    receipt_download.value.save_as(receipt)
    assert receipt.suffix == ".pdf"
    assert receipt.read_bytes().startswith(b"%PDF")
    text = " ".join(_pdf_text(receipt).split())
    assert f"{first_name} {last_name}" in text
    assert code in text
    assert badge in text

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    axe.check(page)
    page.get_by_role("link", name="Export receipts as a ZIP with a manifest").click()
    expect(page.get_by_role("heading", level=1, name="Export signed receipts")).to_be_visible()
    axe.check(page)
    page.get_by_label("Policy", exact=True).select_option(label="16.3 Social Media")
    page.get_by_label("Member's current unit").select_option(unit)
    with page.expect_download() as zip_download:
        page.get_by_role("button", name="Download ZIP").click()
    archive = tmp_path / zip_download.value.suggested_filename
    zip_download.value.save_as(archive)
    assert archive.suffix == ".zip"

    with zipfile.ZipFile(archive) as bundle:
        manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode("utf-8-sig"))))
        with bundle.open("manifest.csv") as handle:
            header = next(csv.reader(io.TextIOWrapper(handle, encoding="utf-8-sig")))
        assert header == MANIFEST_COLUMNS
        pdfs = sorted(n for n in bundle.namelist() if n.endswith(".pdf"))
        assert pdfs == sorted(row["receipt_file"] for row in manifest)
        for row in manifest:
            content = bundle.read(row["receipt_file"])
            assert content.startswith(b"%PDF")
            assert hashlib.sha256(content).hexdigest() == row["receipt_sha256"]
        assert {row["policy"] for row in manifest} == {"16.3"}
        ours = [row for row in manifest if row["badge"] == badge]
        assert [(r["last_name"], r["first_name"]) for r in ours] == [(last_name, first_name)] * len(ours)
        shown = next(r for r in ours if r["verification_code"] == code)
        assert bundle.read(shown["receipt_file"]) == receipt.read_bytes()
