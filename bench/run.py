"""Measure the roster at scale: ``python -m bench.run [--sqlite PATH] [--postgres URL] [--people 50000]``.

For each database it seeds a dataset with ``bench.seed`` when the database is empty (or reuses the
one there, upgrading its schema first), then times, as the median of several runs:

* roster summary: ``status_counts`` + ``unit_summary`` for the current cycle (target 0.15 s),
  and the same figures from one query with ``roster_summary``;
* the full roster CSV through the CLI, end to end (``flask --app app lms roster --format csv``
  in a subprocess), for --people and for --small members (target 1.5 s, and a ratio of at
  most 12 between them), with the CLI's bare start-up and the in-process export beside it;
* one roster web page: the Flask test client signed in as the demo coordinator, GET
  ``/coordinator/cycles/<cycle_id>/roster`` (target 100 ms);
* a 1,000-row roster PDF with ``roster_export.render_pdf`` (target 3 s).

Wall time is what the targets are about; CPU time is shown beside it because a busy machine
stretches wall time. For PostgreSQL the CPU column adds the server backend's CPU (read from
/proc when the server runs on this machine), except for the web page, where it is the client's.
SQLite files go in the --sqlite folder, one per
size; PostgreSQL sizes go in schemas ``bench_<people>`` of the --postgres database, so its
public schema is never touched. Results: docs/performance.md; raw figures in bench/out/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, make_url, select, text

from bench import seed as bench_seed

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUT = PROJECT_ROOT / "bench" / "out"
TARGETS = {"summary": 0.15, "csv": 1.5, "csv_ratio": 12, "page": 0.100, "pdf": 3.0}


@dataclass
class Timing:
    """Medians of several runs, in seconds."""

    wall: float
    cpu: float
    runs: int
    walls: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{_fmt(self.wall)} (cpu {_fmt(self.cpu)})"


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --- databases -----------------------------------------------------------------------------------

def sqlite_url(folder: Path, people: int) -> str:
    return f"sqlite:///{folder / f'rollcall-{people}.sqlite3'}"


def postgres_url(url: str, people: int) -> str:
    """The URL with its search_path set to this size's schema."""
    return make_url(url).update_query_dict({"options": f"-csearch_path=bench_{people}"}).render_as_string(
        hide_password=False)


def ensure_seeded(url: str, people: int, *, reseed: bool, seed_value: int) -> str:
    """Seed the database if it is empty (or ``reseed``); say what was done."""
    from lms.db import make_engine
    from lms.models import Member

    bench_seed.prepare_database(url, reset=False)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            members = conn.scalar(select(func.count()).select_from(Member.__table__)) \
                if conn.dialect.has_table(conn, "member") else 0
    finally:
        engine.dispose()
    if members and not reseed:
        if members != people:
            raise SystemExit(f"{_safe(url)} holds {members} members, not {people}; pass --reseed")
        # A dataset seeded before a schema change is brought up to date as a deployment would be
        # (flask lms init), so a new migration is measured on 50,000 members too.
        from alembic.migration import MigrationContext

        from lms import migrate

        def revision() -> str | None:
            with engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()

        engine = make_engine(url)
        try:
            before, started = revision(), time.perf_counter()
            migrate.upgrade(engine)
            took, after = time.perf_counter() - started, revision()
            if after != before:
                # Statistics and the visibility map after the upgrade's writes, as autovacuum
                # would set them within minutes (the seed does the same after loading).
                bench_seed._settle(engine)
        finally:
            engine.dispose()
        if after == before:
            return f"reused ({members:,} members)"
        return f"reused ({members:,} members), upgraded {before} -> {after} in {took:.1f} s"
    started = time.perf_counter()
    bench_seed.seed(url, people=people, seed_value=seed_value, reset=bool(members),
                    log=lambda message: print("    " + message))
    return f"seeded in {time.perf_counter() - started:.0f} s"


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# --- timing ----------------------------------------------------------------------------------------

class ServerClock:
    """CPU seconds used by this session's PostgreSQL backend, when it runs on this machine."""

    def __init__(self, session):
        self.path = None
        if session.get_bind().dialect.name == "postgresql":
            pid = session.scalar(text("SELECT pg_backend_pid()"))
            path = Path(f"/proc/{pid}/stat")
            self.path = path if path.exists() else None
        self.ticks = os.sysconf("SC_CLK_TCK")

    def read(self) -> float:
        if self.path is None:
            return 0.0
        fields = self.path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks  # utime, stime


def timed(run: Callable[[], object], *, repeat: int, server: ServerClock | None = None,
          warmup: int = 1) -> Timing:
    """Median wall and CPU time of ``run`` (client CPU plus the server backend's, if known)."""
    for _ in range(warmup):
        run()
    walls, cpus = [], []
    for _ in range(repeat):
        server_before = server.read() if server else 0.0
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        run()
        walls.append(time.perf_counter() - wall_before)
        cpus.append(time.process_time() - cpu_before + ((server.read() - server_before) if server else 0.0))
    return Timing(statistics.median(walls), statistics.median(cpus), repeat, walls)


def timed_subprocess(argv: list[str], env: dict, *, repeat: int, warmup: int = 1) -> Timing:
    """Median wall and CPU time (the child's user + system) of a command."""
    for _ in range(warmup):
        subprocess.run(argv, env=env, check=True, capture_output=True, cwd=PROJECT_ROOT)
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall_before = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True, cwd=PROJECT_ROOT)
        walls.append(time.perf_counter() - wall_before)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return Timing(statistics.median(walls), statistics.median(cpus), repeat, walls)


# --- the measurements ------------------------------------------------------------------------------

def measure(url: str, small_url: str, *, repeat: int) -> dict[str, Timing | str]:
    """Every target on one database (``small_url`` holds the small dataset for the CSV ratio)."""
    from sqlalchemy import select

    from lms import create_app
    from lms.db import get_database, utcnow
    from lms.models import Cycle
    from lms.services import roster_export
    from lms.services.clock import local_date
    from lms.services.roster import RosterFilters, roster_rows, roster_summary, status_counts, unit_summary

    tz = "America/Chicago"
    instance = Path(tempfile.mkdtemp(prefix="rc-bench-instance-"))
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "SEED_DEMO_ON_FIRST_RUN": False})
    tz = app.config["TIMEZONE"]
    year = local_date(utcnow(), tz).year
    today = local_date(utcnow(), tz)
    results: dict[str, Timing | str] = {}
    session = get_database(app).sessionmaker()
    # This year's annual cycle, by its name (a year can have several cycles).
    cycle_id = session.scalar(select(Cycle.id).where(Cycle.name == f"{year} annual"))
    filters = RosterFilters(cycle_id=cycle_id)
    try:
        server = ServerClock(session)

        def summary():
            status_counts(session, filters, today=today, tz=tz)
            unit_summary(session, filters, today=today, tz=tz)
            session.rollback()

        results["summary"] = timed(summary, repeat=repeat, server=server)

        def summary_once():
            roster_summary(session, filters, today=today, tz=tz)
            session.rollback()

        results["summary_once"] = timed(summary_once, repeat=repeat, server=server)

        def export_in_process():
            with open(os.devnull, "w", newline="") as out:
                roster_export.write_csv(roster_rows(session, filters, today=today, tz=tz), out)
            session.rollback()

        results["csv_in_process"] = timed(export_in_process, repeat=max(3, repeat // 2), server=server)

        rows = list(roster_rows(session, filters, today=today, tz=tz, limit=1000))
        counts = status_counts(session, filters, today=today, tz=tz)
        units = unit_summary(session, filters, today=today, tz=tz)
        session.rollback()

        def pdf():
            roster_export.render_pdf(rows, title=f"{year} annual roster", filters_text="first 1,000 rows",
                                     generated_at=datetime.now(timezone.utc), counts=counts, unit_summary=units,
                                     department=app.config["DEPARTMENT_NAME"])

        results["pdf"] = timed(pdf, repeat=3)
        results["pdf_rows"] = str(len(rows))
    finally:
        session.close()

    results["page"] = measure_page(app, cycle_id, repeat=repeat)
    get_database(app).dispose()

    with tempfile.TemporaryDirectory(prefix="rc-bench-") as folder:
        def cli(database_url: str) -> tuple[list[str], dict]:
            out = Path(folder) / "roster.csv"
            env = {**os.environ, "DATABASE_URL": database_url, "LMS_INSTANCE_PATH": str(instance),
                   "LMS_SEED_DEMO_ON_FIRST_RUN": "false"}
            return ["flask", "--app", "app", "lms", "roster", "--cycle", str(year), "--format", "csv",
                    "--out", str(out)], env

        cli_repeat = max(3, repeat // 2)
        results["csv"] = timed_subprocess(*cli(url), repeat=cli_repeat)
        results["csv_small"] = timed_subprocess(*cli(small_url), repeat=cli_repeat)
        argv, env = cli(url)
        results["cli_start"] = timed_subprocess(["flask", "--app", "app", "lms", "--help"], env, repeat=cli_repeat)
    return results


def measure_page(app, cycle_id: int, *, repeat: int) -> Timing | str:
    """GET the coordinator's roster page as the demo coordinator; None if it cannot sign in."""
    from seeds.demo import DEMO_PASSWORD

    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    response = client.post("/sign-in", data={"badge": "1003", "password": DEMO_PASSWORD,
                                             "csrf_token": token.group(1) if token else ""})
    if response.status_code not in (302, 303):
        return f"could not sign in as the demo coordinator (HTTP {response.status_code})"
    path = f"/coordinator/cycles/{cycle_id}/roster"

    def get():
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
        response.get_data()

    return timed(get, repeat=repeat)


# --- report ----------------------------------------------------------------------------------------

ROWS = [
    ("summary", "roster summary (status_counts + unit_summary)", "summary"),
    ("summary_once", "  the same in one query (roster_summary)", "summary"),
    ("csv", "roster CSV through the CLI, --people members", "csv"),
    ("csv_small", "roster CSV through the CLI, --small members", None),
    ("csv_ratio", "  ratio of the two (wall)", "csv_ratio"),
    ("cli_start", "  of which CLI start-up (flask lms --help)", None),
    ("csv_in_process", "  roster_rows + write_csv in process", None),
    ("page", "one roster web page (50 rows)", "page"),
    ("pdf", "1,000-row roster PDF (render_pdf)", "pdf"),
]


def verdict(key: str | None, value) -> str:
    target = TARGETS.get(key or "")
    if target is None or not isinstance(value, (Timing, float)):
        return ""
    number = value.wall if isinstance(value, Timing) else value
    return "met" if number <= target else "MISSED"


def report(results: dict[str, dict], people: int, small: int) -> str:
    names = list(results)
    lines = [f"{'measure':52} " + " ".join(f"{n:>30}" for n in names) + f" {'target':>10}"]
    for key, label, target_key in ROWS:
        label = label.replace("--people", f"{people:,}").replace("--small", f"{small:,}")
        cells = []
        for name in names:
            value = results[name].get(key)
            if isinstance(value, Timing):
                cell = f"{value} {verdict(target_key, value)}"
            elif isinstance(value, float):
                cell = f"{value:.1f} {verdict(target_key, value)}"
            else:
                cell = value or "-"
            cells.append(f"{cell:>30}")
        target = TARGETS.get(target_key or "")
        shown = "" if target is None else (f"<= {target}" if key == "csv_ratio" else f"<= {_fmt(target)}")
        lines.append(f"{label:52} " + " ".join(cells) + f" {shown:>10}")
    return "\n".join(lines)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), {memory} GB RAM, Python {platform.python_version()}, "
            f"load average {load}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", type=Path, metavar="PATH", default=OUT,
                        help="folder for the SQLite databases (default bench/out)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL database to use (schemas bench_<N>)")
    parser.add_argument("--people", type=int, default=50_000, help="members in the large dataset (default 50000)")
    parser.add_argument("--small", type=int, default=5_000, help="members in the small dataset (default 5000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measure (default 7)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the data is there")
    parser.add_argument("--seed", type=int, default=2026, help="random seed for new data (default 2026)")
    args = parser.parse_args(argv)

    databases = {}
    if not args.no_sqlite:
        args.sqlite.mkdir(parents=True, exist_ok=True)
        databases["SQLite"] = (sqlite_url(args.sqlite, args.people), sqlite_url(args.sqlite, args.small))
    if args.postgres:
        databases["PostgreSQL"] = (postgres_url(args.postgres, args.people),
                                   postgres_url(args.postgres, args.small))
    if not databases:
        parser.error("nothing to measure: give --postgres or drop --no-sqlite")

    print(f"machine: {machine()}")
    results: dict[str, dict] = {}
    for name, (url, small_url) in databases.items():
        for size, database_url in ((args.people, url), (args.small, small_url)):
            print(f"{name}, {size:,} people: {_safe(database_url)}")
            print(f"  {ensure_seeded(database_url, size, reseed=args.reseed, seed_value=args.seed)}")
        print(f"{name}: measuring…")
        measured = measure(url, small_url, repeat=args.repeat)
        if isinstance(measured.get("csv"), Timing) and isinstance(measured.get("csv_small"), Timing):
            measured["csv_ratio"] = measured["csv"].wall / measured["csv_small"].wall
        results[name] = measured

    print()
    print(report(results, args.people, args.small))
    print(f"\nload average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    raw = {"machine": machine(), "people": args.people, "small": args.small,
           "results": {name: {key: asdict(v) if isinstance(v, Timing) else v for key, v in measured.items()}
                       for name, measured in results.items()}}
    (OUT / f"results-{stamp}.json").write_text(json.dumps(raw, indent=2))
    print(f"raw figures: {OUT / f'results-{stamp}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
