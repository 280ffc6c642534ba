"""Configuration: one pydantic-settings model, read from arguments and `MIGRATION_*` variables."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .urls import absolutize_sqlite_url, mask_url, parse_url

APP_NAME = "migration-mcp"
DEFAULT_MODELS = "migration_core.examples.orchestrator:Base"


def user_data_dir() -> Path:
    """Per-user data directory, absolute, independent of the working directory.

    Claude Desktop starts servers in `/` or `~`, so nothing may be relative to the cwd.
    """
    override = os.environ.get("MIGRATION_DATA_DIR")
    if override:
        return Path(override).expanduser().resolve()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return (base / APP_NAME).resolve()


def default_database_url() -> str:
    return f"sqlite:///{user_data_dir() / 'orchestrator.db'}"


class MigrationSettings(BaseSettings):
    """Everything the migration system needs; env prefix `MIGRATION_`."""

    model_config = SettingsConfigDict(env_prefix="MIGRATION_", extra="forbid", validate_assignment=True)

    database_url: str = Field(default_factory=default_database_url, description="SQLAlchemy URL of the managed database.")
    models: str = Field(
        default=DEFAULT_MODELS,
        description="Target schema: `module:attr` or `path/to/file.py:attr`; attr is a MetaData, a declarative base or a callable returning MetaData.",
    )
    backup_dir: Path | None = Field(default=None, description="Where backups go; default: a per-database folder under the user data directory.")
    auto_backup: bool = True
    max_execution_time_ms: int = Field(default=30000, gt=0)
    dry_run: bool = False
    allow_destructive: bool = False
    backup_retention: int = Field(default=10, ge=1)
    lock_timeout_ms: int = Field(default=10000, ge=0)
    ddl_lock_timeout_ms: int = Field(default=2000, gt=0, description="PostgreSQL: `SET LOCAL lock_timeout` for the plan's DDL, so a migration queued behind a long transaction fails fast instead of blocking every query behind it.")
    concurrent_indexes: bool = Field(default=False, description="PostgreSQL: build new indexes (CREATE INDEX CONCURRENTLY) and UNIQUE constraints (CREATE UNIQUE INDEX CONCURRENTLY + ADD CONSTRAINT USING INDEX) after the transaction (opt-in: not all-or-nothing).")
    renames: list[str] = Field(default_factory=list, description="Rename hints: `old_table:new_table` or `table.old_col:new_col`.")
    ignore_tables: list[str] = Field(default_factory=list, description="Glob patterns of live tables to leave alone (never dropped or diffed).")

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite(cls, value: str) -> str:
        parse_url(value)
        return absolutize_sqlite_url(value)

    @field_validator("backup_dir")
    @classmethod
    def _absolute_backup_dir(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def masked_url(self) -> str:
        return mask_url(self.database_url)

    def resolved_backup_dir(self) -> Path:
        if self.backup_dir is not None:
            return self.backup_dir
        url = parse_url(self.database_url)
        label = (url.database or url.get_backend_name()).rsplit("/", 1)[-1].replace(".", "_") or "db"
        # Key on the URL without password so two databases never share a backup folder.
        digest = hashlib.sha256(mask_url(url).encode()).hexdigest()[:10]
        return user_data_dir() / "backups" / f"{label}-{digest}"
