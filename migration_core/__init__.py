"""migration-mcp core: declarative, safe schema migrations for SQLAlchemy applications.

Names are imported on first use (PEP 562), so `import migration_core.settings` or an
application's models module does not pay for the whole pipeline."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "AutoMigrationSystem": "system", "BackupManager": "backup", "SchemaComparator": "comparator",
    "MigrationHistoryManager": "history", "MigrationManager": "manager", "MigrationSettings": "settings",
    "execute_startup_migration": "startup",
    **{name: "errors" for name in ("BackupError", "ConfigurationError", "ExecutionTimeout", "InvalidBackupId", "LockTimeout",
                                   "MigrationError", "SafetyRefusal")},
}
__all__ = [
    "AutoMigrationSystem", "BackupError", "BackupManager", "ConfigurationError", "ExecutionTimeout", "InvalidBackupId",
    "LockTimeout", "MigrationError", "MigrationHistoryManager", "MigrationManager", "MigrationSettings", "SafetyRefusal",
    "SchemaComparator", "execute_startup_migration",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'migration_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from .backup import BackupManager
    from .comparator import SchemaComparator
    from .errors import (BackupError, ConfigurationError, ExecutionTimeout, InvalidBackupId, LockTimeout, MigrationError,
                         SafetyRefusal)
    from .history import MigrationHistoryManager
    from .manager import MigrationManager
    from .settings import MigrationSettings
    from .startup import execute_startup_migration
    from .system import AutoMigrationSystem
