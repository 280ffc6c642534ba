"""Prefect's tables for `status_cold --app bench.prefect_models:metadata`, as its own migrations create them.

Prefect 3.9's models declare their trigram indexes (`trgm_ix_flow_name`, ...) as `USING gin` on a VARCHAR
column with no operator class, which PostgreSQL refuses ("data type character varying has no default
operator class for access method gin"); its migrations create them with `gin_trgm_ops` from the
`pg_trgm` extension (which the bench creates in each PostgreSQL database first). This module gives
those indexes that operator class; on SQLite they are not created at all (`ddl_if`). Prefect does not
support MariaDB/MySQL (its VARCHAR columns have no length), so that pairing is reported, not measured.
"""

from prefect.server.database.orm_models import Base

metadata = Base.metadata
for _table in metadata.tables.values():
    for _index in _table.indexes:
        if (_index.name or "").startswith("trgm_ix_") and _index.kwargs.get("postgresql_using") == "gin":
            _index.dialect_options["postgresql"]["ops"] = {c.name: "gin_trgm_ops" for c in _index.columns}
