"""Pydantic models at the edges: what the facade returns, the CLI prints with --json and MCP tools return."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Risk = Literal["safe", "data_dependent", "destructive"]
Complexity = Literal["NONE", "SIMPLE", "MODERATE", "COMPLEX"]


class ChangeModel(BaseModel):
    kind: str = Field(description="Kind of change, e.g. add_column, drop_table, alter_column_type.")
    table: str
    detail: str = Field(description="Human-readable description of the change.")
    risk: Risk
    reason: str = Field(description="Why the change has this risk, with row counts where data was checked.")
    blocked: bool = Field(default=False, description="True when the change would be refused under the current settings.")
    warnings: list[str] = Field(default_factory=list, description="What the change does to views and triggers beside the models "
                                "(set aside and made again; what a view returns changing type).")


class StatusResult(BaseModel):
    database: str = Field(description="Database URL with any password masked.")
    migration_needed: bool
    changes: list[ChangeModel]
    complexity: Complexity
    estimated_downtime_seconds: float
    warnings: list[str]
    safe_to_apply: bool = Field(description="True when a migrate with the current settings would not be refused.")
    plan_proven: bool | None = Field(default=None, description="True when the plan ran on a schema-only copy of the database and "
                                     "reached the models there; None when there is nothing to do.")
    proof: str | None = Field(default=None, description="How the plan was proven, or why it failed its proof.")
    last_migration: "HistoryEntry | None" = None
    startup_migration: "MigrateResult | None" = Field(default=None, description="Outcome of the server's startup migration, when one ran.")


class RehearsalTable(BaseModel):
    table: str
    rows_before: int | None = Field(description="Rows in the table before the plan (null: the plan creates it).")
    rows_after: int | None = Field(description="Rows after the plan ran on the copy (null: the plan dropped it, or it did not run).")


class RehearsalResult(BaseModel):
    """The plan run on a copy of the real data; the live database is not changed."""

    ran: bool = Field(description="True when every statement ran on the copy and the copy then matched the models.")
    method: str = Field(description="How the copy was made (SQLite: online backup into a temporary folder; PostgreSQL: a "
                        "transaction that is always rolled back; MariaDB: copies of the touched tables in a scratch database).")
    duration_ms: float | None = Field(description="How long the plan's statements took on the copy.")
    estimated_seconds: float = Field(description="The estimate status gives, for comparison.")
    statements_run: int = 0
    tables: list[RehearsalTable] = Field(default_factory=list)
    checks: list[str] = Field(default_factory=list, description="Integrity and foreign-key checks on the result, each with its outcome.")
    error: str | None = Field(default=None, description="The first error, with the statement, when the plan failed on the copy.")
    notes: list[str] = Field(default_factory=list)


class PreviewResult(StatusResult):
    sql: list[str] = Field(description="Statements in the order they would run (PRAGMA/BEGIN/COMMIT included).")
    reverse_sql: list[str] = Field(default_factory=list, description="Statements that undo the plan, where every step has a reverse.")
    plan_id: str = Field(description="SHA-256 over the database's schema fingerprint, the models' fingerprint, the options and the "
                         "statements. Show the user this plan, then pass plan_id to migrate: it runs only this exact plan, "
                         "and refuses if the database or the models changed meanwhile.")
    database_fingerprint: str = Field(description="SHA-256 of the live schema this plan was computed from.")
    models_fingerprint: str = Field(description="SHA-256 of the models' schema (the target).")
    options: dict = Field(default_factory=dict, description="The options the plan id covers: renames, fills, using, allow_destructive.")
    rehearsal: RehearsalResult | None = Field(default=None, description="The plan run on a copy of the data, when asked (rehearse=true).")


class PlanCheckResult(BaseModel):
    """`check --plan FILE`: is the checked-in plan still the one migrate would run?"""

    database: str
    matches: bool = Field(description="True when migrate, with the file's options, would run exactly the file's statements now.")
    plan_id: str = Field(description="The plan file's id.")
    plan_id_now: str = Field(description="The id of the plan migrate would run now.")
    differences: list[str] = Field(default_factory=list, description="What changed since the file was written.")
    safe_to_apply: bool = Field(description="True when the plan matches and migrate would not refuse it.")


class MigrateResult(BaseModel):
    success: bool
    migration_needed: bool
    operations_executed: int
    execution_time_ms: float
    backup_id: str | None
    migration_id: str | None
    dry_run: bool
    changes: list[ChangeModel] = Field(default_factory=list)
    sql: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    refused: bool = Field(default=False, description="True when refused for safety; the database was not changed.")
    plan_id: str | None = Field(default=None, description="Id of the plan that ran (or would run, with dry_run); the history records it.")
    rehearsal: RehearsalResult | None = Field(default=None, description="The rehearsal on a copy of the data that preceded the run, when asked.")
    planned_statements: int = Field(default=0, description="Statements of the plan, BEGIN, COMMIT and pragmas not counted: what operations_executed is, or will be, when the plan runs.")


class RollbackResult(BaseModel):
    success: bool
    backup_id: str | None = Field(description="The backup restored; null when the rollback was undoing an interrupted migration, which restores none.")
    migration_id: str | None = Field(default=None, description="The migration that was undone.")
    safety_backup_id: str | None = Field(default=None, description="Backup of the state just before the rollback, so it can be undone too.")
    error: str | None = None
    tables: list["TableRows"] = Field(default_factory=list, description="Each table's rows before and after the restore, counted.")
    kept: list[str] = Field(default_factory=list, description="What the restore kept as it was (the history, objects of other schemas set aside and made again, objects the backup could not save).")
    lost: list[str] = Field(default_factory=list, description="What the restore took away (rows, tables and objects made after the backup); all of it is in the safety backup.")
    recovered: list[str] = Field(default_factory=list, description="Killed migrations put right first (MariaDB/MySQL: a run killed mid-plan, undone from the dump taken before its first statement), one note each.")
    next_rollback: str | None = Field(default=None, description="When the rollback only undid an interrupted migration (backup_id null): the migration a further rollback would undo, if any.")


class TableRows(BaseModel):
    table: str
    rows_now: int | None = Field(description="Rows in the table now (null: the table does not exist now).")
    rows_after: int | None = Field(description="Rows the table would have after the restore (0 when the backup lacks the table; null when unknown).")
    change: int | None = Field(description="rows_after - rows_now: negative when rows would be lost; null when unknown.")
    note: str = ""


class RollbackPreview(BaseModel):
    """What `rollback` would restore, and what it would do to each table's rows; nothing is changed to find out."""

    database: str = Field(description="Database URL with any password masked.")
    backup: BackupInfo | None = Field(description="The backup the rollback restores; null when it only undoes an interrupted migration (see interrupted).")
    interrupted: list["InterruptedRun"] = Field(default_factory=list, description="Migrations whose process was killed and that the rollback puts right first, or that it records as failed.")
    undoes_migration: "HistoryEntry | None" = Field(default=None, description="The migration the restore undoes, when the backup was taken for one.")
    tables: list[TableRows] = Field(description="Per table, rows now and after the restore; largest loss first.")
    rows_lost: int | None = Field(description="Rows in tables that would shrink or be dropped, summed (null when the backup's counts are unknown).")
    rows_gained: int | None = Field(description="Rows in tables that would grow or be recreated, summed (null when unknown).")
    refused: list[str] = Field(default_factory=list, description="Why the restore will be refused, found without changing anything (PostgreSQL: objects of other schemas it cannot set aside or make again); a rollback with these is refused before it asks.")
    warnings: list[str] = Field(default_factory=list)


class InterruptedRun(BaseModel):
    """A migration whose process ended mid-run, as a rollback finds it."""

    migration: "HistoryEntry"
    undo: bool = Field(description="True: it may have left the database half-migrated (MariaDB/MySQL commit DDL statement by statement) and the rollback undoes it; False: its transaction was rolled back by the database, nothing to undo.")
    next_rollback: str | None = Field(default=None, description="With undo and no backup id: the migration a further rollback would undo afterwards.")
    why: str = Field(default="", description="Without undo: why the run left nothing to undo (as the history will record it).")


class BackupInfo(BaseModel):
    id: str
    created_at: datetime
    size_bytes: int
    table_rows: dict[str, int] | None = Field(default=None, description="Rows per table in the backup, counted when it was taken (null for backups made before counts were kept).")
    checksum: str = Field(description="SHA-256 of the backup file.")
    path: str
    database: str = Field(description="Source database URL, password masked.")
    reason: str
    migration_id: str | None = None
    schema_fingerprint: str | None = None
    verified: bool | None = Field(default=None, description="Result of the last verification, when one was made.")
    unsaved_objects: list[str] = Field(default_factory=list, description="Views or triggers the backup could not save "
                                       "(broken already when it was taken: their tables or columns were gone), with why.")


class BackupListResult(BaseModel):
    backup_dir: str
    backups: list[BackupInfo]


class HealthCheck(BaseModel):
    name: str
    status: Literal["pass", "warn", "fail"]
    detail: str
    weight: int = Field(description="Points this check is worth out of 100.")


class HealthResult(BaseModel):
    score: int = Field(ge=0, le=100)
    status: Literal["healthy", "degraded", "unhealthy"]
    database: str
    checks: list[HealthCheck]


class HistoryEntry(BaseModel):
    id: str
    kind: Literal["migrate", "rollback"]
    status: Literal["running", "succeeded", "failed", "rolled_back"]
    started_at: datetime
    finished_at: datetime | None = None
    duration_ms: float | None = None
    plan_checksum: str | None = Field(default=None, description="The plan id of the migration that ran (SHA-256 over both "
                                      "fingerprints, the options and the statements; runs recorded before plan ids hold a "
                                      "SHA-256 of the statements alone). Same as plan_id.")
    plan_id: str | None = Field(default=None, description="The plan id of the migration that ran (see preview_diff).")
    backup_id: str | None = None
    error: str | None = None
    statements: list[str] = Field(default_factory=list)


class HistoryStatistics(BaseModel):
    total: int
    succeeded: int
    failed: int
    rolled_back: int
    running: int
    success_rate: float | None
    mean_duration_ms: float | None
    last_success_at: datetime | None


StatusResult.model_rebuild()
PreviewResult.model_rebuild()
InterruptedRun.model_rebuild()
RollbackPreview.model_rebuild()
RollbackResult.model_rebuild()
