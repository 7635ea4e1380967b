"""Measure the exports and the command line: ``python -m bench.exports [--database-url URL] [--repeat 3]``.

* the roster XLSX of every row of this year's cycle, in process (``roster_rows`` + ``write_xlsx``)
  and through the CLI (``flask --app app lms roster --format xlsx``): target 12 s of CPU at
  50,000 members;
* the roster PDF: 1,000 rows (target 3 s), and the peak memory of a PDF at ROSTER_PDF_MAX_ROWS
  rows, each in a fresh process so its peak resident memory is the PDF's own (target 300 MB);
  rows are generated, no database needed;
* ``flask --app app lms verify`` end to end (target 10 s at 50,000 members);
* CLI start-up, ``flask --app app lms --help`` (target 0.4 s of CPU).

The database is one seeded by ``python -m bench.seed`` (``--database-url``; without it only the
PDF and start-up are measured). CPU time is the figure to compare on a shared machine: wall time
waits for a CPU. Not run by CI; results go in docs/performance.md ("Exports and the command line").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import PROJECT_ROOT, Timing, timed_subprocess

TARGETS = {"xlsx_cpu": 12.0, "pdf_1000": 3.0, "pdf_memory_mb": 300, "verify": 10.0, "cli_start_cpu": 0.4}

#: Run in a fresh interpreter: render a roster PDF of N generated rows; print CPU seconds and the
#: process's peak resident memory (MB).
_PDF_SCRIPT = """
import json, resource, sys, time
from datetime import date, datetime, timezone
from lms.services import roster_export
from lms.services.roster import ROSTER_COLUMNS

n = int(sys.argv[1])
units = ["Patrol North", "Patrol South", "Traffic", "Investigations", "K-9"]
rows = [{**{name: None for name in ROSTER_COLUMNS}, "badge": str(10000 + i), "last_name": f"Member{i:05}",
         "first_name": "Pat", "rank": "Officer", "unit": units[i % 5], "shift": "Days", "supervisor_badge": "1003",
         "status": "exempt" if i % 9 == 0 else "complete", "lessons_completed": 3, "lessons_total": 3,
         "quiz_best_score": 90, "quiz_attempts": 1,
         "acknowledged_at": None if i % 9 == 0 else "2026-03-08T09:14:05-06:00",
         "policy_version": date(2013, 11, 26), "due_date": date(2026, 12, 31),
         "exemption_reason": "Military leave" if i % 9 == 0 else None} for i in range(n)]
kwargs = dict(title="2026 annual roster", filters_text="bench", generated_at=datetime.now(timezone.utc),
              counts={"complete": n}, unit_summary=[(u, n // 5, n // 5) for u in units], department="Bench PD")
roster_export.render_pdf(rows[:5], **kwargs)  # fonts and stylesheet set up once, as in a server
start = time.process_time()
data = roster_export.render_pdf(rows, **kwargs)
cpu = time.process_time() - start
print(json.dumps({"cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "bytes": len(data)}))
"""


def pdf_run(rows: int) -> dict:
    """One PDF of ``rows`` rows in a fresh process: CPU seconds, peak memory (MB), size."""
    result = subprocess.run([sys.executable, "-c", _PDF_SCRIPT, str(rows)], cwd=PROJECT_ROOT, check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout.splitlines()[-1])


def xlsx_in_process(url: str, repeat: int) -> tuple[Timing, int]:
    """``roster_rows`` + ``write_xlsx`` of this year's whole roster into a temporary file."""
    from sqlalchemy import select

    from lms import create_app
    from lms.db import get_database, utcnow
    from lms.models import Cycle
    from lms.services import roster_export
    from lms.services.clock import local_date
    from lms.services.roster import RosterFilters, roster_rows

    instance = Path(tempfile.mkdtemp(prefix="rc-bench-instance-"))
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "SEED_DEMO_ON_FIRST_RUN": False})
    tz = app.config["TIMEZONE"]
    today = local_date(utcnow(), tz)
    session = get_database(app).sessionmaker()
    cycle_id = session.scalars(select(Cycle.id).where(Cycle.year == today.year).order_by(Cycle.id)).first()
    walls, cpus, count = [], [], 0
    try:
        for _ in range(repeat):
            with tempfile.TemporaryFile() as out:
                cpu, wall = time.process_time(), time.perf_counter()
                count = roster_export.write_xlsx(roster_rows(session, RosterFilters(cycle_id=cycle_id), today=today,
                                                             tz=tz), out, title="bench", filters_text="bench")
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            session.rollback()
    finally:
        session.close()
        get_database(app).dispose()
    return Timing(statistics.median(walls), statistics.median(cpus), repeat, walls), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a database seeded by bench.seed (e.g. 50,000 members)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pdf-rows", type=int, default=1000)
    parser.add_argument("--pdf-bound", type=int, default=None,
                        help="rows for the memory bound (default ROSTER_PDF_MAX_ROWS)")
    args = parser.parse_args(argv)

    from lms.config import Defaults

    bound = args.pdf_bound or Defaults.ROSTER_PDF_MAX_ROWS
    results: dict[str, object] = {}
    instance = Path(tempfile.mkdtemp(prefix="rc-bench-instance-"))
    env = {**os.environ, "LMS_INSTANCE_PATH": str(instance), "LMS_SEED_DEMO_ON_FIRST_RUN": "false",
           "DATABASE_URL": args.database_url or f"sqlite:///{instance / 'empty.sqlite3'}"}

    start = timed_subprocess(["flask", "--app", "app", "lms", "--help"], env, repeat=max(5, args.repeat))
    results["cli_start"] = str(start)
    print(f"CLI start-up (--help): {start}  target cpu {TARGETS['cli_start_cpu']} s", flush=True)

    pdfs = [pdf_run(args.pdf_rows) for _ in range(args.repeat)]
    pdf = {"cpu": statistics.median(p["cpu"] for p in pdfs), "peak_mb": max(p["peak_mb"] for p in pdfs)}
    results["pdf"] = pdf
    print(f"roster PDF, {args.pdf_rows:,} rows: cpu {pdf['cpu']:.2f} s, peak {pdf['peak_mb']:.0f} MB  "
          f"target {TARGETS['pdf_1000']} s", flush=True)
    at_bound = pdf_run(bound)
    results["pdf_bound"] = {"rows": bound, **at_bound}
    print(f"roster PDF at the bound, {bound:,} rows: cpu {at_bound['cpu']:.2f} s, peak {at_bound['peak_mb']:.0f} MB  "
          f"target {TARGETS['pdf_memory_mb']} MB (larger views are refused)", flush=True)

    if args.database_url:
        timing, count = xlsx_in_process(args.database_url, args.repeat)
        results["xlsx_in_process"] = str(timing)
        print(f"roster XLSX in process, {count:,} rows: {timing}  target cpu {TARGETS['xlsx_cpu']} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="rc-bench-") as folder:
            from datetime import date

            year = date.today().year
            cli = timed_subprocess(["flask", "--app", "app", "lms", "roster", "--cycle", str(year), "--format",
                                    "xlsx", "--out", str(Path(folder) / "roster.xlsx")], env,
                                   repeat=args.repeat, warmup=0)
            results["xlsx_cli"] = str(cli)
            print(f"roster XLSX through the CLI: {cli}", flush=True)
        verify = timed_subprocess(["flask", "--app", "app", "lms", "verify"], env, repeat=args.repeat, warmup=0)
        results["verify"] = str(verify)
        print(f"verify: {verify}  target {TARGETS['verify']} s", flush=True)
    out = PROJECT_ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "exports.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
