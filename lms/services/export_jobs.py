"""Large exports as background jobs: HR's ZIP of many receipts, the coordinator's large roster
XLSX or PDF. The request queues the export (in its transaction) and shows a page that follows its
progress; the worker builds the file and the requester downloads it when it is ready. Small and
single downloads stay synchronous (the views decide by size).
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from typing import IO, cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from lms.models import Cycle
from lms.services import exports, jobs
from lms.services.roster import RosterFilters, roster_rows, roster_summary

#: The job kind of an export.
EXPORT = "export"
#: Report progress every this many rows.
PROGRESS_EVERY = 500

MIMETYPES = {"zip": "application/zip",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "pdf": "application/pdf"}

Progress = Callable[[int, "int | None"], None]


class ExportRefused(ValueError):
    """An export the worker will not build (a PDF past ROSTER_PDF_MAX_ROWS); the message says why."""


def queue_receipts(session: Session, filters: exports.ExportFilters, *, now: datetime, today: date,
                   requested_by_id: int, ip: str | None) -> int:
    """Queue HR's receipt ZIP for ``filters``; the job id. The export's audit event ("hr.export",
    with the count) is recorded when the worker has built it."""
    payload = {"type": "receipts", "filters": filters.as_details(),
               "download_name": f"acknowledgments-{today.isoformat()}.zip", "extension": "zip",
               "audit": {"action": "hr.export", "actor_id": requested_by_id, "target": "acknowledgments",
                         "ip": ip, "details": {"filters": filters.as_details(), "via": "job"}}}
    # A new uuid key is never taken, so enqueue returns the id.
    return cast(int, jobs.enqueue(session, EXPORT, payload, key=f"export:{uuid.uuid4().hex}", now=now,
                                  created_by_id=requested_by_id))


def queue_roster(session: Session, filters: RosterFilters, *, fmt: str, sort: str, descending: bool,
                 title: str, filters_text: str, department: str, now: datetime, today: date,
                 requested_by_id: int, ip: str | None, audit_details: dict, file_stem: str,
                 pdf_max_rows: int | None = None) -> int:
    """Queue a roster export (xlsx or pdf) of the view ``filters`` describe; the job id. The file is
    named ``{file_stem}-{date}.{fmt}`` (the view names it after the cycle)."""
    state = asdict(filters)
    state["as_of"] = filters.as_of.isoformat() if filters.as_of else None
    payload = {"type": "roster", "format": fmt, "filters": state, "sort": sort, "descending": descending,
               "title": title, "filters_text": filters_text, "department": department, "today": today.isoformat(),
               "pdf_max_rows": pdf_max_rows,
               "download_name": f"{file_stem}-{(filters.as_of or today).isoformat()}.{fmt}",
               "extension": fmt,
               "audit": {"action": "roster.export", "actor_id": requested_by_id, "target": f"cycle:{filters.cycle_id}",
                         "ip": ip, "details": {**audit_details, "format": fmt, "via": "job"}}}
    # A new uuid key is never taken, so enqueue returns the id.
    return cast(int, jobs.enqueue(session, EXPORT, payload, key=f"export:{uuid.uuid4().hex}", now=now,
                                  created_by_id=requested_by_id))


def build(session: Session, payload: dict, out: IO[bytes], *, tz: str, now: datetime, progress: Progress) -> dict:
    """Write the export a job describes to ``out``; what was written (count of receipts or rows)."""
    if payload["type"] == "receipts":
        details = payload["filters"]
        filters = exports.ExportFilters(
            policy=details["policy"], unit=details["unit"],
            version=date.fromisoformat(details["version"]) if details["version"] else None,
            since=date.fromisoformat(details["since"]) if details["since"] else None,
            until=date.fromisoformat(details["until"]) if details["until"] else None)
        total = exports.count_acknowledgments(session, filters, tz)
        progress(0, total)
        result = exports.write_ack_zip(session, out, filters, tz=tz, now=now,
                                       progress=lambda done: progress(done, total))
        return {"count": result.count}
    if payload["type"] == "roster":
        from lms.services.roster_export import pdf_refusal, render_pdf, write_xlsx

        view = roster_filters_from_state(session, payload["filters"])
        today = date.fromisoformat(payload["today"])
        head = roster_summary(session, view, today=today, tz=tz)
        total = sum(head.counts.values())
        if payload["format"] == "pdf" and (refusal := pdf_refusal(total, payload.get("pdf_max_rows") or total)):
            raise ExportRefused(refusal)  # the view grew past the bound since it was queued
        progress(0, total)
        rows = _counted(roster_rows(session, view, today=today, tz=tz, sort=payload["sort"],
                                    descending=payload["descending"]), lambda done: progress(done, total))
        if payload["format"] == "xlsx":
            write_xlsx(rows, out, title=payload["title"], filters_text=payload["filters_text"])
        else:
            out.write(render_pdf(rows, title=payload["title"], filters_text=payload["filters_text"],
                                 generated_at=now.astimezone(ZoneInfo(tz)), counts=head.counts,
                                 unit_summary=head.units, department=payload["department"]))
        return {"count": total}
    raise ValueError(f"unknown export type {payload['type']!r}")


def roster_filters_from_state(session: Session, state: dict) -> RosterFilters:
    """The roster filters a queued job stored. Jobs queued before cycles had ids of their own
    (migration 0018) stored the cycle's year, which then named exactly one cycle: read it as that
    cycle (the earliest opened, should the year since have gained others)."""
    state = dict(state)
    state["as_of"] = date.fromisoformat(state["as_of"]) if state.get("as_of") else None
    if "cycle_id" not in state:
        year = state.pop("year")
        state["cycle_id"] = session.scalar(select(Cycle.id).where(Cycle.year == year).order_by(Cycle.id).limit(1))
        if state["cycle_id"] is None:
            raise ValueError(f"the export's cycle ({year}) no longer exists")
    return RosterFilters(**state)


def _counted(rows: Iterable, report: Callable[[int], None]) -> Iterator:
    """The rows, reporting how many have gone by every PROGRESS_EVERY."""
    done = 0
    for row in rows:
        yield row
        done += 1
        if done % PROGRESS_EVERY == 0:
            report(done)
    report(done)
