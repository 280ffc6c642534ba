"""Steps in the order the engine needs, and plans proven before they run (issue: public bug reports
of Alembic, Atlas, sqldef, Prisma, Doctrine and drizzle-kit rebuilt as small cases). Each case runs
on SQLite, PostgreSQL and MariaDB where it applies; data is checked value by value."""

from __future__ import annotations

import pytest

from migration_core.errors import SafetyRefusal
from servers import my, pg, server  # noqa: F401 - fixtures

EMPLOYEES = """
Table("departments", metadata, Column("id", Integer, primary_key=True), Column("name", String(40)),
      Column("head_id", Integer, ForeignKey("employees.id"{alter})))
Table("employees", metadata, Column("id", Integer, primary_key=True), Column("name", String(40)),
      Column("department_id", Integer, ForeignKey("departments.id")))
"""


@pytest.mark.parametrize("alter", ["", ", use_alter=True"], ids=["cycle", "use_alter"])
def test_two_new_tables_that_reference_each_other(anydb, alter):
    anydb.migrate('Table("seed", metadata, Column("id", Integer, primary_key=True))')
    body = EMPLOYEES.format(alter=alter) + 'Table("seed", metadata, Column("id", Integer, primary_key=True))\n'
    preview = anydb.system(body).preview_diff()
    assert preview.safe_to_apply and preview.plan_proven, preview.proof
    anydb.migrate(body)
    assert sorted(anydb.fk_targets("departments")) == ["employees"]
    assert sorted(anydb.fk_targets("employees")) == ["departments"]
    anydb.sql("INSERT INTO departments (id, name) VALUES (1, 'ops')")
    anydb.sql("INSERT INTO employees VALUES (1, 'ann', 1)")
    anydb.sql("UPDATE departments SET head_id = 1 WHERE id = 1")
    with pytest.raises(Exception):
        anydb.enforced("INSERT INTO employees VALUES (2, 'bob', 99)")


def test_a_cycle_through_three_new_tables(anydb):
    body = """
Table("a", metadata, Column("id", Integer, primary_key=True), Column("b_id", Integer, ForeignKey("b.id")))
Table("b", metadata, Column("id", Integer, primary_key=True), Column("c_id", Integer, ForeignKey("c.id")))
Table("c", metadata, Column("id", Integer, primary_key=True), Column("a_id", Integer, ForeignKey("a.id")),
      Column("self_id", Integer, ForeignKey("c.id")))
"""
    anydb.migrate(body)
    assert anydb.fk_targets("a") == ["b"] and anydb.fk_targets("b") == ["c"]
    assert sorted(anydb.fk_targets("c")) == ["a", "c"]


VERSIONS_V1 = """
Table("versions", metadata, Column("id", Integer, primary_key=True), Column("version", Integer, nullable=False))
"""
VERSIONS_V2 = """
Table("versions", metadata, Column("id", Integer, primary_key=True), Column("version", Integer, nullable=False),
      Column("workspace", String(20), nullable=False, server_default="main"),
      UniqueConstraint("version", "workspace", name="uq_versions_vw"))
Table("tags", metadata, Column("id", Integer, primary_key=True), Column("version", Integer), Column("workspace", String(20)),
      ForeignKeyConstraint(["version", "workspace"], ["versions.version", "versions.workspace"], name="fk_tags_version"))
"""


def test_new_table_referencing_a_column_the_same_plan_adds(anydb):
    anydb.migrate(VERSIONS_V1)
    anydb.insert("versions", [(1, 1), (2, 2)])
    anydb.migrate(VERSIONS_V2)
    assert anydb.sql("SELECT id, version, workspace FROM versions ORDER BY id") == [(1, 1, "main"), (2, 2, "main")]
    anydb.sql("INSERT INTO tags VALUES (1, 2, 'main')")
    assert set(anydb.fk_targets("tags")) == {"versions"}


ORDERS = """
Table("customers", metadata, Column("id", Integer, primary_key=True))
Table("orders", metadata, Column("id", Integer, primary_key=True), Column("customer_id", Integer, ForeignKey("customers.id")),
      Column("created", Integer), {index})
"""


@pytest.mark.parametrize("index", [
    'Index("ix_orders_customer_created", "customer_id", "created")',
    'Index("ix_orders_customer", "customer_id")',
], ids=["composite", "named"])
def test_replace_the_index_under_a_foreign_key(anydb, index):
    """MariaDB refused DROP INDEX (error 1553: needed in a foreign key constraint) when the plan dropped
    the old index before building its replacement."""
    anydb.migrate(ORDERS.format(index='Index("ix_orders_customer", "customer_id")') if "created" in index
                  else ORDERS.format(index='Index("ix_other", "created")'))
    anydb.insert("customers", [(1,), (2,)])
    anydb.insert("orders", [(1, 1, 5), (2, 2, 6)])
    body = ORDERS.format(index=index)
    preview = anydb.system(body).preview_diff()
    assert preview.plan_proven, preview.proof
    anydb.migrate(body)
    assert anydb.sql("SELECT id, customer_id, created FROM orders ORDER BY id") == [(1, 1, 5), (2, 2, 6)]
    assert anydb.fk_targets("orders") == ["customers"]


LINKS = """
Table("p", metadata, Column("id", Integer, primary_key=True))
Table("q", metadata, Column("id", Integer, primary_key=True))
Table("links", metadata, Column("p_id", Integer, ForeignKey("p.id"), primary_key=True),
      Column("q_id", Integer, ForeignKey("q.id"), primary_key=True), Column("note", String(10)))
"""


def test_primary_key_change_on_foreign_key_columns(anydb):
    anydb.migrate(LINKS)
    anydb.insert("p", [(1,), (2,)])
    anydb.insert("q", [(1,)])
    anydb.insert("links", [(1, 1, "a"), (2, 1, "b")])
    swapped = LINKS.replace('Column("p_id", Integer, ForeignKey("p.id"), primary_key=True),\n      Column("q_id", Integer, '
                            'ForeignKey("q.id"), primary_key=True)',
                            'Column("p_id", Integer, ForeignKey("p.id"), nullable=False), Column("q_id", Integer, ForeignKey("q.id"), '
                            'nullable=False), PrimaryKeyConstraint("q_id", "p_id")')
    preview = anydb.system(swapped).preview_diff()
    assert preview.plan_proven, preview.proof
    anydb.migrate(swapped)
    assert anydb.sql("SELECT p_id, q_id, note FROM links ORDER BY p_id") == [(1, 1, "a"), (2, 1, "b")]


def test_foreign_key_columns_change_type_on_both_sides(anydb):
    """MariaDB refuses MODIFY of a column a foreign key joins (errors 1832/1833): the key is dropped and
    added again around both changes."""
    v1 = """
Table("parents", metadata, Column("id", Integer, primary_key=True))
Table("kids", metadata, Column("id", Integer, primary_key=True), Column("parent_id", Integer, ForeignKey("parents.id")))
"""
    anydb.migrate(v1)
    anydb.insert("parents", [(1,)])
    anydb.insert("kids", [(1, 1)])
    v2 = v1.replace('Column("id", Integer, primary_key=True))', 'Column("id", BigInteger, primary_key=True))', 1).replace(
        'Column("parent_id", Integer', 'Column("parent_id", BigInteger')
    anydb.migrate(v2)
    assert anydb.sql("SELECT id, parent_id FROM kids") == [(1, 1)]
    assert anydb.fk_targets("kids") == ["parents"]


ENUM = """
Table("tickets", metadata, Column("id", Integer, primary_key=True),
      Column("state", Enum({values}, name="ticket_state"), nullable=False, server_default={default}){extra})
"""


@pytest.mark.parametrize("extra", ["", ', CheckConstraint("state <> \'archived\' OR id > 0", name="ck_archived")',
                                   ', Index("ix_archived", "id", postgresql_where=text("state = \'archived\'"))'],
                         ids=["default", "check", "partial_index"])
def test_enum_value_added_and_used_in_the_same_plan(pg, extra):
    """`ALTER TYPE .. ADD VALUE` then a use of the new value in the same transaction fails
    ("unsafe use of new value"): the type is rebuilt and swapped inside the transaction instead."""
    v1 = ENUM.format(values="'pending', 'open', 'closed'", default="'pending'", extra="")
    pg.migrate(v1)
    pg.insert("tickets", [(1, "open"), (2, "closed")])
    v2 = ENUM.format(values="'pending', 'open', 'closed', 'archived'", default="'archived'", extra=extra)
    preview = pg.system(v2).preview_diff()
    assert preview.plan_proven, preview.proof
    pg.migrate(v2)
    assert pg.sql("SELECT id, state::text FROM tickets ORDER BY id") == [(1, "open"), (2, "closed")]
    pg.sql("INSERT INTO tickets (id) VALUES (3)")
    assert pg.sql("SELECT state::text FROM tickets WHERE id = 3") == [("archived",)]


def test_enum_value_added_alone_stays_in_place(pg):
    v1 = ENUM.format(values="'pending', 'open'", default="'pending'", extra="")
    pg.migrate(v1)
    v2 = ENUM.format(values="'pending', 'open', 'closed'", default="'pending'", extra="")
    sql = pg.system(v2).preview_diff().sql
    assert any("ADD VALUE 'closed'" in s for s in sql), sql  # no table rewrite when nothing uses the new value yet
    pg.migrate(v2)


def test_foreign_key_to_a_column_that_is_not_unique_is_refused_up_front(anydb):
    """SQLite said 'can be applied', then failed its final check ('foreign key mismatch') and counted
    'statement 5 of 4'; the servers refuse such a key when it is added."""
    anydb.migrate('Table("p", metadata, Column("id", Integer, primary_key=True), Column("code", Integer))')
    anydb.insert("p", [(1, 10)])
    body = """
Table("p", metadata, Column("id", Integer, primary_key=True), Column("code", Integer))
Table("c", metadata, Column("id", Integer, primary_key=True), Column("code", Integer, ForeignKey("p.code")))
"""
    system = anydb.system(body)
    before = anydb.snapshot()
    if anydb.kind != "sqlite":  # the servers refuse the models themselves when they build them
        from migration_core.errors import ConfigurationError

        with pytest.raises(ConfigurationError, match="the models cannot be created"):
            system.check_migration_status()
        return
    status = system.check_migration_status()
    assert status.safe_to_apply is False and status.plan_proven is False, status
    assert "neither the primary key nor unique" in (status.proof or "")
    with pytest.raises(SafetyRefusal, match="foreign key mismatch"):
        system.execute_auto_migration()
    assert anydb.snapshot() == before


def test_enum_type_whose_name_holds_a_space(pg):
    """The normalized type `ENUM order kind('a','b')` was not recognised: no CREATE TYPE was planned."""
    body = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("k", Enum("a", "b", name="order kind")))'
    pg.migrate(body)
    pg.insert("t", [(1, "a")])
    pg.migrate(body.replace('"a", "b"', '"a", "b", "c"'))
    assert pg.sql('SELECT enum_range(NULL::"order kind")::text') == [("{a,b,c}",)]
