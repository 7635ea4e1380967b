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

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import CSS, HTML, Document
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from lms.config import PACKAGE_DIR

STATIC_DIR = (PACKAGE_DIR / "static").resolve()
TEMPLATE_DIR = PACKAGE_DIR / "templates" / "pdf"
STYLESHEET = STATIC_DIR / "css" / "pdf.css"
#: Tagged PDF/UA-1, so screen readers can read receipts; costs a few ms per receipt.
PDF_OPTIONS = {"pdf_tags": True, "pdf_variant": "pdf/ua-1"}
#: Age after which a thread rebuilds its fonts and stylesheet (see ``_print_setup``).
SETUP_MAX_AGE_SECONDS = 3600

_local = threading.local()


def long_date(day: date) -> str:
    """``November 26, 2013``: a date no reader can take for another."""
    return f"{day:%B} {day.day}, {day.year}"


def long_datetime(iso: str) -> str:
    """``March 14, 2026, 10:09:26 AM (UTC-05:00)`` from ISO 8601 with an offset."""
    moment = datetime.fromisoformat(iso)
    offset = moment.strftime("%z")
    hour = moment.strftime("%I").lstrip("0")
    return f"{long_date(moment)}, {hour}:{moment:%M:%S %p} (UTC{offset[:3]}:{offset[3:]})"


_templates = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                         autoescape=select_autoescape(["html"]))
_templates.filters.update(long_date=long_date, long_datetime=long_datetime)


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


def write_pdf(document: Document) -> bytes:
    """The tagged PDF of a laid-out document."""
    return document.write_pdf(**PDF_OPTIONS)


def create_pdf(html: str) -> bytes:
    """Turn HTML into a tagged PDF; relative URLs resolve inside static/."""
    return write_pdf(render_document(html))
