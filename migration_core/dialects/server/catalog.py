"""Expression text helpers shared by the PostgreSQL and MariaDB/MySQL catalog readers."""

from __future__ import annotations

import re


def squeeze_expr(text: str) -> str:
    """Collapse white space and drop redundant outer parentheses: the last step of both
    catalogs' expression normalization, after each has removed its own decorations."""
    out = re.sub(r"\s+", " ", text)
    while out.startswith("(") and out.endswith(")") and _balanced(out[1:-1]):
        out = out[1:-1].strip()
    return out


def _balanced(s: str) -> bool:
    depth, quoted = 0, False
    for ch in s:
        if ch == "'":
            quoted = not quoted
        elif not quoted:
            depth += ch == "("
            depth -= ch == ")"
            if depth < 0:
                return False
    return depth == 0


