"""The functions a fill or conversion may call on MariaDB/MySQL (see migration_core/fills.py).

An allowlist, never a blocklist: a fill is evaluated by read-only commands (status, diff, preview),
so any function not named here, and every stored function, is refused. Built-ins of the MariaDB KB
pages "String Functions", "Numeric Functions", "Date & Time Functions" and "Control Flow Functions"
that neither write nor read anything but their arguments (the clock and UUID() write nothing)."""

NAMES = frozenset("""
abs ceil ceiling conv crc32 degrees div exp floor format ln log log10 log2 mod pi pow power radians round
sign sqrt truncate acos asin atan atan2 cos cot sin tan
ascii bin bit_length char char_length character_length concat concat_ws elt export_set field find_in_set
hex insert instr lcase left length locate lower lpad ltrim make_set md5 mid oct octet_length ord position
quote regexp_instr regexp_replace regexp_substr repeat replace reverse right rpad rtrim sha sha1 sha2 space
strcmp substr substring substring_index to_base64 from_base64 trim ucase unhex upper weight_string
adddate addtime convert_tz curdate current_date current_time current_timestamp curtime date date_add
date_format date_sub datediff day dayname dayofmonth dayofweek dayofyear extract from_days from_unixtime
hour last_day localtime localtimestamp makedate maketime microsecond minute month monthname now period_add
period_diff quarter sec_to_time second str_to_date subdate subtime sysdate time time_format time_to_sec
timediff timestamp timestampadd timestampdiff to_days to_seconds unix_timestamp utc_date utc_time
utc_timestamp week weekday weekofyear year yearweek
coalesce nullif greatest least if ifnull isnull cast convert uuid
""".split())
