"""Tester finding F4: a backup and its restore give back every value exactly, whatever its type, with
the built-in logical backup (no pg_dump) as with pg_dump. The family seen elsewhere: `-infinity`
timestamps breaking pgstream snapshots, `uuid[]` written as raw bytes by db-backup, a text or jsonb
`'null'` read back as SQL NULL by pgcopydb, numerics above 2^53 through float64 (dbtrail), time
zones and date styles changing values in transit (pg_chdb). Each value is compared in PostgreSQL's
own text form and with IS NOT DISTINCT FROM against a copy kept beside the models."""

from __future__ import annotations

import pytest

from servers import pg  # noqa: F401 - fixture

TYPES = """
from sqlalchemy import ARRAY, LargeBinary, Interval, Date, Time
from sqlalchemy.dialects.postgresql import (JSONB, UUID, INET, CIDR, MACADDR, INT4RANGE, NUMRANGE, TSTZRANGE, DATERANGE,
                                            DOUBLE_PRECISION, REAL, TIMESTAMP, ENUM, HSTORE, DOMAIN, BYTEA, TIME)
mood = ENUM("sad", "ok", "happy", name="mood")
posint = DOMAIN("posint", Integer, check="VALUE > 0", create_type=False)  # made beside the models
Table("vals", metadata,
      Column("id", Integer, primary_key=True),
      Column("u", UUID), Column("ip", INET), Column("net", CIDR), Column("mac", MACADDR),
      Column("r4", INT4RANGE), Column("rn", NUMRANGE), Column("rtz", TSTZRANGE), Column("rd", DATERANGE),
      Column("ai", ARRAY(Integer, dimensions=2)), Column("at", ARRAY(Text)), Column("ats", ARRAY(TIMESTAMP(timezone=True))),
      Column("h", HSTORE), Column("j", JSON), Column("jb", JSONB),
      Column("iv", Interval), Column("ts", TIMESTAMP), Column("tstz", TIMESTAMP(timezone=True)), Column("d", Date),
      Column("tm", TIME(timezone=True)),
      Column("n", Numeric), Column("n2", Numeric(30, 10)), Column("b", BYTEA), Column("f8", DOUBLE_PRECISION), Column("f4", REAL),
      Column("t", Text), Column("m", mood), Column("p", posint), Column("big", BigInteger),
      Column("hs", ARRAY(HSTORE)))
"""
CHANGED = TYPES.replace('Column("hs", ARRAY(HSTORE)))', 'Column("hs", ARRAY(HSTORE)), Column("added", Text, server_default="x"))')

ROWS = [
    # id 1: the edges
    """(1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::1/64', '10.0.0.0/8', '08:00:2b:01:02:03',
        '[1,5)', '(,2.5]', '["2024-01-01 00:00:00+05:30","infinity")', 'empty',
        '{{1,NULL},{3,4}}', ARRAY['a,b', 'q"uote', 'back\\slash', NULL, 'NULL', '', ' sp ', '{}'], ARRAY['-infinity'::timestamptz, '2024-03-31 02:30:00+02'],
        'a=>1, "b c"=>NULL, "NULL"=>"x\\"y"', '"a json string"', 'null',
        '1 year 2 mons -3 days 04:05:06.789', 'infinity', '-infinity', '0044-03-15 BC',
        '23:59:59.999999+14:30',
        'NaN', '12345678901234567890.0123456789', '\\x00ff5c0a27', 'Infinity', '-Infinity',
        E'line1\\nline2\\ttab\\\\ \\u00e9 \\U0001F600 null', 'happy', 7, 9223372036854775807)""",
    # id 2: more of the same kinds, other values
    """(2, '00000000-0000-0000-0000-000000000000', '192.168.0.1', '192.168.0.0/24', 'ff:ff:ff:ff:ff:ff',
        '(,)', '[0.1,0.30000000000000004]', NULL, '[2024-02-29,infinity)',
        '{}', '{}', NULL,
        '', '{"k": [1, 2.50, {"z": null}], "a": "\\u00e9"}', '{"b": 1, "a": [true, false, null], "n": 1.0e1}',
        '-178000000 years', '2024-02-29 23:59:59.999999', '1999-12-31 23:59:59.5-08', '-infinity',
        NULL,
        '-0.00000000000000000001', 'NaN', '\\x', 1.7976931348623157e308, 1.17549435e-38,
        'null', 'sad', 2147483647, -9223372036854775808)""",
    # id 3: SQL NULL everywhere (a JSON null is not one)
    "(3" + ", NULL" * 28 + ")",
    # id 4: JSON scalars at the top level
    """(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '3.10', '"null"',
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-0'::float8, '-0'::real, '', 'ok', NULL, 0)""",
]


def _columns(pg) -> list[str]:
    return [r[0] for r in pg.sql("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                                 "AND table_name = 'vals' ORDER BY ordinal_position")]


def _as_text(pg, table: str, cols: list[str]) -> list[tuple]:
    return pg.sql(f"SELECT {', '.join(f'{c}::text' for c in cols)} FROM {table} ORDER BY id")


def _use_builtin(pg, system) -> None:
    engine, _ = pg.builtin_backup(system)
    system.backups.engine = engine


@pytest.mark.parametrize("engine", ["builtin", "pg_dump"])
def test_rollback_gives_back_every_value_of_every_type(pg, engine):
    pg.sql("CREATE EXTENSION IF NOT EXISTS hstore")
    pg.sql("CREATE DOMAIN posint AS integer CONSTRAINT posint_check CHECK (VALUE > 0)")
    # Types beside the models that no column uses: the schema's own, so a restore must make them again too.
    pg.sql("CREATE TYPE pair AS (a integer, b text COLLATE \"C\")")
    pg.sql("CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)")
    pg.sql("COMMENT ON TYPE pair IS 'two things'")
    pg.migrate(TYPES)
    pg.sql("INSERT INTO vals VALUES " + ", ".join(ROWS))
    pg.sql("UPDATE vals SET hs = ARRAY[h, NULL, ''] WHERE id < 3")  # an extension type's array
    cols = _columns(pg)
    pg.sql("CREATE SCHEMA keep")
    pg.sql("CREATE TABLE keep.vals AS TABLE public.vals")  # the model's own types stay out of it (see F2's tests)
    pg.sql("ALTER TABLE keep.vals ALTER COLUMN m TYPE text, ALTER COLUMN p TYPE integer")
    before = _as_text(pg, "vals", cols)
    assert len(before) == 4 and len(before[0]) == 30

    system = pg.system(CHANGED)
    if engine == "builtin":
        _use_builtin(pg, system)
    result = system.execute_auto_migration()
    assert result.success and result.backup_id
    pg.sql("UPDATE vals SET u = NULL, ats = NULL, j = '1', jb = '2', h = '', n = 0, b = NULL, p = 1, m = 'ok'")
    pg.sql("DELETE FROM vals WHERE id = 4")
    # The session's settings of the writer must not matter either.
    pg.sql("ALTER DATABASE " + pg.dbname + " SET timezone TO 'Pacific/Chatham'")
    pg.sql("ALTER DATABASE " + pg.dbname + " SET datestyle TO 'SQL, DMY'")
    pg.sql("ALTER DATABASE " + pg.dbname + " SET intervalstyle TO 'iso_8601'")
    pg.sql("ALTER DATABASE " + pg.dbname + " SET extra_float_digits TO -3")

    rolled = system.rollback_last_migration()
    assert rolled.success
    for setting in ("timezone", "datestyle", "intervalstyle", "extra_float_digits"):
        pg.sql(f"ALTER DATABASE {pg.dbname} RESET {setting}")
    assert _columns(pg) == cols
    assert _as_text(pg, "vals", cols) == before
    differs = " OR ".join(f"v.{c}::text IS DISTINCT FROM k.{c}::text" for c in cols if c not in ("j", "p", "m", "h"))
    assert pg.sql(f"SELECT v.id FROM vals v FULL JOIN keep.vals k USING (id) WHERE v.id IS NULL OR k.id IS NULL OR {differs}") == []
    exact = " OR ".join(f"v.{c} IS DISTINCT FROM k.{c}" for c in cols if c not in ("j", "ai", "m", "p"))  # json has no equality
    assert pg.sql(f"SELECT v.id FROM vals v JOIN keep.vals k USING (id) WHERE {exact}") == []
    # The types themselves came back: the domain keeps its check, the enum its labels in order.
    assert pg.sql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'vals'::regclass "
                  "AND attname IN ('p', 'm', 'ai', 'tm') ORDER BY attname") == [
                      ("integer[]",), ("mood",), ("posint",), ("time with time zone",)]
    assert pg.sql("SELECT enum_range(NULL::mood)::text") == [("{sad,ok,happy}",)]
    assert pg.sql("SELECT ROW(1, 'x')::pair::text, '[1.5,2.5)'::floatrange::text, '{[1,2)}'::floatmultirange::text, "
                  "obj_description('pair'::regtype, 'pg_type')") == [("(1,x)", "[1.5,2.5)", "{[1,2)}", "two things")]
    with pytest.raises(Exception, match="posint_check|violates check constraint"):
        pg.sql("INSERT INTO vals (id, p) VALUES (9, 0)")
