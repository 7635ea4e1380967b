"""Large exports as background jobs: HR's receipt ZIP and the coordinator's roster XLSX/PDF are
queued, built by the worker with progress, and downloaded by whoever asked, audited; small ones
stay synchronous."""
from __future__ import annotations

import io
import os
import time

import openpyxl
from sqlalchemy import select

from lms.jobs import export_folder
from lms.models import Job
from tests.helpers import cycle_id_of
from tests.test_hr import audit, desk, people, post_export, read_export  # noqa: F401 - fixtures
from tests.test_roster_export import department  # noqa: F401 - fixture


def _run(runner) -> str:
    result = runner.invoke(args=["lms", "jobs", "run"])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_large_receipt_export_is_built_by_the_worker_and_downloaded_when_ready(
        app, client, auth, db, runner, desk, make_member):
    app.config["EXPORT_JOB_RECEIPTS"] = 2  # three receipts: more than that, so a job
    auth.sign_in(desk["people"]["hr"].badge)
    queued = post_export(client)
    assert queued.status_code == 303
    page_url = queued.headers["Location"]
    job = db.scalars(select(Job).where(Job.kind == "export")).one()
    assert page_url == f"/hr/exports/{job.id}"
    waiting = client.get(page_url).get_data(as_text=True)
    assert "Waiting for the worker" in waiting and "Download" not in waiting
    assert client.get(f"{page_url}/download").status_code == 404
    assert audit(db, "hr.export") == []

    assert "1 done" in _run(runner)
    db.expire_all()
    job = db.get(Job, job.id)
    assert (job.progress_done, job.progress_total) == (3, 3) and job.result["count"] == 3
    ready = client.get(page_url).get_data(as_text=True)
    assert "Ready: 3 receipts" in ready and f'href="{page_url}/download"' in ready
    [built] = audit(db, "hr.export")
    assert built.actor_id == desk["people"]["hr"].id and built.details["count"] == 3 and built.details["via"] == "job"

    download = client.get(f"{page_url}/download")
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert "acknowledgments-" in download.headers["Content-Disposition"]
    _, rows, _ = read_export(download.data)
    download.close()
    assert {r["verification_code"] for r in rows} == {a.verification_code for a in desk["acks"].values()}
    [fetched] = audit(db, "hr.export.download")
    assert fetched.actor_id == desk["people"]["hr"].id and fetched.target == f"job:{job.id}"

    # Another HR member cannot see it.
    other_hr = make_member(first="Sam", last="Other", badge="901", roles=("hr",))
    auth.sign_out()
    auth.sign_in(other_hr.badge)
    assert client.get(page_url).status_code == 404 and client.get(f"{page_url}/download").status_code == 404

    # A day later the file is removed by the schedule and the page says so.
    path = export_folder(app) / job.result["file"]
    old = time.time() - 25 * 3600
    os.utime(path, (old, old))
    assert runner.invoke(args=["lms", "jobs", "schedule", "remove-old-exports"]).exit_code == 0
    _run(runner)
    assert not path.exists()
    auth.sign_out()
    auth.sign_in(desk["people"]["hr"].badge)
    assert "has since been removed" in client.get(page_url).get_data(as_text=True)


def test_a_small_receipt_export_stays_synchronous(app, client, auth, db, desk):
    auth.sign_in(desk["people"]["hr"].badge)
    response = post_export(client)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert db.scalars(select(Job)).all() == []


def test_a_large_roster_xlsx_and_pdf_are_built_by_the_worker(app, client, auth, db, runner, department, make_member):
    app.config.update(EXPORT_JOB_ROWS=3, EXPORT_JOB_PDF_ROWS=3)
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    auth.sign_in(coordinator.badge)
    cid = cycle_id_of(app, 2031)
    queued = client.get(f"/coordinator/cycles/{cid}/roster.xlsx?unit=Traffic")
    assert queued.status_code == 303
    page_url = queued.headers["Location"]
    assert "Waiting for the worker" in client.get(page_url).get_data(as_text=True)
    pdf = client.get(f"/coordinator/cycles/{cid}/roster.pdf")
    assert pdf.status_code == 303
    assert "2 done" in _run(runner)

    ready = client.get(page_url).get_data(as_text=True)
    assert "Ready: 4 rows" in ready
    download = client.get(f"{page_url}/download")
    assert download.status_code == 200 and "roster-2031-annual-" in download.headers["Content-Disposition"]
    workbook = openpyxl.load_workbook(io.BytesIO(download.data), read_only=True)
    download.close()
    values = [row for row in workbook.active.iter_rows(values_only=True)]
    workbook.close()
    assert sum(1 for row in values if row and row[0] in {"701", "703", "705", "707"}) == 4
    pdf_download = client.get(f"{pdf.headers['Location']}/download")
    assert pdf_download.status_code == 200 and pdf_download.data.startswith(b"%PDF")
    pdf_download.close()
    events = audit(db, "roster.export")
    assert {e.details["format"] for e in events} == {"xlsx", "pdf"} and all(e.details["via"] == "job" for e in events)
    assert all(e.actor_id == coordinator.id for e in events)
    # The CSV still streams in the request, whatever its size.
    csv = client.get(f"/coordinator/cycles/{cid}/roster.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    csv.close()


def test_a_roster_job_queued_before_cycles_had_ids_is_still_built(app, client, auth, db, runner, department,
                                                                   make_member):
    """Jobs queued before migration 0018 stored the cycle's year in their filters; the worker reads
    that year as the cycle it then named."""
    from lms.db import utcnow
    from lms.services import jobs as jobs_service

    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    old_filters = {"year": 2031, "policy_id": None, "units": ["Traffic"], "shifts": [], "ranks": [],
                   "supervisor_badges": [], "statuses": [], "search": None, "as_of": None}
    payload = {"type": "roster", "format": "xlsx", "filters": old_filters, "sort": "last_name", "descending": False,
               "title": "2031 annual roster", "filters_text": "2031 cycle; unit Traffic", "department": "Test",
               "today": "2031-01-10", "download_name": "roster-2031-2031-01-10.xlsx", "extension": "xlsx",
               "audit": {"action": "roster.export", "actor_id": coordinator.id, "target": "cycle:2031", "ip": None,
                         "details": {"format": "xlsx", "via": "job"}}}
    job_id = jobs_service.enqueue(db, "export", payload, key="export:old-year-params", now=utcnow(),
                                  created_by_id=coordinator.id)
    db.commit()
    assert "1 done" in _run(runner)
    auth.sign_in(coordinator.badge)
    download = client.get(f"/coordinator/exports/{job_id}/download")
    assert download.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(download.data), read_only=True)
    download.close()
    badges = {row[0] for row in workbook.active.iter_rows(values_only=True) if row}
    workbook.close()
    assert {"701", "703", "705", "707"} <= badges
def test_a_queued_pdf_that_grew_past_the_bound_is_refused_not_retried(app, client, auth, db, runner, department,
                                                                      make_member):
    from lms.models import Member

    app.config.update(EXPORT_JOB_PDF_ROWS=3, ROSTER_PDF_MAX_ROWS=4)  # Traffic's four rows: a job, within the bound
    coordinator = make_member(first="Cora", last="Dinator", badge="880", roles=("coordinator",))
    auth.sign_in(coordinator.badge)
    queued = client.get(f"/coordinator/cycles/{cycle_id_of(app, 2031)}/roster.pdf?unit=Traffic")
    assert queued.status_code == 303
    # Before the worker gets to it, a member moves into Traffic: five rows now.
    db.get(Member, department["Abbott"].id).unit = "Traffic"
    db.commit()

    assert "0 done" in _run(runner)
    db.expire_all()
    [job] = db.scalars(select(Job)).all()
    assert job.status == "failed" and job.attempts == 1  # refused for good, not retried
    page = client.get(queued.headers["Location"]).get_data(as_text=True)
    assert "could not be made" in page and "narrow it to 4 rows or fewer" in page and "export CSV or XLSX" in page
