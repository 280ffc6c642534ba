"""Views, materialized views, triggers and trigger functions beside the models' tables: every kind of
change under them on real servers (and SQLite where it applies). They are never reported as
differences, never lost: a change the engine refuses under them sets them aside and makes them
again, and a change that removes what they use is refused up front with the object named."""

from __future__ import annotations

import pytest

from matrix import ROWS, USERS_NO_BIO, USERS_V1, assert_refused, seed, users
from servers import my, pg, server  # noqa: F401 - fixtures

ORDERS = USERS_V1 + """
Table("orders", metadata, Column("id", Integer, primary_key=True), Column("user_id", Integer, ForeignKey("users.id")),
      Column("total", Numeric(10, 2)))
"""


def kept(p) -> dict[str, str]:
    """kind name -> definition of every view, trigger and routine, read by the tool's own catalog reader."""
    system = p.system(USERS_V1)
    conn = system.dialect.connect(write=False)
    try:
        return system.dialect.read_live(conn).kept_objects()
    finally:
        conn.close()


def view_rows(p, view: str) -> list[tuple]:
    return p.sql(f"SELECT * FROM {view} ORDER BY 1")


def test_views_and_triggers_are_never_differences(server):
    seed(server, ORDERS)
    server.sql("CREATE VIEW v_names AS SELECT id, name FROM users")
    if server.kind == "postgresql":
        server.sql("CREATE MATERIALIZED VIEW mv_totals AS SELECT user_id, sum(total) AS s FROM orders GROUP BY user_id")
        server.sql("CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$")
        server.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION up()")
    else:
        server.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW SET NEW.name = UPPER(NEW.name)")
    status = server.system(ORDERS).check_migration_status()
    assert status.migration_needed is False and status.changes == []
    assert "trigger t_up" in kept(server) and "view v_names" in kept(server)


def test_type_change_under_a_view_sets_it_aside_and_makes_it_again(server):
    """PostgreSQL refused it ("cannot alter type of a column used by a view or rule") after status had
    said it could be applied; now the view and a view on it are dropped and made again around it."""
    seed(server)
    server.sql("CREATE VIEW v_names AS SELECT id, name FROM users")
    server.sql("CREATE VIEW v_some AS SELECT name FROM v_names WHERE id > 1")
    before = kept(server)
    body = USERS_V1.replace('Column("name", String(50), nullable=False)', 'Column("name", Text, nullable=False)')
    preview = server.system(body).preview_diff()
    assert preview.safe_to_apply and preview.plan_proven, preview.proof
    [change] = preview.changes
    assert any("view v_names reads users.name" in w for w in change.warnings), change.warnings
    if server.kind == "postgresql":
        assert any("sets aside and makes again view v_names, view v_some" in w for w in change.warnings), change.warnings
    server.migrate(body)
    assert users(server) == ROWS
    assert view_rows(server, "v_some") == [("bob",), ("cy",)]
    after = kept(server)
    assert set(after) == set(before)
    assert server.system(body).check_migration_status().migration_needed is False


def test_column_rename_follows_into_views_and_triggers(server):
    """MariaDB left the view invalid and the trigger failing every insert; PostgreSQL followed the view
    but not the trigger function's NEW.name."""
    seed(server, ORDERS)
    server.sql("CREATE VIEW v_names AS SELECT u.id, u.name FROM users u JOIN orders o ON o.user_id = u.id")
    if server.kind == "postgresql":
        server.sql("CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$")
        server.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION up()")
    else:
        server.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW SET NEW.name = UPPER(NEW.name)")
    server.insert("orders", [(1, 1, 10)])
    body = ORDERS.replace('Column("name", String(50)', 'Column("full_name", String(50)')
    preview = server.system(body, renames=["users.name:full_name"]).preview_diff()
    assert preview.plan_proven, preview.proof
    server.migrate(body, renames=["users.name:full_name"])
    assert view_rows(server, "v_names") == [(1, "ann")]
    schema = "public" if server.kind == "postgresql" else server.dbname
    assert server.sql("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'v_names' "
                      "ORDER BY ordinal_position", (schema,)) == [("id",), ("name",)]  # the view's own columns keep their names
    server.insert("users", [(9, "zed", 1, None)])
    assert server.sql("SELECT full_name FROM users WHERE id = 9") == [("ZED",)]
    assert server.system(body).check_migration_status().migration_needed is False


def test_table_rename_follows_into_views(server):
    seed(server)
    server.sql("CREATE VIEW v_names AS SELECT id, name FROM users")
    body = USERS_V1.replace('Table("users"', 'Table("members"')
    server.migrate(body, renames=["users:members"])
    assert view_rows(server, "v_names") == [(1, "ann"), (2, "bob"), (3, "cy")]
    server.sql("INSERT INTO members VALUES (4, 'dee', NULL, NULL)")
    assert len(view_rows(server, "v_names")) == 4


def test_dropping_what_a_view_uses_is_refused_with_the_view_named(anydb):
    seed(anydb)
    anydb.sql("CREATE VIEW v_bio AS SELECT id, bio FROM users")
    message = assert_refused(anydb, USERS_NO_BIO, match="v_bio")
    assert "users.bio" in message or "bio" in message
    # the same with permission: still refused, the view would be lost
    before = anydb.snapshot()
    from migration_core.errors import SafetyRefusal

    with pytest.raises(SafetyRefusal, match="v_bio"):
        anydb.system(USERS_NO_BIO).execute_auto_migration(allow_destructive=True)
    assert anydb.snapshot() == before
    anydb.sql("DROP VIEW v_bio")
    anydb.migrate(USERS_NO_BIO, allow_destructive=True)
    assert users(anydb, "id, name, age") == [r[:3] for r in ROWS]


def test_dropping_a_table_a_view_reads_is_refused(server):
    seed(server, ORDERS)
    server.sql("CREATE VIEW v_orders AS SELECT id, total FROM orders")
    msg = assert_refused(server, USERS_V1, match="v_orders")
    assert "orders" in msg


def test_postgresql_trigger_when_clause_and_materialized_view_survive_a_type_change(pg):
    seed(pg, ORDERS)
    pg.insert("orders", [(1, 1, 10), (2, 1, 5), (3, 2, 7)])
    pg.sql("CREATE MATERIALIZED VIEW mv_totals AS SELECT user_id, sum(total) AS s FROM orders GROUP BY user_id")
    pg.sql("CREATE UNIQUE INDEX mv_totals_user ON mv_totals (user_id)")
    pg.sql("CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.total := NEW.total + 0; RETURN NEW; END $$")
    pg.sql("CREATE TRIGGER t_stamp BEFORE UPDATE OF total ON orders FOR EACH ROW WHEN (NEW.total > 0) EXECUTE FUNCTION stamp()")
    pg.sql("COMMENT ON MATERIALIZED VIEW mv_totals IS 'per user'")
    body = ORDERS.replace('Column("total", Numeric(10, 2))', 'Column("total", Numeric(12, 2))')
    preview = pg.system(body).preview_diff()
    assert preview.plan_proven, preview.proof
    assert any("materialized view mv_totals" in w and "trigger t_stamp" in w for w in preview.changes[0].warnings)
    pg.migrate(body)
    assert pg.sql("SELECT user_id, s FROM mv_totals ORDER BY 1") == [(1, 15), (2, 7)]  # made again with its rows
    assert pg.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'mv_totals'") == [("mv_totals_user",)]
    assert pg.sql("SELECT obj_description('mv_totals'::regclass, 'pg_class')") == [("per user",)]
    trig = pg.sql("SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 't_stamp'")[0][0]
    assert "WHEN ((new.total > (0)::numeric))" in trig and "UPDATE OF total" in trig


def test_postgresql_grants_and_owner_of_a_view_made_again_are_kept(pg):
    seed(pg)
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mig_reporting') THEN "
           "CREATE ROLE mig_reporting NOLOGIN; END IF; END $$")
    pg.sql("CREATE VIEW v_names AS SELECT id, name FROM users")
    pg.sql("GRANT SELECT ON v_names TO mig_reporting")
    pg.migrate(USERS_V1.replace('Column("name", String(50)', 'Column("name", String(80)'))
    assert pg.sql("SELECT has_table_privilege('mig_reporting', 'v_names', 'SELECT')") == [(True,)]


def test_postgresql_drop_column_a_trigger_function_uses_is_refused(pg):
    seed(pg)
    pg.sql("CREATE FUNCTION keep_bio() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.bio := coalesce(NEW.bio, ''); RETURN NEW; END $$")
    pg.sql("CREATE TRIGGER t_bio BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION keep_bio()")
    from migration_core.errors import SafetyRefusal

    with pytest.raises(SafetyRefusal, match="function keep_bio"):
        pg.system(USERS_NO_BIO).execute_auto_migration(allow_destructive=True)


def test_mysql_trigger_naming_another_table_follows_its_renames(my):
    log = 'Table("{t}", metadata, Column("id", Integer, primary_key=True), Column("{c}", String(100)))\n'
    seed(my, ORDERS + log.format(t="audit_log", c="msg"))
    my.sql("CREATE TRIGGER t_log AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit_log (msg) VALUES (CONCAT('order ', NEW.id))")
    my.sql("CREATE TRIGGER t_log2 AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit_log (msg) VALUES ('second')")
    my.sql("ALTER TABLE audit_log MODIFY id INT AUTO_INCREMENT")
    body = ORDERS + log.format(t="audit_entries", c="message")
    hints = ["audit_log:audit_entries", "audit_entries.msg:message"]
    preview = my.system(body, renames=hints).preview_diff()
    assert preview.plan_proven, preview.proof
    my.migrate(body, renames=hints)
    my.insert("orders", [(5, 1, 3)])
    assert my.sql("SELECT message FROM audit_entries ORDER BY id") == [("order 5",), ("second",)]  # both fire, in their order


def test_mysql_type_change_keeps_views_working(my):
    seed(my)
    my.sql("CREATE VIEW v_age AS SELECT id, age FROM users")
    body = USERS_V1.replace('Column("age", Integer)', 'Column("age", BigInteger)')
    status = my.system(body).check_migration_status()
    assert any("view v_age reads users.age: what it returns changes type" in w for w in status.changes[0].warnings)
    my.migrate(body)
    assert view_rows(my, "v_age") == [(1, 30), (2, None), (3, 41)]
