"""Configuration: one pydantic-settings model, read from arguments and `MIGRATION_*` variables."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from .errors import ConfigurationError
from .urls import absolutize_sqlite_url, mask_url, parse_url

APP_NAME = "migration-mcp"
DEFAULT_MODELS = "migration_core.examples.orchestrator:Base"
ENV_PREFIX = "MIGRATION_"
DAY_MS = 86_400_000


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

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_assignment=True)

    database_url: str = Field(default_factory=default_database_url, description="SQLAlchemy URL of the managed database.")
    models: str = Field(
        default=DEFAULT_MODELS,
        description="Target schema: `module:attr` or `path/to/file.py:attr`; attr is a MetaData, a declarative base or a callable returning MetaData.",
    )
    backup_dir: Path | None = Field(default=None, description="Where backups go; default: a per-database folder under the user data directory.")
    auto_backup: bool = True
    max_execution_time_ms: int = Field(default=30000, gt=0, le=DAY_MS)
    dry_run: bool = False
    allow_destructive: bool = False
    read_only: bool = Field(default=False, description="Inspect only: migrate and rollback are refused, and nothing is written (no backup, history row, lock file or directory).")
    backup_retention: int = Field(default=10, ge=1, le=100_000)
    lock_timeout_ms: int = Field(default=10000, ge=0, le=DAY_MS)
    ddl_lock_timeout_ms: int = Field(default=2000, gt=0, le=DAY_MS, description="PostgreSQL: `SET LOCAL lock_timeout` for the plan's DDL, so a migration queued behind a long transaction fails fast instead of blocking every query behind it.")
    concurrent_indexes: bool = Field(default=False, description="PostgreSQL: build new indexes (CREATE INDEX CONCURRENTLY) and UNIQUE constraints (CREATE UNIQUE INDEX CONCURRENTLY + ADD CONSTRAINT USING INDEX) after the transaction (opt-in: not all-or-nothing).")
    # NoDecode: the environment's text goes to `_list` as is, so a plain comma-separated list works as well as JSON.
    renames: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Rename hints: `old_table:new_table` or `table.old_col:new_col`; in the environment a comma-separated list or a JSON list.")
    ignore_tables: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Glob patterns of live tables to leave alone (never dropped or diffed); in the environment a comma-separated list or a JSON list.")

    @field_validator("renames", "ignore_tables", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        """`a,b`, `["a", "b"]` or a list; blanks around items and empty items are dropped."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"starts with '[' but is not a JSON list ({exc.msg} at character {exc.pos})") from None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("must be a JSON list of strings")
            return [v.strip() for v in value if v.strip()]
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("renames")
    @classmethod
    def _hints(cls, value: list[str]) -> list[str]:
        from .diff import RenameHints

        try:
            RenameHints.parse(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _absolute_sqlite(cls, value: str) -> str:
        # A ConfigurationError passes through pydantic untouched: callers of MigrationSettings get it as is.
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
        return user_data_dir() / "backups" / self.database_folder_name()

    def database_folder_name(self) -> str:
        """`<database name>-<hash of the URL without its password>`: the per-database folder's name
        under the user data directory (backups, normalized targets); two databases never share one."""
        url = parse_url(self.database_url)
        label = (url.database or url.get_backend_name()).rsplit("/", 1)[-1].replace(".", "_") or "db"
        digest = hashlib.sha256(mask_url(url).encode()).hexdigest()[:10]
        return f"{label}-{digest}"


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(values: dict[str, Any] | None = None, *, sources: dict[str, str] | None = None) -> MigrationSettings:
    """`MigrationSettings` from `values` and the environment, with every bad setting reported as
    one line that names where it came from (`sources` maps a field to the option that gave it,
    e.g. `{"database_url": "--database-url"}`; anything else names its `MIGRATION_*` variable).

    Raises ConfigurationError (exit code 2) for the first bad setting.
    """
    values, sources = values or {}, sources or {}
    try:
        return MigrationSettings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else "settings"
        raise ConfigurationError(_describe(field, err, values, sources)) from None
    except ConfigurationError as exc:  # the database URL's own validator
        where = sources.get("database_url", "--database-url") if "database_url" in values else env_name("database_url")
        raise ConfigurationError(f"{where}: {exc}") from None
    except SettingsError as exc:  # a source could not even read a value
        raise ConfigurationError(f"invalid setting: {' '.join(str(exc).split())}") from None


def _describe(field: str, err: dict, values: dict[str, Any], sources: dict[str, str]) -> str:
    if field in values:
        where, raw = sources.get(field, field), values[field]
    else:
        where = env_name(field)
        raw = next((v for k, v in os.environ.items() if k.upper() == where), err.get("input"))
    if field == "database_url" and isinstance(raw, str):
        raw = mask_url(raw)
    shown = repr(raw)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    msg = err.get("msg", "invalid value")
    msg = msg[len("Value error, "):] if msg.startswith("Value error, ") else msg
    hint = {"bool_parsing": " (use true/false, 1/0, yes/no or on/off)",
            "int_parsing": " (a whole number)"}.get(err.get("type", ""), "")
    return f"{where}={shown}: {msg}{hint}"
