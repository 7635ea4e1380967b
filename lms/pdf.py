"""PDF rendering with WeasyPrint, confined to the app's own static files.

Receipts are evidence: rendering must not reach the network or read arbitrary files, so the URL
fetcher serves only files under ``static/`` and refuses everything else.

Every PDF is styled by ``static/css/pdf.css``, parsed once per thread together with its fonts and
reused: building them for each render cost about a third of a receipt's time (see
docs/performance.md). Templates in ``templates/pdf/`` therefore do not link it, and edits to it
take effect when the app restarts.
"""
from __future__ import annotations

import mimetypes
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

import pydyf
from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import CSS, HTML, Document
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from lms.config import PACKAGE_DIR
from lms.services.clock import date_words, local_date

STATIC_DIR = (PACKAGE_DIR / "static").resolve()
TEMPLATE_DIR = PACKAGE_DIR / "templates" / "pdf"
STYLESHEET = STATIC_DIR / "css" / "pdf.css"
#: Tagged PDF/UA-1, so screen readers can read receipts; costs a few ms per receipt.
PDF_OPTIONS = {"pdf_tags": True, "pdf_variant": "pdf/ua-1"}
#: Age after which a thread rebuilds its fonts and stylesheet (see ``_print_setup``).
SETUP_MAX_AGE_SECONDS = 3600

_local = threading.local()


def long_date(day: date) -> str:
    """``November 26, 2013``: a date no reader can take for another (the pages' own words)."""
    return date_words(day)


def long_datetime(iso: str) -> str:
    """``March 14, 2026, 10:09:26 AM (UTC-05:00)`` from ISO 8601 with an offset."""
    moment = datetime.fromisoformat(iso)
    offset = moment.strftime("%z")
    hour = moment.strftime("%I").lstrip("0")
    return f"{long_date(moment)}, {hour}:{moment:%M:%S %p} (UTC{offset[:3]}:{offset[3:]})"


_templates = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                         autoescape=select_autoescape(["html"]))
def local_day(moment: datetime, tz: str) -> str:
    """A UTC instant as the department's calendar day, ISO 8601."""
    return local_date(moment, tz).isoformat()


_templates.filters.update(long_date=long_date, long_datetime=long_datetime, local_day=local_day)


class StaticOnlyFetcher(URLFetcher):
    """Serves ``file://`` URLs inside static/ and refuses every other URL."""

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        parsed = urlparse(url)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ValueError(f"refused to fetch {url!r}: PDFs may use only the app's static files")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file():
            raise ValueError(f"refused to fetch {url!r}: outside the app's static files")
        # WeasyPrint ignores a stylesheet not served as text/css, so say what each file is.
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), headers={"Content-Type": content_type})


@dataclass
class _PrintSetup:
    """A font configuration holding the ``@font-face`` fonts, and the stylesheet parsed with it."""

    font_config: FontConfiguration
    stylesheet: CSS
    built_at: float


def _print_setup() -> _PrintSetup:
    """This thread's fonts and parsed stylesheet, built on first use.

    Per thread because a Pango font map must not be shared between threads. Rebuilt after
    ``SETUP_MAX_AGE_SECONDS`` because WeasyPrint keeps the font files in a temporary folder that a
    tmp cleaner could remove under a long-running worker.
    """
    setup = getattr(_local, "setup", None)
    if setup is None or time.monotonic() - setup.built_at > SETUP_MAX_AGE_SECONDS:
        font_config = FontConfiguration()
        stylesheet = CSS(url=STYLESHEET.as_uri(), url_fetcher=StaticOnlyFetcher(),
                         font_config=font_config)
        setup = _local.setup = _PrintSetup(font_config, stylesheet, time.monotonic())
    return setup


def render_template(name: str, **context) -> str:
    """Render a template from templates/pdf/ (no Flask needed, so the CLI and services can call it)."""
    return _templates.get_template(name).render(**context)


def render_document(html: str) -> Document:
    """Lay out HTML with the print stylesheet; relative URLs resolve inside static/.

    The result tells how many pages it has (``len(document.pages)``); ``write_pdf`` turns it
    into bytes.
    """
    setup = _print_setup()
    document = HTML(string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticOnlyFetcher())
    return document.render(font_config=setup.font_config, stylesheets=[setup.stylesheet], **PDF_OPTIONS)


def write_pdf(document: Document, finisher=None) -> bytes:
    """The tagged PDF of a laid-out document, its running headers and footers marked as artifacts;
    ``finisher(document, pdf)`` first reworks the PDF's objects if given (lms.pdf_table)."""
    def finish(document: Document, pdf: pydyf.PDF) -> None:
        if finisher is not None:
            finisher(document, pdf)
        mark_pagination_artifacts(document, pdf)

    return document.write_pdf(finisher=finish, **PDF_OPTIONS)


def _object(pdf: pydyf.PDF, reference) -> object:
    """The object a reference (``b"12 0 R"``) names; pydyf numbers objects by their list index."""
    return pdf.objects[int(bytes(reference).split()[0])]


def mark_pagination_artifacts(document: Document, pdf: pydyf.PDF) -> None:
    """Turn the text of the ``@page`` margin boxes (running titles, "Page X of Y") into pagination
    artifacts, as PDF/UA asks of page headers and footers.

    WeasyPrint 70 gives that text marked-content ids like real content but leaves it out of the
    structure tree (it could file it as an artifact only in PDF 2.0), so it was neither tagged nor
    an artifact, and a screen reader met it nowhere or in the middle of the text. Here every marked
    sequence whose structure element is not reachable from the tree's root becomes
    ``/Artifact <</Type /Pagination>>``, and its entry in the parent tree is emptied.
    """
    root_reference = pdf.catalog.get("StructTreeRoot")
    if root_reference is None:
        return
    root = _object(pdf, root_reference)
    reachable: set[int] = set()
    pending = [root]
    while pending:
        element = pending.pop()
        kids = element.get("K")
        for kid in kids if isinstance(kids, (list, pydyf.Array)) else [kids] if kids is not None else []:
            if isinstance(kid, bytes) and kid.endswith(b" R"):
                number = int(kid.split()[0])
                child = pdf.objects[number]
                if isinstance(child, pydyf.Dictionary) and number not in reachable:
                    reachable.add(number)
                    pending.append(child)
    nums = _object(pdf, root["ParentTree"])["Nums"]
    orphans: dict[int, set[int]] = {}
    for page_index, references in zip(nums[::2], nums[1::2]):
        if page_index >= len(document.pages) or not isinstance(references, (list, pydyf.Array)):
            continue  # annotations come after the pages, one reference each
        for mcid, reference in enumerate(references):
            if reference != b"null" and int(bytes(reference).split()[0]) not in reachable:
                orphans.setdefault(page_index, set()).add(mcid)
                references[mcid] = b"null"
    if not orphans:
        return
    kids = pdf.pages["Kids"]
    for page_index, mcids in orphans.items():
        page = pdf.objects[kids[3 * page_index]]
        content = _object(pdf, page["Contents"])
        ops = content.stream
        for i, op in enumerate(ops):
            if isinstance(op, pydyf.Dictionary) and op.get("MCID") in mcids and i and \
                    isinstance(ops[i - 1], str) and ops[i - 1].startswith("/"):
                ops[i - 1] = "/Artifact"
                ops[i] = pydyf.Dictionary({"Type": "/Pagination"})


def create_pdf(html: str) -> bytes:
    """Turn HTML into a tagged PDF; relative URLs resolve inside static/."""
    return write_pdf(render_document(html))
