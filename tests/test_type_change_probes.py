"""Column type changes whose data the servers convert silently with a loss, or refuse halfway through
the plan (an outside tester's findings): each is refused up front with a count and an example and
leaves the database as it was, or converts with every value checked. Lossless neighbours of each case
are in the table too, so a check that refuses too much fails here as well.

One database per server for the whole module (each case makes table `t` and drops it): the cases
stay fast. Messages are matched with singular and plural forms alike ("1 value ... does", "2 values
... do")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import pytest

from matrix import assert_refused
from servers import ServerProject

DOMAIN = ("DO $$ BEGIN CREATE DOMAIN short_code AS text CHECK (length(VALUE) <= 3); "
          "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
MY = """
from sqlalchemy import Time, Date, LargeBinary, SmallInteger, UUID, Double
from sqlalchemy.dialects.mysql import TIME, CHAR, SET, YEAR, TIMESTAMP, BIT, TINYTEXT, MEDIUMTEXT
from sqlalchemy.types import UserDefinedType
class INET4(UserDefinedType):
    cache_ok = True
    def get_col_spec(self, **kw):
        return "INET4"
"""
PG = """
from sqlalchemy import Time, Interval, ARRAY, Double, REAL
from sqlalchemy.dialects.postgresql import TIME, INTERVAL, BIT, MONEY, UUID, INET, JSONB
from sqlalchemy.types import UserDefinedType
class ShortCode(UserDefinedType):  # CREATE DOMAIN short_code AS text CHECK (length(VALUE) <= 3)
    cache_ok = True
    def get_col_spec(self, **kw):
        return "short_code"
"""
TABLE = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", {type}){extra})\n'

FAILS = r"{n} values? in t\.v (does|do) not convert to {to}"
CHANGES = r"{n} values? in t\.v would change \(e\.g\. '{before}' would become '{after}'\)"


class Case(NamedTuple):
    kind: str  # "postgresql" | "mysql"
    old: str  # SQLAlchemy type of t.v before
    new: str  # ... and after
    rows: tuple[str, ...]  # SQL literals for t.v, ids 1, 2, ...
    refusal: str | None  # the refusal's pattern; None: the change applies
    after: tuple[str | None, ...] | None  # t.v as text once applied (with allow_destructive for a destructive change)
    setup: str = ""  # run first (once per database)


CASES = {
    # MariaDB, silent losses: refused as destructive, applied when allowed
    "my_datetime_to_time": Case("mysql", "DateTime", "Time", ("'2024-01-02 13:45:00'", "NULL"),
                                CHANGES.format(n=1, before="2024-01-02 13:45:00", after="13:45:00"), ("13:45:00", None)),
    "my_enum_to_int_by_position": Case("mysql", "Enum('10', '20', name='e')", "Integer", ("'20'", "'10'"),
                                       CHANGES.format(n=2, before="20", after="2"), ("2", "1")),
    "my_time6_to_time": Case("mysql", "TIME(fsp=6)", "Time", ("'10:00:00.5'", "'11:00:00'"),
                             CHANGES.format(n=1, before=r"10:00:00\.500000", after="10:00:00"), ("10:00:00", "11:00:00")),
    "my_varchar_to_char_spaces": Case("mysql", "String(10)", "CHAR(10)", ("'a  '", "'b'"),
                                      CHANGES.format(n=1, before="a  ", after="a"), ("a", "b")),
    # MariaDB, values the statement would refuse: refused up front, even with allow_destructive
    "my_set_member_in_use": Case("mysql", "SET('a', 'b', 'c')", "SET('a', 'b')", ("'a,c'", "'a'", "'c'"),
                                 FAILS.format(n=2, to=r"SET\('a','b'\)") + r" \(e\.g\. 'a,c'", None),
    "my_text_to_set": Case("mysql", "String(20)", "SET('a', 'b')", ("'x'", "'a,b'"), FAILS.format(n=1, to=r"SET\('a','b'\)") + r" \(e\.g\. 'x'", None),
    "my_text_to_date": Case("mysql", "String(20)", "Date", ("'nope'", "'2024-02-30'", "'2024-01-01'"),
                            FAILS.format(n=2, to="DATE") + r" \(e\.g\. 'nope'", None),
    "my_text_to_uuid": Case("mysql", "String(40)", "UUID", ("'nope'", "'00000000-0000-0000-0000-000000000001'"),
                            FAILS.format(n=1, to="UUID"), None),
    "my_text_to_inet4": Case("mysql", "String(40)", "INET4", ("'10.0.0.300'", "'10.0.0.1'"), FAILS.format(n=1, to="INET4"), None),
    "my_int_to_year_out_of_range": Case("mysql", "Integer", "YEAR", ("1800", "2000"), FAILS.format(n=1, to="YEAR"), None),
    "my_text_to_float_overflow": Case("mysql", "String(20)", "Float", ("'1e400'", "'1.5'"), FAILS.format(n=1, to="FLOAT") + " .*1e400", None),
    "my_blob_to_text_bad_utf8": Case("mysql", "LargeBinary", "Text", ("X'FFFE'", "'ok'"), FAILS.format(n=1, to="TEXT") + r" \(e\.g\. '0xFFFE'",
                                     None),
    "my_datetime_to_timestamp_1960": Case("mysql", "DateTime", "TIMESTAMP", ("'1960-01-01 00:00:00'", "'2000-01-01 00:00:00'"),
                                          FAILS.format(n=1, to="TIMESTAMP") + r" \(e\.g\. '1960-01-01 00:00:00'", None),
    "my_bit_narrowing": Case("mysql", "BIT(8)", "BIT(4)", ("b'11111111'", "b'1'"), FAILS.format(n=1, to=r"BIT\(4\)") + r" \(e\.g\. '11111111'",
                             None),
    "my_text_to_tinytext_bytes": Case("mysql", "Text", "TINYTEXT", ("REPEAT('é', 200)", "REPEAT('a', 255)", "'x'"),
                                      FAILS.format(n=1, to="TINYTEXT"), None),
    # MariaDB, conversions that keep every value (BIT -> SMALLINT was refused as "do not convert")
    "my_text_to_year_two_digits": Case("mysql", "String(10)", "YEAR", ("'1999'", "'69'"),
                                       CHANGES.format(n=1, before="69", after="2069"), ("1999", "2069")),
    "my_text_to_year_fits": Case("mysql", "String(10)", "YEAR", ("'1999'", "'2024'"), None, ("1999", "2024")),
    "my_text_to_enum_case_folded": Case("mysql", "String(5)", "Enum('a', 'b', name='e2')", ("'A'", "'b'"),
                                        CHANGES.format(n=1, before="A", after="a"), ("a", "b")),
    "my_text_to_enum_fits": Case("mysql", "String(5)", "Enum('a', 'b', name='e2')", ("'a'", "'b'"), None, ("a", "b")),
    "my_double_to_float_out_of_range": Case("mysql", "Double", "Float", ("1e39", "1.5"), FAILS.format(n=1, to="FLOAT"), None),
    "pg_double_to_real_out_of_range": Case("postgresql", "Double", "REAL", ("1e39", "1.5"), FAILS.format(n=1, to="FLOAT4"), None),
    "my_bit_to_smallint": Case("mysql", "BIT(8)", "SmallInteger", ("b'11111111'", "b'1'"), None, ("255", "1")),
    "my_enum_to_varchar": Case("mysql", "Enum('10', '20', name='e')", "String(5)", ("'20'", "'10'"), None, ("20", "10")),
    "my_date_to_datetime": Case("mysql", "Date", "DateTime", ("'2024-01-02'",), None, ("2024-01-02 00:00:00",)),
    "my_int_to_year": Case("mysql", "Integer", "YEAR", ("2000", "1999"), None, ("2000", "1999")),
    "my_char_to_varchar": Case("mysql", "CHAR(5)", "String(5)", ("'ab'",), None, ("ab",)),
    "my_time_to_time6": Case("mysql", "Time", "TIME(fsp=6)", ("'10:00:00'",), None, ("10:00:00.000000",)),
    "my_set_member_added": Case("mysql", "SET('a', 'b')", "SET('a', 'b', 'c')", ("'a,b'",), None, ("a,b",)),
    "my_text_to_tinytext_fits": Case("mysql", "Text", "TINYTEXT", ("REPEAT('a', 255)",), None, ("a" * 255,)),
    "my_varchar_to_mediumtext": Case("mysql", "String(10)", "MEDIUMTEXT", ("'a  '",), None, ("a  ",)),
    # PostgreSQL, silent losses
    "pg_timestamp_to_time": Case("postgresql", "DateTime", "Time", ("'2024-01-02 13:45:00'",),
                                 CHANGES.format(n=1, before="2024-01-02 13:45:00", after="13:45:00"), ("13:45:00",)),
    "pg_interval_to_time": Case("postgresql", "Interval", "Time", ("'1 day 02:00'", "'01:30'"),
                                CHANGES.format(n=1, before="1 day 02:00:00", after="02:00:00"), ("02:00:00", "01:30:00")),
    "pg_interval_fields": Case("postgresql", "Interval", "INTERVAL(fields='hour to minute')", ("'02:03:04'", "'05:06'"),
                               CHANGES.format(n=1, before="02:03:04", after="02:03:00"), ("02:03:00", "05:06:00")),
    "pg_interval_precision": Case("postgresql", "Interval", "INTERVAL(precision=0)", ("'00:00:01.5'", "'00:00:02'"),
                                  CHANGES.format(n=1, before=r"00:00:01\.5", after="00:00:02"), ("00:00:02", "00:00:02")),
    "pg_time6_to_time0": Case("postgresql", "TIME(precision=6)", "TIME(precision=0)", ("'10:00:00.5'", "'11:00:00'"),
                              CHANGES.format(n=1, before=r"10:00:00\.5", after="10:00:01"), ("10:00:01", "11:00:00")),
    "pg_bit3_to_bit2": Case("postgresql", "BIT(3)", "BIT(2)", ("B'101'", "B'100'"), CHANGES.format(n=2, before="101", after="10"),
                            ("10", "10")),
    "pg_numeric_to_money": Case("postgresql", "Numeric(10, 3)", "MONEY", ("1.234", "2.5"),
                                CHANGES.format(n=1, before=r"1\.234", after=r"\$1\.23"), ("$1.23", "$2.50")),
    "pg_numeric_array_rounding": Case("postgresql", "ARRAY(Numeric(10, 3))", "ARRAY(Numeric(10, 1))", ("ARRAY[1.25, 2.0]", "ARRAY[1.5]"),
                                      r"1 value in t\.v would be rounded to 1 decimal places", ("{1.3,2.0}", "{1.5}")),
    "pg_varchar_array_truncation": Case("postgresql", "ARRAY(String(10))", "ARRAY(String(3))", ("ARRAY['abcdef', 'ab']", "ARRAY['abc']"),
                                        r"1 value in t\.v is longer than 3 characters", None),
    # PostgreSQL, values the statement would refuse
    "pg_text_to_uuid": Case("postgresql", "String(40)", "UUID", ("'nope'", "'00000000-0000-0000-0000-000000000001'", "'bad'"),
                            FAILS.format(n=2, to="UUID") + r" \(e\.g\. '(nope|bad)': invalid input syntax for type uuid", None),
    "pg_text_to_inet": Case("postgresql", "String(40)", "INET", ("'nope'", "'10.0.0.1'"), FAILS.format(n=1, to="INET"), None),
    "pg_text_to_jsonb": Case("postgresql", "Text", "JSONB", ("'{bad'", "'{\"a\":1}'"), FAILS.format(n=1, to="JSONB") + r" \(e\.g\. '\{bad'",
                             None),
    "pg_text_array_to_int_array": Case("postgresql", "ARRAY(Text)", "ARRAY(Integer)", ("ARRAY['1', 'x']", "ARRAY['2']"),
                                       FAILS.format(n=1, to=r"INTEGER\[\]"), None),
    "pg_text_to_domain_check": Case("postgresql", "Text", "ShortCode", ("'abcd'", "'abc'"),
                                    FAILS.format(n=1, to="SHORT_CODE") + r" \(e\.g\. 'abcd': .*short_code", None, DOMAIN),
    "pg_text_to_domain_fits": Case("postgresql", "Text", "ShortCode", ("'abc'",), None, ("abc",), DOMAIN),
    "pg_varchar_to_text": Case("postgresql", "String(5)", "Text", ("'a  '",), None, ("a  ",)),
    "pg_text_to_float_overflow": Case("postgresql", "String(20)", "Float", ("'1e400'", "'1.5'"),  # status raised DataError here
                                      FAILS.format(n=1, to="FLOAT8") + r" \(e\.g\. '1e400': .*out of range", None),
    # PostgreSQL, conversions that keep every value
    "pg_timestamp_to_timestamptz": Case("postgresql", "DateTime", "DateTime(timezone=True)", ("'2024-01-02 13:45:00'",), None,
                                        ("2024-01-02 13:45:00+00",)),
    "pg_time0_to_time6": Case("postgresql", "TIME(precision=0)", "TIME(precision=6)", ("'10:00:01'",), None, ("10:00:01",)),
    "pg_cents_to_money": Case("postgresql", "Numeric(10, 2)", "MONEY", ("1.25",), None, ("$1.25",)),
    "pg_interval_to_time_within_a_day": Case("postgresql", "Interval", "Time", ("'01:30'",), None, ("01:30:00",)),
    "pg_varchar_array_widened": Case("postgresql", "ARRAY(String(3))", "ARRAY(String(10))", ("ARRAY['abc']",), None, ("{abc}",)),
    "pg_numeric_array_scale_widened": Case("postgresql", "ARRAY(Numeric(10, 1))", "ARRAY(Numeric(10, 3))", ("ARRAY[1.2]",), None,
                                           ("{1.200}",)),
    "pg_text_array_to_int_array_numbers": Case("postgresql", "ARRAY(Text)", "ARRAY(Integer)", ("ARRAY['1', ' 2']",), None, ("{1,2}",)),
    "pg_text_to_jsonb_spaced": Case("postgresql", "Text", "JSONB", ("'{\"a\":1}'",), None, ('{"a": 1}',)),
    "pg_text_to_uuid_upper_case": Case("postgresql", "String(40)", "UUID", ("'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",), None,
                                       ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",)),
}


@dataclass
class Databases:
    """One database per server kind for the module, made on first use."""

    tmp: pytest.TempPathFactory
    made: dict

    def __call__(self, kind: str) -> ServerProject:
        if kind not in self.made:
            self.made[kind] = ServerProject(kind, self.tmp.mktemp(kind))
        return self.made[kind]


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    made: dict[str, ServerProject] = {}
    yield Databases(tmp_path_factory, made)
    for p in made.values():
        p.drop()


def _text(p: ServerProject) -> list:
    cast = "v::text" if p.kind == "postgresql" else "IF(v IS NULL, NULL, CAST(v AS CHAR))"
    return [r[0] for r in p.sql(f"SELECT {cast} FROM t ORDER BY id")]


def _body(case: Case, type_: str) -> str:
    return (PG if case.kind == "postgresql" else MY) + TABLE.format(type=type_, extra="")


@pytest.mark.parametrize("name", sorted(CASES))
def test_type_change_refused_with_count_or_converted(dbs, name):
    case = CASES[name]
    p = dbs(case.kind)
    if case.setup:
        p.sql(case.setup)
    try:
        p.migrate(_body(case, case.old), create_backup=False)
        for i, value in enumerate(case.rows, 1):
            p.sql(f"INSERT INTO t (id, v) VALUES ({i}, {value})")
        new = _body(case, case.new)
        status = p.system(new).check_migration_status()  # never raises on the data
        [change] = status.changes
        if case.old.startswith("ARRAY"):  # shown as VARCHAR(10)[], not CHARACTER VARYING[](10)
            assert re.search(r"from [A-Z]+(\(\d+(,\d+)?\))?\[\] to [A-Z]+(\(\d+(,\d+)?\))?\[\]$", change.detail), change.detail
        if case.refusal is None:
            assert not change.blocked and status.safe_to_apply, change
            p.migrate(new, create_backup=False)
        else:
            assert change.blocked and not status.safe_to_apply and re.search(case.refusal, change.reason), change
            assert_refused(p, new, match=case.refusal)
            if case.after is None:  # a value the server refuses: permission to destroy does not override it
                assert change.risk == "data_dependent"
                return
            assert change.risk == "destructive"
            p.migrate(new, allow_destructive=True, create_backup=False)
        assert _text(p) == list(case.after)
    finally:
        p.sql("DROP TABLE IF EXISTS t")


COLLATED = ('Table("t", metadata, Column("id", Integer, primary_key=True), Column("v", String(10)), UniqueConstraint("v"), '
            'mysql_collate="{collation}")\n')


@pytest.mark.parametrize("new, rows, refusal", [
    ("utf8mb4_general_ci", ("a", "A"), r"1 value of unique key \(v\) in t would collide under (collation utf8mb4_general_ci|the database's default collation)"),
    ("latin1_swedish_ci", ("a", "x\U0001F600"), FAILS.format(n=1, to="collation latin1_swedish_ci") + r" \(e\.g\. 'x\U0001F600'"),
    ("utf8mb4_general_ci", ("a", "b"), None),
], ids=["unique_values_collide", "characters_the_charset_lacks", "nothing_collides"])
def test_table_collation_change_checked_against_the_data(dbs, new, rows, refusal):
    """MariaDB converts a table's text columns to its new default collation (CONVERT TO CHARACTER SET):
    'a' and 'A' collide under a case-insensitive one, an emoji has no latin1 code."""
    p = dbs("mysql")
    try:
        p.migrate(COLLATED.format(collation="utf8mb4_bin"), create_backup=False)
        p.insert("t", list(enumerate(rows, 1)))
        body = COLLATED.format(collation=new)
        if refusal is None:
            p.migrate(body, create_backup=False)
            assert [r[0] for r in p.sql("SELECT v FROM t ORDER BY id")] == list(rows)
        else:
            assert_refused(p, body, match=refusal)
            assert not p.system(body).check_migration_status().safe_to_apply
    finally:
        p.sql("DROP TABLE IF EXISTS t")
