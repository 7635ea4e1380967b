"""Page speed against the stack's ceiling: ``python -m bench.pages [--seconds 3] [--rounds 3]``.

Serves Roll Call under gunicorn (2 sync workers, 127.0.0.1 only) with a bare Flask page beside it
in the same processes (``bench.pages_wsgi``), loads each page with wrk (``apt-get install wrk``)
for a few seconds, the bare page right before it, and repeats the whole list ``--rounds`` times,
so a busy machine slows both alike. For every page it prints requests per second, the workers' CPU
per request (from /proc) and the share of the bare page's throughput (target at least 0.35).

Pages are measured for two officers, each signed in with their own session: one with only this
year's cycle, one with four earlier cycles of history (lessons, quiz attempts, signatures) besides,
both at the same stage this year; and on two databases: the demo (``seeds.demo``) and 50,000
members (``bench.seed``, reused from ``bench/out`` when there). The share is printed twice: by requests per
second, and by CPU per request
(the bare page's over the page's), which stays steady when other work shares the machine. The
flatness ratios (target at most 1.2) are CPU per request, 5 cycles over 1 cycle, and 50,000 members over the demo.
The coordinator's roster page is timed at 50,000 members (target 40 ms of CPU).

Not part of the test suite. Results: docs/performance.md, "Pages against a bare Flask page".
"""
from __future__ import annotations

import argparse
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUT = PROJECT_ROOT / "bench" / "out"
SHARE_TARGET, FLAT_TARGET, ROSTER_CPU_TARGET = 0.35, 1.2, 0.040
#: The bench's own officers: (badge, cycles of history, this year's stage).
OFFICERS = [("9101", 1, "quiz_passed"), ("9102", 1, "complete"), ("9501", 5, "quiz_passed"),
            ("9502", 5, "complete")]
HISTORY_YEARS = 4


# --- data ------------------------------------------------------------------------------------------

def demo_database(folder: Path) -> str:
    """A SQLite file in bench/out with the demo data, made once."""
    path = OUT / "pages-demo.sqlite3"
    url = f"sqlite:///{path}"
    if not path.exists():
        from lms import create_app
        from lms.bootstrap import init_database
        from lms.db import get_session, utcnow
        from seeds.demo import seed_demo

        app = create_app(_config(url, folder))
        init_database(app)
        with app.app_context():
            session = get_session()
            seed_demo(session, people=app.config["DEMO_PEOPLE"], seed=2026, now=utcnow(),
                      tz=app.config["TIMEZONE"], hash_method=app.config["PASSWORD_HASH_METHOD"],
                      department=app.config["DEPARTMENT_NAME"])
            session.commit()
    else:  # made by an earlier run: brought up to date as a deployment would be
        from lms import migrate
        from lms.db import make_engine

        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    return url


def large_database(people: int, seed_value: int) -> str:
    """The 50,000-member SQLite file of ``bench.run``, seeded with ``bench.seed`` if missing,
    else brought up to date (it may hold this benchmark's officers besides)."""
    from bench.run import ensure_seeded, sqlite_url
    from lms import migrate
    from lms.db import make_engine

    OUT.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(OUT, people)
    if (OUT / f"rollcall-{people}.sqlite3").exists():
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    else:
        print(f"  {people:,} members: {ensure_seeded(url, people, reseed=False, seed_value=seed_value)}")
    return url


def _config(url: str, folder: Path) -> dict:
    return {"DATABASE_URL": url, "INSTANCE_PATH": str(folder / "instance"), "SEED_DEMO_ON_FIRST_RUN": False,
            "JOBS_WORKER_WITH_APP": False}


def add_officers(url: str, folder: Path) -> None:
    """The bench's officers (``OFFICERS``), added once: this year's cycle walked to the given
    stage through the real services, and for those with history, four earlier annual cycles
    completed (created for them alone where the database has none for that year)."""
    import random

    from sqlalchemy import select

    from lms import create_app
    from lms.db import get_session, utcnow
    from lms.models import Assignment, Cycle, Member, MemberRole
    from lms.services.accounts import hash_password
    from lms.services.cycles import version_in_force
    from lms.services.receipt_signature import receipt_sealer
    from seeds.demo import DEMO_PASSWORD, _walk

    app = create_app(_config(url, folder))
    tz = app.config["TIMEZONE"]
    with app.app_context():
        session = get_session()
        if session.scalar(select(Member.id).where(Member.badge == OFFICERS[0][0])):
            return
        now = utcnow()
        this_year = now.astimezone(ZoneInfo(tz)).year
        rng = random.Random(2026)
        facts = dict(timezone=tz, department=app.config["DEPARTMENT_NAME"], user_agent="bench.pages",
                     sealer=receipt_sealer(app.config, app.instance_path))
        password = hash_password(DEMO_PASSWORD, app.config["PASSWORD_HASH_METHOD"])
        current = session.scalar(select(Cycle).where(Cycle.year == this_year))
        for badge, cycles, stage in OFFICERS:
            member = Member(badge=badge, first_name="Bench", last_name=f"Officer {badge}", unit="Patrol Division",
                            shift="Day", rank="Officer", email=f"bench.{badge}@example.org", status="active",
                            hire_date=date(2010, 1, 4), password_hash=password,
                            roles=[MemberRole(role="officer")])
            session.add(member)
            session.flush()
            for year in range(this_year - cycles + 1, this_year + 1):
                cycle = current if year == this_year else session.scalar(select(Cycle).where(Cycle.year == year))
                opened = datetime.combine(date(year, 1, 2), clock_time(9), ZoneInfo(tz)).astimezone(UTC)
                if cycle is None:
                    versions = [version_in_force(session, v.policy_id, date(year, 1, 2)) or v
                                for v in current.policy_versions]
                    cycle = Cycle(year=year, name=f"{year} annual", due_date=date(year, 12, 31), audience={
                        "units": [], "ranks": []}, created_at=opened, policy_versions=versions)
                    session.add(cycle)
                    session.flush()
                for version in cycle.policy_versions:
                    assignment = Assignment(cycle_id=cycle.id, member_id=member.id, policy_version_id=version.id,
                                            due_date=cycle.due_date, assigned_at=opened)
                    session.add(assignment)
                    session.flush()
                    # A past cycle's work happened in that year, not today.
                    end = min(now, opened + timedelta(days=60))
                    _walk(session, assignment, member, stage if year == this_year else "complete", rng, end, facts)
            session.commit()


# --- serving and loading ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with 2 sync workers serving ``bench.pages_wsgi`` on 127.0.0.1."""

    def __init__(self, url: str, folder: Path):
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "LMS_INSTANCE_PATH": str(folder / "instance"),
               "LMS_SEED_DEMO_ON_FIRST_RUN": "false", "LMS_JOBS_WORKER_WITH_APP": "false",
               # HR signs in with the password alone here: enrolling an authenticator is not the
               # page being measured.
               "LMS_MFA_REQUIRED_ROLES": "admin"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{self.port}",
             "--timeout", "120", "--log-level", "warning", "bench.pages_wsgi:app"],
            env=env, cwd=PROJECT_ROOT, stderr=(folder / "gunicorn.log").open("ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/_bare/")[0] == 200 and len(self.workers()) == 2:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def cpu(self) -> float:
        """CPU seconds used so far by the workers (user + system)."""
        total = 0
        for pid in self.workers():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def request(self, method: str, path: str, body: dict | None = None, cookie: str = ""):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": cookie} if cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, urlencode(body) if body is not None else None, headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace"), response.getheader("Set-Cookie") or "", \
            response.getheader("Location") or ""

    def sign_in(self, badge: str) -> str:
        """A signed-in session cookie for ``badge`` (the demo password)."""
        from seeds.demo import DEMO_PASSWORD

        _, page, set_cookie, _ = self.request("GET", "/sign-in")
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
        status, _, set_cookie, _ = self.request(
            "POST", "/sign-in", {"badge": badge, "password": DEMO_PASSWORD, "csrf_token": token},
            cookie=set_cookie.split(";")[0])
        if status not in (302, 303):
            raise SystemExit(f"could not sign in as {badge} (HTTP {status})")
        return set_cookie.split(";")[0]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Load:
    """Throughput and the workers' CPU per request of one page, over the rounds."""

    rps: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)

    @property
    def share(self) -> float:
        return statistics.median(self.shares)

    @property
    def cpu_ms(self) -> float:
        return 1000 * statistics.median(self.cpu)

    #: The bare page's CPU per request over this page's, measured beside it: the share of the bare
    #: page's throughput two CPU-bound workers would reach. Steadier than requests per second when
    #: other work shares the machine.
    cpu_shares: list[float] = field(default_factory=list)

    @property
    def cpu_share(self) -> float:
        return statistics.median(self.cpu_shares)


def wrk(server: Server, path: str, cookie: str, seconds: float) -> tuple[float, float]:
    """Requests per second and CPU seconds per request of ``path``, 2 connections for 2 workers."""
    status = server.request("GET", path, cookie=cookie)[0]
    if status != 200:
        raise SystemExit(f"GET {path} answered {status}")
    before = server.cpu()
    argv = ["wrk", "-t", "1", "-c", "2", "-d", f"{seconds:g}s", f"http://127.0.0.1:{server.port}{path}"]
    if cookie:
        argv[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    used = server.cpu() - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"GET {path}: {non_2xx.group(1)} answers were not 200")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), used / max(1, requests)


def officer_pages(server: Server, badge: str) -> dict[str, tuple[str, str]]:
    """Each officer page of this year's assignment for ``badge``: name -> (path, cookie)."""
    cookie = server.sign_in(badge)
    _, dashboard, _, _ = server.request("GET", "/training/", cookie=cookie)
    ids = [int(i) for i in re.findall(r'href="/training/(\d+)"', dashboard)]
    assignment = ids[0]  # newest cycle first
    _, page, _, _ = server.request("GET", f"/training/{assignment}", cookie=cookie)
    lesson = re.search(rf'href="(/training/{assignment}/lessons/\d+)"', page).group(1)
    _, quiz, _, _ = server.request("GET", f"/training/{assignment}/quiz", cookie=cookie)
    result = re.search(rf'href="(/training/{assignment}/quiz/\d+)"', quiz).group(1)
    pages = {"dashboard": "/training/", "assignment": f"/training/{assignment}", "lesson": lesson,
             "quiz": f"/training/{assignment}/quiz", "quiz result": result, "history": "/training/history"}
    stage = dict((b, s) for b, _, s in OFFICERS)[badge]
    pages["signed" if stage == "complete" else "sign"] = \
        f"/training/{assignment}/{'signed' if stage == 'complete' else 'sign'}"
    return {name: (path, cookie) for name, path in pages.items()}


def measure(url: str, folder: Path, *, seconds: float, rounds: int, roster: bool) -> dict[str, Load]:
    """Every page on one database, each beside the bare page, interleaved over ``rounds``."""
    from sqlalchemy import create_engine, select

    from lms.models import Member

    engine = create_engine(url)
    with engine.connect() as conn:
        member_id = conn.scalar(select(Member.id).where(Member.badge == "9501"))
    engine.dispose()
    server = Server(url, folder)
    try:
        targets: dict[str, tuple[str, str]] = {"sign-in": ("/sign-in", "")}
        for badge, cycles, _ in OFFICERS:
            for name, target in officer_pages(server, badge).items():
                targets.setdefault(f"{name} ({cycles} cycle{'s' if cycles > 1 else ''})", target)
        hr = server.sign_in("1004")
        targets["HR member page (5 cycles)"] = (f"/hr/members/{member_id}", hr)
        if roster:
            year = datetime.now(ZoneInfo("America/Chicago")).year
            targets["coordinator roster"] = (f"/coordinator/cycles/{year}/roster", server.sign_in("1003"))
        results = {name: Load() for name in ["bare page", *targets]}
        for round_ in range(rounds):
            for name, (path, cookie) in targets.items():
                bare_rps, bare_cpu = wrk(server, "/_bare/", "", seconds)
                rps, cpu = wrk(server, path, cookie, seconds)
                results["bare page"].rps.append(bare_rps)
                results["bare page"].cpu.append(bare_cpu)
                results[name].rps.append(rps)
                results[name].cpu.append(cpu)
                results[name].shares.append(rps / bare_rps)
                results[name].cpu_shares.append(bare_cpu / cpu)
            print(f"    round {round_ + 1} of {rounds} done (load average {os.getloadavg()[0]:.1f})")
        results["bare page"].shares = results["bare page"].cpu_shares = [1.0]
        return results
    finally:
        server.stop()


# --- report ----------------------------------------------------------------------------------------

def report(results: dict[str, dict[str, Load]]) -> str:
    """Per page and database: requests per second, the workers' CPU per request, the share of the
    bare page's throughput (by requests per second, and by CPU), then the flatness ratios."""
    names = list(results)
    pages = list(dict.fromkeys(page for name in names for page in results[name]))
    header = "req/s, CPU/req, share (req/s; CPU)"
    lines = [f"{'page':30}" + "".join(f"{n + ': ' + header:>52}" for n in names)]
    for page in pages:
        cells = []
        for name in names:
            load = results[name].get(page)
            if load is None:
                cells.append(f"{'-':>52}")
                continue
            if page == "coordinator roster":
                verdict = "ok" if load.cpu_ms <= ROSTER_CPU_TARGET * 1000 else "OVER"
            elif page == "bare page":
                verdict = ""
            else:
                verdict = "ok" if max(load.share, load.cpu_share) >= SHARE_TARGET else "LOW"
            cells.append(f"{statistics.median(load.rps):10.0f} {load.cpu_ms:9.2f} ms {load.share:8.2f}; "
                         f"{load.cpu_share:4.2f} {verdict:>5}".rjust(52))
        lines.append(f"{page:30}" + "".join(cells))
    lines.append("")
    lines.append(f"flatness, CPU per request (target <= {FLAT_TARGET})")
    for name in names:
        for page in results[name]:
            if "(5 cycles)" in page and page.replace("5 cycles", "1 cycle") in results[name]:
                ratio = results[name][page].cpu_ms / results[name][page.replace("5 cycles", "1 cycle")].cpu_ms
                lines.append(f"  {name}: {page.replace(' (5 cycles)', '')}: 5 cycles / 1 cycle = {ratio:.2f}"
                             f"{'' if ratio <= FLAT_TARGET else '  OVER'}")
    if len(names) == 2:
        small, large = (results[n] for n in names)
        for page in small:
            if page in large and page != "bare page":
                ratio = large[page].cpu_ms / small[page].cpu_ms
                lines.append(f"  {page}: {names[1]} / {names[0]} = {ratio:.2f}"
                             f"{'' if ratio <= FLAT_TARGET else '  OVER'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="seconds of load per page per round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every page (default 3)")
    parser.add_argument("--people", type=int, default=50_000, help="members in the large dataset (default 50000)")
    parser.add_argument("--no-large", action="store_true", help="the demo database only")
    parser.add_argument("--seed", type=int, default=2026, help="random seed for new data (default 2026)")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="rc-bench-pages-"))
    print("preparing data…")
    databases = {"demo": demo_database(folder)}
    if not args.no_large:
        databases[f"{args.people:,} members"] = large_database(args.people, args.seed)
    for url in databases.values():
        add_officers(url, folder)
    results = {}
    for name, url in databases.items():
        print(f"{name}: measuring ({args.rounds} rounds of {args.seconds:g} s per page, load average "
              f"{os.getloadavg()[0]:.1f})")
        results[name] = measure(url, folder, seconds=args.seconds, rounds=args.rounds,
                                roster=name != "demo")
    print()
    print(report(results))
    print(f"\nload average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
