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


def _objects_fixture(p) -> None:
    """A view, a view on it, a trigger (PostgreSQL: with its function, and a materialized view;
    MariaDB: a procedure and an event too)."""
    p.sql("CREATE VIEW v_names AS SELECT id, name FROM users")
    p.sql("CREATE VIEW v_some AS SELECT name FROM v_names WHERE id > 1")
    if p.kind == "postgresql":
        p.sql("CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$")
        p.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION up()")
        p.sql("CREATE MATERIALIZED VIEW mv_ages AS SELECT age, count(*) AS n FROM users GROUP BY age")
        p.sql("CREATE FUNCTION adults() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM users WHERE age >= 18 $$")
    else:
        p.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW SET NEW.name = UPPER(NEW.name)")
        p.sql("CREATE PROCEDURE adults() SELECT count(*) FROM users WHERE age >= 18")
        p.sql("CREATE EVENT ev_nop ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1")


@pytest.mark.parametrize("engine", ["tools", "builtin"])
def test_backup_and_restore_keep_views_triggers_and_routines_exactly(server, engine):
    seed(server)
    _objects_fixture(server)
    system = server.system(USERS_V1)
    manager = system.backups if engine == "tools" else server.builtin_backup(system)[1]
    before, rows = manager.engine.kept_objects(), server.state()
    assert {"view v_names", "view v_some", "trigger t_up"} <= set(before)
    info = manager.create_backup("test")
    assert info.unsaved_objects == []
    server.sql("DROP VIEW v_some")
    server.sql("DROP TRIGGER t_up" + (" ON users" if server.kind == "postgresql" else ""))
    server.sql("CREATE VIEW v_later AS SELECT id FROM users")  # made after the backup: a restore removes it
    server.sql("DELETE FROM users WHERE id = 1")
    manager.restore_backup(info.id)
    assert manager.engine.kept_objects() == before  # byte for byte the same definitions
    assert server.state() == rows
    server.insert("users", [(8, "hal", 5, None)])
    assert server.sql("SELECT name FROM users WHERE id = 8") == [("HAL",)]  # the trigger fires again


def test_a_restore_that_does_not_bring_the_objects_back_fails_loudly(server):
    import json

    from migration_core.errors import BackupError

    seed(server)
    _objects_fixture(server)
    manager = server.system(USERS_V1).backups
    info = manager.create_backup("test")
    meta_path = server.backups / f"{info.id}.json"
    meta = json.loads(meta_path.read_text())
    meta["kept_objects"]["view v_names"] = "0" * 64  # the definition it should find is not the one restored
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BackupError, match="different: view v_names"):
        manager.restore_backup(info.id)


def test_mysql_rollback_keeps_triggers(my):
    """Backups were taken with --skip-triggers: a rollback dropped every trigger without a word."""
    seed(my)
    my.sql("CREATE TRIGGER t_up BEFORE INSERT ON users FOR EACH ROW SET NEW.name = UPPER(NEW.name)")
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), Column("email", String(100)))')
    my.migrate(body)
    my.system(body).rollback_last_migration()
    assert "trigger t_up" in kept(my)
    my.insert("users", [(9, "zed", 1, None)])
    assert my.sql("SELECT name FROM users WHERE id = 9") == [("ZED",)]


def test_mysql_broken_view_does_not_fail_the_backup_or_the_rollback(my):
    seed(my)
    my.sql("CREATE VIEW v_bio AS SELECT id, bio FROM users")
    my.sql("CREATE VIEW v_ok AS SELECT id FROM users")
    my.sql("ALTER TABLE users RENAME COLUMN bio TO biography")  # by hand, outside the tool: v_bio is broken now
    body = USERS_V1.replace('Column("bio", Text)', 'Column("biography", Text)')
    result = my.migrate(with_email := body.replace('Column("biography", Text))', 'Column("biography", Text), Column("email", String(100)))'))
    backup = my.system(with_email).backups.get_backup(result.backup_id)
    assert [u.split(" (")[0] for u in backup.unsaved_objects] == ["view v_bio"] and "1356" in backup.unsaved_objects[0]
    my.system(with_email).rollback_last_migration()
    assert my.sql("SELECT id FROM v_ok ORDER BY id") == [(1,), (2,), (3,)]
    assert "view v_bio" in kept(my)  # still there, as broken as before: nothing could make it again
    status = my.system(body).check_migration_status()
    assert status.migration_needed is False


def test_mysql_automatic_restore_makes_set_aside_views_again(my):
    """A plan that sets a view aside for a rename and then fails: the automatic restore puts the
    view back with the tables."""
    v1 = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), CheckConstraint("age < 100", name="ck_age"))')
    seed(my, v1)
    my.sql("CREATE VIEW v_names AS SELECT id, name FROM users")
    with my.engine.connect() as c:  # a row that breaks the CHECK, which the ALTER's copy of users verifies again
        c.exec_driver_sql("SET SESSION check_constraint_checks = 0")
        c.exec_driver_sql("UPDATE users SET age = 500 WHERE id = 1")
    body = v1.replace('Column("name", String(50)', 'Column("full_name", String(50)').replace(
        'Column("bio", Text)', 'Column("bio", String(60))')
    before = kept(my)
    from migration_core.errors import MigrationError

    with pytest.raises(MigrationError, match="made again as they were: view v_names"):
        my.system(body, renames=["users.name:full_name"]).execute_auto_migration()
    assert kept(my) == before
    assert view_rows(my, "v_names") == [(1, "ann"), (2, "bob"), (3, "cy")]


def test_health_names_a_broken_view_or_trigger_function(anydb):
    seed(anydb)
    assert {c.name: c for c in anydb.system(USERS_V1).get_system_health().checks}["kept_objects"].status == "pass"
    if anydb.kind == "postgresql":
        anydb.sql("CREATE FUNCTION keep_bio() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.bio := coalesce(NEW.bio, ''); "
                  "RETURN NEW; END $$")
        anydb.sql("CREATE TRIGGER t_bio BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION keep_bio()")
        anydb.sql("ALTER TABLE users RENAME COLUMN bio TO biography")  # by hand: the function still says NEW.bio
        name = "function keep_bio (trigger t_bio on users) uses NEW.bio"
    elif anydb.kind == "mysql":
        anydb.sql("CREATE VIEW v_bio AS SELECT id, bio FROM users")
        anydb.sql("ALTER TABLE users RENAME COLUMN bio TO biography")  # by hand: the view is broken
        name = "view v_bio does not work"
    else:  # SQLite follows a rename into views itself, but checks a view's names only when it is used
        anydb.sql("ALTER TABLE users RENAME COLUMN bio TO biography")
        anydb.sql("CREATE VIEW v_bio AS SELECT id, bio FROM users")
        name = "view v_bio does not work: no such column: bio"
    health = anydb.system(USERS_V1.replace('"bio"', '"biography"')).get_system_health()
    check = {c.name: c for c in health.checks}["kept_objects"]
    assert check.status == "fail" and name in check.detail, check
    assert health.status == "degraded"


def test_percent_signs_and_spaces_in_kept_definitions_and_names(server):
    """A `%` in a view, a CHECK or a DEFINER host made the driver take it for a placeholder (a traceback
    from status, migrate and the built-in restore); a name with a space was split as "kind name"."""
    body = USERS_V1.replace('Column("bio", Text))', 'Column("bio", Text), CheckConstraint("age % 2 = 0 OR age IS NULL OR age > 0"))')
    server.migrate(body)
    server.insert("users", ROWS)
    q = '"' if server.kind == "postgresql" else "`"
    server.sql(f"CREATE VIEW {q}a names{q} AS SELECT id, name FROM users WHERE name LIKE 'a%'")
    if server.kind == "mysql":
        server.sql("CREATE TRIGGER `my trg` BEFORE INSERT ON users FOR EACH ROW SET NEW.bio = CONCAT(NEW.bio, '%')")
    wider = body.replace('Column("age", Integer)', 'Column("age", BigInteger)').replace('String(50)', 'String(60)')
    status = server.system(wider).check_migration_status()
    assert status.plan_proven and status.safe_to_apply, status.proof
    server.migrate(wider)
    assert server.sql(f"SELECT * FROM {q}a names{q}") == [(1, "ann")]
    system = server.system(wider)
    for manager in (system.backups, server.builtin_backup(system)[1]):
        info = manager.create_backup("test")
        server.sql("DELETE FROM users WHERE id = 3")
        manager.restore_backup(info.id)
        assert len(server.sql("SELECT * FROM users")) == 3


def test_postgresql_rollback_keeps_the_schema_its_owner_privileges_and_table_grants(pg):
    """A restore dropped the schema and made it again: other roles lost USAGE on it, and the built-in
    dump also lost their table grants, so the application was down after any rollback."""
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mig_app') THEN CREATE ROLE mig_app NOLOGIN; END IF; END $$")
    seed(pg)
    pg.sql("GRANT SELECT, INSERT ON users TO mig_app")
    pg.sql("GRANT UPDATE (name) ON users TO mig_app")
    pg.sql("GRANT USAGE ON SCHEMA public TO mig_app")
    pg.sql("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO mig_app")
    access = ("SELECT has_schema_privilege('mig_app', 'public', 'USAGE'), has_table_privilege('mig_app', 'users', 'INSERT'), "
              "has_column_privilege('mig_app', 'users', 'name', 'UPDATE'), "
              "(SELECT count(*) FROM pg_default_acl a JOIN pg_namespace n ON n.oid = a.defaclnamespace WHERE n.nspname = 'public')")
    before = pg.sql(access)
    assert before == [(True, True, True, 1)]
    system = pg.system(USERS_V1)
    for manager in (system.backups, pg.builtin_backup(system)[1]):
        info = manager.create_backup("test")
        manager.restore_backup(info.id)
        assert pg.sql(access) == before, manager.engine.name


def test_postgresql_view_features_survive_being_made_again(pg):
    seed(pg)
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mig_app') THEN CREATE ROLE mig_app NOLOGIN; END IF; END $$")
    pg.sql("CREATE VIEW v_names AS SELECT id, name, age FROM users")
    pg.sql("ALTER VIEW v_names ALTER COLUMN age SET DEFAULT 18")
    pg.sql("COMMENT ON COLUMN v_names.name IS 'display name'")
    pg.sql("CREATE RULE v_names_del AS ON DELETE TO v_names DO INSTEAD DELETE FROM users WHERE id = OLD.id")
    pg.sql("GRANT SELECT (id) ON v_names TO mig_app")
    pg.sql("GRANT SELECT ON v_names TO mig_app WITH GRANT OPTION")
    pg.sql("CREATE MATERIALIZED VIEW mv_names AS SELECT id, name FROM users")
    pg.sql("CREATE INDEX mv_names_id ON mv_names (id)")
    pg.sql("ALTER MATERIALIZED VIEW mv_names CLUSTER ON mv_names_id")
    facts = ("SELECT (SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'v_names'::regclass), "
             "col_description('v_names'::regclass, 2), (SELECT count(*) FROM pg_rewrite WHERE rulename = 'v_names_del'), "
             "has_column_privilege('mig_app', 'v_names', 'id', 'SELECT'), "
             "has_table_privilege('mig_app', 'v_names', 'SELECT WITH GRANT OPTION'), "
             "(SELECT indisclustered FROM pg_index WHERE indexrelid = 'mv_names_id'::regclass)")
    before = pg.sql(facts)
    pg.migrate(USERS_V1.replace('Column("name", String(50)', 'Column("name", String(80)'))
    assert pg.sql(facts) == before
    pg.sql("DELETE FROM v_names WHERE id = 3")  # the rule is back
    assert [r[0] for r in pg.sql("SELECT id FROM users ORDER BY id")] == [1, 2]


TAGS = """
Table("orders", metadata, Column("id", Integer, primary_key=True), Column("tag", String(20)), Column("note", String(20)))
Table("{tags}", metadata, Column("id", Integer, primary_key=True), Column("tag", String(20)))
Table("users", metadata, Column("id", Integer, primary_key=True), Column("{note}", String(20)))
"""


def test_mysql_trigger_bodies_are_rewritten_only_where_a_name_is_certain(my):
    """A table renamed `tag` -> `tags` with a column `tag`: only the table in `INSERT INTO tag (tag)` is
    renamed, and a trigger on `tag` that names its own table follows too. A renamed column named bare in
    a body that names several tables is refused, not guessed."""
    my.migrate(TAGS.format(tags="tag", note="note"))
    my.sql("ALTER TABLE tag MODIFY id INT AUTO_INCREMENT")
    my.sql("CREATE TRIGGER trg_o AFTER INSERT ON orders FOR EACH ROW INSERT INTO tag (tag) VALUES (NEW.tag)")
    my.sql("CREATE TRIGGER trg_t BEFORE INSERT ON tag FOR EACH ROW SET NEW.tag = (SELECT count(*) FROM tag)")
    my.migrate(TAGS.format(tags="tags", note="note"), renames=["tag:tags"])
    my.insert("orders", [(1, "a", None)])
    assert my.sql("SELECT tag FROM tags") == [("0",)]
    my.sql("CREATE TRIGGER trg_n BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = (SELECT max(note) FROM users)")
    from migration_core.errors import SafetyRefusal

    before = my.snapshot()
    with pytest.raises(SafetyRefusal, match="trigger trg_n") as exc:
        my.system(TAGS.format(tags="tags", note="remark"), renames=["users.note:remark"]).execute_auto_migration()
    assert "'note' is renamed in users, but is named bare" in str(exc.value)
    assert my.snapshot() == before


def test_dropping_what_trigger_code_uses_is_refused(anydb):
    """A column another table's trigger writes (`INSERT INTO audit (note)`) was dropped, and then every
    insert into orders failed; a PostgreSQL function naming a quoted column or a dropped table too."""
    body = """
Table("orders", metadata, Column("id", Integer, primary_key=True), Column("Amount", Integer))
Table("audit", metadata, Column("id", Integer, primary_key=True), Column("note", String(40)))
"""
    anydb.migrate(body)
    if anydb.kind == "postgresql":
        anydb.sql("""CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                     INSERT INTO audit (id, note) VALUES (NEW.id, 'x' || NEW."Amount"); RETURN NEW; END $$""")
        anydb.sql("CREATE TRIGGER t_log AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order()")
    elif anydb.kind == "mysql":
        anydb.sql("CREATE TRIGGER t_log AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (id, note) VALUES (NEW.id, NEW.Amount)")
    else:
        anydb.sql("CREATE TRIGGER t_log AFTER INSERT ON orders BEGIN INSERT INTO audit (id, note) VALUES (NEW.id, NEW.Amount); END")
    no_note = body.replace(', Column("note", String(40))', "")
    no_amount = body.replace(', Column("Amount", Integer)', "")
    no_audit = body.split('Table("audit"')[0]
    for target, what in ((no_note, "note"), (no_amount, "Amount"), (no_audit, "audit")):
        from migration_core.errors import SafetyRefusal

        before = anydb.snapshot()
        with pytest.raises(SafetyRefusal, match="t_log|log_order") as exc:
            anydb.system(target).execute_auto_migration(allow_destructive=True)
        assert what in str(exc.value)
        assert anydb.snapshot() == before


def test_postgresql_function_naming_a_renamed_column_of_another_table_is_refused(pg):
    pg.migrate('Table("orders", metadata, Column("id", Integer, primary_key=True))\n'
               'Table("audit", metadata, Column("id", Integer, primary_key=True), Column("note", String(40)))')
    pg.sql("""CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
              INSERT INTO audit (id, note) VALUES (NEW.id, 'x'); RETURN NEW; END $$""")
    pg.sql("CREATE TRIGGER t_log AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION log_order()")
    body = ('Table("orders", metadata, Column("id", Integer, primary_key=True))\n'
            'Table("audit", metadata, Column("id", Integer, primary_key=True), Column("msg", String(40)))')
    status = pg.system(body, renames=["audit.note:msg"]).check_migration_status()
    assert status.safe_to_apply is False and "function log_order" in status.proof, status.proof


def test_postgresql_objects_the_tool_does_not_keep_refuse_a_change_under_them(pg):
    """A policy, a rule on a table, a view in another schema, a function taking a view's row type or an
    enum: status said the plan could be applied, then migrate failed ("cannot alter type of a column used
    in a policy definition", "cannot drop view ... because other objects depend on it")."""
    body = ('Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", Integer), '
            'Column("s", Enum("a", "b", name="status")))')
    pg.migrate(body)
    wider = body.replace('Column("v", Integer)', 'Column("v", BigInteger)')
    setups = [
        ("ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p_v ON t USING (v > 0)", wider, "policy p_v"),
        ("CREATE SCHEMA IF NOT EXISTS other; CREATE VIEW other.v_t AS SELECT id, v FROM public.t", wider, "view other.v_t"),
        ("CREATE RULE r_t AS ON UPDATE TO t WHERE NEW.v < 0 DO INSTEAD NOTHING", wider, "rule r_t"),
        ("CREATE VIEW v_t AS SELECT id, v FROM t; CREATE FUNCTION get_vt() RETURNS SETOF v_t LANGUAGE sql AS 'SELECT * FROM v_t'",
         wider, "function get_vt"),
        ("CREATE FUNCTION is_a(s status) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT s = 'a' $$",
         body.replace('Enum("a", "b"', 'Enum("b", "a"'), "function is_a"),
    ]
    from migration_core.errors import SafetyRefusal

    for setup, target, name in setups:
        for stmt in setup.split("; "):
            pg.sql(stmt)
        status = pg.system(target).check_migration_status()
        assert status.safe_to_apply is False and name in (status.proof or ""), (name, status.proof)
        before = pg.snapshot()
        with pytest.raises(SafetyRefusal, match=name.split(" ")[1]):
            pg.system(target).execute_auto_migration()
        assert pg.snapshot() == before
        pg.sql("DROP SCHEMA IF EXISTS other CASCADE")
        for undo in ("DROP POLICY IF EXISTS p_v ON t", "ALTER TABLE t DISABLE ROW LEVEL SECURITY", "DROP RULE IF EXISTS r_t ON t",
                     "DROP FUNCTION IF EXISTS get_vt()", "DROP VIEW IF EXISTS v_t", "DROP FUNCTION IF EXISTS is_a(status)"):
            pg.sql(undo)
    pg.migrate(wider)  # with nothing outside in the way, it goes through
