"""Backups that restore: a consistent copy of the database while the app runs, and bringing one
back into the database ``DATABASE_URL`` names.

SQLite is copied with its online backup API (one step, under a read transaction, so the copy is
one moment of the database while writers carry on). PostgreSQL is dumped with ``pg_dump`` as a
custom-format archive from a snapshot this module exports, so the chain head it reports is the one
inside the archive. A restore replaces the whole database in one transaction (PostgreSQL) or one
backup step (SQLite): it either lands completely or leaves the database as it was.

Backup files hold every member's records: they are created readable by their owner only (0600).
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine

#: Tables whose rows come from content/ or the schema itself: a database holding only these is
#: still empty (``flask lms init`` has run, nothing else has).
SCHEMA_AND_CONTENT_TABLES = frozenset({"alembic_version", "chain_head", "policy", "policy_version", "lesson",
                                       "question", "question_option"})
#: How long a PostgreSQL restore waits for app servers or workers still using the tables.
LOCK_TIMEOUT = "30s"
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class ChainHeadState:
    """The record chain's head as a backup or restore left it."""

    sequence: int
    last_hash: str

    def __str__(self) -> str:
        return f"sequence {self.sequence}, hash {self.last_hash}"


def backup(engine: Engine, out: Path) -> ChainHeadState:
    """Write a consistent copy of the database to ``out`` (mode 0600, replaced whole or not at
    all); the chain head inside the copy."""
    out = Path(out)
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a folder")
    temporary = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        if engine.dialect.name == "sqlite":
            head = _backup_sqlite(engine, temporary)
        else:
            head = _backup_postgresql(engine, temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return head


def restore(engine: Engine, source: Path, *, force: bool = False) -> ChainHeadState:
    """Replace the database's contents with the backup in ``source``; refuses a database holding
    members or records unless ``force``. The chain head now in the database."""
    source = Path(source)
    try:
        with open(source, "rb") as handle:
            magic = handle.read(16)
    except OSError as exc:
        raise BackupError(f"cannot read {source}: {exc.strerror}") from None
    kind = "sqlite" if magic.startswith(SQLITE_MAGIC) else "postgresql" if magic.startswith(PG_DUMP_MAGIC) else None
    if kind is None:
        raise BackupError(f"{source} is not a Roll Call backup (neither an SQLite database nor a pg_dump archive)")
    if kind != engine.dialect.name:
        raise BackupError(f"{source} is a {_label(kind)} backup but DATABASE_URL names a "
                          f"{_label(engine.dialect.name)} database; restore it into a {_label(kind)} database")
    if not force and not is_empty(engine):
        raise BackupError("the database already holds members or records; restoring would replace them. "
                          "Check DATABASE_URL, and add --force to replace them")
    engine.dispose()  # no pooled connection of ours may hold the old database open
    if kind == "sqlite":
        _restore_sqlite(engine, source)
    else:
        _restore_postgresql(engine, source)
    engine.dispose()
    with engine.connect() as connection:
        return _chain_head(connection)


def is_empty(engine: Engine) -> bool:
    """Whether the database holds nothing but the schema and content (nothing a restore would lose)."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names()) - SCHEMA_AND_CONTENT_TABLES
        return not any(connection.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1')).first() for table in sorted(tables))


def _label(kind: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(kind, kind)


def _chain_head(connection) -> ChainHeadState:
    try:
        row = connection.execute(text("SELECT sequence, last_hash FROM chain_head WHERE id = 1")).one()
    except Exception:
        raise BackupError("the database holds no record chain: it is not a Roll Call database") from None
    return ChainHeadState(row.sequence, row.last_hash)


# --- SQLite ---------------------------------------------------------------------------------------

def _backup_sqlite(engine: Engine, target: Path) -> ChainHeadState:
    raw = engine.raw_connection()
    try:
        copy = sqlite3.connect(target)
        try:
            raw.driver_connection.backup(copy)  # every page in one step: one consistent moment
            # A single self-contained file (the live database runs in WAL mode).
            copy.execute("PRAGMA journal_mode=DELETE")
            row = copy.execute("SELECT sequence, last_hash FROM chain_head WHERE id = 1").fetchone()
        finally:
            copy.close()
    finally:
        raw.close()
    return ChainHeadState(*row)


def _restore_sqlite(engine: Engine, source: Path) -> None:
    backup_db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if backup_db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{source} is damaged (SQLite's quick_check failed)")
        tables = {name for (name,) in backup_db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"alembic_version", "chain_head"} <= tables:
            raise BackupError(f"{source} is an SQLite database but not a Roll Call backup")
        raw = engine.raw_connection()
        try:
            backup_db.backup(raw.driver_connection)
        finally:
            raw.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot restore {source}: {exc}") from None
    finally:
        backup_db.close()


# --- PostgreSQL -----------------------------------------------------------------------------------

def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and an environment carrying the password
    (so it never shows in the process list)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return conninfo, env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed; install the PostgreSQL client (Debian: postgresql-client)")
    return path


def _major_version(tool: str) -> int:
    output = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\b(\d+)(?:\.\d+)?", output)
    if match is None:
        raise BackupError(f"cannot tell the version of {tool} from {output.strip()!r}")
    return int(match.group(1))


def _backup_postgresql(engine: Engine, target: Path) -> ChainHeadState:
    pg_dump = _tool("pg_dump")
    conninfo, env = _libpq(engine.url)
    with engine.connect() as connection:
        server = int(connection.execute(text("SHOW server_version_num")).scalar()) // 10000
        client = _major_version(pg_dump)
        if client < server:
            raise BackupError(f"pg_dump {client} cannot dump a PostgreSQL {server} server; "
                              f"install the PostgreSQL {server} client (Debian: postgresql-client-{server})")
        connection.rollback()
        # Export a snapshot and read the chain head in it; pg_dump dumps that same snapshot, so the
        # head reported is the archive's, whatever is signed meanwhile.
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
            head = _chain_head(connection)
            with open(target, "wb") as out:
                result = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                                         f"--snapshot={snapshot}", f"--dbname={conninfo}"],
                                        stdout=out, stderr=subprocess.PIPE, env=env)
    if result.returncode != 0:
        raise BackupError("pg_dump failed: " + result.stderr.decode(errors="replace").strip())
    return head


def _restore_postgresql(engine: Engine, source: Path) -> None:
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    conninfo, env = _libpq(engine.url)
    listing = subprocess.run([pg_restore, "--list", str(source)], capture_output=True, env=env)
    if listing.returncode != 0:
        raise BackupError(f"pg_restore cannot read {source}: " + listing.stderr.decode(errors="replace").strip())
    if b" TABLE public chain_head " not in listing.stdout:
        raise BackupError(f"{source} is a pg_dump archive but not of a Roll Call database")
    # The archive as SQL, run by psql in one transaction after emptying the schema: all or nothing.
    with subprocess.Popen([pg_restore, "--no-owner", "--no-privileges", "--file=-", str(source)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as restore_sql, \
         subprocess.Popen([psql, "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
                           "--file=-", f"--dbname={conninfo}"],
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env) as apply_sql:
        try:
            # A server still running holds the tables: fail after a while, naming the lock, rather
            # than wait for ever.
            apply_sql.stdin.write(f"SET lock_timeout = '{LOCK_TIMEOUT}';\n".encode()
                                  + b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
            shutil.copyfileobj(restore_sql.stdout, apply_sql.stdin)
            apply_sql.stdin.close()
        except BrokenPipeError:
            pass  # psql stopped at an error; reported below
        finally:
            restore_sql.stdout.close()  # pg_restore stops too if psql did
        restore_errors = restore_sql.stderr.read()
        apply_errors = apply_sql.stderr.read()
        restore_sql.wait()
        apply_sql.wait()
    if restore_sql.returncode != 0:
        raise BackupError("pg_restore failed; the database is unchanged: "
                          + restore_errors.decode(errors="replace").strip())
    if apply_sql.returncode != 0:
        raise BackupError("restoring failed; the database is unchanged: "
                          + apply_errors.decode(errors="replace").strip())
