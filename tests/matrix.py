"""Models and helpers shared by the change-kind matrix (test_change_matrix.py) and the tests that
stay specific to SQLite (test_migrations_sqlite.py) or to the servers (test_migrations_servers.py).
Every helper takes a project of the interface in projects.py."""

from __future__ import annotations

import pytest

from migration_core.errors import SafetyRefusal

USERS_V1 = """
Table("users", metadata,
      Column("id", Integer, primary_key=True),
      Column("name", String(50), nullable=False),
      Column("age", Integer),
      Column("bio", Text))
"""
ROWS = [(1, "ann", 30, "a"), (2, "bob", None, "b"), (3, "cy", 41, None)]

# `users` without the `bio` column.
USERS_NO_BIO = USERS_V1.replace(',\n      Column("bio", Text))', ')')

PARENT_CHILD = """
Table("parents", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
Table("children", metadata,
      Column("id", Integer, primary_key=True),
      Column("parent_id", Integer{fk}),
      Column("note", String(20)))
"""


def with_cols(extra: str, body: str = USERS_V1) -> str:
    """`body` with `extra` (columns, constraints, indexes) appended to the users table."""
    return body.replace('Column("bio", Text))', f'Column("bio", Text), {extra})')


def seed(p, body: str = USERS_V1, rows=ROWS) -> None:
    p.migrate(body)
    p.insert("users", rows)


def users(p, cols: str = "id, name, age, bio") -> list[tuple]:
    return p.sql(f"SELECT {cols} FROM users ORDER BY id")


def assert_refused(p, body: str, match: str | None = None) -> str:
    """Applying `body` is refused with a SafetyRefusal (matching `match`) and leaves the database exactly
    as it was (p.snapshot(): SQLite's file bytes, the servers' schema and rows). Returns the message."""
    before = p.snapshot()
    with pytest.raises(SafetyRefusal, match=match) as exc:
        p.system(body).execute_auto_migration()
    assert p.snapshot() == before
    return str(exc.value)
