"""Read, compare and render every kind of column and constraint faithfully on the servers: a varied
schema made by `create_all` shows no difference, and each kind that was misread or mis-rendered
migrates (or is refused up front, with a count, where the data forbids it)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from matrix import assert_refused
from migration_core.target import load_metadata
from servers import my, pg, server  # noqa: F401 - fixtures

PG_VARIED = """
from sqlalchemy import Computed, Identity, Sequence, ARRAY, LargeBinary, Interval, Date, Time, SmallInteger
from sqlalchemy.dialects.postgresql import (JSONB, UUID, INET, CIDR, MACADDR, MONEY, TSVECTOR, BIT, INT4RANGE, DATERANGE,
                                            DOUBLE_PRECISION, REAL, CITEXT, TIMESTAMP, ENUM)
mood = ENUM("sad", "ok", "happy", name="mood")
Table("Users", metadata,
      Column("Id", Integer, primary_key=True),
      Column("Name", String(40), nullable=False, server_default="anon"),
      Column("email", CITEXT, unique=True),
      Column("nick", String(20, collation="C")),
      Column("bio", Text, server_default=text("''")),
      Column("score", Numeric(10, 2), server_default=text("0.00")),
      Column("ratio", REAL), Column("weight", DOUBLE_PRECISION, server_default=text("1.5")),
      Column("small", SmallInteger, server_default=text("-1")), Column("big", BigInteger),
      Column("active", Boolean, nullable=False, server_default=text("true")),
      Column("born", Date, server_default=text("CURRENT_DATE")), Column("wakes", Time),
      Column("created", DateTime, server_default=func.now()),
      Column("seen", TIMESTAMP(timezone=True, precision=3), server_default=text("CURRENT_TIMESTAMP")),
      Column("span", Interval), Column("avatar", LargeBinary),
      Column("token", UUID, server_default=text("gen_random_uuid()")),
      Column("prefs", JSONB, nullable=False, server_default=text("'{}'::jsonb")), Column("raw", JSON),
      Column("tags", ARRAY(String(10)), server_default=text("'{}'::varchar[]")),
      Column("ip", INET), Column("net", CIDR), Column("mac", MACADDR), Column("cash", MONEY),
      Column("doc", TSVECTOR), Column("flags", BIT(8)), Column("ages", INT4RANGE), Column("stay", DATERANGE),
      Column("mood", mood, server_default="ok"),
      Column("total", Numeric(12, 2), Computed("score * 2", persisted=True)),
      CheckConstraint("\\"Name\\" IN ('anon', 'admin') OR length(\\"Name\\") > 3", name="ck_users_name"),
      CheckConstraint("score BETWEEN 0 AND 100", name="ck_users_score"),
      CheckConstraint("small = ANY (ARRAY[-1, 0, 1])", name="ck_users_small"),
      CheckConstraint("weight::numeric >= 0", name="ck_users_weight"),
      CheckConstraint("nick ~ '^[a-z]*$'"),
      Index("ix_users_name_lower", text('lower("Name")')),
      Index("ix_users_active_seen", "active", "seen", postgresql_where=text("active")),
      Index("ix_users_doc", "doc", postgresql_using="gin"),
      Index("ix_users_nick_trgm", "nick", postgresql_using="gin", postgresql_ops={"nick": "gin_trgm_ops"}))
Table("posts", metadata,
      Column("id", BigInteger, Identity(always=True), primary_key=True),
      Column("user_id", Integer, ForeignKey("Users.Id", ondelete="CASCADE"), nullable=False),
      Column("slug", String(80), unique=True), Column("n", Integer, Sequence("posts_n_seq"), server_default=text("nextval('posts_n_seq')")),
      ForeignKeyConstraint(["user_id"], ["Users.Id"], name="fk_posts_user", ondelete="CASCADE"),
      UniqueConstraint("slug", name="uq_posts_slug"),
      Index("ix_posts_user", "user_id"), comment="blog posts")
Table("users", metadata, Column("id", Integer, primary_key=True), Column("Name", String(10)), Column("name", String(12)))
ENUM("x", "y", name="spare", metadata=metadata)  # declared, used by no column yet
"""

MY_VARIED = """
from sqlalchemy import Computed, Date, Time, LargeBinary, SmallInteger
from sqlalchemy.dialects.mysql import (TINYINT, MEDIUMINT, INTEGER, BIGINT, DECIMAL, FLOAT, DOUBLE, DATETIME, TIMESTAMP, YEAR,
                                       CHAR, VARCHAR, TINYTEXT, MEDIUMTEXT, LONGTEXT, BINARY, VARBINARY, BLOB, LONGBLOB, ENUM,
                                       SET, BIT)
Table("Users", metadata,
      Column("Id", Integer, primary_key=True),
      Column("Name", VARCHAR(40), nullable=False, server_default="anon"),
      Column("email", VARCHAR(80), unique=True),
      Column("nick", VARCHAR(20, collation="utf8mb4_bin")),
      Column("legacy", VARCHAR(20, charset="latin1", collation="latin1_swedish_ci")),
      Column("bio", Text), Column("t1", TINYTEXT), Column("t2", MEDIUMTEXT), Column("t3", LONGTEXT),
      Column("score", DECIMAL(10, 2), server_default=text("0.00")),
      Column("ratio", FLOAT), Column("weight", DOUBLE, server_default=text("1.5")),
      Column("tiny", TINYINT), Column("small", SmallInteger, server_default=text("-1")), Column("mid", MEDIUMINT),
      Column("big", BIGINT(unsigned=True)), Column("u", INTEGER(unsigned=True)),
      Column("active", Boolean, nullable=False, server_default=text("1")),
      Column("born", Date), Column("wakes", Time), Column("yr", YEAR),
      Column("created", DATETIME(fsp=6), server_default=text("CURRENT_TIMESTAMP(6)")),
      Column("changed", TIMESTAMP, nullable=False, server_default=text("CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP")),
      Column("code", CHAR(3)), Column("bin", BINARY(4)), Column("vbin", VARBINARY(16)), Column("blob", BLOB),
      Column("lblob", LONGBLOB), Column("bits", BIT(8)),
      Column("size", ENUM("small", "medium", "large"), server_default="medium"),
      Column("perms", SET("read", "write", "admin")),
      Column("prefs", JSON), Column("uid", CHAR(36), server_default=text("(uuid())")),
      Column("total", DECIMAL(12, 2), Computed("score * 2", persisted=True)),
      Column("name_len", Integer, Computed("char_length(Name)", persisted=False)),
      CheckConstraint("Name IN ('anon', 'admin') OR char_length(Name) > 3", name="ck_users_name"),
      CheckConstraint("score BETWEEN 0 AND 100", name="ck_users_score"),
      CheckConstraint("CAST(weight AS DECIMAL(10, 2)) >= 0"),
      Index("ix_users_name_len", "name_len"), Index("ix_users_nick_prefix", "nick", mysql_length={"nick": 5}),
      mysql_collate="utf8mb4_unicode_ci", comment="people")
Table("posts", metadata,
      Column("id", BigInteger, primary_key=True, autoincrement=True),
      Column("user_id", Integer, ForeignKey("Users.Id", ondelete="CASCADE"), nullable=False),
      Column("slug", String(80), unique=True), Column("code", String(10)),
      ForeignKeyConstraint(["user_id"], ["Users.Id"], name="fk_posts_user", ondelete="CASCADE"),
      UniqueConstraint("slug", name="uq_posts_slug"), UniqueConstraint("code"))
"""


def test_varied_schema_made_by_create_all_has_no_difference(server):
    if server.kind == "postgresql":
        server.sql("CREATE EXTENSION IF NOT EXISTS citext")
        server.sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    body = PG_VARIED if server.kind == "postgresql" else MY_VARIED
    system = server.system(body)
    eng = create_engine(server.url)
    try:
        load_metadata(system.settings.models).create_all(eng)
    finally:
        eng.dispose()
    status = system.check_migration_status()
    assert status.migration_needed is False, [c.detail for c in status.changes]
    # and the tool builds the same schema itself, on an empty database
    (server.tmp / "fresh").mkdir()
    fresh = server.__class__(server.kind, server.tmp / "fresh")
    try:
        if server.kind == "postgresql":
            fresh.sql("CREATE EXTENSION citext")
            fresh.sql("CREATE EXTENSION pg_trgm")
        fresh.migrate(body)
    finally:
        fresh.drop()


STATUS = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("status", String(1)), CheckConstraint("status IN ({v})", name="ck_status"))'


def test_check_in_list_grows(anydb):
    """PostgreSQL stored the CHECK added from the tool's normalized text with other parentheses, so the
    post-check failed: it is now added from the models' own expression."""
    anydb.migrate(STATUS.format(v="'A','B'"))
    anydb.insert("t", [(1, "A"), (2, "B")])
    anydb.migrate(STATUS.format(v="'A','B','C'"))
    anydb.insert("t", [(3, "C")])
    with pytest.raises(Exception):
        anydb.insert("t", [(4, "D")])
    assert_refused(anydb, STATUS.format(v="'A','C'"), match="1 row in t violates CHECK")


def test_two_unnamed_checks_added_to_one_table_get_names_of_their_own(pg):
    """Both were named t_check ("already exists"); PostgreSQL's own rule is t_<column>_check, then a counter."""
    base = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("a", Integer), Column("b", Integer){extra})'
    pg.migrate(base.format(extra=""))
    pg.migrate(base.format(extra=', CheckConstraint("a > 0"), CheckConstraint("a < 100"), CheckConstraint("b <> a")'))
    names = sorted(r[0] for r in pg.sql("SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'c'"))
    assert len(names) == 3 and len(set(names)) == 3, names


DUP = """
Table("p", metadata, Column("id", Integer, primary_key=True))
Table("c", metadata, Column("id", Integer, primary_key=True, autoincrement=False), Column("pid", Integer, ForeignKey("p.id")),
      ForeignKeyConstraint(["pid"], ["p.id"], name="fk_c_pid"), Column("n", Integer))
"""


def test_foreign_key_declared_twice_is_one_key(server):
    """The live key has the server's own name (made by another tool): the models' second declaration of
    it was planned again under that name ("already exists")."""
    server.migrate('Table("p", metadata, Column("id", Integer, primary_key=True))')
    server.sql("CREATE TABLE c (id INT PRIMARY KEY, pid INT, n INT, FOREIGN KEY (pid) REFERENCES p (id))")
    status = server.system(DUP).check_migration_status()
    assert status.migration_needed is False, [c.detail for c in status.changes]
    server.migrate(DUP.replace('Column("n", Integer)', 'Column("n", BigInteger)'))
    assert server.fk_targets("c") == ["p"]


def test_extension_types_and_operator_classes(pg):
    """The models' scratch schema saw only itself: citext and gin_trgm_ops could not be built there."""
    pg.sql("CREATE EXTENSION IF NOT EXISTS citext")
    pg.sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    pg.migrate('Table("u", metadata, Column("id", Integer, primary_key=True), Column("name", String(40)))')
    pg.insert("u", [(1, "Ann")])
    body = """
from sqlalchemy.dialects.postgresql import CITEXT
Table("u", metadata, Column("id", Integer, primary_key=True), Column("name", String(40)), Column("email", CITEXT),
      Index("ix_u_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}))
"""
    pg.migrate(body)
    pg.sql("UPDATE u SET email = 'Ann@Example.org'")
    assert pg.sql("SELECT id FROM u WHERE email = 'ann@example.ORG'") == [(1,)]


def test_nullable_foreign_key_column_added_to_a_table_with_rows(server):
    """PostgreSQL's orphan probe compared the column with an untyped NULL: "operator does not exist:
    integer = text", a traceback from status and migrate."""
    server.migrate('Table("p", metadata, Column("id", Integer, primary_key=True))\n'
                   'Table("c", metadata, Column("id", Integer, primary_key=True))')
    server.insert("p", [(1,)])
    server.insert("c", [(1,), (2,)])
    body = ('Table("p", metadata, Column("id", Integer, primary_key=True))\n'
            'Table("c", metadata, Column("id", Integer, primary_key=True), Column("pid", Integer, ForeignKey("p.id")),'
            ' Column("code", String(5), server_default="x"), Column("flag", Boolean, server_default=text("false")))')
    status = server.system(body).check_migration_status()
    assert status.safe_to_apply, status
    server.migrate(body)
    assert server.sql("SELECT id, pid, code FROM c ORDER BY id") == [(1, None, "x"), (2, None, "x")]


GEN = """
from sqlalchemy import Computed
Table("o", metadata, Column("id", Integer, primary_key=True), Column("price", Integer), Column("qty", Integer),
      Column("fee", Integer), Column("total", Integer, Computed("{expr}", persisted={stored})), Index("ix_o_total", "total"))
"""


@pytest.mark.parametrize("stored", ["True", "False"], ids=["stored", "virtual"])
def test_generated_column_changes_recompute_every_value_and_keep_indexes(server, stored):
    if server.kind == "postgresql" and stored == "False":
        pytest.skip("PostgreSQL 15 has only STORED generated columns")
    server.migrate(GEN.format(expr="price * qty", stored=stored))
    server.sql("INSERT INTO o (id, price, qty, fee) VALUES (1, 2, 3, 4), (2, 5, 5, 1)")
    changed = GEN.format(expr="price * qty + fee", stored=stored)
    status = server.system(changed).check_migration_status()
    assert status.safe_to_apply and status.plan_proven, status.proof
    server.migrate(changed)
    assert server.sql("SELECT id, total FROM o ORDER BY id") == [(1, 10), (2, 26)]
    assert "ix_o_total" in server.indexes("o")
    if server.kind == "mysql":  # between VIRTUAL and STORED: was no difference at all
        other = GEN.format(expr="price * qty + fee", stored="False" if stored == "True" else "True")
        assert [c.kind for c in server.system(other).check_migration_status().changes] == ["alter_column_generated"]
        server.migrate(other)
        assert server.sql("SELECT id, total FROM o ORDER BY id") == [(1, 10), (2, 26)]
        assert "ix_o_total" in server.indexes("o")
    # and made plain, from either kind: the values stay, the index too, and new rows no longer compute
    plain = changed.replace(', Computed("price * qty + fee", persisted={})'.format(stored), "")
    if server.kind == "mysql":
        server.migrate(changed)
    server.migrate(plain)
    assert server.sql("SELECT id, total FROM o ORDER BY id") == [(1, 10), (2, 26)]
    assert "ix_o_total" in server.indexes("o")
    assert server.system(plain).check_migration_status().migration_needed is False
    server.sql("INSERT INTO o (id, price, qty, fee, total) VALUES (3, 1, 1, 1, 7)")


SIZES = 'Table("e", metadata, Column("id", Integer, primary_key=True), Column("size", Enum({v}, name="size")))'


def test_enum_value_removed_while_rows_hold_it_is_refused_with_the_count(server):
    """MariaDB said 'every value converts', then failed with 'Data truncated'."""
    server.migrate(SIZES.format(v="'s', 'm', 'l'"))
    server.insert("e", [(1, "l"), (2, "l"), (3, "s")])
    assert_refused(server, SIZES.format(v="'s', 'm'"), match="2 values in e.size do not convert")
    server.sql("UPDATE e SET size = 'm' WHERE size = 'l'")
    server.migrate(SIZES.format(v="'s', 'm'"))
    assert server.sql("SELECT id, size FROM e ORDER BY id" if server.kind == "mysql"
                      else "SELECT id, size::text FROM e ORDER BY id") == [(1, "m"), (2, "m"), (3, "s")]


def test_mysql_table_and_column_collations(my):
    """Planned as MODIFY COLUMN without the collation, so the post-check failed."""
    base = 'Table("c", metadata, Column("id", Integer, primary_key=True), Column("name", String(20{col})){tbl})'
    my.migrate(base.format(col="", tbl=""))
    my.insert("c", [(1, "Ann"), (2, "ann")])
    binary_column = base.format(col=', collation="utf8mb4_bin"', tbl="")
    my.migrate(binary_column)
    assert my.sql("SELECT count(*) FROM c WHERE name = 'ann'") == [(1,)]
    binary_table = base.format(col="", tbl=', mysql_collate="utf8mb4_bin"')
    status = my.system(binary_table).check_migration_status()
    assert any("COLLATE utf8mb4_bin" in c.detail for c in status.changes), [c.detail for c in status.changes]
    my.migrate(binary_table)
    assert my.sql("SELECT table_collation FROM information_schema.tables WHERE table_schema = DATABASE() "
                  "AND table_name = 'c'") == [("utf8mb4_bin",)]
    assert my.sql("SELECT id, name FROM c ORDER BY id") == [(1, "Ann"), (2, "ann")]


def test_mysql_names_the_server_chose_are_no_difference(my):
    """A fully upgraded application showed 25 pending changes on MariaDB: the index InnoDB made for a
    foreign key, and keys the models leave unnamed but another tool named."""
    my.sql("CREATE TABLE customers (id INT PRIMARY KEY)")
    my.sql("CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, code VARCHAR(10), "
           "CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id), "
           "UNIQUE KEY uq_orders_code (code))")
    my.sql("CREATE INDEX ix_orders_customer_id ON orders (customer_id, id)")  # added later: covers the key's own index
    body = """
Table("customers", metadata, Column("id", Integer, primary_key=True, autoincrement=False))
Table("orders", metadata, Column("id", Integer, primary_key=True, autoincrement=False),
      Column("customer_id", Integer, ForeignKey("customers.id", name="fk_orders_customer")),
      Column("code", String(10)), UniqueConstraint("code"), Index("ix_orders_customer_id", "customer_id", "id"))
"""
    status = my.system(body).check_migration_status()
    assert status.migration_needed is False, [c.detail for c in status.changes]


def test_values_that_would_collide_under_a_unique_key_after_a_change_are_refused(server):
    """'1' and '01' under UNIQUE both become 1 as INTEGER, 'a' and 'A' one value case-insensitively:
    status said the change could be applied, then migrate failed on the duplicate key."""
    body = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("code", {type}, unique=True))'
    server.migrate(body.format(type="String(10)"))
    server.insert("t", [(1, "1"), (2, "01"), (3, "7")])
    msg = assert_refused(server, body.format(type="Integer"), match="would collide once converted")
    assert "2 values of unique key (code)" in msg or "1 value of unique key (code)" in msg, msg
    if server.kind == "mysql":
        coll = 'String(10, collation="{c}")'
        server.sql("DELETE FROM t")
        server.migrate(body.format(type=coll.format(c="utf8mb4_bin")))
        server.insert("t", [(1, "a"), (2, "A")])
        assert_refused(server, body.format(type=coll.format(c="utf8mb4_general_ci")), match="would collide under (collation|the default collation)")


def test_mysql_foreign_key_from_an_ignored_table_refuses_a_type_change_up_front(my):
    body = 'Table("p", metadata, Column("id", Integer, primary_key=True, autoincrement=False))'
    my.migrate(body)
    my.sql("CREATE TABLE legacy (id INT PRIMARY KEY, p_id INT, FOREIGN KEY (p_id) REFERENCES p (id))")
    wider = body.replace("Integer", "BigInteger")
    status = my.system(wider, ignore_tables=["legacy"]).check_migration_status()
    assert status.safe_to_apply is False and "legacy" in (status.proof or ""), status.proof


ARTIFACT = """
metadata.naming_convention = {"ix": "ix_%(table_name)s__%(column_0_name)s"}
artifact = Table("artifact", metadata, Column("id", Integer, primary_key=True), Column("key", String(50), index=True),
                 Column("data", Text))
Index("ix_artifact__key", artifact.c.key)
"""


def test_an_index_declared_twice_with_one_name_and_definition_is_created_once(anydb):
    """Prefect 3's `artifact.key`: `index=True` under a naming convention plus an explicit Index of the
    same name on the same column. Both the normalization and a plan that creates the table make it once
    (the plan made it twice, and its proof failed with "relation ix_artifact__key already exists")."""
    anydb.migrate(ARTIFACT)
    indexes = [i for i in anydb.system(ARTIFACT).comparator.compare_schemas().live.tables["artifact"].indexes
               if not i.unique and not i.auto]
    assert [i.name for i in indexes] == ["ix_artifact__key"]


def test_an_index_made_for_another_database_only_is_neither_expected_nor_created(anydb):
    """Prefect 3: `Index(...).ddl_if(dialect="sqlite")`. create_all makes it on SQLite only; a plan that
    creates the table made it everywhere, and then could not reach the models ("drop index ...")."""
    body = """
state = Table("flow_run_state", metadata, Column("id", Integer, primary_key=True), Column("type", String(20)),
              Column("name", String(50)))
Index("ix_flow_run_state__type_name", state.c.type, state.c.name).ddl_if(dialect="sqlite")
"""
    anydb.migrate(body)
    live = anydb.system(body).comparator.compare_schemas().live.tables["flow_run_state"]
    assert [i.name for i in live.indexes if not i.auto] == (["ix_flow_run_state__type_name"] if anydb.kind == "sqlite" else [])
