"""Kinds a second adversarial round found on the servers: changes that were refused although they can
run (explicit collations, generated columns, keys a kept foreign key references, enum types under a
view or a dropped table, ordering around dropped tables), and differences that were missed (column
comments, storage engines, sequences the models declare, names that differ only in case)."""

from __future__ import annotations

from servers import my, pg, server  # noqa: F401 - fixtures


def test_postgresql_type_and_collation_changes_with_an_explicit_collation_and_on_generated_columns(pg):
    """Rendered `COLLATE "C" COLLATE "C"` (a syntax error), and `USING` on a generated column (refused)."""
    body = """
from sqlalchemy import Computed
Table("t", metadata, Column("id", Integer, primary_key=True), Column("f", String({n}{coll})), Column("a", Integer),
      Column("g", String({g}), Computed("'x' || a::text", persisted=True)))
"""
    pg.migrate(body.format(n=20, coll="", g=10))
    pg.insert("t", [(1, "b", 1), (2, "A", 2)])
    pg.migrate(body.format(n=20, coll=', collation="C"', g=10))
    pg.migrate(body.format(n=40, coll=', collation="C"', g=20))
    assert pg.sql("SELECT f, g FROM t ORDER BY f") == [("A", "x2"), ("b", "x1")]  # "C" sorts upper case first
    assert pg.system(body.format(n=40, coll=', collation="C"', g=20)).check_migration_status().migration_needed is False


def test_a_key_type_change_waits_for_the_drop_of_a_table_whose_foreign_key_joins_it(server):
    """MariaDB ran child.id INT -> BIGINT before dropping `gone`, whose key references it (1833)."""
    old = """
Table("child", metadata, Column("id", Integer, primary_key=True, autoincrement=False))
Table("gone", metadata, Column("id", Integer, primary_key=True), Column("cid", Integer, ForeignKey("child.id")))
"""
    server.migrate(old)
    server.insert("child", [(1,)])
    server.insert("gone", [(1, 1)])
    server.migrate('Table("child", metadata, Column("id", BigInteger, primary_key=True, autoincrement=False))',
                   allow_destructive=True)
    assert server.sql("SELECT id FROM child") == [(1,)] and "gone" not in server.tables()


def test_primary_key_moved_while_a_foreign_key_the_models_keep_references_the_old_one(server):
    """PostgreSQL ties the foreign key to the key's index: "cannot drop constraint p_pkey because other
    objects depend on it". The foreign key is dropped and added again around the move."""
    body = """
Table("p", metadata, Column("id", Integer, {id}), Column("code", String(10), {code}))
Table("c", metadata, Column("id", Integer, primary_key=True), Column("pid", Integer, ForeignKey("p.id")))
"""
    server.migrate(body.format(id="primary_key=True, autoincrement=False", code="nullable=False, unique=True"))
    server.insert("p", [(1, "x"), (2, "y")])
    server.insert("c", [(1, 2)])
    moved = body.format(id="nullable=False, unique=True", code="primary_key=True")
    server.migrate(moved)
    assert server.system(moved).check_migration_status().migration_needed is False
    assert server.sql("SELECT c.id, p.code FROM c JOIN p ON p.id = c.pid") == [(1, "y")]


def test_postgresql_enum_rebuilt_under_a_view_and_beside_a_dropped_table_that_uses_it(pg):
    """A plain view reading the column was taken for an object the tool does not keep; the old type was
    dropped before the table still using it ("cannot drop type status__old")."""
    body = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("st", Enum({v}, name="status")))'
    pg.migrate(body.format(v='"a", "b"'))
    pg.insert("t", [(1, "a"), (2, "b")])
    pg.sql("CREATE VIEW v AS SELECT id, st FROM t WHERE st <> 'b'")
    pg.sql("CREATE TABLE legacy_x (id int PRIMARY KEY, st status)")
    pg.sql("INSERT INTO legacy_x VALUES (1, 'b')")
    grown = body.format(v='"c", "a", "b"')  # reordered: the type is rebuilt
    pg.migrate(grown, allow_destructive=True)
    assert pg.sql("SELECT enum_range(NULL::status)::text") == [("{c,a,b}",)]
    assert pg.sql("SELECT id, st::text FROM v") == [(1, "a")]
    assert "legacy_x" not in pg.tables()


def test_postgresql_sequence_the_models_declare_for_an_existing_column_is_created(pg):
    """`Column("n", Integer, Sequence("n_seq_renamed"))` has no server default: SQLAlchemy calls nextval
    on insert. The sequence was never made, status said up to date, and every insert failed."""
    pg.migrate('Table("s", metadata, Column("id", Integer, primary_key=True), Column("n", Integer, Sequence("n_seq")))')
    renamed = 'Table("s", metadata, Column("id", Integer, primary_key=True), Column("n", Integer, Sequence("n_seq_renamed")))'
    status = pg.system(renamed).check_migration_status()
    assert [c.kind for c in status.changes] == ["add_sequence"]
    pg.migrate(renamed)
    assert pg.sql("SELECT nextval('n_seq_renamed')") == [(1,)]
    assert pg.system(renamed).check_migration_status().migration_needed is False


def test_column_comments_are_compared_and_set(server):
    body = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("n", Integer{c}), Column("m", Integer{d}))'
    server.migrate(body.format(c=', comment="old"', d=""))
    server.insert("t", [(1, 2, 3)])
    new = body.format(c=', comment="it\'s new"', d=', comment="added"')
    assert sorted(c.kind for c in server.system(new).check_migration_status().changes) == ["alter_column_comment"] * 2
    server.migrate(new)
    assert server.system(new).check_migration_status().migration_needed is False
    server.migrate(new.replace('Column("id"', 'Column("x", Integer, comment="fresh"), Column("id"'))  # added with its comment
    assert server.sql("SELECT n, m FROM t") == [(2, 3)]


def test_mysql_storage_engine_is_compared(my):
    body = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("a", String(10)))'
    my.migrate(body)
    my.sql("ALTER TABLE t ENGINE=MyISAM")
    my.insert("t", [(1, "x")])
    assert [c.kind for c in my.system(body).check_migration_status().changes] == ["alter_table_options"]
    my.migrate(body)
    assert my.sql("SELECT engine FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 't'") \
        == [("InnoDB",)]
    assert my.sql("SELECT id, a FROM t") == [(1, "x")]


def test_names_that_differ_only_in_case(server):
    """Table "Users" and column "eMail" against models' users and EMail: reported (PostgreSQL: two names;
    MariaDB tables per lower_case_table_names=0), and renamed with hints that keep their case."""
    server.migrate('Table("Users", metadata, Column("id", Integer, primary_key=True), Column("eMail", String(50)))')
    q = '"' if server.kind == "postgresql" else "`"
    server.sql(f"INSERT INTO {q}Users{q} VALUES (1, 'a@x')")
    new = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("EMail", String(50)))'
    assert server.system(new).check_migration_status().migration_needed is True
    server.migrate(new, renames=["Users:users", "users.eMail:EMail"])
    assert server.sql(f"SELECT {q}EMail{q} FROM users") == [("a@x",)]
    assert server.system(new).check_migration_status().migration_needed is False
