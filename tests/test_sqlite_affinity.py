"""A type change under the same SQLite affinity copies every value as it is: no scan, no refusal."""

from __future__ import annotations

import pytest

from migration_core.errors import SafetyRefusal


def test_same_affinity_type_change_keeps_odd_values(project):
    project.migrate('t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))\n')
    project.sql("INSERT INTO t (id, n) VALUES (1, 5), (2, 'abc'), (3, 2.5)")
    project.migrate('from sqlalchemy import BigInteger\n'
                    't = Table("t", metadata, Column("id", Integer, primary_key=True), Column("n", BigInteger))\n')
    assert project.sql("SELECT n, typeof(n) FROM t ORDER BY id") == [(5, "integer"), ("abc", "text"), (2.5, "real")]


def test_affinity_change_still_scans_and_refuses(project):
    project.migrate('t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("n", Float))\n')
    project.sql("INSERT INTO t (id, n) VALUES (1, 5), (2, 'abc')")
    with pytest.raises(SafetyRefusal, match="1 value in t.n does not convert to INTEGER"):
        project.migrate('t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))\n')
