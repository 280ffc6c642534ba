"""The MCP server: six thin tools over `AutoMigrationSystem`, served over stdio.

The database URL and the models come only from the server's own configuration; no tool
argument can choose them (unknown arguments are rejected rather than silently ignored, so
an assistant that tries `database_url=...` learns it cannot). Destructive calls need the
user's consent: an MCP elicitation when the client supports it, otherwise the operator's
`--allow-destructive-tools` flag.
"""

import argparse
import importlib.metadata
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.results import (
    BackupListResult,
    HealthResult,
    MigrateResult,
    PreviewResult,
    RollbackPreview,
    RollbackResult,
    StatusResult,
)
from server.mcp_args import Fills, Renames, Using
from server.mcp_errors import StrictTool, run_core, sync_guard
from server.mcp_progress import SERVER_NAME, ProgressForwarder
from server.serve_options import ALLOW_FLAG
from server.mcp_startup import run_startup_migration_now, startup_preview_now
from server.textout import rollback_facts

log = logging.getLogger("migration_mcp.server")

READ_ONLY_TOOLS = ("check_status", "preview_diff", "list_backups", "health")
DESTRUCTIVE_TOOLS = ("migrate", "rollback")

class ConfirmChange(BaseModel):
    """What the user is asked to tick; flat primitive fields, as elicitation requires. Strict: only a
    real true is consent ("yes" or 1 from a confused client is an answer that does not fit)."""

    model_config = ConfigDict(strict=True)

    confirm: bool = Field(title="Confirm", description="Tick to go ahead. Leave unticked (or decline) to change nothing.")


# Outcomes of the consent resolvers that are not elicitation answers.
NOT_NEEDED = "not_needed"  # nothing destructive can happen: no consent required
NOTHING_DESTRUCTIVE = "nothing_destructive"  # allow_destructive asked for, but no pending change is destructive
NO_ELICITATION = "no_elicitation"  # the client cannot ask the user


def client_can_elicit(ctx: Context) -> bool:
    """Mirror of the SDK's own capability gate, so returning `Elicit` never fails the call."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _read_only(title: str) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _description(fn: Callable[..., Any]) -> str:
    """The docstring as the model reads it: paragraphs kept, hard line wraps removed."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _tool(fn: Callable[..., Any], annotations: ToolAnnotations) -> StrictTool:
    return StrictTool.build(fn, annotations, _description(fn))


def _version() -> str:
    try:
        return importlib.metadata.version("migration-mcp")
    except importlib.metadata.PackageNotFoundError:
        return ""


def build_server(
    system: AutoMigrationSystem,
    *,
    read_only: bool = False,
    allow_destructive_tools: bool = False,
    run_startup_migration: bool = True,
) -> MCPServer:
    """An `MCPServer` bound to one configured database. `read_only` registers only the read-only tools,
    runs a dry run instead of the startup migration and makes the system refuse any write."""
    if read_only and not system.settings.read_only:
        system.configure(read_only=True)
    settings = system.settings
    startup_done = False

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        # Entered before the first request is answered; once per server object, even if
        # the object is connected more than once (tests).
        nonlocal startup_done
        if run_startup_migration and not startup_done:
            startup_done = True
            await anyio.to_thread.run_sync(startup_preview_now if read_only else run_startup_migration_now, system)
        try:
            yield {}
        finally:
            # A print() from user code sits in sys.stdout's buffer; flush it while the stdio
            # transport still diverts fd 1 to stderr, not after it has restored the wire.
            with suppress(Exception):
                sys.stdout.flush()

    # -- read-only tools -------------------------------------------------------------

    async def check_status(renames: Renames = None, fills: Fills = None, using: Using = None) -> StatusResult:
        """Compare the configured database with the application's SQLAlchemy models and report whether a migration is needed.

        Returns each pending change with its risk (safe, data_dependent, destructive) and whether it
        would be refused, the overall complexity, estimated downtime, warnings, whether a migrate
        would go through with default settings, the last migration, and the outcome of the server's
        startup migration. Read-only and cheap: call it first whenever the user asks about the
        database schema or its migrations, and before migrate. The database and the models are
        fixed by the server's configuration; no argument selects them.
        """
        return await run_core("check_status", system.check_migration_status, renames=renames, fills=fills, using=using)

    async def preview_diff(
        renames: Renames = None,
        allow_destructive: Annotated[
            bool,
            Field(description="Preview the plan as migrate(allow_destructive=true) would run it. It is part of the plan id, so preview with the value you will migrate with."),
        ] = False,
        fills: Fills = None,
        using: Using = None,
        rehearse: Annotated[
            bool,
            Field(description="Also run the plan on a copy of the real data and report what happened (real duration, rows per table before and after, integrity and foreign-key checks, the first error). The live data is not changed, but on PostgreSQL the rehearsal runs in a transaction that is rolled back and holds the plan's locks on the live tables while it runs; on MariaDB it copies the touched tables (refused above 256 MiB)."),
        ] = False,
    ) -> PreviewResult:
        """Show exactly what migrate would do: the check_status report plus the SQL statements it would run, in order, the reverse SQL where every step has one, and the plan's plan_id.

        Read-only: nothing is executed. Call it before migrate: show the user the changes and the SQL,
        and once the user agrees, call migrate with the same options and plan_id set to this result's
        plan_id. migrate then runs exactly this plan, or refuses and says what changed if the database
        or the models changed since this preview (then preview again and show the user the new plan).
        When a change is refused because existing rows have no value (a new NOT NULL column, NULLs in a
        column made NOT NULL) or values do not convert, the refusal names the fills or using item that
        would resolve it: ask the user for the value, then preview with it. With rehearse=true the plan
        also runs on a copy of the data first (on PostgreSQL: in a rolled-back transaction that holds the
        plan's locks for its duration), so the user sees the real duration and row counts.
        """
        return await run_core("preview_diff", system.preview_diff, renames=renames,
                              allow_destructive=allow_destructive or None, fills=fills, using=using, rehearse=rehearse)

    async def list_backups() -> BackupListResult:
        """List the backups of the configured database: id, creation time, size, SHA-256 checksum, file path, reason and the migration each was taken for.

        Read-only. Call it to find a backup_id for rollback, or to confirm a backup exists before
        a risky migration.
        """
        return await run_core("list_backups", system.list_backups)

    async def health() -> HealthResult:
        """Score the migration system's health from 0 to 100 (healthy, degraded or unhealthy) with the individual checks behind the score, including the startup migration's outcome.

        Read-only. Call it when a migration failed, when something about the database seems wrong,
        or when the user asks whether the database and its migrations are in good shape.
        """
        return await run_core("health", system.get_system_health)

    # -- destructive tools -----------------------------------------------------------

    def migrate_consent(
        allow_destructive: bool, dry_run: bool | None, renames: list[str] | None, ctx: Context
    ) -> Elicit[ConfirmChange] | str:
        """Ask only when destructive changes would really run; the question lists them."""
        effective_dry_run = settings.dry_run if dry_run is None else dry_run
        if not allow_destructive or effective_dry_run:
            return NOT_NEEDED
        status = sync_guard("migrate", system.check_migration_status, renames=renames)
        destructive = [c for c in status.changes if c.risk == "destructive"]
        if not destructive:
            return NOTHING_DESTRUCTIVE
        if not client_can_elicit(ctx):
            return NO_ELICITATION
        lines = "\n".join(f"- {c.table}: {c.detail} ({c.reason})" for c in destructive)
        return Elicit(
            f"Apply destructive schema changes to {settings.masked_url}?\n{lines}\n"
            "The data these changes remove is lost (a backup is taken first unless backups are off).",
            ConfirmChange,
        )

    async def migrate(
        ctx: Context,
        dry_run: Annotated[
            bool | None,
            Field(description="true: compute and return the plan (with its SQL) without changing anything. Default: the server's configuration (normally false)."),
        ] = None,
        allow_destructive: Annotated[
            bool,
            Field(description="true permits destructive changes (dropping tables or columns, narrowing types). Set it only when the user explicitly asked for them; the user is asked to confirm."),
        ] = False,
        create_backup: Annotated[
            bool | None,
            Field(description="Take a verified backup before changing anything, so rollback can undo the migration. Default: the server's configuration (normally true). Turn it off only on the user's request."),
        ] = None,
        renames: Renames = None,
        plan_id: Annotated[
            str | None,
            Field(max_length=200, description="The plan_id preview_diff returned for the plan the user approved. migrate then runs only that exact plan and refuses, changing nothing, if the database or the models changed since the preview. Pass the same renames, fills, using and allow_destructive as the preview."),
        ] = None,
        fills: Fills = None,
        using: Using = None,
        consent: Annotated[ElicitationResult[ConfirmChange], Resolve(migrate_consent)] = None,
    ) -> MigrateResult:
        """Apply the pending schema changes so the configured database matches the application's models.

        Runs in one transaction under a time limit, after a backup, while holding the database's
        migration lock. Destructive changes (dropping tables or columns, narrowing types) are refused
        unless allow_destructive=true, and changes that the existing data would violate (e.g. NOT NULL
        on a column with NULLs) are refused with the offending rows counted; a refusal changes nothing.
        First call preview_diff, show the user what will change and the SQL, and once the user agrees call
        migrate with plan_id set to the preview's plan_id, so that what runs is what the user saw. With
        allow_destructive=true the user is asked to confirm through the client; a client that cannot
        ask gets a refusal unless the server was started with --allow-destructive-tools. Use
        dry_run=true to get the plan without applying it. The result has the backup_id to roll back to.
        """
        allow = allow_destructive
        outcome = consent
        if isinstance(outcome, AcceptedElicitation):
            data = outcome.data
            if isinstance(data, ConfirmChange):
                if not data.confirm:
                    raise ToolError("The user did not confirm the destructive changes; nothing was changed.")
                log.info("migrate: the user confirmed destructive changes")
            elif data == NOTHING_DESTRUCTIVE:
                # Nothing destructive is pending, so nothing was confirmed: keep the guard on in
                # case a destructive change appears before the lock is taken.
                allow = False
            elif data == NO_ELICITATION:
                if not allow_destructive_tools:
                    raise ToolError(
                        "migrate with allow_destructive=true needs the user's confirmation, and this client "
                        "cannot ask for it (it does not support MCP elicitation). Nothing was changed. To allow "
                        f"destructive changes from this client, the user can restart the server with {ALLOW_FLAG} "
                        "(add it to the server's args in the client's MCP configuration), or run "
                        "`migration-mcp migrate --allow-destructive` in a terminal."
                    )
                log.warning("migrate: destructive changes allowed by %s (client cannot confirm)", ALLOW_FLAG)
        elif outcome is not None:  # declined or cancelled
            raise ToolError(f"The user {'declined' if outcome.action == 'decline' else 'cancelled'} the destructive changes; nothing was changed.")
        progress = ProgressForwarder(ctx, anyio.lowlevel.current_token(), "migrate")
        return await run_core(
            "migrate",
            system.execute_auto_migration,
            dry_run=dry_run,
            allow_destructive=allow,
            create_backup=create_backup,
            renames=renames,
            progress=progress,
            plan_id=plan_id,
            fills=fills,
            using=using,
        )

    shown_rollbacks: dict[str | None, RollbackPreview] = {}  # backup_id asked for -> the preview the question showed

    def rollback_consent(backup_id: str | None, ctx: Context) -> Elicit[ConfirmChange] | str:
        """A rollback overwrites the database, so it always needs consent; the question names the backup."""
        # Name what would be restored, and refuse a malformed or unknown id (or "nothing to
        # roll back") before anyone is asked to confirm it.
        preview = sync_guard("rollback", system.rollback_preview, backup_id)
        shown_rollbacks[backup_id] = preview  # the tool runs exactly this, as the CLI does after its question
        if preview.refused:  # the restore would refuse it: nothing to ask
            raise ToolError("The rollback would be refused; nothing was changed:\n" + "\n".join(preview.refused))
        if not client_can_elicit(ctx):
            return NO_ELICITATION
        if preview.backup is None:  # it only undoes a migration whose process was killed (interrupted.py)
            return Elicit(
                f"Roll back {settings.masked_url} by undoing the interrupted migration {preview.undoes_migration.id}?\n"
                f"{rollback_facts(preview)}",
                ConfirmChange,
            )
        return Elicit(
            f"Roll back {settings.masked_url} by restoring backup {preview.backup.id}?\n{rollback_facts(preview)}\n"
            "The database's current contents are replaced; changes made since that backup are lost "
            "unless restored from the safety backup taken first.",
            ConfirmChange,
        )

    async def rollback(
        ctx: Context,
        backup_id: Annotated[
            str | None,
            Field(max_length=200, description="Id of the backup to restore, from list_backups. Omit it to undo the last migration."),
        ] = None,
        consent: Annotated[ElicitationResult[ConfirmChange], Resolve(rollback_consent)] = None,
    ) -> RollbackResult:
        """Undo a migration by restoring the configured database from a backup: by default the backup taken before the last migration, or a specific one by backup_id (from list_backups). When the last migration's process was killed part way (MariaDB/MySQL), undoing that run is the whole rollback (no backup is restored; backup_id is null in the result); call again to undo the one before.

        The backup's checksum is verified first. This replaces the database's current contents, so
        anything written since the backup is lost; call it only when the user asks to undo a migration
        or restore a backup. The user is asked to confirm through the client; a client that cannot ask
        gets a refusal unless the server was started with --allow-destructive-tools.
        """
        outcome = consent
        shown = shown_rollbacks.pop(backup_id, None)
        if isinstance(outcome, AcceptedElicitation):
            data = outcome.data
            if isinstance(data, ConfirmChange):
                if not data.confirm:
                    raise ToolError("The user did not confirm the rollback; nothing was changed.")
                log.info("rollback: the user confirmed")
            elif data == NO_ELICITATION and not allow_destructive_tools:
                preview = await run_core("rollback", system.rollback_preview, backup_id)
                raise ToolError(
                    "rollback replaces the database's contents and needs the user's confirmation, and this "
                    "client cannot ask for it (it does not support MCP elicitation). Nothing was changed. To "
                    f"allow rollbacks from this client, the user can restart the server with {ALLOW_FLAG} "
                    "(add it to the server's args in the client's MCP configuration), or run "
                    "`migration-mcp rollback` in a terminal, which shows the same facts and asks.\n"
                    f"What it would restore:\n{rollback_facts(preview)}"
                )
        elif outcome is not None:
            raise ToolError(f"The user {'declined' if outcome.action == 'decline' else 'cancelled'} the rollback; nothing was changed.")
        progress = ProgressForwarder(ctx, anyio.lowlevel.current_token(), "rollback")
        interrupted = None
        if shown is not None and backup_id is None:  # what was shown, even if the database moved on meanwhile
            if shown.backup is None:
                interrupted = shown.undoes_migration.id if shown.undoes_migration else None
            else:
                backup_id = shown.backup.id
        return await run_core("rollback", system.rollback_last_migration, backup_id, progress=progress, interrupted_id=interrupted)

    destructive = dict(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
    tools = [
        _tool(check_status, _read_only("Check migration status")),
        _tool(preview_diff, _read_only("Preview migration SQL")),
        _tool(list_backups, _read_only("List backups")),
        _tool(health, _read_only("Migration system health")),
    ]
    if not read_only:
        tools += [
            _tool(migrate, ToolAnnotations(title="Apply schema migration", **destructive)),
            _tool(rollback, ToolAnnotations(title="Roll back to a backup", **destructive)),
        ]
    mode = "read-only" if read_only else ("destructive tools allowed without confirmation" if allow_destructive_tools else "destructive tools need confirmation")
    return MCPServer(
        SERVER_NAME,
        title="Schema migrations",
        version=_version(),
        instructions=(
            f"Declarative schema migrations for one database, fixed by this server's configuration "
            f"({settings.masked_url}; models {settings.models}). Call check_status first; preview_diff shows the SQL "
            "and a plan_id: show the user the plan, then call migrate with that plan_id so exactly that plan runs "
            "(backup first, destructive changes refused unless allowed and confirmed; a plan that changed is refused); "
            "rollback restores a backup; list_backups and health inspect. "
            f"Mode: {mode}."
        ),
        tools=tools,
        lifespan=lifespan,
    )


def configure_logging(level: int | str = logging.INFO) -> None:
    """Everything to stderr, never stdout; a configuration the CLI already made is kept."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(
    settings: MigrationSettings | None = None,
    *,
    read_only: bool = False,
    allow_destructive_tools: bool = False,
    run_startup_migration: bool = True,
) -> None:
    """Serve MCP over stdio until the client closes the connection."""
    configure_logging()
    if read_only:
        settings = (settings or MigrationSettings()).model_copy(update={"read_only": True})
        sys.dont_write_bytecode = True  # importing the models file must not leave a __pycache__ beside it
    # Flush stray print()s at each newline, so they reach fd 1 while it is diverted to stderr.
    with suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)
    system = AutoMigrationSystem(settings)
    log.info(
        "serving %s (models %s)%s%s%s",
        system.settings.masked_url,
        system.settings.models,
        ", read-only" if read_only else "",
        f", {ALLOW_FLAG}" if allow_destructive_tools and not read_only else "",
        ", no startup migration" if not run_startup_migration else "",
    )
    app = build_server(
        system,
        read_only=read_only,
        allow_destructive_tools=allow_destructive_tools,
        run_startup_migration=run_startup_migration,
    )
    app.run("stdio")


def run_serve(args: argparse.Namespace, settings: MigrationSettings) -> int:
    """The `serve` subcommand; returns the exit code."""
    serve(
        settings,
        read_only=args.read_only,
        allow_destructive_tools=args.allow_destructive_tools,
        run_startup_migration=args.run_startup_migration,
    )
    return 0
