"""A fingerprint of loaded models: what decides the DDL `create_all` would emit for one dialect.

The normalized target (the models created in a scratch place and read back) is a function of that
DDL and of the server; `target_cache.py` keys stored targets on this fingerprint. It walks every
table, column (type with its dialect arguments and variants, server default, identity, computed
expression, comment), constraint, index, sequence and dialect option, without compiling the DDL.
Anything it cannot describe exactly makes it return None, and the caller normalizes as before:
a DDL event listener (it may run any SQL), a constraint or schema item of a class it does not know,
a `@compiles` override of a DDL construct, a value it has no faithful text for.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKeyConstraint, Index, MetaData, PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy.schema import Computed, DefaultClause, FetchedValue, Identity, Sequence
from sqlalchemy.sql import ddl
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.types import SchemaType, TypeDecorator, TypeEngine, UserDefinedType

FORMAT = 2  # bump when what the fingerprint covers changes
_DDL_EVENTS = ("before_create", "after_create")
_CONSTRAINTS = (PrimaryKeyConstraint, ForeignKeyConstraint, UniqueConstraint, CheckConstraint)
# A `@compiles` override of one of these changes the DDL in a way no model object shows.
_DDL_CLASSES = (ddl.CreateTable, ddl.CreateColumn, ddl.CreateIndex, ddl.CreateSequence, ddl.AddConstraint,
                ddl.SetTableComment, ddl.SetColumnComment, ddl.CreateSchema)


_custom_classes: dict[type, bool] = {}  # type class -> its DDL text comes from code of its own


class _Blind(Exception):
    """Something the fingerprint cannot see; the message says what (for the bench's notes)."""


def metadata_fingerprint(metadata: MetaData, dialect) -> str | None:
    """SHA-256 hex of the models as `dialect` (a SQLAlchemy dialect instance) would create them, or
    None when something in them is invisible to it (see the module's docstring)."""
    return fingerprint_or_reason(metadata, dialect)[0]


def fingerprint_or_reason(metadata: MetaData, dialect) -> tuple[str | None, str | None]:
    """(fingerprint, None), or (None, why the models bypass the cache)."""
    h = hashlib.sha256()
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    try:
        for part in _describe_metadata(metadata, _Describer(dialect)):  # one table at a time: no model-sized payload in memory
            h.update(encode(part).encode())
            h.update(b"\n")
    except _Blind as exc:
        return None, str(exc)
    return h.hexdigest(), None


def ddl_listener(metadata: MetaData) -> str | None:
    """What DDL listener (other than SQLAlchemy's own for Enum and Boolean types) the models have, or
    None: with one, `create_all` may run any SQL, so its statements cannot be compiled ahead."""
    try:
        _listeners_ok(metadata, "the MetaData")
        for table in metadata.tables.values():
            _listeners_ok(table, f"table {table.name}")
    except _Blind as exc:
        return str(exc)
    return None


def _listeners_ok(target, what: str) -> list[SchemaType]:
    """The SchemaTypes whose own listeners `target` carries; raises _Blind for any other DDL listener."""
    owners = []
    for event_name in _DDL_EVENTS:
        for fn in getattr(target.dispatch, event_name):
            # SQLAlchemy's own: a SchemaType (Enum, Boolean) creating its type or CHECK; described as a type
            # (`Enum(..., metadata=metadata)` creates a PostgreSQL type that no column uses).
            inner = fn.func if isinstance(fn, functools.partial) else fn
            owner = getattr(inner, "__self__", None) or getattr(inner, "target", None)  # a bound method, SQLAlchemy 1.4's wrapper
            if isinstance(owner, SchemaType):
                owners.append(owner)
                continue
            raise _Blind(f"{what} has a {event_name} DDL listener ({getattr(fn, '__qualname__', fn)!r})")
    return owners


def _describe_metadata(metadata: MetaData, d: "_Describer") -> Iterator[Any]:
    for cls in _DDL_CLASSES:
        if any("_compiler_dispatcher" in c.__dict__ for c in cls.__mro__):
            raise _Blind(f"{cls.__name__} has a @compiles override")
    owners = _listeners_ok(metadata, "the MetaData")
    yield [FORMAT, d.dialect.name, metadata.schema, d.value(dict(metadata.naming_convention)),
           sorted((d.value(_sequence(s, d)) for s in metadata._sequences.values()), key=repr),
           sorted({repr(d.type(t)) for t in owners})]
    for key in sorted(metadata.tables):
        yield _describe_table(metadata.tables[key], d)


def _sequence(seq: Sequence, d: "_Describer") -> dict:
    return {k: d.value(v) for k, v in sorted(vars(seq).items())
            if not k.startswith("_") and k not in ("metadata", "column", "dispatch", "info")}


def _describe_table(table, d: "_Describer") -> list:
    owners = sorted({repr(d.type(t)) for t in _listeners_ok(table, f"table {table.name}")})
    # creation order: PostgreSQL numbers unnamed CHECKs in it
    constraints = [_describe_constraint(c, d, f"table {table.name}") for c in table._sorted_constraints]
    indexes = []
    for ix in table.indexes:
        if type(ix) is not Index:
            raise _Blind(f"index {ix.name} is of class {type(ix).__qualname__}")
        indexes.append([d.name(ix.name), ix.unique, [e.name if isinstance(e, Column) else d.value(e) for e in ix.expressions],
                        d.kwargs(ix), *d.ddl_if(ix, f"index {ix.name}")])
    indexes.sort(key=repr)
    return [table.name, table.schema, table.comment, d.kwargs(table), [d.value(p) for p in table._prefixes], owners,
            [_describe_column(c, d) for c in table.columns], constraints, indexes]


def _describe_constraint(c, d: "_Describer", where: str) -> list:
    if not isinstance(c, _CONSTRAINTS) or type(c).__module__.split(".")[0] != "sqlalchemy":
        raise _Blind(f"{where} has a constraint of class {type(c).__qualname__}")
    item = [type(c).__name__, d.name(c.name), [col.name for col in c.columns], d.kwargs(c), c.deferrable, c.initially,
            *d.ddl_if(c, where)]
    if isinstance(c, ForeignKeyConstraint):
        item += [[e.target_fullname for e in c.elements], c.ondelete, c.onupdate, c.match, c.use_alter]
    elif isinstance(c, CheckConstraint):
        item += [d.value(c.sqltext), getattr(c, "_type_bound", False)]
    return item


def _describe_column(col: Column, d: "_Describer") -> list:
    # A column's own constraints (`Column("n", Integer, CheckConstraint("n > 0"))`) are rendered inside its
    # definition and listed on the column, not the table.
    own = [_describe_constraint(c, d, f"column {col.name}") for c in sorted(col.constraints, key=lambda c: c._creation_order)] \
        if col.constraints else None
    default, onupdate = col.server_default, col.server_onupdate
    if onupdate is None and not isinstance(col.default, Sequence) and (default is None or type(default) is DefaultClause):
        # the common column, described without the general walk below (a third of the time at 10,000 columns)
        return [col.name, d.type(col.type), col.nullable, col.primary_key, d.value(col.autoincrement),
                None if default is None else ["default", d.value(default.arg), default.for_update], col.comment, col.system,
                d.kwargs(col), own]
    defaults = []
    for what in (col.server_default, col.server_onupdate):
        if what is None:
            defaults.append(None)
        elif isinstance(what, (Computed, Identity)):
            defaults.append([type(what).__name__, {k: d.value(v) for k, v in sorted(vars(what).items())
                                                   if not k.startswith("_") and k not in ("column", "dispatch")}])
        elif isinstance(what, DefaultClause):
            defaults.append(["default", d.value(what.arg), what.for_update])
        elif type(what) is FetchedValue:
            defaults.append(["fetched", what.for_update])
        else:
            raise _Blind(f"column {col.table.name}.{col.name} has a server default of class {type(what).__qualname__}")
    seq = col.default if isinstance(col.default, Sequence) else None
    return [col.name, d.type(col.type), col.nullable, col.primary_key, d.value(col.autoincrement), defaults,
            d.value(_sequence(seq, d)) if seq is not None else None, col.comment, d.kwargs(col), col.system,
            d.value(col.computed and col.computed.sqltext), d.value(col.identity and _sequence(col.identity, d)), own]


class _Describer:
    """Text for values inside models, as this dialect would compile them."""

    def __init__(self, dialect):
        self.dialect = dialect
        self._types: dict[int, Any] = {}  # id(type) -> description; types are shared between columns
        self._plain: dict[tuple, Any] = {}  # (class, attributes) -> description

    def name(self, name) -> str | None:
        return None if name is None else str(name)

    def kwargs(self, item) -> dict:
        options = item.__dict__.get("dialect_options")  # memoized: absent when nothing was ever set or read
        if not options:
            return {}
        return {f"{d}_{k}": self.value(v) for d, args in sorted(options.items())
                for k, v in sorted(args._non_defaults.items())}

    def ddl_if(self, item, where: str) -> list:
        """`.ddl_if(dialect=..., state=...)` on an index or constraint (created on some databases only);
        empty when there is none, so other models' fingerprints stay as they were."""
        rule = getattr(item, "_ddl_if", None)
        if rule is None:
            return []
        if rule.callable_ is not None:
            raise _Blind(f"{where} has a ddl_if callable")
        return [["ddl_if", self.value(rule.dialect), self.value(rule.state)]]

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        if isinstance(v, (list, tuple)):
            return [self.value(x) for x in v]
        if isinstance(v, (set, frozenset)):
            return sorted((self.value(x) for x in v), key=repr)
        if isinstance(v, dict):
            return {str(k): self.value(x) for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))}
        if isinstance(v, enum.Enum):
            return f"{type(v).__qualname__}.{v.name}={v.value!r}"
        if isinstance(v, type):
            return f"{v.__module__}.{v.__qualname__}"
        if isinstance(v, TypeEngine):
            return self.type(v)
        if isinstance(v, Column):
            return ["column", v.table.name if v.table is not None else None, v.name]
        if isinstance(v, TextClause) and not v._bindparams:
            return ["text", v.text]  # DDL carries a text() as written
        if isinstance(v, ClauseElement):
            return self.clause(v)
        if callable(v) and hasattr(v, "__qualname__"):
            return f"{getattr(v, '__module__', '')}.{v.__qualname__}"
        raise _Blind(f"a value of class {type(v).__qualname__} ({v!r:.60})")

    def clause(self, expr: ClauseElement) -> str:
        try:
            return str(expr.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))
        except Exception as exc:  # noqa: BLE001 - e.g. a bound value without a literal form
            raise _Blind(f"an expression that does not compile alone ({exc.__class__.__name__})") from None

    def type(self, t: TypeEngine) -> Any:
        known = self._types.get(id(t))
        if known is None:
            desc = None
            if not isinstance(t, TypeDecorator) and not getattr(t, "_variant_mapping", None):
                try:  # equal plain types (Integer() in every table) described once
                    same = (type(t), tuple(vars(t).items()))
                    desc = self._plain.get(same)
                    if desc is None:
                        desc = self._plain[same] = self._type(t)
                except TypeError:  # an unhashable attribute (an Enum's list of values)
                    desc = None
            known = self._types[id(t)] = (t, desc if desc is not None else self._type(t))  # keep t alive: ids not reused
        return known[1]

    def _type(self, t: TypeEngine) -> Any:
        seen = 0
        while True:  # what the type compiler itself does: the dialect's variant, a decorator's implementation
            variants = getattr(t, "_variant_mapping", None)
            if variants and self.dialect.name in variants:
                t = variants[self.dialect.name]
            elif isinstance(t, TypeDecorator):
                try:
                    t = t.type_engine(self.dialect)
                except Exception as exc:  # noqa: BLE001
                    raise _Blind(f"type {type(t).__qualname__} has no implementation for {self.dialect.name} ({exc})") from None
            else:
                break
            seen += 1
            if seen > 20:
                raise _Blind(f"type {type(t).__qualname__} resolves through more than 20 decorators or variants")
        cls = type(t)
        attrs = {}
        for k, v in sorted(vars(t).items()):
            if k.startswith("_") or k in ("metadata", "dispatch"):
                continue
            try:
                attrs[k] = self.value(v)
            except _Blind:
                attrs[k] = f"<{type(v).__qualname__}>"
        out: list[Any] = [f"{cls.__module__}.{cls.__qualname__}", attrs]
        custom = _custom_classes.get(cls)
        if custom is None:
            custom = _custom_classes[cls] = cls.__module__.split(".")[0] != "sqlalchemy" or issubclass(cls, UserDefinedType) or any(
                "_compiler_dispatcher" in c.__dict__ for c in cls.__mro__)
        if custom:  # its DDL text comes from code the attributes do not show: use that text itself
            try:
                out.append(self.dialect.type_compiler_instance.process(t))
            except Exception as exc:  # noqa: BLE001
                raise _Blind(f"type {cls.__qualname__} does not compile for {self.dialect.name} ({exc.__class__.__name__})") from None
        return out
