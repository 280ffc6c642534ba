"""PostgreSQL backups for BackupManager: `pg_dump -Fc` of the managed schema.

Restore runs `pg_restore`'s output through `psql --single-transaction` after emptying the schema
(`clear_schema_sql`): the same effect as `pg_restore --clean`, but tables the migration added (absent
from the dump) go too, objects of other schemas that depend on the schema are set aside and made
again (`outside.py`), and a failure anywhere leaves the database as it was. The password travels in
PGPASSWORD, never on a command line.
"""

from __future__ import annotations

import os
import shutil
import re
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import URL

from ...errors import BackupError
from ...urls import url_password
from ..server.backup import ToolBackupEngine, run_tool
from .objects import all_kept, clear_schema_sql, drop_statement
from .outside import guard_sql, make_again_sql, read_outside, set_aside_sql
from .restorecheck import restore_problems, shape_from_pgdump

PGDMP_MAGIC = b"PGDMP"


def _env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    for var, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url_password(url)), ("PGDATABASE", url.database)):
        if value is not None:
            env[var] = str(value)
    return env


class PgDumpBackupEngine(ToolBackupEngine):
    name = "pg_dump-custom"
    suffix = ".pgdump"
    read_kept = staticmethod(all_kept)
    atomic_restore = True  # one transaction: a failed restore changes nothing
    drop_sql = staticmethod(drop_statement)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        for tool in ("pg_dump", "pg_restore", "psql"):
            if shutil.which(tool) is None:
                raise BackupError(f"{tool} is not installed; install the PostgreSQL client tools or run with --no-backup")

    def _run(self, args: list[str], *, what: str) -> subprocess.CompletedProcess:
        return run_tool(args, _env(self.url), self.timeout_s, what, capture_output=True)

    def write_backup(self, dest: Path) -> None:
        """Owners and privileges included (pg_dump's default), so a restore gives every role its access back."""
        self._run(["pg_dump", "--format=custom", f"--schema={self._schema()}", f"--file={dest}"], what="pg_dump")

    def check_backup_file(self, path: Path) -> str | None:
        try:
            with open(path, "rb") as fh:
                if fh.read(len(PGDMP_MAGIC)) != PGDMP_MAGIC:
                    return f"backup file {path} is not a pg_dump custom-format archive"
        except OSError as exc:
            return f"cannot read backup file {path}: {exc.strerror or exc}"
        try:
            self._run(["pg_restore", "--list", str(path)], what="pg_restore --list")
        except BackupError as exc:
            return str(exc)
        return None

    def restore_backup(self, src: Path) -> None:
        """The schema's contents are dropped and the archive's restored in one transaction; the schema
        itself (its owner, privileges and default privileges) is kept, so the archive's own entries for
        it are left out (`pg_restore -L`)."""
        schema = self._schema()
        listing = self._run(["pg_restore", "--list", str(src)], what="pg_restore --list").stdout.decode()
        keep = [ln for ln in listing.splitlines()
                if not re.search(rf"\b(SCHEMA - {re.escape(schema)}|(ACL|COMMENT) - SCHEMA {re.escape(schema)})\b", ln)]
        with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
            fh.write("\n".join(keep) + "\n")
        try:
            script = self._run(["pg_restore", f"--use-list={fh.name}", "--file=-", str(src)], what="pg_restore").stdout
        finally:
            Path(fh.name).unlink(missing_ok=True)
        aside = self._outside(schema)  # other schemas' objects that the emptying would drop: set aside, made again
        self.restore_notes = [f"{o.description}: of another schema, set aside and made again" for o in aside]
        prefix = "".join(f"{s};\n" for s in ("SET client_min_messages = warning", *set_aside_sql(aside), guard_sql(schema),
                                             clear_schema_sql(schema))).encode()
        suffix = "".join(f"{s};\n" for s in make_again_sql(aside)).encode()
        run_tool(["psql", "--no-psqlrc", "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1", "--file=-"],
                 _env(self.url), self.timeout_s, "restore", rolled_back=True, input=prefix + script + suffix, capture_output=True)

    def restore_problems(self, src: Path) -> list[str]:
        """Why restoring `src` will be refused (restorecheck.py), for a rollback preview; reads only."""
        schema = self._schema()
        listing = self._run(["pg_restore", "--list", str(src)], what="pg_restore --list").stdout.decode()
        pre = self._run(["pg_restore", "--section=pre-data", "--file=-", str(src)], what="pg_restore").stdout.decode()
        conn = self._connect()
        try:
            return restore_problems(conn, schema, shape_from_pgdump(listing, pre, schema))
        finally:
            conn.close()

    def _outside(self, schema: str):
        conn = self._connect()
        try:
            conn.execute("BEGIN READ ONLY")
            try:
                return read_outside(conn, schema)
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
