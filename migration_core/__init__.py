"""migration-mcp core: declarative, safe schema migrations for SQLAlchemy applications."""

from .backup import BackupManager
from .comparator import SchemaComparator
from .errors import (BackupError, ConfigurationError, ExecutionTimeout, InvalidBackupId, LockTimeout, MigrationError,
                     SafetyRefusal)
from .history import MigrationHistoryManager
from .manager import MigrationManager
from .settings import MigrationSettings
from .startup import execute_startup_migration
from .system import AutoMigrationSystem

__all__ = [
    "AutoMigrationSystem", "BackupError", "BackupManager", "ConfigurationError", "ExecutionTimeout", "InvalidBackupId",
    "LockTimeout", "MigrationError", "MigrationHistoryManager", "MigrationManager", "MigrationSettings", "SafetyRefusal",
    "SchemaComparator", "execute_startup_migration",
]
