"""`ServerDialect`: the Dialect protocol's common part for PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

import shutil
from dataclasses import replace

from sqlalchemy import MetaData
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from ...diff import Diff
from ...errors import ConfigurationError
from ...plan import Plan
from ...snapshot import SchemaSnapshot
from ...urls import parse_url
from .backup import ServerBackupEngine, ToolBackupEngine
from .connection import ServerConnection, connect_server, make_engine, message
from .kept import KeptRules, plan_kept_objects
from .lock import ServerLock
from .probes import SqlProbe, _base
from .proof import Shadow, proof_scope, prove


class ServerDialect:
    """The Dialect protocol's common part for PostgreSQL and MariaDB/MySQL. Each subclass names
    its catalog reader, planner, lock, backup engines and driver details, and keeps what really
    differs (scratch normalization, plan execution, integrity checks) in its own package."""

    name: str
    title: str  # in messages
    drivers: tuple[str, ...]  # accepted SQLAlchemy drivers; the first is added to a bare URL
    bare_names: tuple[str, ...]  # drivernames without a driver, completed with drivers[0]
    driver_hint: str
    explicit_schema_hint = ""
    # Normalizing the models is mostly the server's work (creating them in scratch), so a status reads
    # the live schema on its own connection meanwhile (target_cache.normalized_target).
    normalizes_on_server = True
    numeric_types: dict[str, str]  # base type name -> "int" | "num", for the conversion probe
    int_ranges: dict[str, tuple[int, int]]  # base integer type name -> (min, max), signed
    float_types: dict[str, str]  # base type name -> "single" | "double"
    float_casts: dict[str, str]  # "single" | "double" -> cast of `{}` to that float
    temporal_types: dict[str, str]  # base type name -> "datetime" | "date"
    default_time_precision: int  # fractional second digits of a DATETIME/TIMESTAMP without (n)
    time_cast = "{type}"  # the CAST target for a datetime type (`type`) with `digits` fractional digits
    write_session_setup: tuple[str, ...] = ()  # run on every connection that may change the database
    probe_setup: tuple[str, ...] = ()  # run once before a probe's first data check
    # A data check that evaluates a user's fill runs in a transaction begun with `read_only_begin` and
    # rolled back; inside an open transaction, under a savepoint with `read_only_nested` (fills.py).
    read_only_begin: str | None = None
    read_only_nested: tuple[str, ...] = ()
    text_cast: str  # `{}` is the expression
    numeric_cast: str  # `{}` is a number column, or numeric text; gives its exact decimal value
    regex_op: str
    bit_types: frozenset[str] = frozenset()  # base types of bit strings that convert to numbers by their bits
    bit_value = "{}"  # the number a bit string `{}` spells
    text_types: frozenset[str]  # base types holding free text (parsed when converted to another type)
    label_types: frozenset[str] = frozenset()  # base types whose values are labels (besides enums)
    roomy_text_types: frozenset[str] = frozenset()  # text types that hold any value of a text type, as it is
    reread_types: frozenset[str] = frozenset()  # base types that read text loosely ('69' as a YEAR is 2069)
    # `trial(probe, table, column, old_type, new_type, compare) -> Trial | None`: the conversion tried
    # on the live values (`postgresql/trial.py`, `mysql/trial.py`); None: not tried.
    trial = None
    client_tools: tuple[tuple[str, ...], ...]  # each entry: alternative names of one tool the dump needs
    lock_class: type[ServerLock]
    tool_backup_class: type[ToolBackupEngine]
    logical_backup_class: type[ServerBackupEngine]
    planner_class: type
    kept_rules: KeptRules
    shadow_class: type[Shadow]
    views_need_tables: bool  # a proof copies the tables a copied view reads (MariaDB resolves them where it is created)

    def __init__(self, settings):
        self.settings = settings
        self.url = parse_url(settings.database_url)
        if self.url.drivername in self.bare_names:
            self.url = self.url.set(drivername=f"{self.url.drivername}+{self.drivers[0]}")
        elif self.url.get_driver_name() not in self.drivers:
            raise ConfigurationError(f"{self.title} URLs must use {self.driver_hint}, not {self.url.drivername}")
        self.url = self._check_url(self.url)
        self.engine = make_engine(self.url)
        self.ignore = tuple(settings.ignore_tables)
        self._normalizing: set[ServerConnection] = set()  # connections of normalizations under way (interrupt_normalization)
        self._interrupted = False

    def _check_url(self, url: URL) -> URL:
        return url

    # Hooks: the catalog reader and quoting, the transaction test on the driver connection, the error text.
    @staticmethod
    def read_snapshot(conn, schema: str, ignore: tuple[str, ...] = ()) -> SchemaSnapshot:
        raise NotImplementedError

    @staticmethod
    def quote_ident(name: str) -> str:
        raise NotImplementedError

    @staticmethod
    def _in_tx(driver) -> bool:
        raise NotImplementedError

    _message = staticmethod(message)

    def schema(self) -> str:
        raise NotImplementedError

    def _lock_id(self):
        raise NotImplementedError

    def _create_in_scratch(self, conn: ServerConnection, metadata: MetaData) -> SchemaSnapshot:
        """Create the models in a scratch schema, read it like the live one, leave nothing behind."""
        raise NotImplementedError

    # -- normalized-target cache key (target_cache.py) -----------------------------------
    key_query: str  # one row: the server's version and the settings that shape what a normalization reads back

    @property
    def sa_dialect(self):
        """The SQLAlchemy dialect the models are compiled with (initialized by the first connection)."""
        return self.engine.dialect

    def normalization_key(self, conn: ServerConnection | None = None) -> str:
        """The server's part of the normalized-target cache key: one query (`key_query`)."""
        own = conn is None
        if own:
            conn = self.connect(write=False)
        try:
            row = conn.execute(self.key_query).fetchone()
        finally:
            if own:
                conn.close()
        return "|".join(str(v) for v in row)

    # -- connections ---------------------------------------------------------------------
    def database_exists(self) -> bool:
        return True  # a server database must exist before we can connect; connect() says so clearly

    def connect(self, *, write: bool) -> ServerConnection:
        conn = connect_server(self.engine, self._in_tx)
        try:
            for stmt in self.write_session_setup if write else ():
                conn.execute(stmt)
        except BaseException:
            conn.close()
            raise
        return conn

    # -- schema --------------------------------------------------------------------------
    def read_live(self, conn: ServerConnection | None) -> SchemaSnapshot:
        return self.read_snapshot(conn, self.schema(), self.ignore)

    def normalize_target(self, metadata: MetaData) -> SchemaSnapshot:
        """The models as this server stores them: created in a scratch schema and read back with
        the live reader, so both sides of the diff are normalized alike."""
        schemas = sorted({t.schema for t in metadata.tables.values() if t.schema})
        if schemas:
            raise ConfigurationError(f"tables with an explicit schema ({', '.join(schemas)}) are not supported"
                                     + self.explicit_schema_hint)
        conn = self.connect(write=False)
        self._normalizing.add(conn)
        if self._interrupted:  # interrupted while it connected
            conn.cut()
        try:
            return self._create_in_scratch(conn, metadata)
        except SQLAlchemyError as exc:
            raise ConfigurationError(f"the models cannot be created on {self.title}: {self._message(exc)}") from None
        finally:
            self._normalizing.discard(conn)
            conn.close()

    def interrupt_normalization(self) -> None:
        """End, from another thread, the normalizations under way (`normalize_target` in a worker thread
        while an interrupted status gives up): their connections are cut, so the worker ends at once
        with an error instead of running the rest of the models' DDL."""
        self._interrupted = True
        for conn in list(self._normalizing):
            conn.cut()

    def clear_interrupt(self) -> None:
        """Before a normalization that `interrupt_normalization` may end: an earlier interrupt is forgotten."""
        self._interrupted = False

    def make_plan(self, conn, live: SchemaSnapshot, target: SchemaSnapshot, diff: Diff, metadata: MetaData, fills=None) -> Plan:
        """Plan the changes, set aside and make again the views and triggers they disturb, then prove
        the plan on a schema-only copy (`server/proof.py`); raises PlanningError when it cannot work.
        `fills`: data fills and conversions (fills.resolve) written into the steps that need them."""
        planner = self.planner_class(metadata, self.engine.dialect, live, target, self.settings, conn)
        planner.fills = fills or {}
        plan = planner.plan(diff)
        plan, notes = plan_kept_objects(plan, diff, live, self.kept_rules)
        scope = proof_scope(diff, live, views_need_tables=self.views_need_tables, kept=plan.kept)
        shadow = self.shadow_class(lambda: self.connect(write=True), self.schema())
        plan = prove(shadow, replace(plan, change_notes=tuple(notes)), diff, live, target, scope)
        return plan

    def probe(self, conn, diff: Diff, live: SchemaSnapshot, target: SchemaSnapshot) -> SqlProbe:
        return SqlProbe(conn, diff, live, target, self)

    def typed_value(self, literal: str, type_: str) -> str:
        """`literal` (a constant or NULL) as a value of the normalized type `type_`, for a probe's
        stand-in for a column the plan adds; MySQL compares untyped values as they are."""
        return literal

    def key_cast(self, expr: str, type_: str) -> str | None:
        """`expr` converted to the normalized type `type_` as the column's values will be (None: no such cast)."""
        return None

    def table_collation(self, conn, table: str) -> str | None:
        """The collation a column of `table` without one of its own compares by (None: unknown)."""
        return None

    def database_collation(self, conn) -> str | None:
        """The collation a table without one of its own takes (None: no such thing here)."""
        return None

    def collate(self, expr: str, collation: str | None) -> str | None:
        """`expr` compared by `collation` (None: the column's table's default, which cannot be named here)."""
        return None

    def _numeric_kind(self, type_: str) -> str | None:
        return self.numeric_types.get(_base(type_))

    def _int_range(self, type_: str) -> tuple[int, int] | None:
        bounds = self.int_ranges.get(_base(type_))
        if bounds is None:
            return None
        return (0, 2 * bounds[1] + 1) if "UNSIGNED" in type_.upper() else bounds

    # -- infrastructure ------------------------------------------------------------------
    def lock(self, timeout_ms: int) -> ServerLock:
        return self.lock_class(self.engine, self._lock_id(), timeout_ms)

    def backup_engine(self) -> ServerBackupEngine:
        """The client tools' dump when they are installed; otherwise the built-in logical dump."""
        connect = lambda: self.connect(write=True)  # noqa: E731
        if all(any(shutil.which(tool) for tool in names) for names in self.client_tools):
            return self.tool_backup_class(self.url, connect, self.schema, self._fingerprint)
        return self.logical_backup_class(connect, self.schema, self._fingerprint)

    def _fingerprint(self) -> str | None:
        conn = self.connect(write=False)
        try:
            return self.read_live(conn).fingerprint()
        finally:
            conn.close()

    def storage_check(self, conn: ServerConnection) -> str | None:
        """None: a server checks its own pages; nothing to check before writing."""
        return None

    def recover(self, conn: ServerConnection, history) -> list[str]:
        """Nothing to undo by default: a transactional run that died was rolled back by the server."""
        return []

    def pending_undo(self, conn, history) -> list[str]:
        """None: see `recover`."""
        return []
