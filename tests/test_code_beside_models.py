"""Code beside the models that names tables only as text (PostgreSQL functions and procedures no trigger
calls, MariaDB routines and events, another MariaDB database's views): a drop or rename it uses was
run and left it broken, with health at 100. Now refused up front, naming the object, and nothing changes."""

from __future__ import annotations

import re

import pytest

from migration_core.errors import SafetyRefusal
from servers import my, pg, server  # noqa: F401 - fixtures

OLD = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)), Column("extra", Integer))'
RENAMED = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("full_name", String(50)), Column("extra", Integer))'
DROPPED = 'Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))'

CODE = {
    "postgresql": [
        ("function count_named", "CREATE FUNCTION count_named(n text) RETURNS bigint LANGUAGE plpgsql AS "
                                 "$$BEGIN RETURN (SELECT count(*) FROM users WHERE name = n); END$$", "name"),
        ("procedure p_ins", "CREATE PROCEDURE p_ins(n text) LANGUAGE plpgsql AS $$BEGIN INSERT INTO users (id, name) "
                            "VALUES (99, n); END$$", "name"),
        ("function sum_extra", "CREATE FUNCTION sum_extra() RETURNS bigint LANGUAGE sql AS $$SELECT sum(extra) FROM users$$",
         "extra"),
    ],
    "mysql": [
        ("function count_named", "CREATE FUNCTION count_named(n varchar(50)) RETURNS int READS SQL DATA "
                                 "RETURN (SELECT count(*) FROM users WHERE name = n)", "name"),
        ("procedure p_ins", "CREATE PROCEDURE p_ins(n varchar(50)) INSERT INTO users (id, name) VALUES (99, n)", "name"),
        ("event ev", "CREATE EVENT ev ON SCHEDULE EVERY 1 DAY DISABLE DO UPDATE users SET extra = 0", "extra"),
    ],
}


@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_drop_or_rename_that_routine_code_uses_is_refused(server, which):
    key, create, column = CODE[server.kind][which]
    server.migrate(OLD)
    server.insert("users", [(1, "ann", 1)])
    server.sql(create)
    new = RENAMED if column == "name" else DROPPED
    opts = {"renames": ["users.name:full_name"]} if column == "name" else {"allow_destructive": True}
    status = server.system(new).check_migration_status(**({"renames": opts["renames"]} if "renames" in opts else {}))
    assert not status.safe_to_apply and key in str(status.model_dump())
    with pytest.raises(SafetyRefusal, match=re.escape(key) + ".*" + re.escape(f"users.{column}")):
        server.migrate(new, **opts)
    assert server.sql(f"SELECT {column} FROM users") == [("ann" if column == "name" else 1,)]
    # unrelated changes still run beside it
    server.migrate(OLD.replace('Column("extra", Integer)', 'Column("extra", Integer), Column("more", Integer)'))


def test_mysql_view_of_another_database_that_names_a_renamed_table(my):
    other = my.dbname + "_reports"
    my.migrate('Table("tag", metadata, Column("id", Integer, primary_key=True), Column("tag", String(20)))')
    my.sql(f"CREATE DATABASE `{other}`")
    try:
        my.sql(f"CREATE VIEW `{other}`.v_tags AS SELECT tag FROM `{my.dbname}`.tag")
        new = 'Table("tags", metadata, Column("id", Integer, primary_key=True), Column("tag", String(20)))'
        with pytest.raises(SafetyRefusal, match=re.escape(f"view {other}.v_tags names tag")):
            my.migrate(new, renames=["tag:tags"])
        assert my.sql(f"SELECT count(*) FROM `{other}`.v_tags") == [(0,)]
    finally:
        my.sql(f"DROP DATABASE `{other}`")
