"""Argument types shared by the MCP tools: bounded lists of hints, fills and conversions, each described
for the model that calls the tool."""

from typing import Annotated

from pydantic import Field

Renames = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=300)]] | None,
    Field(
        max_length=100,
        description=(
            "Optional rename hints, so a rename is applied as a rename instead of drop + add (which loses data): "
            "'old_table:new_table' for a table, 'table.old_column:new_column' for a column."
        ),
    ),
]


def _expressions(description: str):
    """An optional list of 'table.column=EXPR' items, bounded as the other lists are."""
    return Annotated[list[Annotated[str, Field(min_length=3, max_length=2000)]] | None,
                     Field(max_length=100, description=description)]


Fills = _expressions(
    "Optional data fills, 'table.column=EXPR' each: the value existing rows get for a new NOT NULL column "
    "without a default, or for the NULL rows of a column made NOT NULL (only those rows change). EXPR is one SQL "
    "expression over the row's own columns (no subquery, no other table). Use one only when the user chose the "
    "value; it is part of the plan id.")
Using = _expressions(
    "Optional conversions for type changes, 'table.column=EXPR' each: how each existing value becomes the "
    "new type (PostgreSQL USING). EXPR is one SQL expression over the row's own columns; part of the plan id.")
