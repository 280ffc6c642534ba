"""Kinds a conformance run of a declarative schema-diff tool's own cases found: identifier case,
unnamed CHECK names, AUTO_INCREMENT, generated columns, JSON, enum types, sequences and serial columns,
tables without columns, foreign key actions, and keys dropped in the order the engine needs. Each on
the databases it can occur on, with the data checked."""

from __future__ import annotations


from servers import my, pg, server  # noqa: F401 - fixtures


def test_postgresql_names_that_differ_only_in_case_are_two_names(pg):
    """"Users" and users were folded into one: a change to one was missed or applied to the other."""
    body = """
Table("Users", metadata, Column("id", Integer, primary_key=True), Column("Name", String(20)), Column("name", String(20)))
Table("users", metadata, Column("id", Integer, primary_key=True), Column("Name", String(20)))
"""
    pg.migrate(body)
    pg.sql('INSERT INTO "Users" VALUES (1, \'A\', \'a\')')
    pg.sql("INSERT INTO users VALUES (1, 'b')")
    assert pg.system(body).check_migration_status().migration_needed is False
    changed = body.replace('Column("name", String(20)))', 'Column("name", String(40)))', 1)
    status = pg.system(changed).check_migration_status()
    assert [c.detail for c in status.changes] == ['change type of Users.name from VARCHAR(20) to VARCHAR(40)']
    pg.migrate(changed)
    assert pg.sql('SELECT "Name", name FROM "Users"') == [("A", "a")]
    assert pg.sql("SELECT character_maximum_length FROM information_schema.columns WHERE table_name = 'Users' "
                  "AND column_name = 'Name'") == [(20,)]


def test_mysql_auto_increment_added_and_removed_on_the_key(my):
    """Planned as DROP PRIMARY KEY; MODIFY .. AUTO_INCREMENT; ADD PRIMARY KEY, or a bare ADD COLUMN ..
    AUTO_INCREMENT: MariaDB refuses both (error 1075, the auto column must be a key)."""
    plain = 'Table("t", metadata, Column("id", Integer, primary_key=True, autoincrement=False), Column("v", Integer))'
    auto = 'Table("t", metadata, Column("id", Integer, primary_key=True, autoincrement=True), Column("v", Integer))'
    my.migrate(plain)
    my.insert("t", [(5, 1), (9, 2)])
    my.migrate(auto)
    my.sql("INSERT INTO t (v) VALUES (3)")
    assert my.sql("SELECT id, v FROM t ORDER BY id") == [(5, 1), (9, 2), (10, 3)]
    my.migrate(plain)
    assert my.sql("SELECT id, v FROM t ORDER BY id") == [(5, 1), (9, 2), (10, 3)]
    keyless = 'Table("k", metadata, Column("v", Integer), Column("w", Integer), PrimaryKeyConstraint("v", "w"))'
    my.migrate(plain + "\n" + keyless)
    my.insert("k", [(1, 1), (1, 2)])
    surrogate = 'Table("k", metadata, Column("id", Integer, primary_key=True, autoincrement=True), Column("v", Integer), Column("w", Integer))'
    my.migrate(plain + "\n" + surrogate)  # a new AUTO_INCREMENT key column on a table with rows
    assert sorted(r[0] for r in my.sql("SELECT id FROM k")) == [1, 2]


def test_mysql_json_column_added_to_a_table_keeps_the_servers_own_check(my):
    """MariaDB adds a json_valid CHECK named after the column itself; the plan added it again (1826)."""
    my.migrate('Table("d", metadata, Column("id", Integer, primary_key=True))')
    my.insert("d", [(1,)])
    body = 'Table("d", metadata, Column("id", Integer, primary_key=True), Column("doc", JSON), Column("meta", JSON))'
    my.migrate(body)
    my.sql("""UPDATE d SET doc = '{"a": 1}'""")
    assert my.system(body).check_migration_status().migration_needed is False


def test_mysql_column_level_checks_come_and_go_with_the_columns_definition(my):
    """TEXT <-> JSON, and a column CHECK the models drop: MariaDB keeps column-level CHECKs in the
    column's definition, so a MODIFY adds or removes them and DROP CONSTRAINT cannot (1826, 1091)."""
    from matrix import assert_refused

    text = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("j", {}))'
    my.migrate(text.format("Text"))
    my.sql("""INSERT INTO t VALUES (1, '{"a": 1}'), (2, NULL), (3, 'not json')""")
    assert_refused(my, text.format("JSON"), match="1 row in t violates CHECK \\(json_valid\\(j\\)\\)")
    my.sql("DELETE FROM t WHERE id = 3")
    for body in (text.format("JSON"), text.format("Text"), text.format("JSON"), text.format("String(20)")):
        my.migrate(body)
        assert my.system(body).check_migration_status().migration_needed is False, body
        assert my.sql("SELECT id, j FROM t ORDER BY id") == [(1, '{"a": 1}'), (2, None)]
    checked = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("j", String(20)), ' \
              'Column("n", Integer, CheckConstraint("n > 0")))'
    my.migrate(checked)
    assert my.sql("SELECT level FROM information_schema.check_constraints WHERE constraint_schema = DATABASE()") == [("Column",)]
    my.migrate(text.format("String(20)"), allow_destructive=True)  # n dropped, with its check
    my.migrate(checked)
    my.migrate(checked.replace(', CheckConstraint("n > 0")', ""))  # the check alone dropped
    my.sql("INSERT INTO t VALUES (4, NULL, -1)")
    assert my.system(checked.replace(', CheckConstraint("n > 0")', "")).check_migration_status().migration_needed is False


def test_postgresql_enum_types_the_models_own(pg):
    """A type declared but used by no column yet; a type left behind when its column moves to another;
    a text column made an enum while it has a default."""
    from_text = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("s", String(10), server_default="a"))'
    pg.migrate(from_text)
    pg.insert("t", [(1, "a"), (2, "b")])
    as_enum = ('Table("t", metadata, Column("id", Integer, primary_key=True), '
               'Column("s", Enum("a", "b", name="s_old"), server_default="a"))')
    pg.migrate(as_enum)
    assert pg.sql("SELECT id, s::text FROM t ORDER BY id") == [(1, "a"), (2, "b")]
    moved = as_enum.replace('name="s_old"', 'name="s_new"')
    pg.migrate(moved)
    assert pg.sql("SELECT typname FROM pg_type WHERE typname IN ('s_old', 's_new') ORDER BY 1") == [("s_new",)]
    declared = moved + '\nEnum("x", "y", name="spare", metadata=metadata)\n'
    pg.migrate(declared)
    assert pg.sql("SELECT enum_range(NULL::spare)::text") == [("{x,y}",)]


def test_postgresql_sequences_and_serial_widening(pg):
    """A non-key column taking values from a Sequence could not be created (the sequence never was);
    serial <-> bigserial and serial <-> identity were refused."""
    body = """
Table("t", metadata, Column("id", Integer, primary_key=True),
      Column("n", Integer, Sequence("t_n_seq"), server_default=text("nextval('t_n_seq')")))
"""
    pg.migrate(body)
    pg.sql("INSERT INTO t (id) VALUES (1), (2)")
    assert pg.sql("SELECT id, n FROM t ORDER BY id") == [(1, 1), (2, 2)]
    serial = body + '\nTable("s", metadata, Column("id", {type}, primary_key=True), Column("v", Integer))'
    pg.migrate(serial.format(type="Integer"))
    pg.sql("INSERT INTO s (v) VALUES (1), (2)")
    pg.migrate(serial.format(type="BigInteger"))  # serial -> bigserial: values and the sequence's position kept
    pg.sql("INSERT INTO s (v) VALUES (3)")
    pg.sql("SELECT setval(pg_get_serial_sequence('s', 'id'), 3000000000, false)")  # past what an integer sequence holds
    pg.sql("INSERT INTO s (v) VALUES (4)")
    pg.sql("DELETE FROM s WHERE v = 4")
    pg.sql("SELECT setval(pg_get_serial_sequence('s', 'id'), 3, true)")
    identity = serial.format(type="BigInteger, Identity()")
    pg.migrate(identity)  # serial -> identity
    pg.sql("INSERT INTO s (v) VALUES (4)")
    assert pg.sql("SELECT id FROM s ORDER BY id") == [(1,), (2,), (3,), (4,)]
    assert pg.sql("SELECT is_identity FROM information_schema.columns WHERE table_name = 's' AND column_name = 'id'") == [("YES",)]
    always = serial.format(type="BigInteger, Identity(always=True)")
    pg.migrate(always)
    assert pg.sql("SELECT identity_generation FROM information_schema.columns WHERE table_name = 's' AND column_name = 'id'") \
        == [("ALWAYS",)]
    pg.sql("INSERT INTO s (id, v) OVERRIDING SYSTEM VALUE VALUES (5, 5)")  # an id given by hand: the identity's sequence is now behind
    pg.migrate(serial.format(type="BigInteger"))  # identity -> serial: goes on past the largest id
    pg.sql("DELETE FROM s WHERE id = 5")
    pg.sql("INSERT INTO s (v) VALUES (5)")
    pg.sql("UPDATE s SET id = 5 WHERE v = 5")
    plain = serial.format(type="BigInteger, autoincrement=False")
    pg.migrate(plain)  # numbering taken away: values kept, no default
    assert pg.sql("SELECT column_default FROM information_schema.columns WHERE table_name = 's' AND column_name = 'id'") == [(None,)]
    pg.migrate(identity)  # a plain key numbered again: after the largest value
    pg.sql("INSERT INTO s (v) VALUES (6)")
    assert pg.sql("SELECT id, v FROM s ORDER BY id") == [(i, i) for i in range(1, 7)]
    assert pg.system(identity).check_migration_status().migration_needed is False
    assert pg.sql("SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relname LIKE '%mig%'") == [(0,)]


def test_postgresql_table_without_columns(pg):
    """`CREATE TABLE t ()` was invisible to the catalog reader: created again ("already exists")."""
    body = 'Table("empty", metadata)\nTable("t", metadata, Column("id", Integer, primary_key=True))'
    pg.migrate(body)
    assert "empty" in pg.tables()
    assert pg.system(body).check_migration_status().migration_needed is False


def test_foreign_key_action_change_keeps_its_index(server):
    """MariaDB: changing ON DELETE dropped and re-added the key, which renamed its implicit index, and the
    post-check rolled everything back."""
    body = """
Table("p", metadata, Column("id", Integer, primary_key=True))
Table("c", metadata, Column("id", Integer, primary_key=True), Column("pid", Integer, ForeignKey("p.id"{action})))
"""
    server.migrate(body.format(action=""))
    server.insert("p", [(1,)])
    server.insert("c", [(1, 1)])
    server.migrate(body.format(action=', ondelete="CASCADE"'))
    server.sql("DELETE FROM p WHERE id = 1")
    assert server.sql("SELECT count(*) FROM c") == [(0,)]


def test_primary_key_dropped_while_a_foreign_key_the_plan_drops_references_it(server):
    body = """
Table("p", metadata, Column("id", Integer, primary_key=True, autoincrement=False), Column("code", Integer, nullable=False){pk})
Table("c", metadata, Column("id", Integer, primary_key=True), Column("pid", Integer{fk}))
"""
    server.migrate(body.format(pk="", fk=', ForeignKey("p.id")'))
    server.insert("p", [(1, 10)])
    server.insert("c", [(1, 1)])
    changed = body.format(pk="", fk="").replace('Column("id", Integer, primary_key=True, autoincrement=False), '
                                                'Column("code", Integer, nullable=False)',
                                                'Column("id", Integer, nullable=False), Column("code", Integer, primary_key=True, '
                                                'autoincrement=False)', 1)
    server.migrate(changed, allow_destructive=True)
    assert server.sql("SELECT id, code FROM p") == [(1, 10)]
