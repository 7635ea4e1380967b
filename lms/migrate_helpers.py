"""Helpers for migrations: database-level guards that make record tables append-only."""
from __future__ import annotations

from alembic import op


def append_only(tables: list[str]) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on ``tables``."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("""
            CREATE OR REPLACE FUNCTION lms_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'rows of % are records: they are never updated or deleted', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
            END $$""")
        for table in tables:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION lms_refuse_change()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION lms_refuse_change()")
    else:
        for table in tables:
            for event in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, 'rows of {table} are records: they are never "
                           f"updated or deleted'); END")


def drop_append_only(tables: list[str], drop_function: bool = False) -> None:
    """Undo ``append_only``; the shared PostgreSQL function goes only with the first migration."""
    dialect = op.get_bind().dialect.name
    for table in tables:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql" and drop_function:
        op.execute("DROP FUNCTION IF EXISTS lms_refuse_change()")
