"""Tokens of SQLite's stored schema text, and the normal forms of expressions and types built on them
(sqltext.py parses CREATE TABLE/INDEX with these). Tokens, not regexes, keep quoted names, nested
parentheses and string literals exact."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

# One alternation without groups: `findall` returns plain strings (no match objects), which
# is several times faster on large schemas; the kind is read off the first character.
_TOKEN = re.compile(
    r"""
    \s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$)
  | '(?:[^']|'')*'
  | [xX]'[0-9a-fA-F]*'
  | "(?:[^"]|"")*"|\[[^\]]*\]|`(?:[^`]|``)*`
  | (?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+
  | [A-Za-z_\x80-\U0010FFFF][A-Za-z0-9_$\x80-\U0010FFFF]*
  | <=|>=|<>|!=|==|\|\||<<|>>|->>|->
  | .
    """,
    re.VERBOSE | re.DOTALL,
)
_OPS = frozenset(["<=", ">=", "<>", "!=", "==", "||", "<<", ">>", "->>", "->", *"(),;.=<>+-*/%&|~"])


class Token(NamedTuple):
    kind: str  # string, blob, qident, number, ident, op, other
    text: str
    start: int
    end: int
    word: str  # lowercased bare word, or '' for anything that is not a bare identifier/keyword

    @property
    def name(self) -> str:
        """The identifier this token names (quotes removed)."""
        if self.kind == "qident":
            body = self.text[1:-1]
            q = self.text[0]
            return body if q == "[" else body.replace(q * 2, q)
        if self.kind == "string":  # SQLite accepts 'name' where an identifier is expected
            return self.text[1:-1].replace("''", "'")
        return self.text


def _kind(t: str) -> str:
    c = t[0]
    if c.isalpha() or c == "_":
        return "blob" if c in "xX" and t[1:2] == "'" else "ident"
    if c == "'" and len(t) > 1:
        return "string"
    if c in '"[`' and len(t) > 1:
        return "qident"
    if c in "0123456789" or (c == "." and len(t) > 1):
        return "number"
    if t in _OPS:
        return "op"
    if ord(c) >= 0x80:
        return "ident"
    return "other"


def _scan(sql: str) -> tuple[Token, ...]:
    out = []
    pos = 0
    new = tuple.__new__
    for t in _TOKEN.findall(sql):
        end = pos + len(t)
        if not (t[0].isspace() or t[:2] in ("--", "/*")):
            kind = _kind(t)
            out.append(new(Token, (kind, t, pos, end, t.lower() if kind == "ident" else "")))
        pos = end
    return tuple(out)


_tokenize = lru_cache(maxsize=16384)(_scan)
_CACHED_LENGTH = 200


def tokenize(sql: str) -> list[Token]:
    """Short fragments (types, defaults, expressions) repeat across a schema and are cached;
    whole statements are parsed once each, and caching their tokens cost ~50 MB on 2,000 tables."""
    return list(_tokenize(sql) if len(sql) <= _CACHED_LENGTH else _scan(sql))


def matching_paren(tokens: list[Token], i: int) -> int:
    """Index of the ')' that closes the '(' at tokens[i]."""
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j].text
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced parentheses in schema SQL")


def split_top_level(tokens: list[Token], sep: str = ",") -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        if depth == 0 and t.text == sep:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def _norm_token(t: Token) -> str:
    if t.kind == "ident":
        return t.text.lower()
    if t.kind == "qident":
        name = t.name
        return name.lower() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else '"' + name.lower().replace('"', '""') + '"'
    if t.kind == "blob":
        return t.text.lower()
    return t.text


def strip_outer_parens(tokens: list[Token]) -> list[Token]:
    while len(tokens) >= 2 and tokens[0].text == "(" and matching_paren(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    return tokens


def normalize_tokens(tokens: list[Token]) -> str:
    """Canonical text for comparing expressions: spacing, case, quoting and outer parens ignored."""
    return " ".join(_norm_token(t) for t in strip_outer_parens(tokens))


def normalize_expr(sql: str | None) -> str | None:
    if sql is None:
        return None
    return normalize_tokens(tokenize(sql)) or None


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=8192)
def normalize_type(declared: str | None) -> str:
    """`varchar (50)` -> `VARCHAR(50)`; spacing and case never make a difference."""
    if not declared:
        return ""
    out = ""
    prev = ""
    for t in tokenize(declared):
        txt = t.text.upper() if t.kind == "ident" else t.text
        if prev == ",":
            out += ","
        elif out and txt not in ("(", ")", ",") and prev != "(":
            out += " "
        if txt != ",":
            out += txt
        prev = txt
    return out
