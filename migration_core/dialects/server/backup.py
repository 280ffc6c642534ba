"""What every server backup engine shares: the client tools' runner and the engines' common part."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.engine import URL

from ...errors import BackupError
from .connection import ServerConnection


def run_tool(args: list[str], env: dict[str, str], timeout_s: float, what: str, *, rolled_back: bool = False,
             **kw) -> subprocess.CompletedProcess:
    """Run a client tool (pg_dump, mysqldump, ...); its last stderr lines become the BackupError.
    `rolled_back`: the tool ran in one transaction, so a failure changed nothing (and says so)."""
    undone = "; rolled back" if rolled_back else ""
    try:
        proc = subprocess.run(args, env=env, timeout=timeout_s, **kw)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {timeout_s:.0f} s{undone}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        failed = "failed and was rolled back" if rolled_back else "failed"
        raise BackupError(f"{what} {failed}: {'; '.join(err[-3:]) or f'exit code {proc.returncode}'}")
    return proc


class ServerBackupEngine:
    """What every server backup engine keeps: how to connect, the managed schema (asked when
    needed: PostgreSQL learns it on the first connection) and the live schema's fingerprint."""

    def __init__(self, connect: Callable[[], ServerConnection], schema: Callable[[], str],
                 fingerprint: Callable[[], str | None]):
        self._connect = connect
        self._schema = schema
        self._fingerprint = fingerprint

    def _read(self, path: Path) -> Any:
        """Parse a backup file, raising BackupError when it is not a complete one."""
        raise NotImplementedError

    def check_backup_file(self, path: Path) -> str | None:
        try:
            self._read(path)
        except BackupError as exc:
            return str(exc)
        return None

    def schema_fingerprint(self) -> str | None:
        return self._fingerprint()

    # "kind name" -> definition of every view, trigger and routine (each dialect's objects.all_kept)
    read_kept: Callable[[ServerConnection, str], dict[str, str]]
    drop_sql: Callable[[str], str]  # the DROP of one such object

    def kept_objects(self) -> dict[str, str]:
        conn = self._connect()
        try:
            return type(self).read_kept(conn, self._schema())
        finally:
            conn.close()

    def drop_kept_objects(self, keys: list[str]) -> None:
        conn = self._connect()
        try:
            for key in keys:
                conn.execute(type(self).drop_sql(key))
        finally:
            conn.close()


class ToolBackupEngine(ServerBackupEngine):
    """A backup made and restored by the server's client tools, which connect from the URL
    themselves (the password through the environment, never on a command line)."""

    def __init__(self, url: URL, connect: Callable[[], ServerConnection], schema: Callable[[], str],
                 fingerprint: Callable[[], str | None], timeout_ms: int = 600000):
        super().__init__(connect, schema, fingerprint)
        self.url = url
        self.timeout_s = timeout_ms / 1000


