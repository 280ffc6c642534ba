"""The CLI's commands: settings, one call into AutoMigrationSystem each, output and exit codes.

Imported by `server.cli.main` only once the arguments parsed, since it loads the whole pipeline.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import traceback
from pathlib import Path

from pydantic import BaseModel

from migration_core import AutoMigrationSystem
from migration_core.assess import PERMIT_HINT
from migration_core.backup import validate_backup_id
from migration_core.errors import ConfigurationError, MigrationError, RestoreRefused, SafetyRefusal
from migration_core.results import StatusResult
from migration_core.settings import DEFAULT_MODELS, default_database_url, load_settings
from server import terminal, textout
from server.cli import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED

# Where a setting given on the command line came from, for error messages.
OPTION_SOURCES = {"database_url": "--database-url", "models": "--models", "backup_dir": "--backup-dir", "read_only": "--read-only"}
HEALTH_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2}


def _writes(args: argparse.Namespace, settings) -> bool:
    """The command may change the database (and so may create its folder)."""
    if settings.read_only:
        return False
    if args.command == "serve":
        return not args.read_only
    return args.command == "migrate" and not args.dry_run or args.command == "rollback" and not args.dry_run


def _settings(args: argparse.Namespace):
    values = {key: getattr(args, key) for key in ("database_url", "models", "backup_dir") if getattr(args, key, None) is not None}
    if args.command == "serve" and args.read_only:
        values["read_only"] = True
    return load_settings(values, sources=OPTION_SOURCES)


def _notices(settings, args: argparse.Namespace) -> None:
    if settings.database_url == default_database_url():
        from migration_core.urls import parse_url, sqlite_path

        path = sqlite_path(parse_url(settings.database_url))
        if _writes(args, settings):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        print(f"migration-mcp: using the default database {path}", file=sys.stderr)
    if settings.models == DEFAULT_MODELS:
        print(f"migration-mcp: using the example models {DEFAULT_MODELS} (set --models or MIGRATION_MODELS)", file=sys.stderr)


def _pending_code(status: StatusResult) -> int:
    """`check`: 0 up to date, 1 pending and migrate would apply it, 3 pending and migrate would refuse it."""
    if not status.migration_needed:
        return EXIT_OK
    return EXIT_FAILURE if status.safe_to_apply else EXIT_REFUSED


def _rollback(system: AutoMigrationSystem, args: argparse.Namespace) -> tuple[BaseModel, str, int]:
    if args.backup_id is not None:
        validate_backup_id(args.backup_id)  # a malformed id is a usage error, whatever else is missing
    if args.dry_run:
        preview = system.rollback_preview(args.backup_id)
        return preview, textout.rollback_preview_text(preview), EXIT_REFUSED if preview.refused else EXIT_OK
    backup_id, interrupted = args.backup_id, None
    if not args.yes:
        if not terminal.can_ask():
            raise SafetyRefusal(
                "rollback replaces the database's contents and needs confirmation, and there is no terminal to ask in: "
                "pass --yes to go ahead (`migration-mcp rollback --dry-run` shows what would be restored); nothing was changed")
        preview = system.rollback_preview(backup_id)
        if preview.refused:  # the restore would refuse it: nothing to ask
            raise RestoreRefused("\n".join(preview.refused))
        print(textout.rollback_preview_text(preview) + "\n", file=sys.stderr)
        if not terminal.confirm(textout.rollback_question(preview)):
            raise SafetyRefusal("rollback not confirmed; nothing was changed")
        if preview.backup is None:  # exactly what was shown: the interrupted run, and nothing else
            interrupted = preview.undoes_migration.id
        else:
            backup_id = preview.backup.id  # exactly what was shown, even if another migration finished meanwhile
    with terminal.progress_bars() as progress:
        result = system.rollback_last_migration(backup_id, progress=progress, interrupted_id=interrupted)
    return result, textout.rollback_text(result), EXIT_OK


def _execute(system: AutoMigrationSystem, args: argparse.Namespace) -> tuple[BaseModel | dict, str, int]:
    """Run the command; (result for --json, text for a person, exit code)."""
    renames = getattr(args, "rename", None) or None
    data = {"fills": getattr(args, "fill", None) or None, "using": getattr(args, "using", None) or None}
    command = args.command
    if command == "check" and args.plan:
        from migration_core import planfile

        if renames or data["fills"] or data["using"]:
            raise ConfigurationError("check --plan uses the plan file's own renames, fills and conversions; do not give them again")

        result = system.check_plan(_plan_file(system, args.plan).identity)
        code = EXIT_FAILURE if not result.matches else EXIT_OK if result.safe_to_apply else EXIT_REFUSED
        return result, textout.plan_check_text(result, args.plan), code
    if command == "plan":
        from migration_core import planfile

        preview, text = system.plan_text(renames=renames, allow_destructive=args.allow_destructive or None, **data)
        if args.out == "-":
            return {"plan_id": preview.plan_id, "written_to": "-"}, text.rstrip("\n"), EXIT_OK
        planfile.write(args.out, text)
        return ({"plan_id": preview.plan_id, "written_to": args.out},
                f"plan {preview.plan_id} written to {args.out} ({len(preview.changes)} change(s), {len(preview.sql)} statement(s))",
                EXIT_OK)
    if command in ("status", "check"):
        result = system.check_migration_status(renames=renames, **data)
        check = command == "check" or args.exit_code
        return result, textout.status_text(result), _pending_code(result) if check else EXIT_OK
    if command == "diff":
        if args.sql and args.rehearse:
            raise ConfigurationError("diff --sql prints a script that runs as printed; rehearse with `diff --rehearse` on its own")
        if args.sql:
            result, text = system.plan_text(renames=renames, allow_destructive=args.allow_destructive or None, **data)
            return result, text.rstrip("\n"), _pending_code(result) if args.exit_code else EXIT_OK
        result = system.preview_diff(renames=renames, allow_destructive=args.allow_destructive or None, rehearse=args.rehearse, **data)
        return result, textout.preview_text(result), _pending_code(result) if args.exit_code else EXIT_OK
    if command == "migrate":
        reviewed = None
        if args.plan:
            from migration_core import planfile

            reviewed = _plan_file(system, args.plan).identity
        with terminal.progress_bars() as progress:
            result = system.execute_auto_migration(
                dry_run=args.dry_run or None, allow_destructive=args.allow_destructive or None,
                create_backup=False if args.no_backup else None, timeout_ms=args.timeout_ms, renames=renames, progress=progress,
                plan_id=args.plan_id, reviewed=reviewed, rehearse=args.rehearse, **data)
        return result, textout.migrate_text(result), EXIT_OK
    if command == "rollback":
        return _rollback(system, args)
    if command == "backups":
        result = system.list_backups()
        return result, textout.backups_text(result), EXIT_OK
    if command == "history":
        entries = system.get_migration_history(args.limit)
        return {"history": [e.model_dump(mode="json") for e in entries]}, textout.history_text(entries), EXIT_OK
    if command == "health":
        result = system.get_system_health()
        failing = args.fail_on != "never" and HEALTH_RANK[result.status] >= HEALTH_RANK[args.fail_on]
        return result, textout.health_text(result), EXIT_FAILURE if failing else EXIT_OK
    raise AssertionError(f"unknown command {command}")  # pragma: no cover - argparse enforces the choices


def _print_json(model: BaseModel | dict) -> None:
    text = model.model_dump_json(indent=2) if isinstance(model, BaseModel) else json.dumps(model, indent=2, default=str)
    sys.stdout.write(text + "\n")


def _cli_terms(text: str) -> str:
    """The core's way forward in the command line's terms."""
    text = text.replace(PERMIT_HINT, "rerun with --allow-destructive to permit")
    return re.sub(r" \(MCP: [a-z]+=\[[^\]]*\]\)", "", text)  # a fill's way forward (fills.fill_hint) in the CLI's spelling


def _plan_file(system: AutoMigrationSystem, path: str):
    """The plan file at `path`, refused (exit 2) when it was written for another kind of database."""
    from migration_core import planfile

    plan = planfile.read(path)
    if plan.dialect and plan.dialect != system.dialect.name:
        raise ConfigurationError(f"{path} is a plan for a {plan.dialect} database; this database is {system.dialect.name}: "
                                 "write the plan against this database with `migration-mcp plan --out FILE`")
    return plan


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit code. Every expected failure is one message on stderr."""
    verbose = getattr(args, "verbose", False)
    # A command's result is its output; the server's log is its client's only record.
    quiet = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=logging.DEBUG if verbose else quiet, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    as_json = getattr(args, "json", False)
    try:
        settings = _settings(args)
        _notices(settings, args)
        if args.command == "serve":
            from server.mcp_server import run_serve

            return run_serve(args, settings) or EXIT_OK
        result, text, code = _execute(AutoMigrationSystem(settings), args)
        if as_json:
            _print_json(result)
        else:
            print(text)
        return code
    except MigrationError as exc:
        refused = isinstance(exc, SafetyRefusal)
        if as_json:
            _print_json({"success": False, "error": _cli_terms(str(exc)), "exit_code": exc.exit_code, "refused": refused,
                         "problems": [_cli_terms(p) for p in getattr(exc, "problems", [])],
                         "migration_id": getattr(exc, "migration_id", None)})
        print(f"migration-mcp: {'refused' if refused else 'error'}: {_cli_terms(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("migration-mcp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`status | head`): stop quietly, as a SIGPIPE'd tool would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit then finds no pipe
        return 128 + 13
    except Exception as exc:  # a bug or an unforeseen environment: one line, the traceback with -v
        if verbose:
            traceback.print_exc()
        print(f"migration-mcp: unexpected error: {type(exc).__name__}: {exc} (run with -v for the traceback)", file=sys.stderr)
        return EXIT_FAILURE
