"""Options of `migration-mcp serve`, kept apart from the server so the other CLI commands
do not pay for importing the MCP SDK."""

from __future__ import annotations

import argparse

ALLOW_FLAG = "--allow-destructive-tools"


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `migration-mcp serve`; database, models and backup dir are the CLI's global options."""
    parser.add_argument(
        "--no-startup-migration",
        dest="run_startup_migration",
        action="store_false",
        help="do not run the conservative startup migration (backup on, destructive changes refused, 15 s) before serving",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="register only the read-only tools: check_status, preview_diff, list_backups, health",
    )
    parser.add_argument(
        ALLOW_FLAG,
        dest="allow_destructive_tools",
        action="store_true",
        help="let migrate(allow_destructive=true) and rollback run for clients that cannot ask the user to "
        "confirm (no MCP elicitation); clients that can ask still ask",
    )
