"""Tester finding F2: a PostgreSQL restore (rollback) empties the managed schema with DROP .. CASCADE,
which took with it what other schemas had built on it: views and materialized views reading its
tables, functions taking its row type or reading it in a SQL-standard body, triggers calling its
functions, foreign keys to its tables, defaults drawing from its sequences. A restore now sets them
aside and makes them again; one it cannot make again, or one it cannot set aside without losing
data (a column of another schema's table typed with the schema's enum), refuses the rollback, which
changes nothing. With pg_dump and with the built-in backup alike."""

from __future__ import annotations

import pytest

from migration_core.errors import MigrationError
from servers import pg  # noqa: F401 - fixture

V1 = """
from sqlalchemy.dialects.postgresql import ENUM
Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)),
      Column("mood", ENUM("sad", "ok", name="mood")))
"""
V2 = V1.replace('Column("name", String(50)),', 'Column("name", String(50)), Column("email", String(100)),')

OUTSIDE = [
    "CREATE SCHEMA other",
    "CREATE VIEW other.v AS SELECT id, name FROM public.users",
    "CREATE VIEW other.v2 AS SELECT count(*) AS n FROM other.v",  # through another outside view
    "CREATE MATERIALIZED VIEW other.mv AS SELECT id FROM public.users",
    "CREATE FUNCTION other.label(u public.users) RETURNS text LANGUAGE sql AS $$ SELECT u.name $$",
    "CREATE FUNCTION other.cnt() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM public.users; END",
    "CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := 'x'; RETURN NEW; END $$",
    "CREATE TABLE other.child (id int PRIMARY KEY, user_id int REFERENCES public.users (id), at text, "
    "n bigint DEFAULT nextval('public.users_id_seq'))",
    "CREATE TRIGGER child_stamp BEFORE INSERT ON other.child FOR EACH ROW EXECUTE FUNCTION public.stamp()",
    "CREATE FUNCTION public.norm(text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT lower($1)'",
    "CREATE INDEX child_norm ON other.child (public.norm(at))",
    "INSERT INTO other.child (id, user_id) VALUES (1, 1), (2, 3)",
    "COMMENT ON VIEW other.v IS 'the users, for reports'",
]

# Everything of schema `other` with its definition, and its rows.
STATE = """
SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || COALESCE(pg_get_viewdef(c.oid), '') || COALESCE(obj_description(c.oid), '')
FROM pg_class c WHERE c.relnamespace = 'other'::regnamespace
UNION ALL SELECT 'fn ' || pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.pronamespace = 'other'::regnamespace
UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'other'::regnamespace
UNION ALL SELECT 'trg ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'other.child'::regclass AND NOT tgisinternal
UNION ALL SELECT 'def ' || pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'other.child'::regclass
UNION ALL SELECT 'idx ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'other.child'::regclass
UNION ALL SELECT 'row ' || c::text FROM other.child c
ORDER BY 1
"""


def _setup(pg, engine: str):
    pg.migrate(V1)
    pg.sql("INSERT INTO users (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')")
    pg.sql("SELECT setval('users_id_seq', 3)")
    for stmt in OUTSIDE:
        pg.sql(stmt)
    system = pg.system(V2)
    if engine == "builtin":
        system.backups.engine, _ = pg.builtin_backup(system)
    assert system.execute_auto_migration().success
    return system


def _state(pg) -> list:
    return pg.sql(STATE)


@pytest.mark.parametrize("engine", ["pg_dump", "builtin"])
def test_rollback_keeps_what_other_schemas_built_on_the_tables(pg, engine):
    system = _setup(pg, engine)
    before = _state(pg)
    assert len([s for (s,) in before if s.startswith("rel ")]) == 6  # v, v2, mv, child, its key and its index
    assert system.rollback_preview().refused == []  # F12: the preview's check foresees no refusal here
    result = system.rollback_last_migration()
    assert result.success
    assert _state(pg) == before
    # The result says so (F13): each of them kept, set aside and made again; nothing of them lost.
    for name in ("view other.v", "view other.v2", "materialized view other.mv", "function other.cnt()",
                 "constraint child_user_id_fkey on table other.child", "trigger child_stamp on table other.child"):
        assert f"{name}: of another schema, set aside and made again" in result.kept, result.kept
    assert not [x for x in result.lost if "other." in x], result.lost
    assert "email" not in [r[0] for r in pg.sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")]
    assert pg.sql("SELECT other.cnt(), (SELECT n FROM other.v2), (SELECT count(*) FROM other.mv)") == [(3, 3, 3)]
    # The foreign key, the trigger and the default work again.
    pg.sql("INSERT INTO other.child (id, user_id) VALUES (3, 2)")
    assert pg.sql("SELECT at, n FROM other.child WHERE id = 3") == [("x", 6)]  # the backup's position: 5, after the two rows above
    with pytest.raises(Exception, match="child_user_id_fkey"):
        pg.sql("INSERT INTO other.child (id, user_id) VALUES (4, 99)")


@pytest.mark.parametrize("engine", ["pg_dump", "builtin"])
def test_rollback_refuses_to_lose_a_column_typed_by_the_schema(pg, engine):
    system = _setup(pg, engine)
    pg.sql("CREATE TABLE other.feelings (id int, m public.mood)")
    pg.sql("INSERT INTO other.feelings VALUES (1, 'ok')")
    pg.sql("CREATE STATISTICS other.users_stats ON id, name FROM public.users")  # CASCADE would drop it too
    pg.sql("CREATE PUBLICATION users_pub FOR TABLE public.users")
    before, users = _state(pg), pg.sql("SELECT * FROM users ORDER BY id")
    [foreseen] = system.rollback_preview().refused  # F12: the preview says so first, as the restore will
    assert "column m of table other.feelings" in foreseen and "statistics object other.users_stats" in foreseen, foreseen
    with pytest.raises(MigrationError, match=r"restore refused, nothing was changed: .*column m of table other\.feelings") as exc:
        system.rollback_last_migration()
    assert "statistics object other.users_stats" in str(exc.value) and "publication of table public.users in publication users_pub" \
        in str(exc.value), exc.value
    assert _state(pg) == before and pg.sql("SELECT * FROM users ORDER BY id") == users
    assert pg.sql("SELECT m::text FROM other.feelings") == [("ok",)]


@pytest.mark.parametrize("engine", ["pg_dump", "builtin"])
def test_rollback_refuses_when_an_outside_object_needs_what_the_backup_lacks(pg, engine):
    system = _setup(pg, engine)
    pg.sql("CREATE VIEW other.emails AS SELECT email FROM public.users")  # the column the rollback takes away
    pg.sql("INSERT INTO users (id, name) VALUES (4, 'dee')")
    before = _state(pg)
    [foreseen] = system.rollback_preview().refused  # F12: foreseen by the preview, nothing changed to find out
    assert "cannot make view other.emails of another schema again: it reads column email of public.users" in foreseen, foreseen
    assert _state(pg) == before
    with pytest.raises(MigrationError, match=r"cannot make view other\.emails of another schema again.*nothing changed"):
        system.rollback_last_migration()
    assert _state(pg) == before and pg.sql("SELECT count(*) FROM users") == [(4,)]
    pg.sql("DROP VIEW other.emails")
    pg.sql("INSERT INTO other.child (id, user_id) VALUES (5, 4)")  # a key the backup does not have
    with pytest.raises(MigrationError, match=r"cannot make constraint child_user_id_fkey on table other\.child .*again"):
        system.rollback_last_migration()
    assert pg.sql("SELECT count(*) FROM other.child") == [(3,)]


@pytest.mark.parametrize("engine", ["pg_dump", "builtin"])
def test_an_outside_object_made_after_the_restore_looked_stops_it(pg, engine, monkeypatch):
    """The restore reads what to set aside, then empties the schema with CASCADE; an object of another
    schema made in between must stop it (the check inside its transaction), not be dropped."""
    from migration_core.dialects.postgresql import backup, logical

    system = _setup(pg, engine)
    before = _state(pg)
    monkeypatch.setattr(backup, "read_outside", lambda conn, schema: [])  # as if other.* came after the look
    monkeypatch.setattr(logical, "read_outside", lambda conn, schema: [])
    with pytest.raises(MigrationError, match=r"restore refused, nothing was changed: .*view other\.v.* made after the restore looked"):
        system.rollback_last_migration()
    assert _state(pg) == before


def test_a_refused_rollback_is_refused_by_its_dry_run_and_before_the_question(pg):
    """F12 through the CLI and the MCP tool: the dry run shows the refusal (exit 3), the terminal and the
    MCP client are not asked to confirm a rollback that will be refused; nothing changes."""
    import json

    import anyio
    from mcp import Client

    from cli_process import project_env, run_cli, run_in_terminal
    from server.mcp_server import build_server

    system = _setup(pg, "pg_dump")
    pg.sql("CREATE SCHEMA rep")
    pg.sql("CREATE VIEW rep.vx AS SELECT id, email FROM public.users")
    before = _state(pg), pg.sql("SELECT view_definition FROM information_schema.views WHERE table_schema = 'rep'")
    env = project_env(pg, pg.models(V2))
    dry = run_cli("rollback", "--dry-run", env=env)
    assert dry.returncode == 3, (dry.stdout, dry.stderr)
    assert "refused:  restore refused, nothing would be changed: the restore cannot make view rep.vx" in dry.stdout, dry.stdout
    doc = json.loads(run_cli("--json", "rollback", "--dry-run", env=env).stdout)
    assert len(doc["refused"]) == 1 and "column email of public.users" in doc["refused"][0]
    asked = run_in_terminal("rollback", env=env, answer="y")
    assert asked.code == 1 and "view rep.vx" in asked.screen and "[y/N]" not in asked.screen, asked.screen

    async def call():
        async def accept(context, params):  # never reached: there is nothing to ask
            raise AssertionError(params.message)

        async with Client(build_server(system, run_startup_migration=False), mode="auto", elicitation_callback=accept) as client:
            return await client.call_tool("rollback", {})

    result = anyio.run(call)
    assert result.is_error and "would be refused" in result.content[0].text and "view rep.vx" in result.content[0].text
    assert (_state(pg), pg.sql("SELECT view_definition FROM information_schema.views WHERE table_schema = 'rep'")) == before
