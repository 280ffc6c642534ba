"""Property test on real PostgreSQL and MariaDB servers: every data probe, over columns of every common
type, runs without an error and counts what it should. The probes read the live rows as the plan will
leave them, with a stand-in for each column the plan adds (its literal default, else NULL), which
PostgreSQL typed as text and then refused to compare with the column it joins ("operator does not
exist: integer = text")."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers import server_project

EXAMPLES = int(os.environ.get("MIGRATION_PROPERTY_EXAMPLES_SERVERS", "8"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])

# (SQLAlchemy type, a literal default of it, two distinct values as SQL literals)
COMMON = [
    ("Integer", "7", ("1", "2")), ("BigInteger", "7", ("1", "2")), ("SmallInteger", "7", ("1", "2")),
    ("Numeric(10, 2)", "1.5", ("1.25", "2.5")), ("Float", "1.5", ("1.5", "2.5")), ("String(20)", "'x'", ("'a'", "'b'")),
    ("Boolean", None, ("true", "false")), ("Date", "'2020-01-02'", ("'2020-01-01'", "'2021-01-01'")),
    ("DateTime", "'2020-01-02 03:04:05'", ("'2020-01-01 00:00:00'", "'2021-01-01 00:00:00'")),
    ("Enum('a', 'b', name='ab')", "'a'", ("'a'", "'b'")),
]
PG_ONLY = [("Text", "'x'", ("'a'", "'b'")),  # MariaDB cannot key a TEXT column (no UNIQUE, no foreign key)
           ("__import__('sqlalchemy.dialects.postgresql').dialects.postgresql.UUID", None,
            ("'00000000-0000-0000-0000-000000000001'", "'00000000-0000-0000-0000-000000000002'"))]


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(["postgresql", "mysql"]))
    pool = COMMON + (PG_ONLY if kind == "postgresql" else [])
    return kind, draw(st.sampled_from(pool)), draw(st.sampled_from(pool)), draw(st.booleans())


@SETTINGS
@given(case=cases())
def test_every_probe_runs_over_every_column_type(tmp_path_factory, case):
    kind, (typ, default, values), (other, _d, _v), with_default = case
    if kind == "mysql" and typ.startswith("Boolean"):
        values = ("1", "0")
    with server_project(kind, tmp_path_factory.mktemp("probe")) as p:
        old = ("from sqlalchemy import SmallInteger, Date\n"
               f'Table("ref", metadata, Column("id", Integer, primary_key=True), Column("b", {typ}), UniqueConstraint("b"))\n'
               f'Table("src", metadata, Column("id", Integer, primary_key=True), Column("a", {typ}))\n')
        p.migrate(old)
        p.sql(f"INSERT INTO ref VALUES (1, {values[0]})")
        p.sql(f"INSERT INTO src VALUES (1, {values[0]}), (2, {values[1]}), (3, NULL), (4, {values[1]})")
        extra = f', server_default=text("{default}")' if with_default and default else ""
        new = old.replace('Column("a", ' + typ + "))", f'Column("a", {other}), Column("x", {typ}, ForeignKey("ref.b"){extra}))')
        system = p.system(new)
        conn = system.dialect.connect(write=False)
        try:
            cmp = system.comparator.compare_schemas(conn)
            probe = system.dialect.probe(conn, cmp.diff, cmp.live, cmp.target)
            old_type = cmp.live.table("src").column("a").type
            new_type = cmp.target.table("src").column("a").type
            assert probe.row_count("src") == 4
            stand_in = 4 if not extra else 0  # the added column reads as its default in every row, else NULL
            assert probe.null_count("src", "x") == stand_in
            assert probe.null_count("src", "a") == 1
            assert probe.duplicate_count("src", ("a",)) == 1
            assert probe.duplicate_count("src", ("x",)) == (1 if extra else 0)
            assert probe.orphan_count("src", ("a",), "ref", ("b",)) == 2
            assert probe.orphan_count("src", ("x",), "ref", ("b",)) in (0, 4)
            assert probe.too_long_count("src", "a", 1) >= 0
            assert probe.check_violation_count("src", "a IS NOT NULL") == 1
            assert isinstance(probe.unconvertible_count("src", "a", old_type, new_type), int)
            lossy = probe.lossy_count("src", "a", old_type, new_type)
            assert lossy is None or (isinstance(lossy[0], int) and lossy[1])
            trial = probe.conversion_trial("src", "a", old_type, new_type)  # never raises: a failure is counted
            assert trial is None or (trial.failed >= 0 and trial.changed >= 0 and (trial.why or not trial.failed))
        finally:
            conn.close()
