"""The models' CREATE statements sent to a server in one round trip instead of one per object.

`create_all` on a connection runs each statement on its own: at 500 tables that is 1,019 round trips
through SQLAlchemy's execution machinery, most of a cache miss's time on PostgreSQL. Compiled ahead
with the connection's own (initialized) dialect and sent as one script, the server does the same work
in one exchange. Models with DDL listeners (which may run any SQL, and whose Python side effects
should run once) are created by `create_all` as before; so is anything that fails in the script, so
the error names the statement as it always did.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from ...fingerprint import ddl_listener
from ..ddl import compiled_create_all
from .connection import runnable


def compiled_ddl(metadata: MetaData, dialect) -> list[str] | None:
    """`create_all`'s statements as `dialect` compiles them (`dialects/ddl.py`; runnable text: `%` not
    doubled), or None when the models have a DDL listener or something only a live connection compiles."""
    if ddl_listener(metadata) is not None:
        return None
    statements = compiled_create_all(metadata, dialect)
    return None if statements is None else [runnable(s).strip() for s in statements]


def script(statements: list[str]) -> str:
    return ";\n".join(statements)
