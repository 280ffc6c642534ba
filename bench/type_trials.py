"""What trying a type change on the live values costs `status` (postgresql/trial.py, mysql/trial.py),
against two baselines timed in the same rounds: `status` for a change checked by a count alone (a
VARCHAR narrowed: one scan), and the conversion itself done by hand (the floor: PostgreSQL `ALTER ..
TYPE .. USING` rolled back; MariaDB `ALTER .. MODIFY` on a copy of the table made untimed).

    python bench/type_trials.py [ROWS] [ROUNDS]      (defaults 200000, 5)

Uses MIGRATION_TEST_POSTGRES_URL / MIGRATION_TEST_MYSQL_URL (defaults: local servers); creates and
drops its own databases. Goal: the trial itself (status beyond the count-only status) costs no more
than the conversion it stands for (`*_extra_per_floor` <= 1). A round trip (MariaDB: converted and
back, to compare) costs about two conversions.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import ServerProject  # noqa: E402

TABLE = 'from sqlalchemy import CHAR\nTable("t", metadata, Column("id", Integer, primary_key=True), Column("v", {type}))\n'
FILL = {
    "mysql": "INSERT INTO t SELECT seq, DATE_FORMAT('2000-01-01' + INTERVAL seq MINUTE, '%Y-%m-%d %H:%i:%s') FROM seq_1_to_{n}",
    "postgresql": "INSERT INTO t SELECT g, to_char(timestamp '2000-01-01' + g * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS') "
                  "FROM generate_series(1, {n}) g",
}
FLOOR = {  # (untimed setup, timed conversion, untimed cleanup)
    "mysql": ("CREATE TABLE t_copy AS SELECT * FROM t", "ALTER TABLE t_copy MODIFY v DATETIME", "DROP TABLE t_copy"),
    "postgresql": ("BEGIN", "ALTER TABLE t ALTER COLUMN v TYPE TIMESTAMP USING v::TIMESTAMP", "ROLLBACK"),
}


def measure(kind: str, rows: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        p = ServerProject(kind, Path(tmp))
        try:
            p.migrate(TABLE.format(type="String(30)"), create_backup=False)
            p.sql(FILL[kind].format(n=rows))
            statuses = {name: p.system(TABLE.format(type=t)) for name, t in
                        [("count_only", "String(25)"), ("trial_parse", "DateTime"), ("trial_round_trip", "CHAR(30)")]}
            for system in statuses.values():
                system.check_migration_status()  # the models normalized once, as a running process has them
            samples: dict[str, list[float]] = {name: [] for name in [*statuses, "floor_alter"]}
            setup, timed, cleanup = FLOOR[kind]
            for i in range(rounds + 1):  # round 0 warms up, untimed
                for name, system in statuses.items():
                    t0 = time.perf_counter()
                    st = system.check_migration_status()
                    if i:
                        samples[name].append(time.perf_counter() - t0)
                    assert not any(c.blocked for c in st.changes if c.risk == "data_dependent"), st.changes
                with p.engine.connect() as c:
                    c.exec_driver_sql(setup)
                    t0 = time.perf_counter()
                    c.exec_driver_sql(timed)
                    if i:
                        samples["floor_alter"].append(time.perf_counter() - t0)
                    c.exec_driver_sql(cleanup)
            med = {k: statistics.median(v) for k, v in samples.items()}
            return {"kind": kind, "rows": rows, **{f"{k}_s": round(v, 3) for k, v in med.items()},
                    "trial_parse_per_floor": round(med["trial_parse"] / med["floor_alter"], 2),
                    "trial_round_trip_per_floor": round(med["trial_round_trip"] / med["floor_alter"], 2),
                    "trial_parse_per_count_only": round(med["trial_parse"] / med["count_only"], 2),
                    # the trial alone: what status spends beyond a count, against the conversion itself
                    "trial_parse_extra_per_floor": round((med["trial_parse"] - med["count_only"]) / med["floor_alter"], 2),
                    "trial_round_trip_extra_per_floor": round((med["trial_round_trip"] - med["count_only"]) / med["floor_alter"], 2)}
        finally:
            p.drop()


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    r = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    for kind in ("postgresql", "mysql"):
        print(measure(kind, n, r))
