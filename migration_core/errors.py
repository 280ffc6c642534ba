"""Exception hierarchy. Each class maps to one CLI exit code and one kind of MCP tool error."""

from __future__ import annotations


class MigrationError(Exception):
    """A migration-system failure with a message meant for the user (exit code 1)."""

    exit_code = 1


class ConfigurationError(MigrationError):
    """Bad URL, bad `--models`, unreadable file, invalid option (exit code 2)."""

    exit_code = 2


class SafetyRefusal(MigrationError):
    """A destructive or data-dependent change was refused; nothing was changed (exit code 3)."""

    exit_code = 3

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


class PlanningError(MigrationError):
    """The changes cannot be planned, or the plan failed its proof on a schema-only copy; nothing
    was executed (refused up front, exit code 3, with the failing statement or object)."""


class LockTimeout(MigrationError):
    """Another process holds this database's migration lock."""


class BackupError(MigrationError):
    """A backup could not be created, found, verified or restored."""


class InvalidBackupId(BackupError, ConfigurationError):
    """A backup id that is malformed (e.g. path traversal); never touches the filesystem."""

    exit_code = 2


class ExecutionTimeout(MigrationError):
    """The plan ran past `max_execution_time_ms` and was rolled back."""
