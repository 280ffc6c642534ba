"""`migration-mcp` command line: argument parsing and formatting over AutoMigrationSystem.

Exit codes: 0 success or nothing to do, 1 failure, 2 usage or configuration error,
3 refused for safety. Results go to stdout; logs and notices go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from pydantic import BaseModel, ValidationError

from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.errors import ConfigurationError, MigrationError, SafetyRefusal
from migration_core.results import BackupListResult, HealthResult, MigrateResult, PreviewResult, RollbackResult, StatusResult
from migration_core.settings import DEFAULT_MODELS, default_database_url
from server.serve_options import add_serve_arguments

log = logging.getLogger("migration_mcp.cli")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code for usage errors is 2 as well
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _global_options() -> argparse.ArgumentParser:
    """Accepted before or after the subcommand (SUPPRESS keeps one from overwriting the other)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("--database-url", default=argparse.SUPPRESS, help="SQLAlchemy URL (env MIGRATION_DATABASE_URL)")
    g.add_argument("--models", default=argparse.SUPPRESS, help="module:attr or path/to/models.py:attr (env MIGRATION_MODELS)")
    g.add_argument("--backup-dir", default=argparse.SUPPRESS, help="backup folder (env MIGRATION_BACKUP_DIR)")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    g.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more to stderr")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(prog="migration-mcp", parents=[common],
                     description="Automatic, declarative schema migrations for SQLAlchemy models, with backups and an MCP server.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    rename_help = "rename hint old_table:new_table or table.old_column:new_column (repeatable); turns drop+add into a rename that keeps data"
    p = add("status", "show whether the database matches the models, and what would change")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    p = add("diff", "show the planned changes (and with --sql the exact statements)")
    p.add_argument("--sql", action="store_true", help="print the SQL that migrate would run")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    p = add("migrate", "apply the changes: backup, one transaction, verify, record")
    p.add_argument("--dry-run", action="store_true", help="plan and check, change nothing")
    p.add_argument("--allow-destructive", action="store_true", help="permit dropping tables/columns")
    p.add_argument("--no-backup", action="store_true", help="skip the pre-migration backup")
    p.add_argument("--timeout-ms", type=int, default=None, help="time limit for executing the plan (default 30000)")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    p = add("rollback", "restore the backup taken before the last successful migration")
    p.add_argument("--backup-id", default=None, help="restore this backup instead (see `backups`)")
    add("backups", "list backups")
    p = add("history", "show recent migrations")
    p.add_argument("--limit", type=int, default=20)
    add("health", "score the database's health (0-100) with the checks behind it")
    add_serve_arguments(add("serve", "run the MCP server over stdio"))
    return parser


def _settings(args: argparse.Namespace) -> MigrationSettings:
    values = {}
    for key in ("database_url", "models", "backup_dir"):
        if getattr(args, key, None) is not None:
            values[key] = getattr(args, key)
    try:
        return MigrationSettings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "settings"
        raise ConfigurationError(f"invalid {where}: {first.get('msg')}") from None


def _print_json(model: BaseModel | dict) -> None:
    text = model.model_dump_json(indent=2) if isinstance(model, BaseModel) else json.dumps(model, indent=2, default=str)
    sys.stdout.write(text + "\n")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _format_status(r: StatusResult) -> str:
    out = [f"database:   {r.database}"]
    if not r.migration_needed:
        out.append("status:     up to date (no changes)")
    else:
        out.append(f"status:     {len(r.changes)} pending change(s), complexity {r.complexity}, "
                   f"estimated downtime {r.estimated_downtime_seconds:.3f} s, "
                   f"{'can be applied' if r.safe_to_apply else 'would be REFUSED'}")
        rows = [[c.risk + (" (blocked)" if c.blocked else ""), c.table, c.detail, c.reason] for c in r.changes]
        out += ["", _table(rows, ["RISK", "TABLE", "CHANGE", "REASON"])]
    if r.last_migration:
        lm = r.last_migration
        out.append(f"last migration: {lm.id} {lm.status} at {lm.started_at:%Y-%m-%d %H:%M:%S}")
    out += [f"warning: {w}" for w in r.warnings]
    return "\n".join(out)


def _format(result: BaseModel, args) -> str:
    if isinstance(result, PreviewResult):
        text = _format_status(result)
        if getattr(args, "sql", False) and result.sql:
            text += "\n\n-- planned SQL\n" + "\n".join(s.rstrip() + ";" for s in result.sql)
        return text
    if isinstance(result, StatusResult):
        return _format_status(result)
    if isinstance(result, MigrateResult):
        if not result.migration_needed:
            return "up to date: nothing to migrate"
        if result.dry_run:
            head = f"dry run: {len(result.changes)} change(s) would be applied ({len(result.sql)} statements); nothing was changed"
            return head + "\n" + "\n".join(f"  - {c.detail}" for c in result.changes)
        return (f"migrated: {result.operations_executed} statement(s) in {result.execution_time_ms:.0f} ms\n"
                f"migration id: {result.migration_id}\nbackup id:    {result.backup_id or '(none)'}"
                + "".join(f"\nwarning: {w}" for w in result.warnings))
    if isinstance(result, RollbackResult):
        return (f"rolled back to backup {result.backup_id}" + (f" (undid migration {result.migration_id})" if result.migration_id else "")
                + f"\nthe state before the rollback was saved as backup {result.safety_backup_id}")
    if isinstance(result, BackupListResult):
        if not result.backups:
            return f"no backups in {result.backup_dir}"
        rows = [[b.id, f"{b.created_at:%Y-%m-%d %H:%M:%S}", str(b.size_bytes), b.reason, b.checksum[:12]] for b in result.backups]
        return f"backups in {result.backup_dir}\n" + _table(rows, ["ID", "CREATED (UTC)", "BYTES", "REASON", "SHA-256"])
    if isinstance(result, HealthResult):
        rows = [[c.name, c.status, str(c.weight), c.detail] for c in result.checks]
        return f"health: {result.score}/100 {result.status}\n" + _table(rows, ["CHECK", "RESULT", "WEIGHT", "DETAIL"])
    return result.model_dump_json(indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    as_json = getattr(args, "json", False)
    try:
        settings = _settings(args)
        if settings.database_url == default_database_url():
            from pathlib import Path

            from migration_core.urls import parse_url, sqlite_path

            path = sqlite_path(parse_url(settings.database_url))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            print(f"migration-mcp: using the default database {path}", file=sys.stderr)
        if settings.models == DEFAULT_MODELS:
            print(f"migration-mcp: using the example models {DEFAULT_MODELS} (set --models or MIGRATION_MODELS)", file=sys.stderr)
        if args.command == "serve":
            from server.mcp_server import run_serve

            return run_serve(args, settings) or 0
        system = AutoMigrationSystem(settings)
        renames = getattr(args, "rename", None) or None
        result: BaseModel
        code = 0
        if args.command == "status":
            result = system.check_migration_status(renames=renames)
        elif args.command == "diff":
            result = system.preview_diff(renames=renames)
        elif args.command == "migrate":
            result = system.execute_auto_migration(
                dry_run=args.dry_run or None, allow_destructive=args.allow_destructive or None,
                create_backup=False if args.no_backup else None, timeout_ms=args.timeout_ms, renames=renames)
        elif args.command == "rollback":
            result = system.rollback_last_migration(args.backup_id)
        elif args.command == "backups":
            result = system.list_backups()
        elif args.command == "history":
            entries = system.get_migration_history(args.limit)
            if as_json:
                _print_json({"history": [e.model_dump(mode="json") for e in entries]})
            else:
                rows = [[e.id, e.kind, e.status, f"{e.started_at:%Y-%m-%d %H:%M:%S}", f"{e.duration_ms or 0:.0f}", e.backup_id or "", (e.error or "")[:60]] for e in entries]
                print(_table(rows, ["ID", "KIND", "STATUS", "STARTED (UTC)", "MS", "BACKUP", "ERROR"]) if rows else "no migrations recorded")
            return 0
        elif args.command == "health":
            result = system.get_system_health()
            code = 1 if result.status == "unhealthy" else 0
        else:  # pragma: no cover - argparse enforces the choices
            parser.error(f"unknown command {args.command}")
        if as_json:
            _print_json(result)
        else:
            print(_format(result, args))
        return code
    except MigrationError as exc:
        if as_json:
            _print_json({"success": False, "error": str(exc), "exit_code": exc.exit_code,
                         "refused": isinstance(exc, SafetyRefusal), "problems": getattr(exc, "problems", []),
                         "migration_id": getattr(exc, "migration_id", None)})
        print(f"migration-mcp: {'refused' if isinstance(exc, SafetyRefusal) else 'error'}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migration-mcp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
