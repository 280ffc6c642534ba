"""Data checks on the servers: plain SQL over the live rows as the plan will leave them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ... import changes as ch
from ...diff import Diff
from ...errors import ProbeFailed
from ...snapshot import SchemaSnapshot
from .connection import ServerConnection

if TYPE_CHECKING:
    from .dialect import ServerDialect


def _base(type_: str) -> str:
    """`NUMERIC(10,2)` -> NUMERIC; an array keeps its brackets (`NUMERIC(10,2)[]` -> NUMERIC[]), so
    no scalar check takes it for its element type."""
    return type_.split("(", 1)[0].split(" ", 1)[0].split("[", 1)[0].upper() + ("[]" if _is_array(type_) else "")


def _is_array(type_: str) -> bool:
    return type_.rstrip().endswith("]")


def _element(type_: str) -> str:
    """The element type of a normalized PostgreSQL array type (`VARCHAR(10)[]` -> VARCHAR(10))."""
    return re.sub(r"(\[\d*\])+\s*$", "", type_)


def _fraction_digits(d, type_: str) -> int:
    m = re.search(r"\((\d+)\)", type_)
    return int(m[1]) if m else d.default_time_precision


def _int_narrower(d, new_type: str, old_type: str) -> bool:
    new, old = d._int_range(new_type), d._int_range(old_type)
    return new is not None and (old is None or new[0] > old[0] or new[1] < old[1])


def _enum_values(type_: str) -> list[str] | None:
    """The values of a normalized enum type (PostgreSQL `ENUM name('a','b')`, MySQL `ENUM('a','b')`)."""
    m = re.match(r"^ENUM\b[^(]*\((.*)\)$", type_, re.S)
    return [v.replace("''", "'") for v in re.findall(r"'((?:[^']|'')*)'", m[1])] if m else None


_PRECISION_SCALE = re.compile(r"^(?:NUMERIC|DECIMAL)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.I)
_NUMBERED = ch.NUMBERED
_LITERAL = re.compile(r"'(?:[^']|'')*'|[+-]?\d+(?:\.\d+)?")


@dataclass
class SqlProbe:
    """Data checks against `(SELECT old AS new ...)`, so target names work before renames run.

    The SQL is standard; the dialect supplies quoting, casts, the regex operator and its type
    families (`ServerDialect` attributes). Counts are exact: they decide refusals."""

    INT_RE = r"^\s*[+-]?[0-9]+\s*$"
    NUM_RE = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"

    conn: ServerConnection | None
    diff: Diff
    live: SchemaSnapshot
    target: SchemaSnapshot
    dialect: ServerDialect
    _ready: bool = field(default=False, init=False)  # probe_setup has run
    _each: str | None = field(default=None, init=False)  # an array column whose elements the counts are over
    _trials: dict = field(default_factory=dict, init=False)  # (table, column, old, new) -> Trial | None

    def q(self, name: str) -> str:
        return self.dialect.quote_ident(name)

    def _target_col(self, table: str, live_col: str) -> str:
        N = self.diff.names
        for (t, old), new in self.diff.column_renames.items():
            if N.table(t) == N.table(table) and N.column(old) == N.column(live_col):
                return new
        return live_col

    def _source(self, table: str) -> str | None:
        t = self.live.table(self.diff.live_table(table))
        if t is None or self.conn is None:
            return None
        q = self.q
        exprs = [f"{q(c.name)} AS {q(self._target_col(table, c.name))}" for c in t.columns]
        # A column the plan adds reads as the value every existing row will get: its literal
        # default, else NULL (an expression default is left to the server when it runs).
        N = self.diff.names
        present = {N.column(self._target_col(table, c.name)) for c in t.columns}
        target_t = self.target.table(table)
        for c in target_t.columns if target_t else ():
            if N.column(c.name) not in present:
                if c.default in _NUMBERED:  # the server numbers the existing rows: distinct and never NULL
                    exprs.append(f"ROW_NUMBER() OVER () AS {q(c.name)}")
                    continue
                literal = c.default if c.default is not None and _LITERAL.fullmatch(c.default) else "NULL"
                exprs.append(f"{self.dialect.typed_value(literal, c.type)} AS {q(c.name)}")
        return f"(SELECT {', '.join(exprs)} FROM {q(t.name)}) AS src"

    def _scalar(self, sql: str) -> int:
        """Raises ProbeFailed (the server's reason) when the server refuses the query: a check
        that cannot run must never pass for one that found nothing."""
        try:
            if not self._ready:
                for stmt in self.dialect.probe_setup:
                    self.conn.execute(stmt)
                self._ready = True
            return int(self.conn.execute(sql).fetchone()[0] or 0)
        except SQLAlchemyError as exc:
            raise ProbeFailed(self.dialect._message(exc)) from None

    def _count(self, table: str, where: str) -> int:
        src = self._source(table)
        if src is not None and self._each is not None:  # a row counts once, when any of its elements does
            col = self.q(self._each)
            where = f"EXISTS (SELECT 1 FROM unnest({col}) AS el({col}) WHERE {where})"
        return 0 if src is None else self._scalar(f"SELECT count(*) FROM {src} WHERE {where}")

    def _live_column(self, table: str, column: str):
        """The live column the models call `table.column` (renames mapped back), or None."""
        t = self.live.table(self.diff.live_table(table))
        N = self.diff.names
        return next((c for c in (t.columns if t else ()) if N.column(self._target_col(table, c.name)) == N.column(column)), None)

    def live_type(self, table: str, column: str) -> str | None:
        c = self._live_column(table, column)
        return c.type if c else None

    def _per_element(self, check, table: str, column: str, old_type: str, new_type: str):
        """`check` over the elements of an array column (both types arrays): PostgreSQL converts
        an array element by element, so each element is checked as a value of the element type;
        the count is of rows with at least one such element."""
        self._each = column
        try:
            return check(table, column, _element(old_type), _element(new_type))
        finally:
            self._each = None

    def row_count(self, table: str) -> int:
        return self._count(table, "1 = 1")

    def null_count(self, table: str, column: str) -> int:
        return self._count(table, f"{self.q(column)} IS NULL")

    def duplicate_count(self, table: str, columns: tuple[str, ...]) -> int:
        src = self._source(table)
        if src is None:
            return 0
        cols = ", ".join(self.q(c) for c in columns)
        not_null = " AND ".join(f"{self.q(c)} IS NOT NULL" for c in columns)
        return self._scalar(f"SELECT count(*) FROM (SELECT 1 AS x FROM {src} WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1) AS d")

    def key_duplicates_after(self, table: str, column: str, new_type: str | None, collation: str | None) -> tuple[int, tuple] | None:
        t = self.target.table(table)
        if t is None or self._source(table) is None:
            return None
        keys = [k.columns for k in ([t.primary_key] if t.primary_key else [])] + [u.columns for u in t.unique_constraints]
        keys += [i.columns for i in t.indexes if i.unique and None not in i.columns]
        d = self.dialect
        col = self.q(column)
        if not new_type and collation is None:  # back to its table's own collation
            collation = d.table_collation(self.conn, self.diff.live_table(table))
        expr = d.key_cast(col, new_type) if new_type else d.collate(col, collation)
        if expr is None:
            return None
        for key in keys:
            if column.lower() not in {c.lower() for c in key}:
                continue
            parts = [expr if c.lower() == column.lower() else self.q(c) for c in key]
            not_null = " AND ".join(f"{self.q(c)} IS NOT NULL" for c in key)
            try:
                n = self._scalar(f"SELECT count(*) FROM (SELECT 1 AS x FROM {self._source(table)} WHERE {not_null} "
                                 f"GROUP BY {', '.join(parts)} HAVING count(*) > 1) AS d")
            except ProbeFailed:
                return None  # a value does not convert: the conversion checks before this one count those

            if n:
                return n, tuple(key)
        return None

    def collation_change(self, table: str, collation: str | None) -> tuple[list[tuple[str, object]], tuple[int, tuple] | None]:
        """A table's default collation changed (MariaDB converts every text column without its own):
        each such column's conversion tried (`Trial`s of the columns whose values it refuses or
        alters: a character set that lacks a character), and the first unique key whose values would
        collide once compared by `collation` ('a' and 'A' under a case-insensitive one), with its
        count. `collation` None: the database's default."""
        t, live = self.target.table(table), self.live.table(self.diff.live_table(table))
        if t is None or live is None or self._source(table) is None:
            return [], None
        d = self.dialect
        if collation is None:
            collation = d.database_collation(self.conn)
        follow = {c.name.lower() for c in t.columns if c.collation is None and _base(c.type) in d.text_types | d.label_types}
        problems = []
        for c in t.columns:
            old = self.live_type(table, c.name)
            if c.name.lower() in follow and old is not None:
                trial = self.conversion_trial(table, c.name, old, c.type)
                if trial and (trial.failed or trial.changed):
                    problems.append((c.name, trial))
        keys = [k.columns for k in ([t.primary_key] if t.primary_key else [])] + [u.columns for u in t.unique_constraints]
        keys += [i.columns for i in t.indexes if i.unique and None not in i.columns]
        for key in keys:
            if not follow & {k.lower() for k in key}:
                continue
            parts = [d.collate(self.q(k), collation) if k.lower() in follow else self.q(k) for k in key]
            not_null = " AND ".join(f"{self.q(k)} IS NOT NULL" for k in key)
            n = self._scalar(f"SELECT count(*) FROM (SELECT 1 AS x FROM {self._source(table)} WHERE {not_null} "
                             f"GROUP BY {', '.join(parts)} HAVING count(*) > 1) AS d")
            if n:
                return problems, (n, tuple(key))
        return problems, None

    def _exact(self, col: str, old_kind: str | None) -> str:
        """The column's exact decimal value; text that is not a number gives NULL (those values
        are counted by the pattern check), floats go by their shortest round-trip text."""
        d = self.dialect
        if old_kind is not None:
            return d.numeric_cast.format(col)
        text = d.text_cast.format(col)
        return f"CASE WHEN {text} {d.regex_op} '{self.NUM_RE}' THEN {d.numeric_cast.format(text)} END"

    def unconvertible_count(self, table: str, column: str, old_type: str, new_type: str) -> int | None:
        """Values a numeric target cannot hold at all: text that is not a number, and numbers out
        of its range (which MySQL without strict mode would clamp: 100000 -> SMALLINT stores
        32767). Other failures (text to date) make the server fail the statement, and so the plan."""
        if _is_array(old_type) and _is_array(new_type) and self._each is None:
            return self._per_element(self.unconvertible_count, table, column, old_type, new_type)
        d = self.dialect
        values = _enum_values(new_type)
        if values is not None:  # an enum holds only its listed values: count those its list loses
            old_values = _enum_values(old_type)
            if old_values is not None and set(old_values) <= set(values):
                return 0
            listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "NULL"
            return self._count(table, f"{self.q(column)} IS NOT NULL AND {d.text_cast.format(self.q(column))} NOT IN ({listed})")
        kind = d._numeric_kind(new_type)
        if kind is None:
            return 0
        old_kind = d._numeric_kind(old_type)
        col = self.q(column)
        if old_kind is None and _base(old_type) in d.bit_types:  # a bit string counts as the number its bits spell
            old_kind, col = "int", d.bit_value.format(col)
        bad = []
        if old_kind is None:
            pattern = self.INT_RE if kind == "int" else self.NUM_RE
            bad.append(f"NOT ({d.text_cast.format(col)} {d.regex_op} '{pattern}')")
        exact = self._exact(col, old_kind)
        if kind == "int":
            bounds = d._int_range(new_type)
            if bounds is not None and (old_kind != "int" or _int_narrower(d, new_type, old_type)):
                bad.append(f"{exact} < {bounds[0]} OR {exact} > {bounds[1]}")
        else:
            if d.float_types.get(_base(new_type)) == "single" and old_kind is not None and d.float_types.get(_base(old_type)) != "single":
                # Beyond single precision's range (IEEE 754 binary32, 3.4028235e38): MariaDB's strict MODIFY
                # refuses it (1264), PostgreSQL's float4 cast too; compared as a double, which holds it exactly enough.
                bad.append(f"ABS({d.float_casts['double'].format(col)}) > 3.4028234663852886e38")
            size = _PRECISION_SCALE.search(new_type)
            if size is not None:
                precision, scale = int(size[1]), int(size[2] or 0)
                bad.append(f"ABS(ROUND({exact}, {scale})) >= {10 ** (precision - scale)}")
        return self._count(table, f"{col} IS NOT NULL AND ({' OR '.join(bad)})") if bad else 0

    def lossy_count(self, table: str, column: str, old_type: str, new_type: str) -> tuple[int, str] | None:
        """Values the new type keeps only approximately, which the server converts without a word:
        fractions rounded (2.5 -> INTEGER stores 3; 1.756 -> NUMERIC(10,2) stores 1.76), digits a
        float cannot hold (2**53 + 1 -> DOUBLE; double -> single precision), a timestamp's time of
        day or fractional seconds, numbers other than 0 and 1 made booleans."""
        if _is_array(old_type) and _is_array(new_type) and self._each is None:
            return self._per_element(self.lossy_count, table, column, old_type, new_type)
        d = self.dialect
        col = self.q(column)
        kind, old_kind = d._numeric_kind(new_type), d._numeric_kind(old_type)
        float_kind = d.float_types.get(_base(new_type))
        if kind is not None and (old_kind is not None or d.temporal_types.get(_base(old_type)) is None):
            exact = self._exact(col, old_kind)
            if float_kind is not None and d.float_types.get(_base(old_type)) != float_kind:
                as_float = d.numeric_cast.format(d.float_casts[float_kind].format(exact if old_kind is None else col))
                return (self._count(table, f"{as_float} <> {exact}"),
                        f"stored with {'single' if float_kind == 'single' else 'double'} precision")
            if kind == "int" and old_kind != "int":
                return self._count(table, f"{exact} <> FLOOR({exact})"), "rounded to whole numbers"
            size = _PRECISION_SCALE.search(new_type)
            if kind == "num" and size is not None and old_kind != "int":
                scale = int(size[2] or 0)
                # A value too small for the exact cast reads as 0: count it as rounded too.
                tiny = f" OR ({exact} = 0 AND {col} <> 0)" if old_kind is not None else ""
                return (self._count(table, f"ROUND({exact}, {scale}) <> {exact}{tiny}"),
                        f"rounded to {scale} decimal places")
            return None
        if kind is None and old_kind is not None and _base(new_type) in ("BOOLEAN", "BOOL"):
            return self._count(table, f"{col} NOT IN (0, 1)"), "collapsed to true/false"
        old_t, new_t = d.temporal_types.get(_base(old_type)), d.temporal_types.get(_base(new_type))
        if old_t == "datetime" and new_t == "date":
            return self._count(table, f"CAST({col} AS DATE) <> {col}"), "cut to the date (the time of day is lost)"
        if old_t == new_t == "datetime" and (digits := _fraction_digits(d, new_type)) < _fraction_digits(d, old_type):
            cast = d.time_cast.format(type=new_type, digits=digits)
            return self._count(table, f"CAST({col} AS {cast}) <> {col}"), f"rounded to {digits} fractional second digits"
        return None

    def conversion_trial(self, table: str, column: str, old_type: str, new_type: str):
        """Convert the live values the way the plan will and see what the server refuses or alters
        (`Trial`; None where the counts above are exact and whole: numbers to numbers, values
        checked against an enum's list). Run once per change: it reads the whole column."""
        key = (table, column, old_type, new_type)
        if key not in self._trials:
            self._trials[key] = self._trial(table, column, old_type, new_type)
        return self._trials[key]

    def _trial(self, table: str, column: str, old_type: str, new_type: str):
        d = self.dialect
        text_source = _base(old_type) in d.text_types
        if self.conn is None or self._source(table) is None or d.trial is None \
                or (_enum_values(new_type) is not None and not text_source):
            return None  # an enum's list against an enum's: counted exactly above
        if d._numeric_kind(old_type) and d._numeric_kind(new_type):
            return None  # ranges (a single-precision float's included), scales and precision: counted exactly above
        if _base(old_type) in d.text_types and _base(new_type) in d.roomy_text_types and self._same_collation(table, column):
            return None  # text into text with room for any of it, characters unchanged: nothing to try
        if _is_array(old_type) and _is_array(new_type):  # PostgreSQL converts element by element
            old_base, new_base = _base(_element(old_type)), _base(_element(new_type))
        else:
            old_base, new_base = _base(old_type), _base(new_type)
        if _enum_values(old_type) is not None or old_base in d.label_types:
            compare = "labels"  # an enum's value is its label (MariaDB converts it to a number by its position)
        elif old_base in d.text_types and (new_base in d.label_types or _enum_values(new_type) is not None
                                           or new_base in d.reread_types):
            # Text read as a label or a year is only the same if it reads back the same: MariaDB takes 'A'
            # as the label 'a', 'b ' as 'b', '69' as the year 2069.
            compare = "round"
        elif old_base in d.text_types and new_base not in d.text_types:
            compare = "none"  # text is parsed: '2024-1-2' read as a date is the same date, spelled anew
        else:
            compare = "round"
        return d.trial(self, table, column, old_type, new_type, compare)

    def _same_collation(self, table: str, column: str) -> bool:
        t, live = self.target.table(table), self.live.table(self.diff.live_table(table))
        new, old = t.column(column) if t else None, self._live_column(table, column)
        return new is not None and old is not None and old.collation == new.collation and live.options == t.options

    def too_long_count(self, table: str, column: str, max_length: int) -> int:
        """Values longer than `max_length` characters; of an array, its elements."""
        if _is_array(self.live_type(table, column) or "") and self._each is None:
            self._each = column
            try:
                return self.too_long_count(table, column, max_length)
            finally:
                self._each = None
        return self._count(table, f"char_length({self.dialect.text_cast.format(self.q(column))}) > {int(max_length)}")

    def orphan_count(self, table, columns, ref_table, ref_columns) -> int:
        q = self.q
        not_null = " AND ".join(f"src.{q(c)} IS NOT NULL" for c in columns)
        ref_src = self._source(ref_table)
        if ref_src is None:
            return self._count(table, not_null)  # the parent is created by this plan: it is empty
        ref_src = ref_src[: -len(" AS src")] + " AS ref"
        match = " AND ".join(f"ref.{q(r)} = src.{q(c)}" for c, r in zip(columns, ref_columns))
        return self._count(table, f"{not_null} AND NOT EXISTS (SELECT 1 FROM {ref_src} WHERE {match})")

    def check_violation_count(self, table: str, expression: str) -> int | None:
        try:
            return self._count(table, f"NOT ({expression})")
        except ProbeFailed:
            return None  # not evaluable outside the table; the server checks it when the constraint is added


