"""PDF rendering with WeasyPrint, confined to the app's own static files.

Receipts are evidence: rendering must not reach the network or read arbitrary files, so the URL
fetcher serves only files under ``static/`` and refuses everything else.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlparse

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from lms.config import PROJECT_ROOT

STATIC_DIR = (PROJECT_ROOT / "static").resolve()
TEMPLATE_DIR = PROJECT_ROOT / "templates" / "pdf"

_templates = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)),
                         autoescape=select_autoescape(["html"]))


class StaticOnlyFetcher(URLFetcher):
    """Serves ``file://`` URLs inside static/ and refuses every other URL."""

    def fetch(self, url: str, headers=None) -> URLFetcherResponse:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ValueError(f"refused to fetch {url!r}: PDFs may use only the app's static files")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file():
            raise ValueError(f"refused to fetch {url!r}: outside the app's static files")
        # WeasyPrint ignores a stylesheet not served as text/css, so say what each file is.
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), headers={"Content-Type": content_type})


def render_template(name: str, **context) -> str:
    """Render a template from templates/pdf/ (no Flask needed, so the CLI and services can call it)."""
    return _templates.get_template(name).render(**context)


def create_pdf(html: str) -> bytes:
    """Turn HTML into a tagged PDF; relative URLs resolve inside static/."""
    document = HTML(string=html, base_url=STATIC_DIR.as_uri() + "/", url_fetcher=StaticOnlyFetcher())
    return document.write_pdf(pdf_tags=True, pdf_variant="pdf/ua-1")
