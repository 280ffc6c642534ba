"""Scratch databases on MariaDB/MySQL, and the removal of those a killed process left behind.

DDL cannot be rolled back here, so a scratch database outlives a process killed while using it. Each
one is named `_mig_scratch_<owner's CONNECTION_ID()>_<hex>` and leased: its owner holds a `GET_LOCK`
of the same name for as long as the database exists, and the server frees that lock when the owner's
session ends (https://mariadb.com/kb/en/get_lock/). A scratch database whose lock is free therefore has
no living owner, which any session can tell (`IS_FREE_LOCK`) without the PROCESS privilege that
reading other users' rows of the process list would need.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from .catalog import quote_ident

PREFIX = "_mig_scratch_"
log = logging.getLogger("migration_core")


@contextmanager
def scratch_database(conn, *, charset_of: str) -> Iterator[str]:
    """Create a scratch database with the character set and collation of database `charset_of`,
    yield its name, and drop it afterwards. `conn` (a ServerConnection) keeps the lease while the
    database exists; the caller may `USE` it. Needs CREATE and DROP on `_mig_scratch_%`."""
    owner = conn.execute("SELECT CONNECTION_ID()").scalar()
    name = f"{PREFIX}{owner}_{secrets.token_hex(6)}"  # at most 46 characters: within both 64-character limits
    if conn.execute("SELECT GET_LOCK(%s, 0)", (name,)).scalar() != 1:  # pragma: no cover - the name is fresh
        raise RuntimeError(f"the lease {name} is taken")
    try:
        cs, coll = conn.execute("SELECT default_character_set_name, default_collation_name FROM information_schema.schemata "
                                "WHERE schema_name = %s", (charset_of,)).fetchone() or ("utf8mb4", None)
        conn.execute(f"CREATE DATABASE {quote_ident(name)} CHARACTER SET {cs}" + (f" COLLATE {coll}" if coll else ""))
        try:
            yield name
        finally:
            _cleanup(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        _cleanup(conn, "SELECT RELEASE_LOCK(%s)", (name,))


def _cleanup(conn, sql: str, params: tuple = ()) -> None:
    """A cleanup that fails (a connection lost or left unusable by Ctrl-C mid-statement) must not hide
    what ended the work: the lease ends with the session, and the next migrate drops the database."""
    try:
        conn.execute(sql, params or None)
    except SQLAlchemyError as exc:
        log.debug("scratch database cleanup skipped (%s): the next migrate drops it once its session is gone", exc)


def remove_orphan_scratch_databases(conn) -> list[str]:
    """Drop the scratch databases whose owner session is gone (their lease is free); returns their
    names. Databases named before leases existed (`_mig_scratch_<hex>`) are left alone: nothing tells
    whether their owner still runs."""
    removed = []
    names = [r[0] for r in conn.execute(
        "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s", (PREFIX.replace("_", "\\_") + "%",))]
    for name in names:
        owner = name[len(PREFIX):].split("_", 1)[0]
        if not owner.isdigit() or "_" not in name[len(PREFIX):]:
            continue
        if conn.execute("SELECT IS_FREE_LOCK(%s)", (name,)).scalar() == 1:
            conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
            removed.append(name)
    return removed
