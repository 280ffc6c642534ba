"""The server's startup migration, run before the first request is answered: the conservative
migration (backup, destructive changes refused, 15 s), or on a read-only server a dry run that
says what it would do. Its outcome is logged and kept on the system for check_status and health."""

from __future__ import annotations

import logging
import time

from migration_core import AutoMigrationSystem, execute_startup_migration
from migration_core.errors import MigrationError
from migration_core.results import MigrateResult

log = logging.getLogger("migration_mcp.server")

STARTUP_TIMEOUT_MS = 15000


def startup_failure_result(exc: BaseException, elapsed_ms: float) -> MigrateResult:
    return MigrateResult(
        success=False,
        migration_needed=True,  # unknown; the core reports failures the same way
        operations_executed=0,
        execution_time_ms=elapsed_ms,
        backup_id=None,
        migration_id=None,
        dry_run=False,
        error=f"startup migration failed unexpectedly: {type(exc).__name__}: {exc}",
    )


def run_startup_migration_now(system: AutoMigrationSystem, timeout_ms: int = STARTUP_TIMEOUT_MS) -> MigrateResult:
    """Run the conservative startup migration, keep its outcome on the system and log it; never raises."""
    started = time.perf_counter()
    try:
        result = execute_startup_migration(system.settings, timeout_ms=timeout_ms, system=system)
    except Exception as exc:
        log.exception("startup migration raised; the server keeps serving and reports it through health/check_status")
        result = startup_failure_result(exc, (time.perf_counter() - started) * 1000)
    system.startup_result = result
    where = system.settings.masked_url
    if result.success and not result.migration_needed:
        log.info("startup migration: %s is up to date (%.0f ms)", where, result.execution_time_ms)
    elif result.success:
        log.info(
            "startup migration: applied %d operation(s) to %s in %.0f ms (backup %s, migration %s)",
            result.operations_executed, where, result.execution_time_ms, result.backup_id, result.migration_id,
        )
    elif result.refused:
        log.warning("startup migration refused, database unchanged: %s", result.error)
    else:
        log.error("startup migration failed: %s", result.error)
    return result


def startup_preview_now(system: AutoMigrationSystem) -> MigrateResult:
    """A read-only server's stand-in for the startup migration: what it would do, as a dry run
    (nothing is written), kept on the system and logged; never raises."""
    started = time.perf_counter()
    try:
        result = system.execute_auto_migration(dry_run=True, allow_destructive=False, create_backup=False)
    except MigrationError as exc:
        result = MigrateResult(success=False, migration_needed=True, operations_executed=0, dry_run=True, backup_id=None,
                               migration_id=None, execution_time_ms=(time.perf_counter() - started) * 1000,
                               error=str(exc), refused=exc.exit_code == 3)
    except Exception as exc:
        log.exception("checking what the startup migration would do raised; the server keeps serving")
        result = startup_failure_result(exc, (time.perf_counter() - started) * 1000).model_copy(update={"dry_run": True})
    system.startup_result = result
    if not result.migration_needed:
        log.info("read-only: no startup migration; %s is up to date", system.settings.masked_url)
    elif result.success:
        log.info("read-only: no startup migration; it would apply %d change(s) (%d statement(s)): %s",
                 len(result.changes), result.planned_statements, "; ".join(c.detail for c in result.changes))
    else:
        log.warning("read-only: no startup migration; it would be refused or fail: %s", result.error)
    return result
