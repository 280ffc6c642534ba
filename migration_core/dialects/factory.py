"""The dialect for a settings' database URL. Its own module, apart from the protocol in `base.py`,
so that the dialect packages can import `base` without an import circle."""

from __future__ import annotations

from .base import Dialect


def get_dialect(settings) -> Dialect:
    from ..errors import ConfigurationError
    from ..urls import parse_url

    url = parse_url(settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        from .sqlite.dialect import SqliteDialect

        return SqliteDialect(settings)
    if backend == "postgresql":
        from .postgresql.dialect import PostgresDialect

        return PostgresDialect(settings)
    if backend in ("mysql", "mariadb"):
        from .mysql.dialect import MysqlDialect

        return MysqlDialect(settings)
    raise ConfigurationError(
        f"database backend {backend!r} is not supported; supported: sqlite, postgresql, mysql/mariadb"
    )
