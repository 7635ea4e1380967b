"""Time receipt rendering: ``python -m bench.receipt [--n 20] [--out FILE.pdf]``.

Builds a realistic acknowledgment in memory (no database), renders its receipt once to warm up
(fonts, stylesheets, imports), then times ``render_receipt`` over N runs and prints the median
and 95th percentile, and whether WeasyPrint subsets fonts with HarfBuzz-Subset (fast) or
fontTools (slow). ``--fonttools`` forces the fontTools path to measure a machine without
libharfbuzz-subset0. Results and what they led to: docs/performance.md.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

from lms.config import Defaults
from lms.models import Acknowledgment
from lms.services.clock import local_iso
from lms.services.content import sha256_hex
from lms.services.records import new_verification_code
from lms.services.signing import render_receipt

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
    import logging

    from weasyprint.pdf import fonts

    fonts.harfbuzz_subset = None
    # WeasyPrint warns once per font per render on this path; keep the output readable.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)


def render(ack: Acknowledgment) -> bytes:
    return render_receipt(ack, cycle_name="2026 annual", department=Defaults.DEPARTMENT_NAME)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="timed renders after one warm-up (default 20)")
    parser.add_argument("--out", type=Path, help="also write one sample receipt to this file")
    parser.add_argument("--fonttools", action="store_true",
                        help="subset fonts with fontTools, as without libharfbuzz-subset0")
    args = parser.parse_args(argv)
    if args.fonttools:
        force_fonttools()

    ack = sample_acknowledgment()
    sample = render(ack)  # warm-up: imports, font loading, stylesheet parsing
    if args.out:
        args.out.write_bytes(sample)
    times = []
    for _ in range(args.n):
        start = time.perf_counter()
        render(ack)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]

    import weasyprint

    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()} "
          f"weasyprint {weasyprint.__version__}".replace("  ", " "))
    print(f"font subsetting: {'HarfBuzz-Subset' if harfbuzz_subset_in_use() else 'fontTools (slow)'}")
    print(f"receipt: {len(sample):,} bytes")
    print(f"renders: {args.n}  median {statistics.median(times):.1f} ms  p95 {p95:.1f} ms  "
          f"min {times[0]:.1f} ms  max {times[-1]:.1f} ms")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
