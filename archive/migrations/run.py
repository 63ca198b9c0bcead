"""Run the archive's Alembic revisions on an open connection, without an alembic.ini.

An index made by `create_all` before migrations existed has the tables but no version row:
it is stamped as revision 0001 (the shape `create_all` made) and then upgraded.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

VERSION_TABLE = "alembic_version_archive"
HERE = Path(__file__).parent


def config(conn: Connection, schema: str | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = conn
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(conn: Connection, schema: str | None = None) -> None:
    cfg = config(conn, schema)
    tables = set(inspect(conn).get_table_names(schema=schema))
    if "documents" in tables and VERSION_TABLE not in tables:
        command.stamp(cfg, "0001")
    command.upgrade(cfg, "head")
