"""Database plumbing: the declarative base, the engine and one session per request."""
from __future__ import annotations

import os
from datetime import datetime, timezone

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite has no time zone type; storing naive UTC everywhere and re-attaching UTC on the way out
    keeps comparisons and ISO output identical on SQLite and PostgreSQL.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(timezone.utc)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and synchronous=FULL on every connection."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        path = make_url(url).database

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # Before any pragma writes: the -wal and -shm files SQLite creates take this mode.
            _private_database_file(path)
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _private_database_file(path: str | None) -> None:
    """Make an SQLite database file readable by its owner only (it holds personnel records and
    signed receipts); SQLite gives its -wal and -shm files the same mode. Called as each
    connection opens, so a new file is tightened before anything is written to it, and a file an
    earlier version created 0644 is tightened too."""
    if not path or path == ":memory:" or path.startswith("file:") or not os.path.exists(path):
        return
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


class Database:
    """The engine and session factory of one app."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()


def init_app(app: Flask) -> None:
    """Bind a Database to the app and close the request's session at teardown."""
    app.extensions["lms.db"] = Database(app.config["DATABASE_URL"])

    @app.teardown_appcontext
    def _close_session(_exc):
        db_session = g.pop("db_session", None)
        if db_session is not None:
            db_session.close()


def get_database(app: Flask | None = None) -> Database:
    """The Database bound to the app (the current one by default)."""
    return (app or current_app).extensions["lms.db"]


def get_session() -> Session:
    """The session of the current app context; created on first use."""
    if "db_session" not in g:
        g.db_session = get_database().sessionmaker()
    return g.db_session
