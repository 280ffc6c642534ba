"""The SQLite target is compiled without a connection; it must match what create_all on an engine gives."""

from __future__ import annotations

import pytest

from migration_core import MigrationSettings
from migration_core.dialects.sqlite.dialect import SqliteDialect, _compiled_ddl
from migration_core.errors import ConfigurationError
from migration_core.target import load_metadata

LISTENERS = """
from sqlalchemy import event, DDL
items = Table("items", metadata, Column("id", Integer, primary_key=True), Column("name", String(20), nullable=False),
              Column("price", Numeric(10, 2), server_default=text("0")), CheckConstraint("price >= 0", name="ck_price"))
Index("ix_items_name", items.c.name, unique=True, sqlite_where=text("price > 0"))
event.listen(items, "after_create", DDL("CREATE VIEW v_items AS SELECT id, name FROM items"))
"""


def _dialect(tmp_path, spec):
    return SqliteDialect(MigrationSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}", models=spec))


@pytest.mark.parametrize("spec", ["migration_core.examples.orchestrator:Base", None])
def test_compiled_target_equals_engine_target(project, tmp_path, spec):
    spec = spec or project.models(LISTENERS)
    metadata = load_metadata(spec)
    dialect = _dialect(tmp_path, spec)
    assert _compiled_ddl(metadata) is not None
    compiled = dialect.normalize_target(metadata)
    assert compiled == SqliteDialect._normalize_through_engine(metadata)
    assert len(compiled.tables) == len(metadata.tables)
    if "items" in metadata.tables:
        assert set(compiled.views) == {"v_items"} and compiled.tables["items"].check_constraints


def test_listener_needing_a_connection_falls_back_to_an_engine(project, tmp_path):
    spec = project.models("""
from sqlalchemy import event
t = Table("t", metadata, Column("id", Integer, primary_key=True))
@event.listens_for(t, "after_create")
def _view(target, connection, **kw):
    connection.exec_driver_sql("CREATE VIEW v_t AS SELECT id FROM t")
""")
    metadata = load_metadata(spec)
    assert _compiled_ddl(metadata) is None
    snapshot = _dialect(tmp_path, spec).normalize_target(metadata)
    assert set(snapshot.tables) == {"t"} and set(snapshot.views) == {"v_t"}


def test_listener_inserting_rows_falls_back_to_an_engine(project, tmp_path):
    """Seed rows given as parameters cannot run from compiled text alone."""
    spec = project.models("""
from sqlalchemy import event
t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("name", String(10)))
@event.listens_for(t, "after_create")
def _seed(target, connection, **kw):
    connection.execute(target.insert(), [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
""")
    metadata = load_metadata(spec)
    assert _compiled_ddl(metadata) is None
    assert set(_dialect(tmp_path, spec).normalize_target(metadata).tables) == {"t"}


def test_listener_inspecting_its_connection_falls_back_to_an_engine(project, tmp_path):
    """Regression (review): `inspect(connection)` raises NoInspectionAvailable on the mock, a
    SQLAlchemyError that was reported as 'the models cannot be created'."""
    spec = project.models("""
from sqlalchemy import event, inspect
t = Table("t", metadata, Column("id", Integer, primary_key=True))
@event.listens_for(metadata, "after_create")
def _seed(target, connection, **kw):
    if "t" in inspect(connection).get_table_names():
        connection.execute(t.insert(), [{"id": 1}])
""")
    metadata = load_metadata(spec)
    assert _compiled_ddl(metadata) is None
    assert set(_dialect(tmp_path, spec).normalize_target(metadata).tables) == {"t"}


def test_models_sqlite_rejects_are_a_configuration_error(project, tmp_path):
    spec = project.models("""
t = Table("t", metadata, Column("id", Integer, primary_key=True))
u = Table("u", metadata, Column("id", Integer, primary_key=True), Column("x", Integer, server_default=text("no_such_fn(")))
""")
    with pytest.raises(ConfigurationError, match="cannot be created on SQLite"):
        _dialect(tmp_path, spec).normalize_target(load_metadata(spec))
