"""Health: a 0-100 score from weighted checks; any failed critical check makes it unhealthy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from .errors import MigrationError
from .results import HealthCheck, HealthResult

BACKUP_FRESH_DAYS = 7
CRITICAL = {"database", "integrity", "interrupted_migration"}


def score_checks(checks: list[HealthCheck], database: str) -> HealthResult:
    total = sum(c.weight for c in checks) or 1
    got = sum(c.weight if c.status == "pass" else c.weight / 2 if c.status == "warn" else 0 for c in checks)
    score = round(100 * got / total)
    if any(c.status == "fail" and c.name in CRITICAL for c in checks) or score < 50:
        status = "unhealthy"
    elif score >= 85 and not any(c.status == "fail" for c in checks):
        status = "healthy"
    else:
        status = "degraded"
    return HealthResult(score=score, status=status, database=database, checks=checks)


def run_health_checks(system) -> HealthResult:
    """`system` is the AutoMigrationSystem; each check catches its own failures."""
    s = system.settings
    checks: list[HealthCheck] = []
    dialect = system.dialect
    conn = None
    try:
        conn = dialect.connect(write=False)
        if conn is None:
            checks.append(HealthCheck(name="database", status="warn", weight=25,
                                      detail="the database file does not exist yet; migrate will create it"))
        else:
            checks.append(HealthCheck(name="database", status="pass", weight=25, detail="reachable"))
            problem = dialect.integrity_check(conn)
            checks.append(HealthCheck(name="integrity", status="fail" if problem else "pass", weight=20,
                                      detail=problem or f"{getattr(dialect, 'integrity_check_name', 'quick_check')}: ok"))
            checks.append(_kept_check(dialect, conn))
    except MigrationError as exc:
        checks.append(HealthCheck(name="database", status="fail", weight=25, detail=str(exc)))
        return score_checks(checks, s.masked_url)

    try:
        try:
            comparison = system.comparator.compare_schemas(conn)
            if not comparison.migration_needed:
                checks.append(HealthCheck(name="schema_drift", status="pass", weight=20, detail="schema matches the models"))
            else:
                blocked = comparison.refusals(s.allow_destructive)
                checks.append(HealthCheck(
                    name="schema_drift", status="fail" if blocked else "warn", weight=20,
                    detail=f"{len(comparison.diff.changes)} pending change(s)" + (f"; {len(blocked)} would be refused" if blocked else "; all can be applied")))
        except Exception as exc:  # noqa: BLE001 - a damaged file may fail the catalog read in any way
            checks.append(HealthCheck(name="schema_drift", status="fail", weight=20, detail=_text(exc)))

        try:
            recent = system.history.get_migration_history(conn, 10) if conn is not None else []
        except Exception as exc:  # noqa: BLE001 - as above
            recent, history_error = [], _text(exc)
        else:
            history_error = None
        migrations = [e for e in recent if e.kind == "migrate"]
        unfinished = system.manager.unfinished_note(migrations[0]) if migrations else None
        if history_error:
            checks.append(HealthCheck(name="recent_failures", status="fail", weight=15, detail=f"the history cannot be read: {history_error}"))
        elif not migrations:
            checks.append(HealthCheck(name="recent_failures", status="pass", weight=15, detail="no migrations recorded"))
        elif unfinished and system.history.flavor.unrecovered_is_failure:  # possibly half-migrated: critical
            checks.append(HealthCheck(name="interrupted_migration", status="fail", weight=15, detail=unfinished))
        elif unfinished:
            checks.append(HealthCheck(name="recent_failures", status="warn", weight=15, detail=unfinished))
        elif migrations[0].status == "failed":
            checks.append(HealthCheck(name="recent_failures", status="fail", weight=15,
                                      detail=f"the last migration {migrations[0].id} failed: {migrations[0].error}"))
        elif migrations[0].status == "running":
            checks.append(HealthCheck(name="recent_failures", status="warn", weight=15, detail=f"migration {migrations[0].id} is running"))
        else:
            failed = sum(1 for e in migrations if e.status == "failed")
            checks.append(HealthCheck(name="recent_failures", status="warn" if failed else "pass", weight=15,
                                      detail=f"{failed} of the last {len(migrations)} migrations failed"))
    finally:
        if conn is not None:
            conn.close()

    checks.append(_backup_check(system))
    checks.append(_lock_check(system))
    startup = getattr(system, "startup_result", None)
    if startup is not None and startup.dry_run:  # a read-only server reports what its startup migration would do
        would = f"would apply {len(startup.changes)} change(s)" if startup.success else f"would be refused: {startup.error}"
        checks.append(HealthCheck(name="startup_migration", status="pass", weight=10,
                                  detail=f"read-only: the startup migration did not run ({would if startup.migration_needed else 'nothing to do'})"))
    elif startup is not None:
        checks.append(HealthCheck(name="startup_migration", status="pass" if startup.success else "fail", weight=10,
                                  detail="startup migration succeeded" if startup.success else f"startup migration failed: {startup.error}"))
    return score_checks(checks, s.masked_url)


def _text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MigrationError) else f"{exc.__class__.__name__}: {exc}"


def _kept_check(dialect, conn) -> HealthCheck:
    """Views and trigger functions beside the models that no longer work: the objects the tool keeps,
    named, so a broken one is noticed before a backup has to leave it out."""
    try:
        problems = dialect.kept_object_problems(conn)
    except Exception as exc:  # noqa: BLE001 - reported, not a crash
        return HealthCheck(name="kept_objects", status="warn", weight=10, detail=f"could not check views and triggers: {_text(exc)}")
    if problems:
        return HealthCheck(name="kept_objects", status="fail", weight=10, detail="; ".join(problems[:5]))
    return HealthCheck(name="kept_objects", status="pass", weight=10, detail="every view and trigger works")


def _backup_check(system) -> HealthCheck:
    try:
        backups = system.backups.list_backups()
    except MigrationError as exc:
        return HealthCheck(name="backups", status="fail", weight=10, detail=str(exc))
    if not backups:
        return HealthCheck(name="backups", status="warn" if system.settings.auto_backup else "pass", weight=10,
                           detail="no backups yet" + ("" if system.settings.auto_backup else " (auto_backup is off)"))
    latest = backups[0]
    try:
        system.backups.verify_backup(latest.id)
    except MigrationError as exc:
        return HealthCheck(name="backups", status="fail", weight=10, detail=f"latest backup {latest.id} does not verify: {exc}")
    age = datetime.now(timezone.utc) - latest.created_at
    if age > timedelta(days=BACKUP_FRESH_DAYS):
        return HealthCheck(name="backups", status="warn", weight=10, detail=f"latest backup {latest.id} verified but {age.days} days old")
    return HealthCheck(name="backups", status="pass", weight=10, detail=f"latest backup {latest.id} verified ({latest.size_bytes} bytes)")


def _lock_check(system) -> HealthCheck:
    try:
        st = system.dialect.lock(0).status()
    except Exception as exc:  # a lock we cannot even inspect is worth reporting, not crashing over
        return HealthCheck(name="lock", status="warn", weight=10, detail=f"could not inspect the lock: {exc}")
    if st.held:
        holder = st.holder
        since = holder.acquired_at if holder else None
        if since:
            age = datetime.now(timezone.utc) - datetime.fromisoformat(since)
            if age.total_seconds() * 1000 > 2 * system.settings.max_execution_time_ms + system.settings.lock_timeout_ms:
                return HealthCheck(name="lock", status="fail", weight=10, detail=f"lock held for {int(age.total_seconds())} s by {holder.describe()}: stuck?")
        return HealthCheck(name="lock", status="warn", weight=10,
                           detail=f"a migration is running ({holder.describe() if holder else 'holder unknown'})")
    if st.stale_info:
        return HealthCheck(name="lock", status="warn", weight=10, detail="lock is free but a holder left its info file behind (it died mid-migration)")
    return HealthCheck(name="lock", status="pass", weight=10, detail="free")
