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


class PreviewResult(StatusResult):
    sql: list[str] = Field(description="Statements in the order they would run (PRAGMA/BEGIN/COMMIT included).")
    reverse_sql: list[str] = Field(default_factory=list, description="Statements that undo the plan, where every step has a reverse.")


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


class RollbackResult(BaseModel):
    success: bool
    backup_id: str | None
    migration_id: str | None = Field(default=None, description="The migration that was undone.")
    safety_backup_id: str | None = Field(default=None, description="Backup of the state just before the rollback, so it can be undone too.")
    error: str | None = None


class BackupInfo(BaseModel):
    id: str
    created_at: datetime
    size_bytes: int
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
    plan_checksum: str | None = None
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
