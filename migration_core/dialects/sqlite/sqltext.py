"""A CREATE TABLE/INDEX parser for SQLite's stored schema text.

SQLite keeps constraint names, CHECK expressions, AUTOINCREMENT, collations and table
options only in the `sql` column of `sqlite_schema`; pragmas do not report them. Parsing
tokens (sqltokens.py), not regexes, keeps quoted names, nested parentheses and string literals exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from .sqltokens import (Token, _norm_token, matching_paren, normalize_expr, normalize_tokens, normalize_type,  # noqa: F401
                        quote_ident, split_top_level, strip_outer_parens, tokenize)

_COLUMN_CONSTRAINT_START = {"constraint", "primary", "not", "null", "unique", "check", "default", "collate", "references", "generated", "as"}
_TABLE_CONSTRAINT_START = {"constraint", "primary", "unique", "check", "foreign"}


@dataclass
class ParsedFK:
    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    deferrable: str | None


@dataclass
class ParsedColumn:
    name: str
    definition: str  # exact text of the column definition
    type: str
    collation: str | None = None
    generated: str | None = None
    generated_stored: bool = False
    autoincrement: bool = False
    primary_key: bool = False
    pk_name: str | None = None
    not_null: bool = False
    default_sql: str | None = None
    unique: list[str | None] = field(default_factory=list)  # constraint names (None: unnamed)
    checks: list[tuple[str | None, str]] = field(default_factory=list)
    fks: list[ParsedFK] = field(default_factory=list)


@dataclass
class ParsedTable:
    name: str
    columns: list[ParsedColumn]
    pk_name: str | None = None
    pk_columns: tuple[str, ...] = ()
    uniques: list[tuple[str | None, tuple[str, ...]]] = field(default_factory=list)
    checks: list[tuple[str | None, str]] = field(default_factory=list)
    fks: list[ParsedFK] = field(default_factory=list)
    options: tuple[str, ...] = ()
    body_start: int = 0  # offset of the '(' that opens the column list
    body_end: int = 0  # offset just past the matching ')'


def _column_list(tokens: list[Token]) -> tuple[str, ...]:
    """Names from `(a, b COLLATE x DESC)`; expressions become their normalized text."""
    inner = tokens[1:-1] if tokens and tokens[0].text == "(" else tokens
    names = []
    for part in split_top_level(inner):
        if len(part) >= 1 and part[0].kind in ("ident", "qident", "string") and (len(part) == 1 or part[1].word in ("collate", "asc", "desc")):
            names.append(part[0].name)
        else:
            names.append(normalize_tokens(part))
    return tuple(names)


def _fk_clause(tokens: list[Token], i: int, name: str | None, columns: tuple[str, ...]) -> tuple[ParsedFK, int]:
    """Parse `REFERENCES t (cols) [ON DELETE ..] [DEFERRABLE ..]` starting at tokens[i] == REFERENCES."""
    i += 1
    ref_table = tokens[i].name
    i += 1
    ref_cols: tuple[str, ...] = ()
    if i < len(tokens) and tokens[i].text == "(":
        j = matching_paren(tokens, i)
        ref_cols = _column_list(tokens[i : j + 1])
        i = j + 1
    deferrable = None
    while i < len(tokens):
        w = tokens[i].word
        if w == "on":
            i += 4 if tokens[i + 2].word in ("set", "no") else 3
        elif w == "match":
            i += 2
        elif w == "not" and i + 1 < len(tokens) and tokens[i + 1].word == "deferrable":
            words = ["NOT", "DEFERRABLE"]
            i += 2
            if i + 1 < len(tokens) and tokens[i].word == "initially":
                words += ["INITIALLY", tokens[i + 1].text.upper()]
                i += 2
            deferrable = " ".join(words)
        elif w == "deferrable":
            words = ["DEFERRABLE"]
            i += 1
            if i + 1 < len(tokens) and tokens[i].word == "initially":
                words += ["INITIALLY", tokens[i + 1].text.upper()]
                i += 2
            deferrable = " ".join(words)
        else:
            break
    if deferrable in ("NOT DEFERRABLE", "NOT DEFERRABLE INITIALLY IMMEDIATE", "DEFERRABLE INITIALLY IMMEDIATE"):
        # SQLite treats these exactly like no clause (immediate enforcement).
        deferrable = None
    return ParsedFK(name, columns, ref_table, ref_cols, deferrable), i


def _skip_conflict(tokens: list[Token], i: int) -> int:
    if i + 2 < len(tokens) and tokens[i].word == "on" and tokens[i + 1].word == "conflict":
        return i + 3
    return i


def _parse_column(tokens: list[Token], sql: str) -> ParsedColumn:
    name = tokens[0].name
    i = 1
    type_toks: list[Token] = []
    while i < len(tokens) and tokens[i].word not in _COLUMN_CONSTRAINT_START:
        if tokens[i].text == "(":
            j = matching_paren(tokens, i)
            type_toks.extend(tokens[i : j + 1])
            i = j + 1
        else:
            type_toks.append(tokens[i])
            i += 1
    col = ParsedColumn(
        name=name,
        definition=sql[tokens[0].start : tokens[-1].end],
        type=normalize_type(sql[type_toks[0].start : type_toks[-1].end]) if type_toks else "",
    )
    cname: str | None = None
    while i < len(tokens):
        w = tokens[i].word
        if w == "constraint":
            cname = tokens[i + 1].name
            i += 2
            continue
        if w == "primary":
            col.primary_key = True
            col.pk_name = cname
            i += 2
            if i < len(tokens) and tokens[i].word in ("asc", "desc"):
                i += 1
            i = _skip_conflict(tokens, i)
            if i < len(tokens) and tokens[i].word == "autoincrement":
                col.autoincrement = True
                i += 1
        elif w == "not":
            col.not_null = True
            i = _skip_conflict(tokens, i + 2)
        elif w == "null":
            i = _skip_conflict(tokens, i + 1)
        elif w == "unique":
            col.unique.append(cname)
            i = _skip_conflict(tokens, i + 1)
        elif w == "check":
            j = matching_paren(tokens, i + 1)
            col.checks.append((cname, normalize_tokens(tokens[i + 2 : j])))
            i = j + 1
        elif w == "default":
            t = tokens[i + 1]
            if t.text == "(":
                j = matching_paren(tokens, i + 1)
                col.default_sql = sql[t.start : tokens[j].end]
                i = j + 1
            elif t.text in ("+", "-"):
                col.default_sql = t.text + tokens[i + 2].text
                i += 3
            else:
                col.default_sql = t.text
                i += 2
        elif w == "collate":
            col.collation = tokens[i + 1].name
            i += 2
        elif w == "references":
            fk, i = _fk_clause(tokens, i, cname, (name,))
            col.fks.append(fk)
        elif w in ("generated", "as"):
            if w == "generated":
                i += 2  # GENERATED ALWAYS
            j = matching_paren(tokens, i + 1)
            col.generated = normalize_tokens(tokens[i + 2 : j])
            i = j + 1
            if i < len(tokens) and tokens[i].word in ("stored", "virtual"):
                col.generated_stored = tokens[i].word == "stored"
                i += 1
        else:
            i += 1  # unknown word: be lenient, SQLite accepted this SQL
        cname = None
    return col


@lru_cache(maxsize=16384)
def parse_create_table(sql: str) -> ParsedTable:
    """Cached by text (target and live often store the very same statement); treat as read-only."""
    tokens = tokenize(sql)
    i = 0
    while tokens[i].word != "table":
        i += 1
    i += 1
    if tokens[i].word == "if":
        i += 3
    name = tokens[i].name
    if i + 1 < len(tokens) and tokens[i + 1].text == ".":
        i += 2
        name = tokens[i].name
    i += 1
    if tokens[i].word == "as":
        return ParsedTable(name=name, columns=[])  # CREATE TABLE .. AS SELECT: no constraints
    open_i = i
    close_i = matching_paren(tokens, open_i)
    table = ParsedTable(name=name, columns=[], body_start=tokens[open_i].start, body_end=tokens[close_i].end)
    for item in split_top_level(tokens[open_i + 1 : close_i]):
        w = item[0].word
        if w in _TABLE_CONSTRAINT_START and not (w == "check" and len(item) > 1 and item[1].text != "(") and not (
            w in ("primary", "unique", "foreign") and len(item) > 1 and item[1].word not in ("key", "") and item[1].text != "("
        ):
            _parse_table_constraint(item, table)
        else:
            table.columns.append(_parse_column(item, sql))
    opts = [t.word for t in tokens[close_i + 1 :] if t.kind == "ident"]
    options = []
    if "without" in opts:
        options.append("WITHOUT ROWID")
    if "strict" in opts:
        options.append("STRICT")
    table.options = tuple(options)
    for c in table.columns:
        if c.primary_key:
            table.pk_columns = (c.name,)
            table.pk_name = c.pk_name
    return table


def _parse_table_constraint(item: list[Token], table: ParsedTable) -> None:
    i = 0
    cname = None
    if item[0].word == "constraint":
        cname = item[1].name
        i = 2
    w = item[i].word
    if w == "primary":
        j = matching_paren(item, i + 2)
        table.pk_columns = _column_list(item[i + 2 : j + 1])
        table.pk_name = cname
    elif w == "unique":
        j = matching_paren(item, i + 1)
        table.uniques.append((cname, _column_list(item[i + 1 : j + 1])))
    elif w == "check":
        j = matching_paren(item, i + 1)
        table.checks.append((cname, normalize_tokens(item[i + 2 : j])))
    elif w == "foreign":
        j = matching_paren(item, i + 2)
        cols = _column_list(item[i + 2 : j + 1])
        fk, _ = _fk_clause(item, j + 1, cname, cols)
        table.fks.append(fk)


# ---- CREATE INDEX -----------------------------------------------------------------------


def index_definition(sql: str) -> tuple[str, str | None]:
    """(normalized `[unique] on table (cols) [where ...]`, normalized where clause)."""
    tokens = tokenize(sql)
    unique = any(t.word == "unique" for t in tokens[:3])
    i = next(k for k, t in enumerate(tokens) if t.word == "on")
    where = None
    w_i = next((k for k in range(i, len(tokens)) if tokens[k].word == "where" and _depth(tokens, k) == 0), None)
    body = tokens[i : w_i] if w_i is not None else tokens[i:]
    if w_i is not None:
        where = normalize_tokens(tokens[w_i + 1 :])
    text = ("unique " if unique else "") + " ".join(_norm_token(t) for t in body)
    if where:
        text += " where " + where
    return text, where


def _depth(tokens: list[Token], k: int) -> int:
    d = 0
    for t in tokens[:k]:
        d += t.text == "("
        d -= t.text == ")"
    return d


def rename_in_create(sql: str, new_name: str) -> str:
    """The CREATE TABLE/INDEX statement with its object name replaced (for rebuild's new_X)."""
    tokens = tokenize(sql)
    i = 0
    while tokens[i].word not in ("table", "index"):
        i += 1
    i += 1
    if tokens[i].word == "if":
        i += 3
    t = tokens[i]
    return sql[: t.start] + quote_ident(new_name) + sql[t.end :]
