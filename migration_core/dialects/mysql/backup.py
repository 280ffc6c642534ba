"""MariaDB/MySQL backups for BackupManager: `mysqldump` when it is installed (restored with the
`mysql` client), otherwise the built-in logical dump (`dump.py`), which needs no client tools.

Both keep the views, triggers, routines and events (mysqldump `--triggers --routines --events`); a
view broken already when the backup is taken (error 1356) is left out and named, since neither could
make it again. A mysqldump file ends with a `-- Dump completed` line, so truncation is detected before
any restore. Restore first drops the tables that are not in the backup (tables the migration added),
with foreign key checks off; BackupManager then drops views and routines made since and checks that
the rest are the backup's. MariaDB cannot make a restore atomic (DDL commits); a failed restore
is reported, and the pre-rollback safety backup still holds the state before it.
The password travels in MYSQL_PWD, never on a command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from ...errors import BackupError, RestoreRefused
from ...snapshot import split_key
from ...urls import url_password
from ..server.backup import ServerBackupEngine, ToolBackupEngine, run_tool
from ..server.connection import message
from ..server.kept import dependency_order
from .catalog import quote_ident
from .definers import check_definers, definers
from .dump import list_tables, read_dump, restore_dump, take_dump
from .objects import all_kept, broken_views, drop_statement, read_objects, routines_and_events

def _args(url: URL) -> tuple[list[str], dict[str, str]]:
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 3306}", f"--user={url.username or 'root'}"]
    env = dict(os.environ)
    if url_password(url) is not None:
        env["MYSQL_PWD"] = url_password(url)
    return args, env


def _broken(connect, schema: str) -> dict[str, str]:
    """Views that fail when used, with the server's reason: no backup can make them again."""
    conn = connect()
    try:
        out = {}
        for name in broken_views(conn, schema):
            try:
                conn.execute(f"SELECT * FROM {quote_ident(name)} LIMIT 0").fetchall()
            except DBAPIError as exc:
                out[name] = message(exc)
        return out
    finally:
        conn.close()


def _refusal(connect, accounts: set[str], path: Path) -> str | None:
    """Why this user could not restore the views and triggers `accounts` own (definers.py), or None."""
    if not accounts:
        return None
    conn = connect()
    try:
        check_definers(conn, accounts, f"backup file {path}")
    except RestoreRefused as exc:
        return str(exc)
    finally:
        conn.close()
    return None


class MysqldumpBackupEngine(ToolBackupEngine):
    name = "mysqldump"
    suffix = ".sql"

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.dump_tool = shutil.which("mysqldump") or shutil.which("mariadb-dump")
        self.client = shutil.which("mysql") or shutil.which("mariadb")

    def _run(self, args: list[str], what: str, stdin: bytes | None = None, stdout=None) -> None:
        base, env = _args(self.url)
        run_tool([args[0], *base, *args[1:]], env, self.timeout_s, what, input=stdin, stdout=stdout or subprocess.PIPE,
                 stderr=subprocess.PIPE)

    read_kept = staticmethod(all_kept)
    drop_sql = staticmethod(drop_statement)

    def write_backup(self, dest: Path) -> list[str]:
        """mysqldump with the triggers, routines and events. A view that is broken already (its tables or
        columns are gone) would make mysqldump fail, so it is left out and reported."""
        schema = self._schema()
        broken = _broken(self._connect, schema)
        ignore = [f"--ignore-table={schema}.{name}" for name in broken]
        with open(dest, "wb") as fh:
            self._run([self.dump_tool, "--single-transaction", "--skip-lock-tables", "--no-tablespaces", "--triggers", "--routines",
                       "--events", "--hex-blob", "--default-character-set=utf8mb4", *ignore, schema], "mysqldump", stdout=fh)
        return [f"view {name} ({why})" for name, why in broken.items()]

    def check_backup_file(self, path: Path) -> str | None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(64)
                fh.seek(max(0, path.stat().st_size - 200))
                tail = fh.read()
        except OSError as exc:
            return f"cannot read backup file {path}: {exc.strerror or exc}"
        if not head.startswith((b"-- MySQL dump", b"-- MariaDB dump", b"/*M!999999")):
            return f"backup file {path} is not a mysqldump file"
        if b"-- Dump completed" not in tail:
            return f"backup file {path} is truncated (no '-- Dump completed' trailer)"
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _refusal(self._connect, definers(fh), path)

    def restore_backup(self, src: Path) -> None:
        conn = self._connect()
        try:
            keep = {ln.split("`")[1].lower() for ln in open(src, encoding="utf-8", errors="replace") if ln.startswith("CREATE TABLE `")}
            extra = [t for t in list_tables(conn, self._schema()) if t.lower() not in keep]
        finally:
            conn.close()
        prefix = "SET FOREIGN_KEY_CHECKS=0;\n" + "".join(f"DROP TABLE IF EXISTS {quote_ident(t)};\n" for t in extra)
        self._run([self.client, "--default-character-set=utf8mb4", self._schema()], "restore through the mysql client",
                  stdin=prefix.encode() + Path(src).read_bytes() + b"\nSET FOREIGN_KEY_CHECKS=1;\n")


class LogicalBackupEngine(ServerBackupEngine):
    """Fallback when mysqldump is absent: every table, view, trigger, routine and event through `dump.py`."""

    name = "mysql-logical-json"
    suffix = ".logical.jsonl"
    read_kept = staticmethod(all_kept)
    drop_sql = staticmethod(drop_statement)

    def write_backup(self, dest: Path) -> list[str]:
        schema = self._schema()
        broken = _broken(self._connect, schema)
        conn = self._connect()
        try:
            conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            tables = list_tables(conn, schema)
            views, _ = read_objects(conn, schema, {t.lower() for t in tables})
            order = dependency_order({f"view {n}" for n in views if n not in broken}, {f"view {n}": v for n, v in views.items()})
            objects = [(key, views[split_key(key)[1]].create) for key in order]
            objects += list(routines_and_events(conn, schema).items())
            take_dump(conn, schema, tables, dest, objects)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return [f"view {name} ({why})" for name, why in broken.items()]

    def _read(self, path: Path):
        return read_dump(path)

    def check_backup_file(self, path: Path) -> str | None:
        try:
            dump = read_dump(path)
        except BackupError as exc:
            return str(exc)
        return _refusal(self._connect, definers(t for table in dump.tables for t in table.triggers), path)

    def restore_backup(self, src: Path) -> None:
        dump = read_dump(src)
        conn = self._connect()
        try:
            restore_dump(conn, self._schema(), dump)
        finally:
            conn.close()
