"""Size and speed of each backup engine on PostgreSQL and MariaDB: 50 tables plus one table of
N rows (default 200,000). Creates and drops its own databases.

    python bench/backup_servers.py [ROWS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import ServerProject  # noqa: E402
from test_migrations_servers import _many_tables  # noqa: E402

from migration_core.backup import BackupManager  # noqa: E402

BIG = """
Table("big", metadata, Column("id", Integer, primary_key=True), Column("name", String(64)), Column("n", Integer),
      Column("at", DateTime))
"""


def engines(kind, system):
    d = system.dialect
    if kind == "postgresql":
        from migration_core.dialects.postgresql.logical import PgLogicalBackupEngine

        return [d.backup_engine(), PgLogicalBackupEngine(lambda: d.connect(write=True), d.schema, d._fingerprint)]
    from migration_core.dialects.mysql.backup import LogicalBackupEngine

    return [d.backup_engine(), LogicalBackupEngine(lambda: d.connect(write=True), d.schema, d._fingerprint)]


def main(rows: int) -> None:
    for kind in ("postgresql", "mysql"):
        with tempfile.TemporaryDirectory() as tmp:
            p = ServerProject(kind, Path(tmp))
            try:
                system = p.system(_many_tables(50) + BIG)
                system.execute_auto_migration(create_backup=False)
                if kind == "postgresql":
                    p.sql(f"INSERT INTO big (name, n, at) SELECT md5(g::text), g, now() FROM generate_series(1, {rows}) g")
                else:
                    p.sql(f"INSERT INTO big (name, n, at) SELECT md5(seq), seq, now() FROM seq_1_to_{rows}")  # MariaDB SEQUENCE engine
                for engine in engines(kind, system):
                    manager = BackupManager(system.settings, engine)
                    t0 = time.perf_counter()
                    info = manager.create_backup("bench")
                    t1 = time.perf_counter()
                    manager.restore_backup(info.id)
                    t2 = time.perf_counter()
                    print(f"{kind:10s} {engine.name:24s} size {info.size_bytes / 1e6:7.2f} MB  backup {t1 - t0:6.2f} s  "
                          f"verify+restore {t2 - t1:6.2f} s")
            finally:
                p.drop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
