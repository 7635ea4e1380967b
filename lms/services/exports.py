"""Bulk export of signed receipts: a ZIP of the stored PDFs plus ``manifest.csv``.

The manifest columns are a contract (docs/product.md) and cannot grow a "voided" column, so an
export holds only acknowledgments that stand: a voided acknowledgment is left out, receipt and row.
Its record stays in the database and on the member's page in HR.

Receipts are copied as stored at signing, never re-rendered. Rows are read ``yield_per`` 200 with
only the columns the ZIP needs, so memory holds at most a batch of PDFs whatever the export's size.
"""
from __future__ import annotations

import csv
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from lms.models import Acknowledgment, AcknowledgmentVoid, Member, Policy, PolicyVersion, Receipt

MANIFEST_COLUMNS = ("receipt_file", "badge", "last_name", "first_name", "policy", "policy_version",
                    "signed_at", "text_sha256", "receipt_sha256", "record_hash", "verification_code")
MANIFEST_NAME = "manifest.csv"
#: Rows fetched per round trip; each row carries one receipt PDF (tens of kilobytes).
BATCH = 200
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9.-]+")


class ExportError(ValueError):
    """Filters that cannot be exported; ``problems`` maps a filter name to what is wrong with it."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


@dataclass(frozen=True)
class ExportFilters:
    """Which acknowledgments to export; None means any."""

    #: Policy id, e.g. "16.3".
    policy: str | None = None
    #: The version's effective date.
    version: date | None = None
    #: The member's unit (their current unit on the personnel record).
    unit: str | None = None
    #: First and last day signed, inclusive, in the department's local time.
    since: date | None = None
    until: date | None = None

    def as_details(self) -> dict:
        """The filters as JSON-ready facts for the audit log."""
        return {"policy": self.policy, "version": self.version and self.version.isoformat(),
                "unit": self.unit, "since": self.since and self.since.isoformat(),
                "until": self.until and self.until.isoformat()}


@dataclass
class ExportResult:
    """What an export wrote."""

    count: int
    bytes_written: int


@dataclass
class FilterChoices:
    """What the export form offers: every policy, version effective date and unit on record."""

    policies: list[tuple[str, str]]
    versions: list[tuple[date, list[str]]]
    units: list[str]


def filter_choices(session: Session) -> FilterChoices:
    """The policies (id, title), version dates (with the policies effective on each) and units."""
    policies = [(p.id, p.title) for p in session.scalars(select(Policy).order_by(Policy.id))]
    versions: dict[date, list[str]] = {}
    for policy_id, effective in session.execute(
            select(PolicyVersion.policy_id, PolicyVersion.effective)
            .order_by(PolicyVersion.effective.desc(), PolicyVersion.policy_id)):
        versions.setdefault(effective, []).append(policy_id)
    units: list[str] = list(session.scalars(select(Member.unit).where(Member.unit.is_not(None))
                                 .distinct().order_by(Member.unit)))
    return FilterChoices(policies, list(versions.items()), units)


def check_filters(session: Session, filters: ExportFilters) -> None:
    """Raise ExportError naming each filter that cannot match: an unknown policy, version or unit,
    or a date range that ends before it starts."""
    problems: dict[str, str] = {}
    if filters.policy is not None:
        known = list(session.scalars(select(Policy.id).order_by(Policy.id)))
        if filters.policy not in known:
            problems["policy"] = f"Unknown policy {filters.policy} (known: {', '.join(known) or 'none'})."
    if filters.version is not None and "policy" not in problems:
        versions = select(PolicyVersion.effective)
        if filters.policy is not None:
            versions = versions.where(PolicyVersion.policy_id == filters.policy)
        known_dates = sorted(set(session.scalars(versions)))
        if filters.version not in known_dates:
            of = f" of policy {filters.policy}" if filters.policy else ""
            problems["version"] = (f"No version{of} is effective {filters.version.isoformat()} (known: "
                                   f"{', '.join(d.isoformat() for d in known_dates) or 'none'}).")
    if filters.unit is not None and session.scalar(
            select(Member.id).where(Member.unit == filters.unit).limit(1)) is None:
        problems["unit"] = f"No member is in unit {filters.unit!r}."
    if filters.since and filters.until and filters.until < filters.since:
        problems["until"] = "The end date is before the start date."
    if problems:
        raise ExportError(problems)


def _local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))


def acknowledgments_query(filters: ExportFilters, tz: str) -> Select:
    """Standing (not voided) acknowledgments matching the filters, in chain order, with the
    columns the manifest needs and the receipt's bytes; nothing else is loaded."""
    voided = select(AcknowledgmentVoid.acknowledgment_id)
    query = (
        select(Acknowledgment.id, Acknowledgment.badge, Member.last_name, Member.first_name,
               Acknowledgment.policy_ref, Acknowledgment.policy_effective,
               Acknowledgment.signed_at_local, Acknowledgment.text_sha256, Receipt.sha256,
               Acknowledgment.record_hash, Acknowledgment.verification_code, Receipt.pdf)
        .join(Member, Member.id == Acknowledgment.member_id)
        .join(Receipt, Receipt.acknowledgment_id == Acknowledgment.id)
        .where(Acknowledgment.id.not_in(voided))
        .order_by(Acknowledgment.sequence))
    return _filtered(query, filters, tz)


def count_acknowledgments(session: Session, filters: ExportFilters, tz: str) -> int:
    """How many receipts an export with these filters would hold."""
    voided = select(AcknowledgmentVoid.acknowledgment_id)
    query = (select(func.count(Acknowledgment.id)).join(Member, Member.id == Acknowledgment.member_id)
             .where(Acknowledgment.id.not_in(voided)))
    return session.scalar(_filtered(query, filters, tz))


def _filtered(query: Select, filters: ExportFilters, tz: str) -> Select:
    if filters.policy is not None:
        query = query.where(Acknowledgment.policy_ref == filters.policy)
    if filters.version is not None:
        query = query.where(Acknowledgment.policy_effective == filters.version)
    if filters.unit is not None:
        query = query.where(Member.unit == filters.unit)
    # Days are the department's: a signature at 23:30 local on the 31st belongs to the 31st.
    if filters.since is not None:
        query = query.where(Acknowledgment.signed_at >= _local_midnight(filters.since, tz))
    if filters.until is not None:
        query = query.where(Acknowledgment.signed_at < _local_midnight(filters.until + timedelta(days=1), tz))
    return query


def file_name_part(value: str) -> str:
    """``value`` with anything but letters, digits, dots and hyphens replaced, so a name built from
    it cannot reach outside an archive's folder or break a Content-Disposition header."""
    return _UNSAFE_IN_NAME.sub("_", value).strip(".") or "_"


def receipt_file_name(policy: str, effective: date, badge: str, ack_id: int) -> str:
    """``16.3_2013-11-26_<badge>_<ack id>.pdf``."""
    return f"{file_name_part(policy)}_{effective.isoformat()}_{file_name_part(badge)}_{ack_id}.pdf"


def csv_safe(value: str) -> str:
    """The value, with a leading quote if a spreadsheet would otherwise run it as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_ack_zip(session: Session, fileobj: IO[bytes], filters: ExportFilters, *, tz: str,
                  now: datetime | None = None, progress=None) -> ExportResult:
    """Write the receipts matching ``filters`` and then ``manifest.csv`` into a ZIP on ``fileobj``.

    PDFs are stored, not deflated: they are compressed already. The manifest is spooled to a
    temporary file while the receipts go in, then added last. ``fileobj`` may be unseekable (ZIP
    data descriptors are used then), but a seekable one gives the most widely readable archive.
    ``progress(count)``, if given, is told how many receipts went in after each batch.
    """
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+t", encoding="utf-8", newline="") as manifest, \
            zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        writer = csv.writer(manifest, lineterminator="\r\n")
        writer.writerow(MANIFEST_COLUMNS)
        rows = session.execute(acknowledgments_query(filters, tz).execution_options(yield_per=BATCH))
        for (ack_id, badge, last_name, first_name, policy, effective, signed_at_local, text_sha256,
             receipt_sha256, record_hash, code, pdf) in rows:
            name = receipt_file_name(policy, effective, badge, ack_id)
            info = zipfile.ZipInfo(name, date_time=_zip_time(signed_at_local))
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, pdf)
            writer.writerow([csv_safe(str(v)) for v in (
                name, badge, last_name, first_name, policy, effective.isoformat(), signed_at_local,
                text_sha256, receipt_sha256, record_hash, code)])
            count += 1
            if progress is not None and count % BATCH == 0:
                progress(count)
        if progress is not None:
            progress(count)
        manifest.seek(0)
        made = (now or datetime.now(ZoneInfo("UTC"))).astimezone(ZoneInfo(tz))
        info = zipfile.ZipInfo(MANIFEST_NAME, date_time=made.timetuple()[:6])
        with archive.open(info, "w") as target:
            # Text to bytes in chunks, so a 50,000-row manifest is never one string in memory.
            for chunk in iter(lambda: manifest.read(64 * 1024), ""):
                target.write(chunk.encode("utf-8"))
    written = fileobj.tell() if fileobj.seekable() else 0
    return ExportResult(count=count, bytes_written=written)


def _zip_time(signed_at_local: str) -> tuple[int, int, int, int, int, int]:
    """The signing time (local, as on the receipt) as a ZIP entry time; ZIP has no time zones."""
    moment = datetime.fromisoformat(signed_at_local)
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def copy_chunks(source: IO[bytes], size: int = 256 * 1024):
    """Yield a file's bytes in chunks from the start, then close it (for a streamed response)."""
    try:
        source.seek(0)
        while chunk := source.read(size):
            yield chunk
    finally:
        source.close()

