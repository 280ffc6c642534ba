"""The functions a fill or conversion may call on SQLite (see migration_core/fills.py).

An allowlist, never a blocklist: the SQLite docs "Built-In Scalar SQL Functions", "Built-in
Mathematical SQL Functions" and "Date And Time Functions" that read nothing but their arguments
(`random()` is left out: the probe would check other values than the migration writes)."""

NAMES = frozenset("""
abs char coalesce format glob hex iif ifnull instr length like lower ltrim max min nullif octet_length printf
quote replace round rtrim sign substr substring trim typeof unhex unicode upper zeroblob concat concat_ws
acos asin atan atan2 ceil ceiling cos degrees exp floor ln log log10 log2 mod pi pow power radians sin sqrt
tan trunc date time datetime julianday unixepoch strftime timediff current_date current_time
current_timestamp cast
""".split())
