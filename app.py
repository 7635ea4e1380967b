"""Roll Call's entry point: ``python app.py`` sets up the database on first run and serves the app.

``flask --app app lms …`` finds ``app`` here for the command line; gunicorn serves ``app:app``.
"""
from __future__ import annotations

import argparse
import os
import sys

from lms import create_app
from lms.config import SettingsError

try:
    app = create_app()
except SettingsError as exc:
    if __name__ == "__main__":
        sys.exit(str(exc))  # the message alone: which setting, what it expects
    raise


def main(argv: list[str] | None = None) -> int:
    """Migrate, load content, seed demo data into an empty database, print the logins, serve."""
    parser = argparse.ArgumentParser(description="Serve Roll Call.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", default=5000, type=int, help="port (default 5000)")
    args = parser.parse_args(argv)

    from lms.services.links import is_loopback, local_url

    if not app.config.get("PUBLIC_URL"):
        if not is_loopback(args.host):
            print(f"Set LMS_PUBLIC_URL to the address members reach Roll Call at (for example "
                  f"https://rollcall.example.org): receipts and e-mails link to it, and serving on "
                  f"{args.host} means it is not this machine's own address.", file=sys.stderr)
            return 2
        app.config["PUBLIC_URL"] = local_url(args.host, args.port)
        # The worker this starts reads the environment: its e-mails link to the same address.
        os.environ["LMS_PUBLIC_URL"] = app.config["PUBLIC_URL"]

    from lms.bootstrap import has_members, init_database
    from lms.cli import print_logins
    from lms.services.content import ContentError
    from lms.services.receipt_signature import SigningConfigError

    try:
        init_database(app)
    except ContentError as exc:
        print("content/ has problems; fix them and start again:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except SigningConfigError as exc:
        print(f"Receipt signing is misconfigured: {exc}", file=sys.stderr)
        return 1
    if app.config["SEED_DEMO_ON_FIRST_RUN"] and not has_members(app):
        from lms.db import get_session, utcnow
        from lms.services.receipt_signature import receipt_sealer
        from seeds.demo import DEMO_PASSWORD, seed_demo

        print("First run: seeding demo personnel and this year's training cycle…")
        with app.app_context():
            session = get_session()
            logins = seed_demo(session, people=app.config["DEMO_PEOPLE"], seed=2026, now=utcnow(),
                               tz=app.config["TIMEZONE"], hash_method=app.config["PASSWORD_HASH_METHOD"],
                               department=app.config["DEPARTMENT_NAME"],
                               sealer=receipt_sealer(app.config, app.instance_path))
            session.commit()
        print_logins(logins, DEMO_PASSWORD)
    else:
        from seeds.demo import DEMO_PASSWORD, DEMO_PEOPLE, DemoLogin

        if app.config["SEED_DEMO_ON_FIRST_RUN"]:
            print_logins([DemoLogin(p[0], f"{p[1]} {p[2]}", p[3], p[7]) for p in DEMO_PEOPLE], DEMO_PASSWORD)
    worker = _start_worker() if app.config["JOBS_WORKER_WITH_APP"] else None
    print(f"Roll Call is running at http://{args.host}:{args.port}/  (Ctrl+C to stop)")
    try:
        app.run(host=args.host, port=args.port, debug=False)
    finally:
        _stop_worker(worker)
    return 0


def _start_worker():
    """A background-jobs worker beside the development server (``flask --app app lms worker``),
    so the demo sends reminders and builds exports with nothing else running. It stops with us:
    on Ctrl+C and SIGTERM here, and by itself if this process dies."""
    import os
    import signal
    import subprocess
    from pathlib import Path

    # SIGTERM (a service manager, a test harness) ends the server like Ctrl+C, so the worker is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    command = [sys.executable, "-m", "flask", "--app", str(Path(__file__).resolve()), "lms", "worker",
               "--parent-pid", str(os.getpid())]
    print("Background jobs: a worker runs beside the server (flask --app app lms worker).")
    return subprocess.Popen(command, env={**os.environ, "LMS_INSTANCE_PATH": app.instance_path})


def _stop_worker(worker) -> None:
    """Stop the worker: let it finish the running job, then insist."""
    import signal
    import subprocess

    if worker is None or worker.poll() is not None:
        return
    worker.send_signal(signal.SIGINT)
    try:
        worker.wait(timeout=10)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


if __name__ == "__main__":
    sys.exit(main())
