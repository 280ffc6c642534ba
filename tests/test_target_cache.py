"""The normalized-target cache (issue 15): a hit skips normalization, any change to what shapes the
normalized target misses, a damaged file is never trusted, and models it cannot see bypass it."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Column, DateTime, Enum, ForeignKey, Index, Integer, MetaData,
                        Numeric, String, Table, Text, UniqueConstraint, text)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from migration_core import AutoMigrationSystem
from migration_core import target_cache
from migration_core.dialects.sqlite.dialect import SqliteDialect
from migration_core.fingerprint import fingerprint_or_reason, metadata_fingerprint

BODY = """
users = Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(40), nullable=False),
              Column("score", Numeric(8, 2), server_default=text("0")), comment="people")
posts = Table("posts", metadata, Column("id", Integer, primary_key=True),
              Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE")), Column("body", Text))
Index("ix_posts_user", posts.c.user_id)
"""


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("MIGRATION_DATA_DIR", str(d))
    return d


class Counting:
    """Counts the normalizations a dialect really runs (the cache's misses)."""

    def __init__(self, monkeypatch, dialect_class):
        self.calls = 0
        original = dialect_class.normalize_target

        def counted(dialect, metadata):
            self.calls += 1
            return original(dialect, metadata)
        monkeypatch.setattr(dialect_class, "normalize_target", counted)


def _files(data_dir):
    return sorted((data_dir / "targets").rglob("target-*.bin"))


def test_hit_skips_normalization_and_gives_the_same_target(anydb, data_dir, monkeypatch):
    spec = anydb.models(BODY)
    cold = AutoMigrationSystem(anydb.settings(spec))
    counter = Counting(monkeypatch, type(cold.dialect))
    assert cold.check_migration_status().migration_needed
    assert counter.calls == 1
    anydb.migrate(BODY)  # another models file, the same models: a hit
    assert counter.calls == 1
    [stored] = _files(data_dir)
    assert stored.parent.name == anydb.settings(spec).database_folder_name()  # beside the backups' folder name
    warm = AutoMigrationSystem(anydb.settings(spec))
    assert not warm.check_migration_status().migration_needed
    assert counter.calls == 1
    assert warm.comparator.target_snapshot() == cold.comparator.target_snapshot()
    # A change in the models misses and is seen as a change.
    changed = AutoMigrationSystem(anydb.settings(anydb.models(BODY + 'extra = Table("extra", metadata, Column("id", Integer, primary_key=True))\n')))
    assert [c.kind for c in changed.check_migration_status().changes] == ["add_table"]
    assert counter.calls == 2 and len(_files(data_dir)) == 2


def _stored_bytes(raw: bytes):
    import io

    head, _, body = raw.partition(b"\n")
    return json.loads(head)["key"], target_cache._SnapshotUnpickler(io.BytesIO(body)).load()


def _stored(path):
    return _stored_bytes(path.read_bytes())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "other key", "bad record", "foreign class", "empty", "directory"])
def test_damaged_cache_file_is_ignored_and_rewritten(project, data_dir, monkeypatch, damage):
    project.migrate(BODY)
    spec = project.models(BODY)
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    [path] = _files(data_dir)
    good = path.read_bytes()
    head, _, body = good.partition(b"\n")
    if damage == "garbage":
        path.write_bytes(b"\x00\xffnot json at all")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flipped":  # the body changed, its checksum did not
        path.write_bytes(head + b"\n" + body.replace(b"users", b"usera", 1))
    elif damage == "other key":
        meta = json.loads(head)
        path.write_bytes(json.dumps({**meta, "key": "0" * 64}).encode() + b"\n" + body)
    elif damage in ("bad record", "foreign class"):  # a valid checksum over a body that is not a snapshot
        import hashlib
        import pickle

        bad = pickle.dumps({"tables": {}}) if damage == "bad record" else pickle.dumps(print)
        meta = json.loads(head)
        path.write_bytes(json.dumps({**meta, "sha256": hashlib.sha256(bad).hexdigest()}).encode() + b"\n" + bad)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "directory":
        path.unlink()
        path.mkdir()
    system = AutoMigrationSystem(project.settings(spec))
    counter = Counting(monkeypatch, type(system.dialect))
    assert not system.check_migration_status().migration_needed
    assert counter.calls == 1  # normalized again, not trusted
    if damage != "directory":
        # rewritten: the same key, a snapshot equal to the first (pickle's bytes depend on which equal strings
        # happen to be one object, so they are not compared)
        assert _stored(path) == _stored_bytes(good)
        AutoMigrationSystem(project.settings(spec)).check_migration_status()
        assert counter.calls == 1


def test_read_only_reads_the_cache_and_writes_nothing(project, data_dir, monkeypatch):
    spec = project.models(BODY)
    project.script("CREATE TABLE other (id INTEGER)")
    AutoMigrationSystem(project.settings(spec, read_only=True)).check_migration_status()
    assert not (data_dir / "targets").exists()
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    system = AutoMigrationSystem(project.settings(spec, read_only=True))
    counter = Counting(monkeypatch, type(system.dialect))
    system.check_migration_status()
    assert counter.calls == 0 and len(_files(data_dir)) == 1


def test_ddl_listeners_bypass_the_cache(project, data_dir):
    body = BODY + """
from sqlalchemy import event, DDL
event.listen(users, "after_create", DDL("CREATE VIEW v_users AS SELECT id FROM users"))
"""
    project.migrate(body)
    AutoMigrationSystem(project.settings(project.models(body))).check_migration_status()
    assert _files(data_dir) == []
    _, why = fingerprint_or_reason(AutoMigrationSystem(project.settings(project.models(body))).comparator.metadata(),
                                   sqlite.dialect())
    assert "after_create DDL listener" in why


def test_compiles_override_bypasses_the_cache():
    from sqlalchemy.ext.compiler import compiles, deregister
    from sqlalchemy.schema import CreateTable

    md = MetaData()
    Table("t", md, Column("id", Integer, primary_key=True))
    assert metadata_fingerprint(md, sqlite.dialect()) is not None

    @compiles(CreateTable)
    def _create(element, compiler, **kw):
        return compiler.visit_create_table(element, **kw) + " STRICT"
    try:
        fp, why = fingerprint_or_reason(md, sqlite.dialect())
        assert fp is None and "CreateTable" in why
    finally:
        deregister(CreateTable)


def test_server_key_and_tool_version_are_in_the_key(project, data_dir, monkeypatch):
    project.migrate(BODY)
    spec = project.models(BODY)
    counter = Counting(monkeypatch, SqliteDialect)
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    assert counter.calls == 0  # stored by migrate
    monkeypatch.setattr(SqliteDialect, "normalization_key", lambda self, conn=None: "sqlite 9.99.0")
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    assert counter.calls == 1
    monkeypatch.setattr(target_cache, "_code_key", "another release")
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    assert counter.calls == 2
    assert len(_files(data_dir)) == 3


def test_code_key_follows_the_source_files(tmp_path, monkeypatch):
    monkeypatch.setattr(target_cache, "_code_key", None)
    first = target_cache.code_key()
    monkeypatch.setattr(target_cache, "_code_key", None)
    assert target_cache.code_key() == first


def test_each_database_has_its_own_folder(tmp_path, data_dir):
    from migration_core import MigrationSettings

    a = MigrationSettings(database_url=f"sqlite:///{tmp_path / 'a.db'}")
    b = MigrationSettings(database_url=f"sqlite:///{tmp_path / 'b.db'}")
    assert target_cache.cache_dir(a) != target_cache.cache_dir(b)
    assert target_cache.cache_dir(a).parent == data_dir / "targets"


# -- every input of the fingerprint ------------------------------------------------------------

def _base(md: MetaData, **over):
    """One table with a bit of everything; `over` replaces one part."""
    cols = over.get("cols") or [
        Column("id", Integer, primary_key=True),
        Column("name", over.get("name_type", String(40)), nullable=over.get("nullable", False),
               server_default=over.get("default", text("'x'")), comment=over.get("col_comment")),
        Column("kind", over.get("enum", Enum("a", "b", name="kind_t"))),
        Column("parent_id", Integer, ForeignKey("t.id", ondelete=over.get("ondelete", "CASCADE"))),
        Column("amount", Numeric(10, 2), *over.get("col_checks", [])),
    ]
    t = Table("t", md, *cols, CheckConstraint(over.get("check", "amount >= 0"), name="ck_amount"),
              UniqueConstraint(*over.get("unique", ("name",)), name="uq_name"),
              comment=over.get("comment", "a table"), **over.get("table_kw", {}))
    ix = Index("ix_t", *[t.c[c] for c in over.get("index_cols", ("name",))], unique=over.get("index_unique", False),
               **over.get("index_kw", {}))
    if "index_ddl_if" in over:  # created on some databases only (Prefect 3's SQLite-only indexes)
        ix.ddl_if(dialect=over["index_ddl_if"])
    return md


CHANGES = {
    "type length": dict(name_type=String(41)),
    "type collation": dict(name_type=String(40, collation="NOCASE")),
    "dialect type argument": dict(name_type=mysql.VARCHAR(40, charset="latin1")),
    "variant": dict(name_type=String(40).with_variant(Text(), "sqlite").with_variant(Text(), "postgresql")
                    .with_variant(Text(), "mysql")),
    "nullable": dict(nullable=True),
    "server default": dict(default=text("'y'")),
    "default as a plain string": dict(default="x"),
    "column comment": dict(col_comment="a name"),
    "enum values": dict(enum=Enum("a", "b", "c", name="kind_t")),
    "enum name": dict(enum=Enum("a", "b", name="kind_u")),
    "foreign key action": dict(ondelete="SET NULL"),
    "check text": dict(check="amount > 0"),
    "column-level check": dict(col_checks=[CheckConstraint("amount < 1000")]),
    "unique columns": dict(unique=("name", "kind")),
    "table comment": dict(comment="another"),
    "table dialect option": dict(table_kw={"sqlite_autoincrement": True, "mysql_engine": "MyISAM",
                                           "postgresql_with_oids": False}),
    "index columns": dict(index_cols=("name", "kind")),
    "index unique": dict(index_unique=True),
    "index created on one database only": dict(index_ddl_if="sqlite"),
    "index dialect option": dict(index_kw={"sqlite_where": text("amount > 0"), "postgresql_where": text("amount > 0"),
                                           "mysql_length": 10}),
}


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect(), mysql.dialect()], ids=["sqlite", "pg", "mysql"])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_change_gives_another_fingerprint(change, dialect):
    base = metadata_fingerprint(_base(MetaData()), dialect)
    assert base is not None and base == metadata_fingerprint(_base(MetaData()), dialect)  # stable
    assert metadata_fingerprint(_base(MetaData(), **CHANGES[change]), dialect) != base


def test_types_declared_on_the_metadata_alone_are_seen():
    """`Enum(..., metadata=metadata)`: a PostgreSQL type that no column uses yet."""
    def make(*spare):
        md = _base(MetaData())
        if spare:
            Enum(*spare, name="spare", metadata=md)
        return md

    d = postgresql.dialect()
    fps = {metadata_fingerprint(make(), d), metadata_fingerprint(make("x", "y"), d), metadata_fingerprint(make("x", "z"), d)}
    assert None not in fps and len(fps) == 3


def test_dialect_changes_the_fingerprint():
    md = _base(MetaData())
    assert len({metadata_fingerprint(md, d) for d in (sqlite.dialect(), postgresql.dialect(), mysql.dialect())}) == 3


def test_naming_convention_sequence_and_custom_types_are_seen():
    from sqlalchemy import Sequence
    from sqlalchemy.types import TypeDecorator, UserDefinedType

    class Money(TypeDecorator):
        impl = Numeric
        cache_ok = True

        def __init__(self, scale):
            super().__init__(12, scale)

    class Point(UserDefinedType):
        cache_ok = True

        def __init__(self, dims):
            self.dims = dims

        def get_col_spec(self, **kw):
            return f"POINT{self.dims}D"

    def make(convention="ix_%(column_0_label)s", seq_start=1, scale=2, dims=2):
        md = MetaData(naming_convention={"ix": convention})
        Table("t", md, Column("id", Integer, Sequence("t_seq", start=seq_start), primary_key=True),
              Column("m", Money(scale)), Column("p", Point(dims), index=True))
        return md

    d = postgresql.dialect()
    base = metadata_fingerprint(make(), d)
    assert base == metadata_fingerprint(make(), d)
    for kw in ({"convention": "idx_%(column_0_label)s"}, {"seq_start": 5}, {"scale": 4}, {"dims": 3}):
        assert metadata_fingerprint(make(**kw), d) != base, kw


# -- property: different normalized targets never share a fingerprint ---------------------------

TYPES = [Integer(), BigInteger(), Boolean(), DateTime(), Text(), String(10), String(20), Numeric(8, 2), Numeric(10, 2),
         String(10, collation="NOCASE")]
DEFAULTS = [None, text("0"), text("1"), "a", text("CURRENT_TIMESTAMP")]


@st.composite
def models(draw):
    spec = []
    for ti in range(draw(st.integers(1, 3))):
        cols = [(f"c{ci}", draw(st.integers(0, len(TYPES) - 1)), draw(st.booleans()), draw(st.integers(0, len(DEFAULTS) - 1)),
                 draw(st.sampled_from([None, "note"])), draw(st.sampled_from([None, "> 0", "< 5"])),
                 draw(st.sampled_from([None, "CASCADE", "SET NULL"])))
                for ci in range(draw(st.integers(1, 3)))]
        spec.append((f"t{ti}", cols, draw(st.sampled_from([None, 0])), draw(st.sampled_from([None, "u", "ix"])),
                     draw(st.booleans()), draw(st.sampled_from([None, "c0 > 0"]))))
    return spec


def _build(spec) -> MetaData:
    md = MetaData()
    for name, cols, fk_to_first, extra, sqlite_autoinc, check in spec:
        columns = [Column("id", Integer, primary_key=True)]
        for cname, ti, nullable, di, comment, col_check, _ in cols:
            own = [CheckConstraint(f"{cname} {col_check}")] if col_check else []
            columns.append(Column(cname, TYPES[ti], *own, nullable=nullable, server_default=DEFAULTS[di], comment=comment))
        if fk_to_first is not None and name != spec[0][0]:
            columns.append(Column("ref", Integer, ForeignKey(f"{spec[0][0]}.id", ondelete=cols[0][6])))
        args = [*columns]
        if check:
            args.append(CheckConstraint(check))
        t = Table(name, md, *args, sqlite_autoincrement=sqlite_autoinc)
        if extra == "u":
            t.append_constraint(UniqueConstraint(t.c.c0))
        elif extra == "ix":
            Index(f"ix_{name}", t.c.c0)
    return md


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=models(), b=models())
def test_models_with_different_targets_never_share_a_fingerprint(tmp_path, a, b):
    from migration_core import MigrationSettings

    dialect = SqliteDialect(MigrationSettings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    ma, mb = _build(a), _build(b)
    fa, fb = metadata_fingerprint(ma, dialect.sa_dialect), metadata_fingerprint(mb, dialect.sa_dialect)
    assert fa is not None and fb is not None
    if dialect.normalize_target(ma) != dialect.normalize_target(mb):
        assert fa != fb
    if a == b:
        assert fa == fb


def test_fingerprint_does_not_change_once_the_models_are_compiled():
    """SQLAlchemy fills memoized attributes (dialect options, types' caches) on first compile."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    for dialect in (sqlite.dialect(), postgresql.dialect(), mysql.dialect()):
        md = _base(MetaData())
        before = metadata_fingerprint(md, dialect)
        for t in md.tables.values():
            str(CreateTable(t).compile(dialect=dialect))
            for ix in t.indexes:
                str(CreateIndex(ix).compile(dialect=dialect))
        assert metadata_fingerprint(md, dialect) == before


# -- the batched scratch creation on a server (dialects/server/batch.py) --------------------------

from servers import server  # noqa: E402,F401 - fixture


@pytest.mark.parametrize("before", [0, 260], ids=["first chunk", "a later chunk"])
def test_a_model_the_server_refuses_names_its_own_error_and_leaves_the_scratch_clean(server, data_dir, before):  # noqa: F811
    """The script fails at a table in its first chunk, or in a later one while earlier chunks have run
    (`ScriptSender`); the models are then created one statement at a time, so the error is that
    statement's own, and the connection and scratch place are left usable."""
    from migration_core.errors import ConfigurationError

    filler = "".join(f'Table("f{i}", metadata, Column("id", Integer, primary_key=True))\n' for i in range(before))
    bad = BODY + filler + 'broken = Table("zz_broken", metadata, Column("id", Integer, primary_key=True), Column("v", Integer, server_default=text("no_such_fn()")))\n'
    failing = AutoMigrationSystem(server.settings(server.models(bad)))
    ours: list[int] = []  # the server's ids of this system's connections (a scratch database is named after its owner's)
    if server.kind == "mysql":
        from sqlalchemy import event
        event.listen(failing.dialect.engine, "connect", lambda dbapi_conn, _: ours.append(dbapi_conn.thread_id()))
    with pytest.raises(ConfigurationError, match="the models cannot be created on .*no_such_fn"):
        failing.check_migration_status()
    assert _files(data_dir) == []  # nothing stored for models that cannot be created
    status = AutoMigrationSystem(server.settings(server.models(BODY))).check_migration_status()
    assert [c.kind for c in status.changes] == ["add_table", "add_table"]
    if server.kind == "mysql":
        assert ours
        leftovers = [r[0] for r in server.sql("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '\\_mig\\_scratch\\_%%'")
                     if (m := re.match(r"_mig_scratch_(\d+)_", r[0])) and int(m[1]) in ours]
        assert leftovers == []


def test_batched_target_equals_one_statement_at_a_time(server, monkeypatch):  # noqa: F811
    """The script and create_all give the same normalized target (the scratch names in stored index
    text aside, which nothing compares)."""
    from dataclasses import replace

    import migration_core.dialects.mysql.dialect as my_dialect
    import migration_core.dialects.postgresql.scratch as pg_scratch

    body = BODY + """
Table("kinds", metadata, Column("id", Integer, primary_key=True), Column("k", Enum("a", "b", name="kind_e"), nullable=False),
      Column("pct", Numeric(5, 2), CheckConstraint("pct >= 0 AND pct <= 100")), Column("label", String(30), unique=True))
"""
    monkeypatch.setenv("MIGRATION_TARGET_CACHE", "off")
    system = AutoMigrationSystem(server.settings(server.models(body)))
    metadata = system.comparator.metadata()
    batched = system.dialect.normalize_target(metadata)
    for module in (pg_scratch, my_dialect):
        monkeypatch.setattr(module, "compiled_ddl", lambda *a, **k: None)
    single = system.dialect.normalize_target(metadata)

    def plain(snap):
        return {n: replace(t, indexes=tuple(replace(i, sql="") for i in t.indexes)) for n, t in snap.tables.items()}
    assert plain(batched) == plain(single) and batched.enums == single.enums


# -- memory: texts interned, SQLite's stored live schema refers to the target's equal tables ----------

def test_stored_live_schema_shares_the_targets_equal_tables_and_texts(project, data_dir):
    """An up-to-date database's stored live schema holds references to the target's tables, and what
    differs is stored whole; a models change reads the live schema again once."""
    project.migrate(BODY)
    spec = project.models(BODY)
    AutoMigrationSystem(project.settings(spec)).check_migration_status()  # stores the target and the live schema
    project.sql("CREATE TABLE side (id INTEGER PRIMARY KEY, note TEXT)")
    AutoMigrationSystem(project.settings(spec)).check_migration_status()
    warm = AutoMigrationSystem(project.settings(spec))
    comparison = warm.comparator.compare_schemas()
    live, target = comparison.live, comparison.target
    assert [c.kind for c in comparison.diff.changes] == ["drop_table"]
    assert live.tables["users"] is target.tables["users"] and live.tables["posts"] is target.tables["posts"]
    assert live.tables["side"].column("note") is not None  # stored whole
    assert live.tables["side"].columns[0].name is target.tables["users"].columns[0].name  # "id", one object
    with pytest.MonkeyPatch.context() as mp:  # the same schema read without any store
        mp.setenv("MIGRATION_TARGET_CACHE", "off")
        assert AutoMigrationSystem(project.settings(spec)).comparator.compare_schemas().live == live
    # another target: the stored live schema is read again, and still right
    changed = AutoMigrationSystem(project.settings(project.models(BODY + 'extra = Table("extra", metadata, Column("id", Integer, primary_key=True))\n')))
    assert sorted(c.kind for c in changed.check_migration_status().changes) == ["add_table", "drop_table"]


def test_a_reference_the_target_does_not_hold_is_ignored(project, data_dir):
    from migration_core.snapshot import Column as SnapColumn, PrimaryKey, SchemaSnapshot, Table as SnapTable
    from migration_core.target_cache import TargetCache

    def table(name):
        return SnapTable(name, (SnapColumn("id", "INTEGER", False, None),), PrimaryKey(None, ("id",)))
    shared = SchemaSnapshot("sqlite", tables={"a": table("a")})
    live = SchemaSnapshot("sqlite", tables={"a": table("a"), "b": table("b")})
    cache = TargetCache(data_dir, writable=True, prefix="live")
    cache.store("k" * 64, live, shared)
    loaded = cache.load("k" * 64, shared)
    assert loaded == live and loaded.tables["a"] is shared.tables["a"]
    assert cache.load("k" * 64, SchemaSnapshot("sqlite", tables={"b": table("b")})) is None  # "a" is not there: ignored
    assert cache.load("k" * 64) is None  # no shared snapshot at all
