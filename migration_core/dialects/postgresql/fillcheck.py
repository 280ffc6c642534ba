"""A fill's values tried as the plan's UPDATE (or `ALTER .. TYPE .. USING`) stores them (tester3 F11): cast to
the column's type, where PostgreSQL refuses a value the type cannot hold (a bad integer, numeric overflow);
an explicit cast to `varchar(n)` cuts a longer text where an assignment refuses it (docs "Character Types":
unless the excess characters are all spaces), so the length is checked apart."""

from __future__ import annotations

import re

from .trial import _cast

_SIZED = re.compile(r"^\s*(?:character varying|varchar|character|char|bpchar)\s*\(\s*(\d+)\s*\)\s*$", re.I)


def failures(probe, table: str, column: str, scope: str, expr: str, old_type: str | None, new_type: str,
             read_only) -> tuple[int, str | None] | None:
    """(rows whose value the column's type refuses, the reason), (0, None) when none, None when the source is
    unknown. A cast that fails stops the query: one row at least, with PostgreSQL's words (PostgreSQL 15 has no
    pg_input_is_valid, and a read-only transaction may not create trial.py's counting function)."""
    src = probe._source(table)
    if probe.conn is None or src is None:
        return None
    value = f"({expr})"
    try:
        with read_only(probe):
            bad = probe._scalar(f"SELECT count(*) FROM {src} WHERE {scope} AND {value} IS NOT NULL "
                                f"AND {_cast(value, new_type)} IS NULL")
            size = _SIZED.match(new_type)
            if not bad and size:
                n = probe._scalar(f"SELECT count(*) FROM {src} WHERE {scope} "
                                  f"AND char_length(rtrim(CAST({value} AS text))) > {int(size[1])}")
                if n:
                    return n, f"value too long for type {new_type}"
    except Exception as exc:  # noqa: BLE001 - the server's word on a value it refuses
        return 1, " ".join(str(getattr(exc, "orig", exc)).split())[:300]
    return (bad, "the cast gives NULL") if bad else (0, None)
