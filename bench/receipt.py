"""Time receipt rendering and signing: ``python -m bench.receipt [--n 20] [--out FILE.pdf] [--fonttools]
[--variants] [--tsa-url URL]``.

Builds a realistic acknowledgment in memory (no database), renders its receipt once to warm up
(imports, fonts, stylesheet, the signing key), then times, over N runs, the receipt rendered alone
(``render_receipt``) and rendered and signed as signing does it (``issue_receipt`` with a
self-signed RSA-3072 key generated in a temporary folder, loaded once as the app does), and prints
the median and 95th percentile of wall and CPU time (``time.process_time``), and whether
WeasyPrint subsets fonts with HarfBuzz-Subset (fast) or fontTools (slow). ``--tsa-url`` adds an
RFC 3161 timestamp from that authority to each signature (its wait is wall time, not CPU).
``--fonttools`` forces the fontTools path, to measure a machine without
libharfbuzz-subset0 on one that has it. ``--variants`` also times the rendering options that were
weighed, interleaved so that a busy machine affects them alike. Results: docs/performance.md.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path

from lms import pdf
from lms.config import Defaults
from lms.models import Acknowledgment
from lms.services.clock import local_iso
from lms.services.content import sha256_hex
from lms.services.records import new_verification_code
from lms.services.signing import issue_receipt, render_receipt

ATTESTATION = (
    "I acknowledge that I have received and read Elgin Police Department policy 16.3, Social "
    "Media, effective November 26, 2013, as shown above; that I have had the opportunity to ask "
    "questions about it; and that I understand and will comply with it. I understand that "
    "violations may result in discipline up to and including termination.")


def sample_acknowledgment(now: datetime | None = None) -> Acknowledgment:
    """An unsaved acknowledgment with every field a real signature fills in."""
    now = now or datetime(2026, 3, 14, 15, 9, 26, tzinfo=timezone.utc)
    return Acknowledgment(
        id=1, sequence=1, member_id=1, assignment_id=1, generation=0, cycle_id=1,
        policy_version_id=1, quiz_attempt_id=1, badge="4127", printed_name="Maria Guadalupe Hernández-Okafor",
        policy_ref="16.3", policy_title="Social Media", policy_effective=date(2013, 11, 26),
        text_sha256=sha256_hex(b"Elgin Police Department 16.3 Social Media"), statement=ATTESTATION,
        signed_at=now, signed_at_local=local_iso(now, Defaults.TIMEZONE), timezone=Defaults.TIMEZONE,
        signed_from_ip="203.0.113.47",
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/131.0 Safari/537.36",
        quiz_attempt_number=2, quiz_score=90, verification_code=new_verification_code(),
        prev_hash="0" * 64, record_hash="f" * 64)


def harfbuzz_subset_in_use() -> bool:
    """Whether WeasyPrint will subset fonts with HarfBuzz-Subset rather than fontTools."""
    from weasyprint.pdf import fonts
    from weasyprint.text.ffi import harfbuzz

    return fonts.harfbuzz_subset is not None and bool(harfbuzz.hb_version_atleast(4, 1, 0))


def force_fonttools() -> None:
    """Make WeasyPrint subset with fontTools, as on a machine without libharfbuzz-subset0."""
    from weasyprint.pdf import fonts

    fonts.harfbuzz_subset = None
    # WeasyPrint warns once per font per render on this path; keep the output readable.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)


def render(ack: Acknowledgment) -> bytes:
    """The receipt exactly as signing renders it."""
    return render_receipt(ack, cycle_name="2026 annual", department=Defaults.DEPARTMENT_NAME)


def render_and_sign(ack: Acknowledgment, sealer) -> bytes:
    """The receipt exactly as signing issues it: rendered, then signed."""
    pdf, _ = issue_receipt(ack, cycle_name="2026 annual", department=Defaults.DEPARTMENT_NAME, sealer=sealer)
    return pdf


def make_sealer(folder: Path, tsa_url: str | None = None):
    """A sealer with a generated self-signed key, as a default install has after ``init``."""
    from lms.services.receipt_signature import receipt_sealer

    config = {"DEPARTMENT_NAME": Defaults.DEPARTMENT_NAME, "PUBLIC_URL": "https://rollcall.example.org",
              "TSA_URL": tsa_url}
    return receipt_sealer(config, folder)


def variants(ack: Acknowledgment) -> dict[str, Callable[[], bytes]]:
    """The shipped rendering and the alternatives weighed against it."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    html = pdf.render_template("receipt.html", ack=ack, cycle_name="2026 annual",
                               department=Defaults.DEPARTMENT_NAME)
    base_url = pdf.STATIC_DIR.as_uri() + "/"

    def with_options(**options) -> Callable[[], bytes]:
        def run() -> bytes:
            document = pdf.render_document(html)
            return document.write_pdf(**{**pdf.PDF_OPTIONS, **options})
        return run

    def setup_per_render() -> bytes:
        # What lms.pdf did before: a new font configuration and stylesheet for every receipt.
        font_config = FontConfiguration()
        fetcher = pdf.StaticOnlyFetcher()
        stylesheet = CSS(url=pdf.STYLESHEET.as_uri(), url_fetcher=fetcher, font_config=font_config)
        document = HTML(string=html, base_url=base_url, url_fetcher=fetcher)
        return document.write_pdf(font_config=font_config, stylesheets=[stylesheet], **pdf.PDF_OPTIONS)

    def untagged() -> bytes:
        setup = pdf._print_setup()
        document = HTML(string=html, base_url=base_url, url_fetcher=pdf.StaticOnlyFetcher())
        return document.write_pdf(font_config=setup.font_config, stylesheets=[setup.stylesheet])

    return {
        "as shipped (setup reused, tagged PDF/UA-1)": lambda: render(ack),
        "setup per render (before)": setup_per_render,
        "untagged, no PDF/UA": untagged,
        "full_fonts (no subsetting)": with_options(full_fonts=True),
        "hinting kept": with_options(hinting=True),
    }


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="timed renders after one warm-up (default 20)")
    parser.add_argument("--out", type=Path, help="also write one sample receipt to this file")
    parser.add_argument("--fonttools", action="store_true",
                        help="subset fonts with fontTools, as without libharfbuzz-subset0")
    parser.add_argument("--variants", action="store_true", help="also time the alternatives weighed")
    parser.add_argument("--tsa-url", help="timestamp each signature from this RFC 3161 authority")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")
    if args.fonttools:
        force_fonttools()

    import tempfile

    import weasyprint

    ack = sample_acknowledgment()
    folder = tempfile.TemporaryDirectory()
    sealer = make_sealer(Path(folder.name), args.tsa_url)
    runs = variants(ack) if args.variants else {"receipt rendered": lambda: render(ack)}
    runs["receipt rendered and signed" + (" with a timestamp" if args.tsa_url else "")] = \
        lambda: render_and_sign(ack, sealer)
    sizes = {name: len(run()) for name, run in runs.items()}  # warm-up
    if args.out:
        args.out.write_bytes(render_and_sign(ack, sealer))
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.n):
        for name, run in runs.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - start) * 1000)
            cpu[name].append((time.process_time() - cpu_start) * 1000)

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"WeasyPrint {weasyprint.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"font subsetting: {'HarfBuzz-Subset' if harfbuzz_subset_in_use() else 'fontTools (slow)'}")
    # CPU time is what a render costs the server; wall time also counts waiting for a busy CPU.
    for name in runs:
        print(f"{name}: {args.n} renders, median {statistics.median(wall[name]):.1f} ms, "
              f"p95 {_percentile(wall[name], 0.95):.1f} ms, min {min(wall[name]):.1f} ms; "
              f"CPU median {statistics.median(cpu[name]):.1f} ms; {sizes[name]:,} bytes")
    if args.out:
        print(f"wrote {args.out}")
    folder.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
