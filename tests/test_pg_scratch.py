"""PostgreSQL normalizes the models in temporary tables when they compile to tables, indexes, comments
and constraints alone (`postgresql/scratch.py`): what it reads back must be what a scratch schema gives."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sqlalchemy import (ARRAY, JSON, BigInteger, Boolean, CheckConstraint, Column, Computed, Date, DateTime, Float, ForeignKey,
                        ForeignKeyConstraint, Identity, Index, Integer, Interval, LargeBinary, MetaData, Numeric, SmallInteger,
                        String, Table, Text, Time, UniqueConstraint, event, func, text)
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID

from migration_core.dialects.postgresql.scratch import create_in_scratch

from servers import pg  # noqa: F401 - fixture


def _models() -> MetaData:
    md = MetaData()
    Table("parent", md, Column("id", Integer, primary_key=True), Column("code", String(12, collation="C"), nullable=False, unique=True),
          Column("amount", Numeric(12, 3), server_default=text("0"), comment="in cents"),
          Column("ratio", Float, CheckConstraint("ratio >= 0")), Column("flag", Boolean, server_default=text("true")),
          Column("made", DateTime(timezone=True), server_default=func.now()), Column("day", Date), Column("at", Time),
          Column("span", Interval), Column("blob", LargeBinary), Column("doc", JSON), Column("docb", JSONB, server_default=text("'{}'")),
          Column("uid", UUID), Column("ip", INET), Column("tags", ARRAY(Integer)), Column("note", Text, server_default="n/a"),
          Column("twice", Integer, Computed("id * 2", persisted=True)), Column("small", SmallInteger, nullable=False, server_default=text("1")),
          CheckConstraint("amount < 1000000", name="ck_parent_amount"), comment="the parent")
    child = Table("child", md, Column("id", BigInteger, Identity(start=10), primary_key=True),
                  Column("parent_id", ForeignKey("parent.id", ondelete="CASCADE", onupdate="SET NULL")),
                  Column("code", String(12)), Column("other_id", Integer),
                  ForeignKeyConstraint(["code"], ["parent.code"], name="fk_child_code", deferrable=True, initially="DEFERRED"),
                  UniqueConstraint("parent_id", "code", name="uq_child_pair"))
    Index("ix_child_lower", func.lower(child.c.code), postgresql_where=text("code IS NOT NULL"))
    Index("ix_child_include", child.c.parent_id.desc(), postgresql_include=["code"])
    # a cycle: one of the two keys is added by ALTER TABLE after both tables exist
    Table("other", md, Column("id", Integer, primary_key=True), Column("child_id", BigInteger, ForeignKey("child.id", use_alter=True,
                                                                                                         name="fk_other_child")))
    child.append_constraint(ForeignKeyConstraint(["other_id"], ["other.id"], name="fk_child_other", use_alter=True))
    return md


def test_temporary_tables_read_back_as_a_scratch_schema_does(pg):  # noqa: F811
    md = _models()
    dialect = pg.system("").dialect
    sent: list[str] = []
    event.listen(dialect.engine, "before_cursor_execute", lambda c, cur, stmt, *a: sent.append(stmt))
    conn = dialect.connect(write=False)
    try:
        temporary = create_in_scratch(conn, md)
        assert any("CREATE TEMPORARY TABLE parent" in s for s in sent) and not any("CREATE SCHEMA" in s for s in sent)
        schema = create_in_scratch(conn, md, temporary=False)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't'").scalar() == 0  # rolled back
    finally:
        conn.close()

    def plain(snap):  # stored index text names the table's schema (pg_temp_N or the scratch schema): nothing compares it
        return {n: replace(t, indexes=tuple(replace(i, sql="") for i in t.indexes)) for n, t in snap.tables.items()}
    assert set(temporary.tables) == {"parent", "child", "other"}
    assert plain(temporary) == plain(schema)
    assert replace(temporary, tables={}) == replace(schema, tables={})


def test_models_with_a_type_of_their_own_use_a_scratch_schema(pg):  # noqa: F811
    """CREATE TYPE cannot go to the temporary schema the tables would use: the scratch schema takes them."""
    from sqlalchemy import Enum
    md = MetaData()
    Table("t", md, Column("id", Integer, primary_key=True), Column("k", Enum("a", "b", name="kind_e")))
    conn = pg.system("").dialect.connect(write=False)
    try:
        snap = create_in_scratch(conn, md)
    finally:
        conn.close()
    assert tuple(snap.enums["kind_e"]) == ("a", "b")


def test_models_only_a_temporary_table_takes_are_refused_as_they_would_be_live(pg):  # noqa: F811
    """`postgresql_on_commit` is accepted on a temporary table only: such models go to the scratch schema,
    which refuses them as the live database would, instead of passing as valid."""
    from migration_core.errors import ConfigurationError

    body = 'Table("oc", metadata, Column("id", Integer, primary_key=True), postgresql_on_commit="DELETE ROWS")\n'
    with pytest.raises(ConfigurationError, match="ON COMMIT can only be used on temporary tables"):
        pg.system(body).check_migration_status()


def test_a_user_without_create_on_the_database_is_told_what_the_proof_needs(pg):  # noqa: F811
    """Temporary tables need only TEMP, which every user has; proving a plan needs a scratch schema, so a
    user without CREATE on the database gets that said, not an unexpected error."""
    import secrets

    from sqlalchemy.engine import make_url

    from migration_core import AutoMigrationSystem

    role = f"mt_role_{secrets.token_hex(4)}"
    pg.sql(f"CREATE ROLE {role} LOGIN")
    try:
        pg.sql(f"GRANT CONNECT, TEMP ON DATABASE {pg.dbname} TO {role}")
        url = make_url(pg.url).set(username=role, password=None).render_as_string(hide_password=False)
        settings = pg.settings(pg.models('Table("t", metadata, Column("id", Integer, primary_key=True))\n')).model_copy(
            update={"database_url": url})
        status = AutoMigrationSystem(settings).check_migration_status()
        assert [c.kind for c in status.changes] == ["add_table"]
        assert status.plan_proven is False and "a plan is proven in a scratch schema" in status.proof and "needs CREATE on the database" in status.proof, status.proof
    finally:
        pg.sql(f"REVOKE ALL ON DATABASE {pg.dbname} FROM {role}")
        pg.sql(f"DROP ROLE {role}")
