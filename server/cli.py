"""`migration-mcp` command line: the parser, then the commands (`server/commands.py`).

Only the standard library is imported here, so `--help`, `--version` and a mistyped flag answer
at once; SQLAlchemy, pydantic and the MCP SDK load once a command really runs. Results go to
stdout; logs, progress bars, questions and notices go to stderr.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import textwrap
from typing import Sequence

from server.serve_options import add_serve_arguments

# Exit codes, the same for every command.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
HEALTH_LEVELS = ("degraded", "unhealthy", "never")
READ_ONLY_COMMANDS = ("status", "check", "diff", "history", "backups", "health")

EXIT_CODES = """\
exit codes:
  0  success; check: the database matches the models
  1  failure, nothing changed; check: changes are pending and migrate would
     apply them; health: the status is --fail-on or worse
  2  usage or configuration error: a bad option, setting, URL or models
  3  refused for safety, nothing changed: destructive changes without
     --allow-destructive, data a change cannot keep, a rollback not confirmed;
     check: changes are pending and migrate would refuse them
"""

class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code for usage errors is 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """Looks the version up only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("migration-mcp")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        sys.stdout.write(f"migration-mcp {number}\n")
        parser.exit(0)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


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
    parser = _Parser(prog="migration-mcp", parents=[common], epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Automatic, declarative schema migrations for SQLAlchemy models,\n"
                                 "with backups and an MCP server.")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, help_: str, epilog: str | None = None) -> argparse.ArgumentParser:
        # Raw, so the epilog keeps its lines; the description is wrapped here instead.
        return sub.add_parser(name, help=help_, description=textwrap.fill(help_, 79), parents=[common], epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    fill_help = ("table.column=EXPR: the value existing rows get for a new NOT NULL column without a default, or the NULL "
                 "rows of a column made NOT NULL; EXPR is SQL over the row's own columns (repeatable; part of the plan id)")
    using_help = "table.column=EXPR: how a type change converts each value (PostgreSQL USING; repeatable; part of the plan id)"

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--fill", action="append", default=[], metavar="TABLE.COLUMN=EXPR", help=fill_help)
        p.add_argument("--using", action="append", default=[], metavar="TABLE.COLUMN=EXPR", help=using_help)

    rename_help = "rename hint old_table:new_table or table.old_column:new_column (repeatable); turns drop+add into a rename that keeps data"
    exit_code_help = "exit 1 when changes are pending and migrate would apply them, 3 when migrate would refuse them (as `check`)"
    p = add("status", "show whether the database matches the models, and what would change")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    data_options(p)
    p.add_argument("--exit-code", action="store_true", help=exit_code_help)
    p = add("check", "exit 0 when the database matches the models, 1 when changes are pending and can be applied, "
                     "3 when they would be refused (for CI; prints what status prints)",
            epilog="With --plan FILE: exit 0 when migrate would run exactly the plan in FILE now\n"
                   "(its plan id matches), 1 when the plan no longer matches, with what changed,\n"
                   "3 when it matches but migrate would refuse it.")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    data_options(p)
    p.add_argument("--plan", metavar="FILE", default=None, help="check that this plan file (from `plan --out`) is still what migrate would run")
    rehearse_help = ("run the plan on a copy of the data first and report real duration, rows per table and checks "
                     "(SQLite: a file copy; PostgreSQL: a rolled-back transaction that holds the plan's locks while it runs; "
                     "MariaDB: copies of the touched tables, up to 256 MiB); the live database is not changed")
    allow_help = "permit dropping tables/columns (part of the plan id: preview with the same flags you migrate with)"
    p = add("diff", "show the planned changes and the plan id (with --sql: the plan as a SQL script that runs as printed)")
    p.add_argument("--sql", action="store_true", help="print the plan as SQL that runs as printed, its review facts as comments")
    p.add_argument("--rehearse", action="store_true", help=rehearse_help)
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    data_options(p)
    p.add_argument("--allow-destructive", action="store_true", help=allow_help)
    p.add_argument("--exit-code", action="store_true", help=exit_code_help)
    p = add("plan", "write the plan to a file for review (SQL, changes with risk and reasons, plan id, fingerprints, "
                    "tool version); apply it with `migrate --plan FILE`")
    p.add_argument("--out", metavar="FILE", required=True, help="where to write the plan ('-' for stdout)")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    data_options(p)
    p.add_argument("--allow-destructive", action="store_true", help=allow_help)
    p = add("migrate", "apply the changes: backup, one transaction, verify, record",
            epilog="Reviewed plans: `migrate --plan-id ID` (the id `diff` printed) or\n"
                   "`migrate --plan FILE` (from `plan --out`) runs only that exact plan; if the\n"
                   "database or the models changed since, it refuses (exit 3) and says what differs.")
    p.add_argument("--dry-run", action="store_true", help="plan and check, change nothing")
    p.add_argument("--allow-destructive", action="store_true", help="permit dropping tables/columns")
    p.add_argument("--rehearse", action="store_true", help=rehearse_help + "; migrate then runs only if the rehearsal succeeded")
    p.add_argument("--plan-id", default=None, help="run only the plan with this id (printed by `diff`); refuse if it changed")
    p.add_argument("--plan", metavar="FILE", default=None, help="apply exactly the plan in this file (from `plan --out`); refuse a stale one")
    p.add_argument("--no-backup", action="store_true", help="skip the pre-migration backup")
    data_options(p)
    p.add_argument("--timeout-ms", type=_positive_int, default=None, help="time limit for executing the plan, in ms (default 30000)")
    p.add_argument("--rename", action="append", default=[], help=rename_help)
    p = add("rollback", "restore the backup taken before the last successful migration",
            epilog="In a terminal, rollback shows what it would restore and how many rows each\n"
                   "table would lose or gain, then asks. Without a terminal it needs --yes.\n"
                   "After a MariaDB/MySQL migration killed part way, rollback undoes that run\n"
                   "and nothing else; run it again to undo the migration before it.")
    p.add_argument("--backup-id", default=None, help="restore this backup instead (see `backups`)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation (scripts)")
    p.add_argument("--dry-run", action="store_true", help="show what would be restored and the row changes; change nothing")
    add("backups", "list backups")
    p = add("history", "show recent migrations")
    p.add_argument("--limit", type=_positive_int, default=20, help="entries to show (default 20)")
    p = add("health", "score the database's health (0-100) with the checks behind it")
    p.add_argument("--fail-on", choices=HEALTH_LEVELS, default="degraded",
                   help="exit 1 when the status is this or worse (default degraded; never: always exit 0)")
    add_serve_arguments(add("serve", "run the MCP server over stdio"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then run the command; returns the exit code (argparse exits with 2 on a usage error)."""
    args = build_parser().parse_args(argv)
    entry = argv is None  # the process's own entry point (the console script, python -m), not a caller's
    if entry:
        # Pydantic looks for plugins in every installed distribution's entry points when the first model
        # class is built (10-30 ms, more in a large environment); the CLI's own settings and results need none.
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    one_shot = entry and args.command in READ_ONLY_COMMANDS
    if one_shot:
        # A read-only command is a short process that allocates much (the models, two snapshots) and frees
        # little: the cyclic collector's passes over that graph, and its last pass at exit, cost more than
        # the command's own work (bench/status_cold.py). The objects are left to the process's end.
        gc.disable()
    from server.commands import run

    try:
        return run(args)
    finally:
        if one_shot:
            gc.freeze()  # the interpreter's final collection then skips them


if __name__ == "__main__":
    sys.exit(main())
