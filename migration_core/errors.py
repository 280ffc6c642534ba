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


class RestoreRefused(BackupError):
    """A restore that could not complete was refused before it touched anything."""


class InvalidBackupId(BackupError, ConfigurationError):
    """A backup id that is malformed (e.g. path traversal); never touches the filesystem."""

    exit_code = 2


class ExecutionTimeout(MigrationError):
    """The plan ran past `max_execution_time_ms` and was rolled back."""


class RecoveryError(MigrationError):
    """A run that a killed process left half-done (MariaDB/MySQL) could not be undone automatically;
    `migration_id` and `backup_id` name the run and its pre-migration backup, the way out."""

    def __init__(self, message: str, migration_id: str | None = None, backup_id: str | None = None):
        super().__init__(message)
        self.migration_id = migration_id
        self.backup_id = backup_id


class MigrationInterrupted(MigrationError):
    """SIGINT or SIGTERM arrived while a plan ran; the database was restored before this was raised.
    The exit code is the shell's for that signal (130, 143)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class ProbeFailed(MigrationError):
    """A data check could not run on the live rows (the server refused its query): the change it
    guards is refused with the server's reason rather than promised (see assess.py)."""
